"""Fixtures for the sandbox (the local SocketLabs): a server with one key per API, the sandbox switched on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from pytest_django.fixtures import Settings

from sandbox.models import Permission, SandboxAccount, SandboxApiKey, SandboxServer


@dataclass(frozen=True)
class SandboxKeys:
    """A sandbox server and the raw keys issued for it (the sandbox itself keeps only hashes)."""

    server: SandboxServer
    server_id: int
    api_key: str  # 61-char key with the `api` permission (API v2)
    injection_key: str  # 61-char key with the `injection` permission
    marketing_key: str  # key with the `marketing` permission
    legacy_key: str  # short legacy injection key (sent in the body)

    @property
    def account(self) -> SandboxAccount:
        return self.server.account


@pytest.fixture(autouse=True)
def sandbox_enabled(settings: Settings) -> None:
    settings.SANDBOX_ENABLED = True


def make_sandbox_server(*, server_id: int = 17001, name: str = "Sandbox One", account_id: int = 9001) -> SandboxKeys:
    account, _ = SandboxAccount.objects.get_or_create(account_id=account_id, defaults={"name": f"Account {account_id}"})
    server = SandboxServer.objects.create(
        account=account, server_id=server_id, name=name, delivery_delay_seconds=0, tracking_delay_seconds=0
    )
    _, api = SandboxApiKey.issue(server=server, name="v2", permissions=[Permission.API])
    _, inject = SandboxApiKey.issue(server=server, name="injection", permissions=[Permission.INJECTION])
    _, marketing = SandboxApiKey.issue(server=server, name="marketing", permissions=[Permission.MARKETING])
    _, legacy = SandboxApiKey.issue(server=server, name="legacy", permissions=[Permission.INJECTION], legacy=True)
    return SandboxKeys(
        server=server,
        server_id=server_id,
        api_key=api,
        injection_key=inject,
        marketing_key=marketing,
        legacy_key=legacy,
    )


@pytest.fixture
def sandbox_server(db: None) -> SandboxKeys:
    return make_sandbox_server()


@pytest.fixture
def other_sandbox_server(db: None) -> SandboxKeys:
    """A server of another account: its keys must never open `sandbox_server`."""
    return make_sandbox_server(server_id=17002, name="Sandbox Two", account_id=9002)


@pytest.fixture
def sandbox_factory(db: None) -> Callable[..., SandboxKeys]:
    return make_sandbox_server
