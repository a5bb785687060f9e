from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured


@register(Tags.security)
def check_encryption_keys(app_configs: Any, **kwargs: Any) -> list[Error]:
    from accounts.fields import fernet

    if not settings.MAILROOM_ENCRYPTION_KEYS:
        return [Error("MAILROOM_ENCRYPTION_KEYS is not set.", hint="Generate one with `make key`.", id="mailroom.E001")]
    try:
        fernet()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint="Each key is 44 url-safe base64 characters.", id="mailroom.E002")]
    return []


@register(Tags.security, deploy=True)
def check_production_services(app_configs: Any, **kwargs: Any) -> list[Warning]:
    problems = []
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        problems.append(
            Warning("Celery uses the filesystem broker.", hint="Set CELERY_BROKER_URL to Redis.", id="mailroom.W001")
        )
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        problems.append(Warning("The database is SQLite.", hint="Set DATABASE_URL to PostgreSQL.", id="mailroom.W002"))
    if settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"):
        # allauth keeps used TOTP codes and its rate limits in the cache: per process, a code
        # used on one gunicorn worker could be replayed on another.
        problems.append(
            Warning(
                "The cache is per process (no REDIS_URL).",
                hint="Set REDIS_URL so one-time codes and rate limits hold across workers.",
                id="mailroom.W004",
            )
        )
    if settings.SANDBOX_ENABLED:
        problems.append(
            Warning("The SocketLabs sandbox is enabled.", hint="Set SANDBOX_ENABLED=false.", id="mailroom.W003")
        )
    return problems
