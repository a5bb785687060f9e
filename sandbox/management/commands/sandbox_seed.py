from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from sandbox.seed import seed_demo_servers


class Command(BaseCommand):
    help = "Create the demo sandbox account, servers and keys, and Mailroom servers using them. Safe to run twice."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--owner", help="E-mail of the user the audit log names (default: the first site admin).")

    def handle(self, *args: Any, **options: Any) -> None:
        owner = None
        if options.get("owner"):
            owner = User.objects.filter(email=options["owner"].strip().lower()).first()
            if owner is None:
                raise CommandError(f"No user with the e-mail {options['owner']}.")
        else:
            owner = User.objects.filter(is_superuser=True).order_by("pk").first()
        if not settings.SANDBOX_ENABLED:
            self.stderr.write(self.style.WARNING("SANDBOX_ENABLED is off: the demo servers will not answer."))
        for line in seed_demo_servers(owner=owner):
            self.stdout.write(line)
