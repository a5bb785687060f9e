"""Pull suppression lists from SocketLabs now: `manage.py sync_suppressions [--server ID …] [--due]`.

The same service the nightly beat dispatcher and the "Sync now" button use, run in this process.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

import socketlabs
from accounts.models import Server
from suppression import imports, services


class Command(BaseCommand):
    help = "Pull suppression lists from SocketLabs into the local mirror (all servers with an API key by default)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--server", type=int, action="append", help="Mailroom server id (repeatable).")
        parser.add_argument("--due", action="store_true", help="Only servers whose nightly pull is due.")
        parser.add_argument("--sweep", action="store_true", help="Also retry due writes and resume stalled imports.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["server"]:
            servers = list(Server.objects.filter(pk__in=options["server"]))
            missing = set(options["server"]) - {s.pk for s in servers}
            if missing:
                raise CommandError(f"No server with id {', '.join(map(str, sorted(missing)))}.")
        elif options["due"]:
            servers = services.due_for_nightly_sync()
        else:
            servers = list(Server.objects.exclude(api_key=""))
        failed = 0
        for server in servers:
            try:
                outcome = services.sync(server=server)
            except socketlabs.SocketLabsError as exc:
                failed += 1
                self.stderr.write(f"{server.name}: {exc}")
                continue
            if outcome.ok:
                self.stdout.write(outcome.message)
            else:
                failed += 1
                self.stderr.write(f"{server.name}: {outcome.message}")
        if options["sweep"]:
            self.stdout.write(f"Sweep: {imports.sweep()}, writes retried: {services.retry_due_writes()}")
        if failed:
            raise CommandError(f"{failed} of {len(servers)} pulls did not complete.")
