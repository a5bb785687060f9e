"""Fixtures for the webhook and inbound tests: endpoints whose secrets match the saved payloads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.http import HttpResponse
from django.test import Client
from django.test.client import Client as DjangoClient

from accounts.models import Server
from reporting import receivers
from reporting.models import EventEndpoint, InboundEndpoint

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "webhooks"
EVENT_SECRET = "whsec-abc"
INBOUND_SECRET = "inbound-secret"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> dict[str, Any]:
    return json.loads(fixture_bytes(name))


@pytest.fixture(autouse=True)
def _fresh_wake_state(settings: Any) -> Iterator[None]:
    # Redis is real and shared between tests: start each with no wake flag and no 401 counters.
    cache.clear()
    receivers._last_wake = 0.0
    receivers._endpoint_cache.clear()
    yield
    cache.clear()
    receivers._endpoint_cache.clear()


@pytest.fixture
def short_db_sessions() -> Iterator[None]:
    """Live-server threads must not keep database sessions open past the test (the test DB is dropped later)."""
    database = django_settings.DATABASES["default"]
    kept = database.get("CONN_MAX_AGE", 0)
    database["CONN_MAX_AGE"] = 0
    yield
    database["CONN_MAX_AGE"] = kept


@pytest.fixture
def endpoint(server: Server) -> EventEndpoint:
    return EventEndpoint.objects.create(server=server, name="main", secret_key=EVENT_SECRET)


@pytest.fixture
def inbound_endpoint(server: Server, settings: Any, tmp_path: Path) -> InboundEndpoint:
    settings.REPORTING_INBOUND_ROOT = str(tmp_path / "inbound")
    return InboundEndpoint.objects.create(server=server, name="support", secret_key=INBOUND_SECRET)


def post(
    client: DjangoClient | Client,
    url: str,
    body: bytes | dict[str, Any],
    content_type: str = "application/json",
    **extra: Any,
) -> HttpResponse:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    return client.post(url, data=data, content_type=content_type, **extra)  # type: ignore[return-value]
