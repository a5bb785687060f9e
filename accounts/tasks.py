from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from accounts.models import Heartbeat


@shared_task
def beat_heartbeat() -> None:
    """Run by beat every minute; /health/ reports how long ago it last ran."""
    Heartbeat.objects.update_or_create(name="beat", defaults={"at": timezone.now()})


@shared_task
def ping() -> str:
    return "pong"
