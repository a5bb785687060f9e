"""A real round trip through Celery: the Redis broker, an in-process worker, our tasks.

The app is built like config/celery.py (Django settings, CELERY_ namespace) with a result backend
on the same Redis and its own queue, so nothing else on that broker takes or sends these tasks.
The worker is Celery's own test worker (`celery.contrib.testing.worker.start_worker`, what the
`celery_worker` fixture wraps) running in a thread of this process.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from celery import _state as celery_state
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.conf import settings
from django.db import connections

from accounts.models import Heartbeat

pytestmark = pytest.mark.django_db(transaction=True)  # the worker thread commits on its own connection


def _close_worker_connections(**kwargs: Any) -> None:
    # Runs in the worker thread: leave no idle connection that would block dropping the test database.
    connections.close_all()


@pytest.fixture
def worker_app() -> Iterator[Celery]:
    broker = settings.CELERY_BROKER_URL
    if not broker.startswith("redis://"):
        pytest.skip("needs CELERY_BROKER_URL=redis://… (the real broker)")
    app = Celery("mailroom-test", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(
        result_backend=broker,
        task_ignore_result=False,
        task_default_queue=f"mailroom-test-{uuid.uuid4().hex}",
        worker_hijack_root_logger=False,
    )
    app.loader.import_module("celery.contrib.testing.tasks")  # celery.ping, for the start-up check
    app.autodiscover_tasks(["accounts"], force=True)
    # start_worker makes its app the current and default one; later tests' `.delay()` must go
    # back to the project's app (config/celery.py), so remember and restore both.
    previous_current, previous_default = celery_state.get_current_app(), celery_state.default_app
    task_postrun.connect(_close_worker_connections, weak=False)
    try:
        with start_worker(app, pool="solo", concurrency=1, perform_ping_check=True, shutdown_timeout=10):
            yield app
    finally:
        task_postrun.disconnect(_close_worker_connections)
        previous_current.set_current()
        celery_state.set_default_app(previous_default)
        app.close()


def test_a_task_goes_through_the_broker_and_comes_back(worker_app):
    result = worker_app.send_task("accounts.tasks.ping")
    assert result.get(timeout=20) == "pong"
    assert result.successful()


def test_the_heartbeat_task_writes_its_row_from_the_worker(worker_app):
    assert not Heartbeat.objects.exists()
    worker_app.send_task("accounts.tasks.beat_heartbeat").get(timeout=20)
    beat = Heartbeat.objects.get(name="beat")
    first = beat.at
    worker_app.send_task("accounts.tasks.beat_heartbeat").get(timeout=20)
    beat.refresh_from_db()
    assert beat.at > first  # updated in place, one row
    assert Heartbeat.objects.count() == 1


def test_while_the_worker_runs_its_app_is_the_current_one(worker_app):
    # start_worker switches the current app; the next test checks the fixture switched it back.
    from celery import current_app

    assert current_app.main == "mailroom-test"


def test_after_the_worker_stops_tasks_go_to_the_project_app_again():
    from celery import current_app

    from config.celery import app

    assert current_app._get_current_object() is app


def test_the_beat_schedule_runs_the_heartbeat_more_often_than_health_calls_it_stale():
    entry = settings.CELERY_BEAT_SCHEDULE["heartbeat"]
    assert entry["task"] == "accounts.tasks.beat_heartbeat"
    assert entry["schedule"] < 180  # /health/ calls beat stale after 3 minutes
    assert entry["options"]["expires"] < entry["schedule"]
