"""Fixtures for sending setup: the loopback DNS server, and a Mailroom server backed by the sandbox over HTTP."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.db.backends.postgresql.operations import DatabaseOperations as PostgresOperations

from accounts.models import Server
from tests.dnsfixture import dns_server, dns_zone  # noqa: F401 - fixtures
from tests.sandbox.conftest import SandboxKeys, make_sandbox_server

_TRUNCATE = PostgresOperations.sql_flush


def _delete_instead_of_truncate(
    ops: Any, style: Any, tables: list[str], *, reset_sequences: bool = False, allow_cascade: bool = False
) -> list[str]:
    if reset_sequences or not tables:
        return list(_TRUNCATE(ops, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade))
    return ["SET CONSTRAINTS ALL DEFERRED", *(f"DELETE FROM {ops.quote_name(table)}" for table in tables)]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None]:
    """Live-server tests here need a transactional database; empty it with DELETE, far faster than TRUNCATE."""
    with mock.patch.object(PostgresOperations, "sql_flush", _delete_instead_of_truncate):
        return (yield)


@pytest.fixture
def sandbox(live_server: Any, transactional_db: None, settings: Any) -> Iterator[SandboxKeys]:
    """A SocketLabs server in the sandbox, served over real HTTP by the live server."""
    settings.SANDBOX_ENABLED = True
    database = django_settings.DATABASES["default"]
    kept = database.get("CONN_MAX_AGE", 0)
    # Keep-alive threads of the live server must not hold database sessions open past the test.
    database["CONN_MAX_AGE"] = 0
    yield make_sandbox_server()
    database["CONN_MAX_AGE"] = kept


@pytest.fixture
def sl_server(server: Server, sandbox: SandboxKeys, live_server: Any) -> Server:
    """The persona fixtures' server `Acme-1`, pointed at the sandbox with a working API key."""
    server.api_url = f"{live_server.url}/sandbox/api/v2"
    server.socketlabs_id = sandbox.server_id
    server.api_key = sandbox.api_key
    server.save()
    return server
