"""Celery tasks: thin, take ids, safe to run twice (each claims its row with a conditional update)."""

from __future__ import annotations

from celery import shared_task

from accounts.models import Server


@shared_task(ignore_result=True)
def run_import(job_id: int) -> None:
    from marketing import imports

    imports.run(job_id)


@shared_task(ignore_result=True)
def run_sync(job_id: int) -> None:
    from marketing import sync

    sync.run(job_id)


@shared_task(ignore_result=True)
def refresh_counts(server_id: int) -> None:
    from marketing import services

    server = Server.objects.filter(pk=server_id).first()
    if server is not None:
        services.refresh_counts(server=server)


@shared_task(ignore_result=True)
def sweep() -> None:
    """Beat, every minute: restart imports and syncs whose worker died or whose message was lost."""
    from marketing import imports, sync

    imports.sweep()
    sync.sweep()
