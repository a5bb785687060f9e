"""Fixtures for bulk sends: a Mailroom server injecting into the sandbox over live HTTP, dispatchers run inline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from accounts.models import Server
from sending import engine
from sending.models import Send
from tests.sandbox.conftest import SandboxKeys


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Dispatcher tasks the engine asked for; tests run `engine.run_dispatcher` themselves."""
    calls: list[int] = []
    monkeypatch.setattr(engine, "_enqueue", lambda send_id, copies=1: calls.extend([send_id] * copies))
    return calls


@pytest.fixture
def inject_server(server: Server, sandbox: SandboxKeys, live_server: Any, queued: list[int]) -> Server:
    """The persona fixtures' server `Acme-1`, injecting into the sandbox with a working injection key."""
    server.inject_url = f"{live_server.url}/sandbox/inject/api/v1/email"
    server.socketlabs_id = sandbox.server_id
    server.injection_key = sandbox.injection_key
    server.save()
    return server


@pytest.fixture
def make_send(inject_server: Server, marketing: Any) -> Callable[..., Send]:
    def make(rows: list[engine.AudienceRow], **options: Any) -> Send:
        defaults: dict[str, Any] = {
            "subject": "Hello %%FirstName%%",
            "html_body": "<p>Hi %%FirstName%% from %%City%%, %%Motto%%</p>",
            "text_body": "Hi %%FirstName%% from %%City%%, %%Motto%%",
            "from_address": "news@example.com",
        }
        send = engine.create_send(server=inject_server, actor=marketing, **{**defaults, **options})
        engine.add_recipients(send, rows)
        return send

    return make


def people(n: int, *, domain: str = "example.net") -> list[engine.AudienceRow]:
    return [engine.AudienceRow(f"person{i}@{domain}", f"Person {i}", {"FirstName": f"P{i}"}) for i in range(n)]
