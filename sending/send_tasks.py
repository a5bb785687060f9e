"""Celery tasks for bulk sends: thin, take ids, safe to run twice (batches are claimed atomically)."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from sending import engine


@shared_task(
    autoretry_for=(engine.NotTaken, OperationalError),
    retry_backoff=True,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=5,
)
def dispatch_send(send_id: int) -> str:
    """Send a send's batches; re-queued when its time budget is spent.

    `NotTaken` (connect error, 429, 503 after the client's own retries) put the batch back to
    pending, so retrying the task with backoff cannot send anyone twice.
    """
    outcome = engine.run_dispatcher(send_id)
    if outcome == "budget":
        dispatch_send.delay(send_id)
    # "busy" (the server's in-flight limit is reached): the workers holding those batches keep claiming
    # until nothing is pending, and the minute sweep re-queues whatever is left; re-queueing here would
    # only multiply tasks that bounce off the limit.
    return outcome


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def expand_send_audience(send_id: int) -> str:
    """Expand a large audience into recipient rows; the draft's summary polls its progress."""
    from sending import audience

    return audience.expand(send_id)


@shared_task
def sweep_sends() -> dict[str, int]:
    """Beat, every minute: abandoned in-flight batches become unknown; pending work and stopped
    audience jobs are re-queued."""
    result = engine.sweep()
    return {
        "unknown": result.marked_unknown,
        "requeued": result.requeued,
        "finished": result.finished,
        "audiences": result.audiences_requeued,
    }
