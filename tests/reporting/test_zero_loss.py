"""R2 / issue 8: a 10,000-event burst over HTTP while a real worker is killed half-way and restarted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.models import Count, Sum

from config.celery import app as celery_app
from reporting.models import DailyRollup, Event, EventEndpoint, RawEvent
from reporting.tasks import process_raw_events
from tests.reporting.conftest import EVENT_SECRET

HERE = Path(__file__).resolve().parent
BURST = 10_000
SENDERS = 8


def start_worker() -> subprocess.Popen[bytes]:
    settings = connection.settings_dict
    database_url = (
        f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}"
    )
    env = {**os.environ, "DATABASE_URL": database_url, "PAUSE": "0.3"}
    return subprocess.Popen(
        [sys.executable, str(HERE / "worker_with_pause.py")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def body(index: int) -> bytes:
    return json.dumps(
        {
            "Type": "Delivered" if index % 3 else "Failed",
            "FailureType": "Permanent",
            "FailureCode": 2001,
            "DateTime": "2024-05-01T10:00:00Z",
            "ServerId": 12345,
            "SecretKey": EVENT_SECRET,
            "Address": f"user{index}@example.net",
            "MessageId": f"burst-{index}",
            "MailingId": "burst",
        }
    ).encode()


def send_burst(url: str, sent: list[int], failures: list[str]) -> None:
    position = iter(range(BURST))
    lock = threading.Lock()

    def sender() -> None:
        while True:
            with lock:
                index = next(position, None)
            if index is None:
                return
            request = urllib.request.Request(url, data=body(index), headers={"Content-Type": "application/json"})
            for attempt in range(5):  # like SocketLabs: retry on connection errors and 5xx
                try:
                    with urllib.request.urlopen(request, timeout=20) as response:
                        if response.status == 200:
                            break
                except (urllib.error.URLError, OSError) as exc:
                    if attempt == 4:
                        failures.append(f"{index}: {exc}")
                    time.sleep(0.2)
            with lock:
                sent[0] += 1

    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(400)
def test_a_burst_survives_a_killed_worker_with_nothing_lost_or_doubled(
    live_server: Any, endpoint: EventEndpoint, settings: Any, short_db_sessions: None
) -> None:
    settings.REPORTING_WAKE_LOCAL_SECONDS = 0
    celery_app.control.purge()
    url = f"{live_server.url}/hooks/socketlabs/events/{endpoint.uuid}/"
    sent = [0]
    failures: list[str] = []
    worker = start_worker()
    killed_with: tuple[int, int] | None = None
    try:
        burst = threading.Thread(target=send_burst, args=(url, sent, failures))
        burst.start()
        deadline = time.monotonic() + 240
        # Kill the worker once half the burst is in and it has committed some batches.
        while time.monotonic() < deadline:
            if sent[0] >= BURST // 2 and Event.objects.exists():
                worker.send_signal(signal.SIGKILL)
                worker.wait(timeout=10)
                killed_with = (sent[0], Event.objects.count())
                print(f"killed the worker after {killed_with[0]} posts, {killed_with[1]} events", file=sys.stderr)
                break
            time.sleep(0.05)
        assert killed_with is not None, "the worker was never seen working"
        worker = start_worker()
        burst.join(timeout=240)
        assert not burst.is_alive()
        process_raw_events.delay()  # what beat does every 10 s
        while time.monotonic() < deadline + 60 and RawEvent.objects.pending().exists():
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        celery_app.control.purge()

    assert not failures
    assert sent[0] == BURST
    assert 0 < killed_with[1] < BURST  # the kill really happened half-way
    assert RawEvent.objects.count() == BURST
    assert not RawEvent.objects.pending().exists()
    assert Event.objects.count() == BURST
    assert not Event.objects.values("raw_id").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert Event.objects.values("message_id").distinct().count() == BURST
    assert DailyRollup.objects.aggregate(total=Sum("count"))["total"] == BURST
    assert DailyRollup.objects.get(type="failed").count == len([i for i in range(BURST) if i % 3 == 0])
