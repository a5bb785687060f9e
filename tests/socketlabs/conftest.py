"""Fixtures for the SocketLabs client: a fake clock and sleep, and clients pointed at made-up hosts.

The hosts are faked with `responses`; nothing leaves the machine. The base URLs carry a port and a
path prefix on purpose, as the sandbox's will (`http://127.0.0.1:PORT/sandbox/api/v2`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses

from socketlabs import BreakerRegistry, SocketLabsClient

SERVER_ID = 12345
API = "http://api.test:8081/sandbox/api/v2"
INJECT = "http://inject.test:8082/sandbox/inject/api/v1/email"
MARKETING = "http://api.test:8081/sandbox/marketing/v1"
BEARER_KEY = "P" * 20 + "." + "s" * 40  # the 61-character 20.40 shape
LEGACY_KEY = "legacyKey123"
MARKETING_KEY = "mkt-key-42"


class FakeTime:
    """A clock that only moves when the client sleeps (or a test says so), and a log of the sleeps."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def breakers() -> BreakerRegistry:
    """A registry of its own per test, so breaker state never leaks between tests."""
    return BreakerRegistry()


@pytest.fixture
def make_client(fake_time: FakeTime, breakers: BreakerRegistry) -> Callable[..., SocketLabsClient]:
    def make(**overrides: Any) -> SocketLabsClient:
        options: dict[str, Any] = {
            "server_id": SERVER_ID,
            "api_url": API,
            "api_key": BEARER_KEY,
            "inject_url": INJECT,
            "injection_key": BEARER_KEY,
            "marketing_url": MARKETING,
            "marketing_key": MARKETING_KEY,
            "sleep": fake_time.sleep,
            "clock": fake_time.clock,
            "rng": lambda: 0.5,
            "breakers": breakers,
        }
        options.update(overrides)
        return SocketLabsClient(**options)

    return make


@pytest.fixture
def client(make_client: Callable[..., SocketLabsClient]) -> SocketLabsClient:
    return make_client()


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    """Registered answers are matched in order of registration; all must be used."""
    with responses.RequestsMock(registry=responses.registries.OrderedRegistry) as rsps:
        yield rsps


@pytest.fixture
def loose() -> Iterator[responses.RequestsMock]:
    """Answers matched by URL, any order, reusable."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps
