"""The REST API (/api/v1/): hashed personal tokens, per-server roles, the OpenAPI schema and docs."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.validation import validate_schema

from accounts.models import ApiToken, AuditLog, Server, User

pytestmark = pytest.mark.django_db


def api(user: User) -> Client:
    _, raw = ApiToken.issue(user=user, name="tests")
    return Client(headers={"Authorization": f"Bearer {raw}"})


@pytest.fixture
def keyless(server: Server) -> Server:
    # With no stored key the connection test answers at once, without any network call.
    server.api_key = ""
    server.save(update_fields=["api_key"])
    return server


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/servers/"),
        ("get", "/api/v1/servers/{id}/"),
        ("post", "/api/v1/servers/{id}/test-connection/"),
        ("get", "/api/schema/"),
    ],
)
def test_anonymous_calls_get_401(client, server, method, path):
    response = getattr(client, method)(path.format(id=server.pk))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_token_lists_only_the_users_servers(viewer, server, other_server):
    response = api(viewer).get("/api/v1/servers/")
    assert response.status_code == 200
    body = response.json()
    assert [s["id"] for s in body["results"]] == [server.pk]
    assert body["results"][0]["role"] == "viewer"
    assert body["results"][0]["has_api_key"] is True
    assert body["next"] is None


def test_a_site_admin_lists_every_server_in_id_order(site_admin, server, other_server):
    ids = [s["id"] for s in api(site_admin).get("/api/v1/servers/").json()["results"]]
    assert ids == sorted([server.pk, other_server.pk])


def test_an_outsider_gets_404_for_a_server_they_cannot_see(outsider, server):
    client = api(outsider)
    assert client.get(f"/api/v1/servers/{server.pk}/").status_code == 404
    assert client.post(f"/api/v1/servers/{server.pk}/test-connection/").status_code == 404
    assert client.get("/api/v1/servers/999999/").status_code == 404  # same answer as "no such server"


def test_a_viewer_may_read_but_not_test_the_connection(viewer, keyless):
    client = api(viewer)
    assert client.get(f"/api/v1/servers/{keyless.pk}/").status_code == 200
    response = client.post(f"/api/v1/servers/{keyless.pk}/test-connection/")
    assert response.status_code == 403
    assert not AuditLog.objects.filter(action="server.test_connection").exists()


def test_an_admin_tests_the_connection_and_it_is_audited(admin, keyless):
    response = api(admin).post(f"/api/v1/servers/{keyless.pk}/test-connection/")
    assert response.status_code == 200
    assert response.json() == {
        "ok": False,
        "status": "auth_failed",
        "message": "No API key is stored for server 10001. Add one first.",
    }
    entry = AuditLog.objects.get(action="server.test_connection")
    assert entry.actor == admin
    assert entry.server == keyless


def test_the_api_is_read_only_for_servers(site_admin, server):
    client = api(site_admin)
    for method in ("put", "patch", "delete"):
        assert getattr(client, method)(f"/api/v1/servers/{server.pk}/").status_code == 405
    assert client.post("/api/v1/servers/").status_code == 405


def test_a_revoked_token_is_refused(viewer, server):
    token, raw = ApiToken.issue(user=viewer, name="old script")
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    assert client.get(f"/api/v1/servers/{server.pk}/").status_code == 200
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    response = client.get(f"/api/v1/servers/{server.pk}/")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid or revoked API token."


def test_a_deactivated_users_token_is_refused(viewer, server):
    client = api(viewer)
    viewer.is_active = False
    viewer.save(update_fields=["is_active"])
    assert client.get(f"/api/v1/servers/{server.pk}/").status_code == 401


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer mr_not-a-real-token", "Bearer two parts", "Token mr_x", "Basic dXNlcjpwYXNz"]
)
def test_malformed_or_unknown_credentials_are_refused(server, header):
    response = Client(headers={"Authorization": header}).get(f"/api/v1/servers/{server.pk}/")
    assert response.status_code in (401, 403)
    assert response.status_code != 200


def test_the_token_is_looked_up_by_hash_and_its_use_recorded(viewer, server):
    token, raw = ApiToken.issue(user=viewer, name="script")
    assert token.token_hash != raw
    assert raw not in token.token_hash
    assert token.last_used_at is None
    Client(headers={"Authorization": f"Bearer {raw}"}).get(f"/api/v1/servers/{server.pk}/")
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_the_schema_is_valid_openapi_and_declares_bearer_auth(viewer):
    response = api(viewer).get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A personal API token (mr_…) from Profile → API tokens.",
    }
    paths = schema["paths"]
    assert set(paths) >= {"/api/v1/servers/", "/api/v1/servers/{id}/", "/api/v1/servers/{id}/test-connection/"}
    assert "post" in paths["/api/v1/servers/{id}/test-connection/"]
    properties = schema["components"]["schemas"]["Server"]["properties"]
    assert not {"api_key", "injection_key", "marketing_key"} & set(properties)  # write-only secrets stay out
    assert properties["has_api_key"]["readOnly"] is True


def test_the_docs_page_lists_every_operation(as_user, viewer):
    schema = json.loads(api(viewer).get("/api/schema/?format=json").content)
    body = as_user(viewer).get(reverse("api_docs")).content.decode()
    operations = [(method.upper(), path) for path, methods in schema["paths"].items() for method in methods]
    assert len(operations) >= 3
    for method, path in operations:
        assert f"<code>{method}</code></td><td><code>{path}</code>" in body
