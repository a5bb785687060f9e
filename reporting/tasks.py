from __future__ import annotations

from celery import shared_task
from django.core.cache import cache
from django.db import OperationalError

from reporting import effects, processing, services
from reporting.receivers import WAKE_KEY


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_jitter=True, max_retries=5)
def process_raw_events() -> int:
    """Drain the raw-event inbox. Woken by the receiver (at most once per quiet period) and by beat every 10 s."""
    result = processing.drain()
    if not result.more:
        # Rows stored while the wake flag was still set did not wake anyone: clear it and look once more.
        cache.delete(WAKE_KEY)
        again = processing.drain()
        result += again
    if result.more:
        process_raw_events.delay()
    effects.apply_pending()
    return result.claimed


@shared_task
def prune_reporting() -> tuple[int, int]:
    """Hourly: request logs older than 7 days, processed raw events past their retention."""
    return services.prune()
