"""Celery tasks for sending setup: thin, take ids, safe to run twice (the job is claimed before it runs)."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from sending import send_tasks, services

__all__ = ["send_tasks"]  # bulk-send tasks live there; importing registers them with the worker


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_jitter=True, max_retries=5)
def run_dns_check_job(job_id: str) -> str | None:
    job = services.run_dns_job(job_id)
    return str(job.status) if job else None


@shared_task
def nightly_dns_checks() -> str | None:
    """Beat, every night: one job over every server; the results feed the DNS health pages."""
    job = services.nightly_dns_checks()
    return str(job.pk) if job else None
