"""API v2: API keys and the injection credentials."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from sandbox.models import SandboxApiKey
from tests.sandbox.conftest import SandboxKeys

pytestmark = pytest.mark.django_db
KEY_SHAPE = re.compile(r"^[A-Za-z0-9]{20}\.[A-Za-z0-9]{40}$")


def bearer(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def url(keys: SandboxKeys, rest: str) -> str:
    return f"/sandbox/api/v2/servers/{keys.server_id}{rest}"


def test_it_lists_the_servers_keys_without_secrets(client: Client, sandbox_server: SandboxKeys) -> None:
    body = client.get(url(sandbox_server, "/api-keys"), **bearer(sandbox_server.api_key)).json()
    assert body["total"] == 4
    assert [k["name"] for k in body["data"]] == ["v2", "injection", "marketing", "legacy"]
    first = body["data"][0]
    assert set(first) == {"id", "name", "publicPart", "permissions", "createdOn", "lastUsedOn"}
    assert first["publicPart"] == sandbox_server.api_key.split(".")[0]
    assert first["permissions"] == ["api"]
    assert first["createdOn"].endswith("Z")
    assert sandbox_server.api_key not in str(body)


def test_it_creates_a_61_char_key_and_shows_its_secret_once(client: Client, sandbox_server: SandboxKeys) -> None:
    response = client.post(
        url(sandbox_server, "/api-keys"),
        {"Name": "Sender", "PERMISSIONS": ["Injection", "injection"]},
        content_type="application/json",
        **bearer(sandbox_server.api_key),
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert len(data["secret"]) == 61 and KEY_SHAPE.match(data["secret"])
    assert data["permissions"] == ["injection"]
    assert data["publicPart"] == data["secret"][:20]
    listed = client.get(url(sandbox_server, "/api-keys"), **bearer(sandbox_server.api_key)).json()["data"]
    assert data["secret"] not in str(listed)
    # The new key works where its permission allows: not on API v2.
    assert client.get(url(sandbox_server, ""), **bearer(data["secret"])).status_code == 403


def test_it_rejects_a_key_without_name_or_with_unknown_permissions(client: Client, sandbox_server: SandboxKeys) -> None:
    response = client.post(
        url(sandbox_server, "/api-keys"),
        {"permissions": ["api", "root"]},
        content_type="application/json",
        **bearer(sandbox_server.api_key),
    )
    assert response.status_code == 422
    messages = [e["message"] for e in response.json()["errors"]]
    assert len(messages) == 2
    assert messages[0].startswith("name:")
    assert messages[1].startswith("permissions:") and "'root'" in messages[1]
    assert SandboxApiKey.objects.count() == 4


def test_it_deletes_a_key_so_it_stops_working(client: Client, sandbox_server: SandboxKeys) -> None:
    created = client.post(
        url(sandbox_server, "/api-keys"),
        {"name": "temp", "permissions": ["api"]},
        content_type="application/json",
        **bearer(sandbox_server.api_key),
    ).json()["data"]
    assert client.get(url(sandbox_server, ""), **bearer(created["secret"])).status_code == 200
    response = client.delete(url(sandbox_server, f"/api-keys/{created['id']}"), **bearer(sandbox_server.api_key))
    assert response.status_code == 200
    assert response.json()["data"]["name"] == "temp"
    assert client.get(url(sandbox_server, ""), **bearer(created["secret"])).status_code == 401
    again = client.delete(url(sandbox_server, f"/api-keys/{created['id']}"), **bearer(sandbox_server.api_key))
    assert again.status_code == 404


def test_it_will_not_delete_another_servers_key(
    client: Client, sandbox_server: SandboxKeys, other_sandbox_server: SandboxKeys
) -> None:
    other = SandboxApiKey.objects.filter(server=other_sandbox_server.server).first()
    assert other is not None
    response = client.delete(url(sandbox_server, f"/api-keys/{other.pk}"), **bearer(sandbox_server.api_key))
    assert response.status_code == 404
    assert SandboxApiKey.objects.filter(pk=other.pk).exists()


def test_it_gives_stable_injection_credentials_with_this_hosts_gateway(
    client: Client, sandbox_server: SandboxKeys, settings: Settings
) -> None:
    settings.ALLOWED_HOSTS = ["mail.test", "testserver"]
    first = client.get(
        url(sandbox_server, "/credentials/injection-api"), HTTP_HOST="mail.test:8000", **bearer(sandbox_server.api_key)
    ).json()["data"]
    second = client.get(url(sandbox_server, "/credentials/injection-api"), **bearer(sandbox_server.api_key)).json()[
        "data"
    ]
    assert first["gateway"] == "http://mail.test:8000/sandbox/inject/api/v1/email"
    assert KEY_SHAPE.match(first["apiKey"])
    assert first["apiKey"] == second["apiKey"]
    key = SandboxApiKey.objects.get(name="Injection API credentials")
    assert key.permissions == ["injection"]
    assert SandboxApiKey.objects.filter(name="Injection API credentials").count() == 1


def test_its_injection_credentials_differ_per_server(
    client: Client, sandbox_server: SandboxKeys, other_sandbox_server: SandboxKeys
) -> None:
    mine = client.get(url(sandbox_server, "/credentials/injection-api"), **bearer(sandbox_server.api_key))
    theirs = client.get(url(other_sandbox_server, "/credentials/injection-api"), **bearer(other_sandbox_server.api_key))
    assert mine.json()["data"]["apiKey"] != theirs.json()["data"]["apiKey"]
