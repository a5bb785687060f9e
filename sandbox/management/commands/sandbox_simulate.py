"""`manage.py sandbox_simulate --servers 10101,10102 --days 30 --per-day 2000 --seed 1`.

Fills sandbox servers with realistic past traffic (messages, delivery and engagement events,
suppressions) so reports, StreamScore and the pages have something to show. Re-running with the
same arguments gives the same data. No webhooks are posted for it unless `--post-webhooks`.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sandbox import simulation
from sandbox.models import SandboxServer


def _server_ids(raw: str) -> list[int]:
    try:
        return [int(part) for part in raw.split(",") if part.strip()]
    except ValueError as exc:
        raise CommandError(f"--servers takes comma-separated server ids, not {raw!r}.") from exc


class Command(BaseCommand):
    help = "Generate past traffic (messages, events, suppressions) for sandbox servers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--servers", default="", help="Comma-separated sandbox server ids (default: all).")
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument("--per-day", type=int, default=2000, help="Messages per server per day.")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--post-webhooks",
            action="store_true",
            help="Leave the events for the dispatcher, which posts them to the servers' event webhooks.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["days"] < 1 or options["per_day"] < 1:
            raise CommandError("--days and --per-day must be at least 1.")
        wanted = _server_ids(options["servers"])
        servers = list(SandboxServer.objects.filter(server_id__in=wanted) if wanted else SandboxServer.objects.all())
        missing = sorted(set(wanted) - {s.server_id for s in servers})
        if missing:
            raise CommandError(f"No sandbox server {', '.join(map(str, missing))}.")
        if not servers:
            raise CommandError("There are no sandbox servers; run sandbox_seed first.")
        started = time.monotonic()
        stats = simulation.generate_history(
            servers=servers,
            days=options["days"],
            per_day=options["per_day"],
            seed=options["seed"],
            post_webhooks=options["post_webhooks"],
        )
        self.stdout.write(
            f"Simulated {stats.messages:,} messages and {stats.events:,} events for "
            f"{len(servers)} server(s) over {options['days']} day(s) in {time.monotonic() - started:.1f} s; "
            f"{stats.suppressions:,} simulated suppressions."
        )
