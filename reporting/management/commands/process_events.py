from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from reporting import processing


class Command(BaseCommand):
    help = "Turn stored raw webhook events into typed events and rollups (what beat runs every 10 s)."

    def handle(self, *args: Any, **options: Any) -> None:
        result = processing.drain(max_seconds=3600)
        self.stdout.write(
            f"Processed {result.claimed} raw event(s): {result.created} event(s), {result.dead} dead letter(s)."
        )
