"""Pull reports from SocketLabs by hand: the same pull the jobs page and the nightly run start, run here."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Server
from reporting import pulls
from reporting.models import PullTrigger, ReportPull


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not a day as YYYY-MM-DD.") from exc


class Command(BaseCommand):
    help = (
        "Pull report figures and StreamScore of UTC days from SocketLabs, synchronously. "
        "By default yesterday (UTC); --days N pulls the N days up to yesterday; --from/--to a range."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--server", type=int, help="Mailroom id of the server (see Admin → Servers).")
        which.add_argument("--all", action="store_true", help="Every server with an API key.")
        parser.add_argument("--from", dest="first", type=_day, help="First UTC day, YYYY-MM-DD.")
        parser.add_argument("--to", dest="last", type=_day, help="Last UTC day, YYYY-MM-DD (default: --from).")
        parser.add_argument("--days", type=int, help="The N days up to yesterday (UTC).")

    def _range(self, options: dict[str, Any]) -> tuple[date, date]:
        yesterday = pulls.utc_today() - timedelta(days=1)
        if options["days"] is not None:
            if options["first"] or options["last"]:
                raise CommandError("Give either --days or --from/--to, not both.")
            if options["days"] < 1:
                raise CommandError("--days must be 1 or more.")
            return yesterday - timedelta(days=options["days"] - 1), yesterday
        first, last = options["first"], options["last"]
        if first is None and last is None:
            return yesterday, yesterday
        if first is None:
            raise CommandError("--to needs --from.")
        return first, last or first

    def _servers(self, options: dict[str, Any]) -> list[Server]:
        if options["all"]:
            servers = list(Server.objects.exclude(api_key="").order_by("pk"))
            if not servers:
                raise CommandError("No server has an API key.")
            return servers
        server = Server.objects.filter(pk=options["server"]).first()
        if server is None:
            raise CommandError(f"No server with id {options['server']}.")
        return [server]

    def handle(self, *args: Any, **options: Any) -> None:
        first, last = self._range(options)
        try:
            pulls.check_range(first, last)
        except pulls.PullError as exc:
            raise CommandError(exc.message) from exc
        failed = []
        for server in self._servers(options):
            pull = pulls.create_pull(server, first, last, PullTrigger.COMMAND, enqueue=False)
            self.stdout.write(f"{server.name} (server {server.socketlabs_id}): {pull.days_total} day(s)…")

            def progress(current: ReportPull, day: date) -> None:
                self.stdout.write(f"  {day:%Y-%m-%d} stored ({current.days_done}/{current.days_total})")

            outcome = pulls.run_pull(pull.pk, budget_seconds=0, retry_later=False, on_day=progress)
            pull.refresh_from_db()
            if outcome == "done":
                self.stdout.write(self.style.SUCCESS(f"  Done: {pull.days_done} day(s) pulled."))
            else:
                failed.append(server.name)
                self.stderr.write(f"  Failed after {pull.days_done} of {pull.days_total} day(s): {pull.error}")
        if failed:
            raise CommandError(f"The pull failed for {', '.join(failed)}.")
        self.stdout.write(f"Pulled {first:%Y-%m-%d} to {last:%Y-%m-%d} for every server asked.")
