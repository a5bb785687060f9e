"""Celery tasks of report pulls (issue 9): thin, take ids, safe to run twice (the pull is claimed)."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from reporting import pulls


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_jitter=True, max_retries=5)
def run_pull(pull_id: int) -> str:
    """Pull day after day for about two minutes, then hand over to a fresh task (time limits stay far away)."""
    outcome = pulls.run_pull(pull_id)
    if outcome == "more":
        run_pull.delay(pull_id)
    return outcome


@shared_task
def dispatch_nightly_pulls() -> int:
    """Beat, every 5 minutes: each server's nightly pull once it is due in the server's time zone."""
    return len(pulls.dispatch_nightly())


@shared_task
def sweep_pulls() -> int:
    """Beat, every minute: send again the pulls due for a retry, lost in the queue, or left by a dead worker."""
    ids = pulls.due_pull_ids()
    for pull_id in ids:
        run_pull.delay(pull_id)
    return len(ids)
