from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from reporting import services


class Command(BaseCommand):
    help = "Delete webhook request logs older than 7 days and processed raw events past their retention."

    def handle(self, *args: Any, **options: Any) -> None:
        logs, raws = services.prune()
        self.stdout.write(f"Deleted {logs} request log row(s) and {raws} raw event(s).")
