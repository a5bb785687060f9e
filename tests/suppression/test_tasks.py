"""Beat and Celery: nightly pulls per server time zone, queue-once, the sweeper, thin tasks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from accounts.models import Server, User
from suppression import imports, services, tasks
from suppression.models import ImportJob, JobStatus, MirrorState, SyncStatus
from tests.suppression.conftest import upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    """What would have gone to the broker (the broker itself is exercised by the browser test)."""
    sent: list[tuple[str, tuple[Any, ...]]] = []
    for task in (tasks.sync_server, tasks.run_import, tasks.validate_import):
        monkeypatch.setattr(task, "delay", lambda *args, _name=task.name: sent.append((_name, args)))
    return sent


def test_beat_runs_the_dispatcher_and_the_sweeper() -> None:
    schedule = {entry["task"]: entry for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    for name in ("suppression.tasks.dispatch_nightly_syncs", "suppression.tasks.sweep"):
        entry = schedule[name]
        assert entry["options"]["expires"] < entry["schedule"]


def test_a_pull_is_queued_once_however_often_it_is_asked_for(
    server: Server, django_capture_on_commit_callbacks: Callable, enqueued: list
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        assert services.request_sync(server=server) is True
        assert services.request_sync(server=server) is False
    assert enqueued == [("suppression.tasks.sync_server", (server.pk,))]
    assert MirrorState.objects.get(server=server).sync_status == SyncStatus.QUEUED


def test_nightly_pulls_follow_each_servers_time_zone(server: Server, other_server: Server) -> None:
    server.time_zone = "Asia/Tokyo"  # UTC+9
    server.save()
    other_server.time_zone = "America/New_York"  # UTC-5 in January
    other_server.save()
    at = datetime(2025, 1, 10, 18, 0, tzinfo=UTC)  # 03:00 in Tokyo, 13:00 in New York
    assert {s.pk for s in services.due_for_nightly_sync(now=at)} == {server.pk, other_server.pk}
    MirrorState.objects.create(server=server, last_synced_at=at)
    MirrorState.objects.create(server=other_server, last_synced_at=at - timedelta(hours=2))  # 11:00 same day in NY
    assert services.due_for_nightly_sync(now=at + timedelta(hours=1)) == []
    # 07:00 UTC on the 11th: 16:00 in Tokyo, pulled at 03:00 that day; 02:00 in New York, last pulled on the 10th.
    assert services.due_for_nightly_sync(now=datetime(2025, 1, 11, 7, tzinfo=UTC)) == [other_server]


def test_the_dispatcher_does_not_pull_before_the_sync_hour(server: Server) -> None:
    server.time_zone = "UTC"
    server.save()
    assert services.due_for_nightly_sync(now=datetime(2025, 1, 10, 1, 30, tzinfo=UTC)) == []
    assert services.due_for_nightly_sync(now=datetime(2025, 1, 10, 2, 30, tzinfo=UTC)) == [server]


def test_servers_without_a_key_are_never_pulled(server: Server) -> None:
    server.api_key = ""
    server.save()
    assert services.due_for_nightly_sync(now=datetime(2025, 1, 10, 5, tzinfo=UTC)) == []


def test_the_sweeper_wakes_stalled_imports_and_rechecks_lost_validations(
    server: Server, ops: User, enqueued: list, settings: Any
) -> None:
    settings.SUPPRESSION_INLINE_VALIDATE_BYTES = 0
    stalled = imports.create_job(actor=ops, kind="add", upload=upload("email\na@example.com\n"), servers=[server])
    imports.validate(stalled.pk)
    imports.request_apply(job=ImportJob.objects.get(pk=stalled.pk), actor=ops, skip_invalid=False)
    lost = imports.create_job(actor=ops, kind="add", upload=upload("email\nb@example.com\n"), servers=[server])
    assert lost.status == JobStatus.VALIDATING
    assert imports.sweep()["resumed_jobs"] == 0
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        result = imports.sweep()
    assert (result["resumed_jobs"], result["revalidated"]) == (1, 1)
    assert ("suppression.tasks.run_import", (str(stalled.pk),)) in enqueued
    assert ("suppression.tasks.validate_import", (str(lost.pk),)) in enqueued


def test_the_import_task_hands_over_when_its_time_is_up(
    server: Server, ops: User, monkeypatch: pytest.MonkeyPatch, enqueued: list
) -> None:
    monkeypatch.setattr(imports, "run", lambda job_id: imports.RunOutcome("more"))
    assert tasks.run_import("some-id") == "more"
    assert enqueued == [("suppression.tasks.run_import", ("some-id",))]


def test_the_sync_task_ignores_a_deleted_server() -> None:
    assert tasks.sync_server(999_999) == "gone"


def test_the_sweeper_requeues_lost_and_crashed_pulls(server: Server, other_server: Server, enqueued: list) -> None:
    now = timezone.now()
    MirrorState.objects.create(server=server, sync_status=SyncStatus.QUEUED, sync_requested_at=now)
    MirrorState.objects.create(server=other_server, sync_status=SyncStatus.RUNNING, sync_started_at=now)
    assert services.resume_stale_syncs(now=now + timedelta(minutes=5)) == 0
    assert services.resume_stale_syncs(now=now + timedelta(hours=1)) == 2
    assert sorted(args for _, args in enqueued) == sorted([(server.pk,), (other_server.pk,)])
    assert set(MirrorState.objects.values_list("sync_status", flat=True)) == {SyncStatus.QUEUED}
