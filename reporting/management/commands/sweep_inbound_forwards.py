from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from reporting import forwarding


class Command(BaseCommand):
    help = "Re-enqueue inbound messages whose forwarding is long overdue (what beat runs every 2 minutes)."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"Re-enqueued {forwarding.sweep()} overdue forward(s).")
