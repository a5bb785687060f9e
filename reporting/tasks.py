from __future__ import annotations

from typing import Any

from celery import shared_task
from django.core.cache import cache
from django.db import OperationalError

from reporting import digest_tasks, effects, forwarding, processing, pull_tasks, routes, services
from reporting.receivers import WAKE_KEY

__all__ = ["digest_tasks", "pull_tasks"]  # report pulls and digests live there; importing registers them


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
    effects.apply_all_pending()
    return result.claimed


@shared_task
def prune_reporting() -> tuple[int, int]:
    """Hourly: request logs older than 7 days, processed raw events past their retention."""
    return services.prune()


# The attempts are bounded by the message row (REPORTING_FORWARD_MAX_ATTEMPTS), which also counts attempts
# started by the sweep; Celery's own limit is only a backstop above it.
@shared_task(bind=True, max_retries=50)
def forward_inbound_message(self: Any, message_id: int) -> str:
    """POST one parsed inbound message to its route's URL; retried with backoff on 5xx, timeouts, refusals."""
    result = forwarding.attempt(message_id)
    if result.retry_in is not None:
        raise self.retry(countdown=result.retry_in)
    return result.outcome


@shared_task
def sweep_inbound_forwards() -> int:
    """Every few minutes: re-enqueue pending forwards whose task was lost or whose worker died."""
    return forwarding.sweep()


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_jitter=True, max_retries=3)
def check_inbound_routes_mx(route_ids: list[int]) -> int:
    """Re-check the MX of these inbound routes and store each result on its route."""
    return routes.check_routes(route_ids)


@shared_task
def nightly_inbound_mx_checks() -> int:
    """Nightly: queue MX checks of every inbound route, in small batches of ids."""
    return routes.queue_nightly_checks()
