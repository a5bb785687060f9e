"""Keeping contacts consistent with servers (contacts have no database constraint on their server)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import pre_delete
from django.dispatch import receiver

from accounts.models import Server


@receiver(pre_delete, sender=Server, dispatch_uid="marketing.delete_server_contacts")
def delete_server_contacts(sender: type[Server], instance: Server, **kwargs: Any) -> None:
    """A server's contacts go with it: one DELETE; memberships and history follow in the database."""
    from marketing.models import Contact

    Contact.objects.filter(server_id=instance.pk).delete()
