from __future__ import annotations

import os
import secrets
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.models import User

DEMO_EMAIL = "admin@mailroom.local"


class Command(BaseCommand):
    help = "Create the demo administrator (and, with the sandbox on, demo servers). Safe to run twice."

    def handle(self, *args: Any, **options: Any) -> None:
        password_file = settings.VAR_DIR / "demo-admin-password"
        user = User.objects.filter(email=DEMO_EMAIL).first()
        if user is None or not password_file.exists():
            password = os.environ.get("MAILROOM_DEMO_PASSWORD") or secrets.token_urlsafe(12)
            if user is None:
                user = User.objects.create_superuser(DEMO_EMAIL, password)
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
            password_file.write_text(password)
            password_file.chmod(0o600)
        password = password_file.read_text().strip()
        if settings.SANDBOX_ENABLED:
            try:
                from sandbox.seed import seed_demo_history, seed_demo_servers
            except ImportError:
                pass
            else:
                for line in seed_demo_servers(owner=user):
                    self.stdout.write(line)
                for line in seed_demo_history(owner=user):
                    self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS(f"Demo login: {DEMO_EMAIL} / {password}"))
