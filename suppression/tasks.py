"""Thin Celery tasks over the services: they take ids, and running one twice is harmless."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

import socketlabs
from accounts.models import Server
from suppression import imports, services


@shared_task(
    autoretry_for=(socketlabs.TransientError, OperationalError),
    retry_backoff=60,
    retry_backoff_max=1800,
    retry_jitter=True,
    max_retries=4,
)
def sync_server(server_id: int) -> str:
    """A full pull of one server's list (on demand, or queued by the nightly dispatcher)."""
    server = Server.objects.filter(pk=server_id).first()
    if server is None:
        return "gone"
    return services.sync(server=server).message


@shared_task
def dispatch_nightly_syncs() -> int:
    """Beat, every 10 minutes: queue each server's nightly pull once it is due in the server's time zone."""
    return services.dispatch_nightly_syncs()


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_jitter=True, max_retries=5)
def validate_import(job_id: str) -> str:
    job = imports.validate(job_id)
    return job.status if job else "skipped"


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_jitter=True, max_retries=5)
def run_import(job_id: str) -> str:
    """Apply batches for about a minute, then hand over to a fresh task (time limits stay far away)."""
    outcome = imports.run(job_id)
    if outcome.state == "more":
        run_import.delay(job_id)
    elif outcome.state == "retry":
        run_import.apply_async((job_id,), countdown=outcome.retry_after)
    return outcome.state


@shared_task
def sweep() -> dict[str, int]:
    """Beat, every minute: retry due outbox writes, resume stalled imports and pulls, forget old removals."""
    result = imports.sweep()
    result["syncs_resumed"] = services.resume_stale_syncs()
    result["writes_retried"] = services.retry_due_writes()
    result["removals_pruned"] = services.prune()
    return result
