"""Fixtures: Mailroom servers wired to the sandbox (the local SocketLabs) over real HTTP, and small helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from pytest_django.fixtures import Settings

from accounts.models import Server
from sandbox.models import SandboxServer, SandboxSuppression
from socketlabs.transport import default_breakers
from suppression import mirror
from tests.e2e.conftest import pytest_runtest_teardown  # noqa: F401 - fast DELETE flush after live-server tests
from tests.sandbox.conftest import SandboxKeys, make_sandbox_server

CLOSED_PORT_URL = "http://127.0.0.1:9/v2"  # nothing listens: connection refused at once


@pytest.fixture(autouse=True)
def _fresh_breakers() -> Iterator[None]:
    """The client's circuit breakers are process-wide; a test's failures must not leak into the next."""
    default_breakers.reset()
    yield
    default_breakers.reset()


@pytest.fixture(autouse=True)
def _media(settings: Settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SUPPRESSION_API_RATE = 0  # no pacing in tests unless a test asks for it


@dataclass
class Linked:
    """A Mailroom server pointing at a sandbox server."""

    server: Server
    keys: SandboxKeys

    @property
    def sandbox(self) -> SandboxServer:
        return self.keys.server

    def sandbox_addresses(self) -> set[str]:
        return set(SandboxSuppression.objects.filter(server=self.sandbox).values_list("email_address", flat=True))

    def seed(self, *addresses: str, reason: str = "Bounce") -> None:
        SandboxSuppression.objects.bulk_create(
            [SandboxSuppression(server=self.sandbox, email_address=a, reason=reason, source="seed") for a in addresses]
        )


@pytest.fixture
def link(live_server: object, settings: Settings) -> Callable[[Server, int], Linked]:
    """Point a Mailroom `Server` at a new sandbox server (its own SocketLabs id and keys)."""
    settings.SANDBOX_ENABLED = True
    base = f"{live_server.url}/sandbox/api/v2"  # type: ignore[attr-defined]

    def make(server: Server, sandbox_id: int = 17001) -> Linked:
        keys = make_sandbox_server(server_id=sandbox_id, name=f"Sandbox {sandbox_id}", account_id=sandbox_id + 1000)
        server.socketlabs_id = sandbox_id
        server.api_url = base
        server.api_key = keys.api_key
        server.save()
        return Linked(server=server, keys=keys)

    return make


@pytest.fixture
def linked(link: Callable[[Server, int], Linked], server: Server) -> Linked:
    return link(server, 17001)


def put_in_mirror(server: Server, *addresses: str, reason: str = "Bounce", when: datetime | None = None) -> None:
    stamp = (when or datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)).isoformat()
    mirror.load(
        server.pk,
        [(a, a.rsplit("@", 1)[1], reason, "seed", stamp) for a in addresses],
        replace=False,
    )


def upload(text: str | bytes, name: str = "list.csv") -> SimpleUploadedFile:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return SimpleUploadedFile(name, data, content_type="text/csv")
