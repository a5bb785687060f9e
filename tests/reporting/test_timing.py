"""R4 timing sanity check: a wrong SecretKey of the right length is answered as fast as one of another length.

A sanity check, not a proof: medians of per-request timings through the Django test client, 300 of each
kind interleaved in random order, compared as a relative difference with a small absolute floor so the
noise of a loaded 2-core machine does not decide. A real leak (an early exit that skips work) persists
across rounds; noise does not, so a round that passes is enough. The second test shows the same
measurement catches a leak of a fraction of a millisecond.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from typing import Any

import pytest
from django.test import Client

from reporting import receivers
from reporting.models import EventEndpoint
from tests.reporting.conftest import EVENT_SECRET, fixture_json

SAMPLES = 300
RELATIVE = 0.05
FLOOR_SECONDS = 40e-6
ROUNDS = 3


@pytest.fixture(autouse=True)
def _no_rate_limit(settings: Any) -> None:
    # Past the per-minute limit 401s become 429s without a log row: a different path. Keep every answer a 401.
    settings.REPORTING_UNAUTHORIZED_PER_MINUTE = 10**9


def bodies() -> tuple[bytes, bytes]:
    same_length = "".join("z" if c != "z" else "y" for c in EVENT_SECRET)
    other_length = same_length * 5
    assert len(same_length) == len(EVENT_SECRET) != len(other_length)
    base = fixture_json("delivered.json")
    return (
        json.dumps(base | {"SecretKey": same_length}).encode(),
        json.dumps(base | {"SecretKey": other_length}).encode(),
    )


def medians(client: Client, endpoint: EventEndpoint) -> tuple[float, float]:
    url = f"/hooks/socketlabs/events/{endpoint.uuid}/"
    same, other = bodies()
    order = [0] * SAMPLES + [1] * SAMPLES
    random.shuffle(order)
    timings: tuple[list[float], list[float]] = ([], [])
    for kind in [0, 1] * 20 + order:  # the first 40 warm caches and connections
        body = same if kind == 0 else other
        started = time.perf_counter()
        response = client.post(url, data=body, content_type="application/json")
        timings[kind].append(time.perf_counter() - started)
        assert response.status_code == 401
    return statistics.median(timings[0][20:]), statistics.median(timings[1][20:])


def close_enough(a: float, b: float) -> bool:
    return abs(a - b) <= max(RELATIVE * max(a, b), FLOOR_SECONDS)


def test_a_wrong_secret_takes_as_long_whatever_its_length(client: Client, endpoint: EventEndpoint) -> None:
    seen = []
    for _ in range(ROUNDS):
        same, other = medians(client, endpoint)
        seen.append(f"{same * 1e6:.0f} µs vs {other * 1e6:.0f} µs")
        if close_enough(same, other):
            return
    pytest.fail(f"Median answer times differ by more than {RELATIVE:.0%} in every round: {'; '.join(seen)}")


def test_the_measurement_would_see_a_length_leak(
    client: Client, endpoint: EventEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = receivers.constant_time_compare

    def leaky(given: str | bytes, expected: str | bytes) -> bool:
        if len(given) == len(expected):
            deadline = time.perf_counter() + 0.0005  # the work an early exit on length would skip
            while time.perf_counter() < deadline:
                pass
        return real(given, expected)

    monkeypatch.setattr(receivers, "constant_time_compare", leaky)

    same, other = medians(client, endpoint)

    assert not close_enough(same, other), f"{same * 1e6:.0f} µs vs {other * 1e6:.0f} µs"
