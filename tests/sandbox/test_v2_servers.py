"""API v2: servers, authentication and the error envelope (contract §0a, §3.1)."""

from __future__ import annotations

import base64

import pytest
from django.test import Client

from sandbox.models import SandboxRequestLog
from tests.sandbox.conftest import SandboxKeys

pytestmark = pytest.mark.django_db


def bearer(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def test_it_returns_the_server_in_a_data_envelope(client: Client, sandbox_server: SandboxKeys) -> None:
    response = client.get(f"/sandbox/api/v2/servers/{sandbox_server.server_id}", **bearer(sandbox_server.api_key))
    assert response.status_code == 200
    assert response.json() == {
        "data": {"serverId": 17001, "name": "Sandbox One", "accountId": 9001, "status": "Active"}
    }
