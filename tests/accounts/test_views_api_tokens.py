"""Personal API tokens: shown once, kept only as a hash, revocable."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.models import ApiToken, AuditLog

pytestmark = pytest.mark.django_db


def shown_token(html: str) -> str | None:
    match = re.search(r'id="new-token" readonly value="([^"]+)"', html)
    return match.group(1) if match else None


def create(client: Client, name: str = "nightly export") -> str:
    response = client.post(reverse("api_tokens"), {"name": name})
    assert response.status_code == 200
    token = shown_token(response.content.decode())
    assert token is not None
    return token


def test_a_new_token_is_shown_once(as_user, viewer):
    client = as_user(viewer)
    token = create(client)
    assert token.startswith("mr_")
    assert len(token) > 40
    later = client.get(reverse("api_tokens")).content.decode()
    assert shown_token(later) is None
    assert token not in later
    assert f"••••{token[-4:]}" in later
    assert "nightly export" in later


def test_only_the_hash_is_stored(as_user, viewer):
    token = create(as_user(viewer))
    row = ApiToken.objects.get(user=viewer)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        stored = " ".join(str(value) for value in cursor.fetchone())
    assert token not in stored
    assert token[3:] not in stored
    audit = AuditLog.objects.get(action="api_token.create")
    assert token not in str(audit.target) + str(audit.before) + str(audit.after)


def test_the_token_works_on_the_api_until_revoked(as_user, viewer, server):
    client = as_user(viewer)
    token = create(client)
    api = Client()
    auth = {"Authorization": f"Bearer {token}"}
    assert api.get(f"/api/v1/servers/{server.pk}/", headers=auth).status_code == 200

    row = ApiToken.objects.get(user=viewer)
    response = client.post(reverse("api_token_revoke", args=[row.pk]), follow=True)
    assert "Revoked “nightly export”." in response.content.decode()
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert AuditLog.objects.filter(action="api_token.revoke", target="nightly export").exists()
    assert api.get(f"/api/v1/servers/{server.pk}/", headers=auth).status_code == 401


def test_nobody_revokes_someone_elses_token(as_user, viewer, admin):
    create(as_user(viewer))
    row = ApiToken.objects.get(user=viewer)
    assert as_user(admin).post(reverse("api_token_revoke", args=[row.pk])).status_code == 404
    row.refresh_from_db()
    assert row.revoked_at is None


def test_a_token_needs_a_name(as_user, viewer):
    response = as_user(viewer).post(reverse("api_tokens"), {"name": ""})
    body = response.content.decode()
    assert shown_token(body) is None
    assert "This field is required." in body
    assert not ApiToken.objects.exists()


def test_each_user_sees_only_their_own_tokens(as_user, viewer, admin):
    create(as_user(viewer), name="viewer's script")
    body = as_user(admin).get(reverse("api_tokens")).content.decode()
    assert "viewer&#x27;s script" not in body
    assert "No tokens yet" in body


def test_revoking_asks_first(as_user, viewer):
    create(as_user(viewer))
    body = as_user(viewer).get(reverse("api_tokens")).content.decode()
    assert 'data-confirm="Revoke “nightly export”? Scripts using it stop working at once."' in body
