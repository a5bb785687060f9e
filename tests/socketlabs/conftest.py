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


# --- the real client against the sandbox over HTTP (tests/socketlabs/test_live_*.py) ------------------
# Those modules mark themselves `django_db(transaction=True, available_apps=LIVE_APPS)`: the live
# server's thread must see committed rows, and flushing only the sandbox's tables after each test
# keeps the suite fast.
LIVE_APPS = ["sandbox", "accounts", "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions"]


@pytest.fixture(scope="module")
def live_fast_flush() -> Iterator[None]:
    """Empty the tables between live tests with DELETE instead of TRUNCATE.

    Truncating creates new files for every table and index (and cascades from `accounts` into
    most of the project's tables): seconds per test on a busy machine. The live tests leave a few
    rows in a few tables, so DELETE is far cheaper; Django's PostgreSQL foreign keys are
    DEFERRABLE INITIALLY DEFERRED and the flush runs in one transaction, so the order of the
    DELETEs does not matter. Module-scoped so it is in place before the per-test database
    fixture and still in place when that fixture flushes at teardown.
    """
    from django.db.backends.postgresql.operations import DatabaseOperations

    def sql_flush(
        self: DatabaseOperations, style: Any, tables: Any, *, reset_sequences: bool = False, allow_cascade: bool = False
    ) -> list[str]:
        return [f"DELETE FROM {self.quote_name(table)};" for table in tables]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "sql_flush", sql_flush)
        yield


# What every live module marks itself with.
LIVE_MARKS = [
    pytest.mark.django_db(transaction=True, available_apps=LIVE_APPS),
    pytest.mark.usefixtures("live_fast_flush"),
]


@pytest.fixture
def live_sandbox(live_server: Any, settings: Any) -> Iterator[str]:
    """The sandbox switched on; its root URL (`http://127.0.0.1:PORT/sandbox`)."""
    from django.conf import settings as django_settings

    settings.SANDBOX_ENABLED = True
    # Live-server threads may outlive a request; without persistent connections PostgreSQL can
    # drop the test database afterwards.
    database = django_settings.DATABASES["default"]
    kept = database.get("CONN_MAX_AGE", 0)
    database["CONN_MAX_AGE"] = 0
    yield f"{live_server.url}/sandbox"
    database["CONN_MAX_AGE"] = kept


@pytest.fixture
def live_keys(live_sandbox: str, transactional_db: None) -> Any:
    """A sandbox server (id 17001) with one raw key per API."""
    from tests.sandbox.conftest import make_sandbox_server

    return make_sandbox_server()


@pytest.fixture
def make_live_client(live_sandbox: str, request: pytest.FixtureRequest) -> Iterator[Callable[..., SocketLabsClient]]:
    """A real client pointed at the sandbox: one attempt, short timeouts, breakers of its own.

    Every endpoint the test's clients call is recorded; a test that declares `@covers(...)` paths
    fails at teardown unless it really called each of them (so the coverage table cannot lie).
    """
    called: set[str] = set()

    def make(keys: Any = None, **overrides: Any) -> SocketLabsClient:
        options: dict[str, Any] = {
            "api_url": f"{live_sandbox}/api/v2",
            "inject_url": f"{live_sandbox}/inject/api/v1/email",
            "marketing_url": f"{live_sandbox}/marketing/v1",
            "timeout": (2, 10),
            "max_attempts": 1,
            "breakers": BreakerRegistry(),
        }
        if keys is not None:
            options.update(
                server_id=keys.server_id,
                api_key=keys.api_key,
                injection_key=keys.injection_key,
                marketing_key=keys.marketing_key,
            )
        options.update(overrides)
        client = SocketLabsClient(**options)
        real_call = client.transport.call

        def recording_call(endpoint: Any, **kwargs: Any) -> Any:
            called.add(endpoint.name)
            return real_call(endpoint, **kwargs)

        client.transport.call = recording_call  # type: ignore[method-assign]
        return client

    yield make
    declared = set(getattr(request.function, "covers_paths", ()))
    missing = declared - called
    assert not missing, f"{request.node.name} declares paths it never called: {sorted(missing)}"


@pytest.fixture
def live_client(make_live_client: Callable[..., SocketLabsClient], live_keys: Any) -> SocketLabsClient:
    return make_live_client(live_keys)
