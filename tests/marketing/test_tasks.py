"""The Celery tasks are thin and safe to run twice; the sweeper restarts work a dead worker left behind."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Server, User
from marketing import services, sync, tasks
from marketing.models import ContactStats, JobStatus, SyncJob, SyncKind

pytestmark = pytest.mark.django_db


def test_refresh_counts_counts_by_status(server: Server, marketing: User) -> None:
    services.create_contact(server=server, actor=marketing, data={"email": "a@example.com"})
    services.create_contact(server=server, actor=marketing, data={"email": "b@example.com", "status": "bounced"})
    tasks.refresh_counts(server.pk)
    tasks.refresh_counts(999_999)  # a deleted server: nothing to do
    stats = ContactStats.objects.get(server=server)
    assert (stats.total, stats.subscribed, stats.bounced) == (2, 1, 1)


def test_the_sweeper_restarts_a_sync_whose_worker_died_and_resends_lost_messages(
    server: Server, django_capture_on_commit_callbacks: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []
    monkeypatch.setattr(tasks.run_sync, "delay", lambda pk: sent.append(pk))
    long_ago = timezone.now() - timedelta(minutes=20)
    dead = SyncJob.objects.create(server=server, kind=SyncKind.PUSH, status=JobStatus.RUNNING, heartbeat_at=long_ago)
    lost = SyncJob.objects.create(
        server=server, kind=SyncKind.PULL_LISTS, status=JobStatus.QUEUED, next_attempt_at=long_ago
    )
    fresh = SyncJob.objects.create(
        server=server, kind=SyncKind.PULL_CONTACTS, status=JobStatus.QUEUED, next_attempt_at=timezone.now()
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert sync.sweep() == 2
    assert sorted(sent) == sorted([dead.pk, lost.pk])
    dead.refresh_from_db()
    assert dead.status == JobStatus.QUEUED
    assert fresh.pk not in sent


def test_a_sync_job_runs_once(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    job = SyncJob.objects.create(server=server, kind=SyncKind.PUSH, status=JobStatus.DONE)
    assert sync.run(job.pk) is None
