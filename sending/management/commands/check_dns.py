"""Run the DNS checks now, in this process: the same service the nightly beat job uses."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from accounts.models import Server
from sending import services
from sending.models import DnsCheckJob


class Command(BaseCommand):
    help = "Check every expected DKIM, verification, bounce and tracking record in DNS (all servers, or --server ID)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--server", type=int, action="append", help="Mailroom server id (repeatable).")

    def handle(self, *args: Any, **options: Any) -> None:
        servers = Server.objects.all()
        if options["server"]:
            servers = servers.filter(pk__in=options["server"])
        job = DnsCheckJob.objects.create(server_ids=[s.pk for s in servers], trigger="command")
        done = services.run_dns_job(job.pk)
        assert done is not None
        for error in done.errors:
            self.stderr.write(error)
        self.stdout.write(
            f"Checked {done.done} record(s) on {len(done.server_ids)} server(s); {done.problems} need attention."
        )
