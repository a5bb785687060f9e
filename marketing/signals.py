"""Keeping contacts consistent with servers (contacts have no database constraint on their server)."""

from __future__ import annotations

import logging
from typing import Any

from django.db.models.signals import pre_delete
from django.dispatch import receiver

from accounts.models import Server

log = logging.getLogger(__name__)


@receiver(pre_delete, sender=Server, dispatch_uid="marketing.delete_server_contacts")
def delete_server_contacts(sender: type[Server], instance: Server, **kwargs: Any) -> None:
    """A server's contacts go with it: one DELETE; memberships and history follow in the database."""
    from marketing.models import Contact

    Contact.objects.filter(server_id=instance.pk).delete()


def apply_recorded_effects(sender: Any, effect_ids: list[int], **kwargs: Any) -> None:
    """SocketLabs events that unsubscribe, bounce or complain move the contacts' status (reporting's hook).

    Runs after reporting's processing transaction commits, with the new effects' ids. Safe to run
    again (a status only moves up), so it marks nothing; a failure here is logged and never
    disturbs the processing of events.
    """
    from marketing import services
    from reporting.models import Effect

    try:
        effects = list(Effect.objects.filter(pk__in=effect_ids).select_related("event").order_by("server_id", "id"))
        for server_id in sorted({e.server_id for e in effects}):
            server = Server.objects.filter(pk=server_id).first()
            if server is None:
                continue
            services.apply_event_effects(
                server=server,
                entries=[(e.address, e.kind, e.event.occurred_at) for e in effects if e.server_id == server_id],
            )
    except Exception:
        log.exception("contacts: could not apply the status effects of events %s", effect_ids[:20])


def connect_effects() -> None:
    try:
        from reporting.effects import effects_recorded
    except ImportError:  # reporting not installed: nothing to follow
        return
    effects_recorded.connect(apply_recorded_effects, dispatch_uid="marketing.apply_recorded_effects")
