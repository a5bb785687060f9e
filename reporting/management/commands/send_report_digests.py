from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from reporting import alerts, digests


class Command(BaseCommand):
    help = (
        "Send the nightly and weekly report digests that are due now, and retry alert e-mails that failed "
        "(what beat runs every 15 minutes; running it twice sends nothing twice)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        retried = alerts.notify_pending()
        sent = digests.send_due_digests()
        self.stdout.write(f"Sent {sent} digest(s) and {retried} alert e-mail(s).")
