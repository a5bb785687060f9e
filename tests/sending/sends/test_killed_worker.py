"""A send survives a real worker killed with SIGKILL half-way, and nobody gets the message twice.

A Celery worker runs as a separate process on the Redis broker, injecting into the sandbox
(served by the live server) over real HTTP. Once some batches are accepted it is killed; beat's
sweep then marks whatever was in flight `unknown` (it may have reached SocketLabs) and re-queues
the rest; a new worker finishes the send. The sandbox's stored messages prove no double send.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection

from config.celery import app as celery_app
from sandbox.models import SandboxMessage
from sending import engine
from sending.models import BatchState, RecipientState, Send, SendBatch, SendStatus
from tests.sending.sends.conftest import people

RECIPIENTS = 10_000  # 20 requests of 500


def start_worker() -> subprocess.Popen[bytes]:
    s = connection.settings_dict
    database_url = f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config.celery",
            "worker",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "WARNING",
        ],
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(300)
def test_a_killed_worker_neither_loses_nor_doubles_a_recipient(
    make_send: Callable[..., Send], monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("needs the Redis broker (CELERY_BROKER_URL)")
    celery_app.control.purge()
    send = make_send(people(RECIPIENTS))
    monkeypatch.undo()  # the real _enqueue: tasks go to the broker for the worker process
    engine.start(send, actor=send.created_by)
    worker = start_worker()
    try:
        accepted = lambda: SendBatch.objects.filter(send=send, state=BatchState.ACCEPTED).count()  # noqa: E731
        assert wait_for(lambda: accepted() >= 3, 120), "the worker never got going"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        at_kill = accepted()
        in_flight = SendBatch.objects.filter(send=send, state=BatchState.IN_FLIGHT).count()

        print(f"killed after {at_kill} accepted batches, {in_flight} in flight", file=sys.stderr)
        swept = engine.sweep(older_than=timedelta(0))  # beat, once the batch is stale
        assert swept.marked_unknown == in_flight
        worker = start_worker()
        assert wait_for(lambda: Send.objects.get(pk=send.pk).status == SendStatus.DONE, 180), engine.progress(send)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        celery_app.control.purge()

    assert 3 <= at_kill < RECIPIENTS // 500  # killed half-way
    progress = engine.progress(send)
    assert progress.accepted + progress.unknown == RECIPIENTS
    assert progress.unknown == in_flight * 500
    stored = SandboxMessage.objects.count()
    addresses = SandboxMessage.objects.values("to__0__emailAddress").distinct().count()
    assert addresses == stored  # nobody twice
    accepted_addresses = set(send.recipients.filter(state=RecipientState.ACCEPTED).values_list("address", flat=True))
    assert accepted_addresses <= set(SandboxMessage.objects.values_list("to__0__emailAddress", flat=True))
    assert progress.accepted <= stored <= RECIPIENTS
