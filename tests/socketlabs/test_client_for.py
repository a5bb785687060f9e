"""`accounts.services.client_for` wires a server's three APIs into the client."""

from __future__ import annotations

import pytest

import socketlabs
from accounts.models import Server
from accounts.services import client_for

pytestmark = pytest.mark.django_db


def test_it_passes_every_url_and_key_of_the_server(server: Server, settings) -> None:
    server.inject_url = "http://127.0.0.1:8000/sandbox/inject/api/v1/email"
    server.marketing_url = "http://127.0.0.1:8000/sandbox/marketing/v1"
    server.marketing_key = "mkt-secret"
    server.save()

    client = client_for(server)

    assert client.server_id == server.socketlabs_id
    assert client.api_url == settings.SOCKETLABS_API_URL
    assert client.inject_url == "http://127.0.0.1:8000/sandbox/inject/api/v1/email"
    assert client.marketing_url == "http://127.0.0.1:8000/sandbox/marketing/v1"
    assert client._injection_key == "inject-key-1234"
    assert client._marketing_key == "mkt-secret"
    assert client.timeout == (settings.SOCKETLABS_CONNECT_TIMEOUT, settings.SOCKETLABS_READ_TIMEOUT)


def test_it_passes_options_through(server: Server) -> None:
    client = client_for(server, max_attempts=1)

    assert client.transport.max_attempts == 1
    assert client.transport.breakers is socketlabs.default_breakers
