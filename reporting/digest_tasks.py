"""Celery tasks of alerts and digests (issue 9)."""

from __future__ import annotations

from celery import shared_task

from reporting import alerts, digests


@shared_task
def send_due_digests() -> int:
    """Beat, every 15 minutes: the digests that are due, and alert mails that failed earlier."""
    alerts.notify_pending()
    return digests.send_due_digests()
