"""R15: secrets at rest are encrypted, rotate to a new key, and never come back out."""

from __future__ import annotations

import json

import pytest
import responses
from cryptography.fernet import Fernet, InvalidToken
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts import checks
from accounts.fields import DecryptionError, EncryptedTextField
from accounts.models import ApiToken, AuditLog, Server
from tests.accounts.test_logging import emitted  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

SENTINEL = "SentinelKeyQ7w3E5r9T.x8Y2u4I6o0P1a3S5d7F9g2H4j6K8l0Z1x3C5v7B9"  # 61 chars, SocketLabs shape
FRAGMENTS = (SENTINEL, SENTINEL[:20], SENTINEL[21:45])  # a partial leak is a leak too


def leaks(text: str) -> list[str]:
    return [fragment for fragment in FRAGMENTS if fragment in text]


def raw_secrets(table: str = "accounts_server") -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT api_key, injection_key, marketing_key FROM {table}")  # noqa: S608
        return [value for row in cursor.fetchall() for value in row if value]


def encrypted_columns() -> list[tuple[type, list[EncryptedTextField]]]:
    found = []
    for model in apps.get_models():
        fields = [f for f in model._meta.get_fields() if isinstance(f, EncryptedTextField)]
        if fields:
            found.append((model, fields))
    return found


@pytest.fixture
def added(as_user, site_admin) -> Server:
    response = as_user(site_admin).post(
        reverse("server_add"),
        {"name": "Sentinel", "socketlabs_id": "4242", "time_zone": "UTC", "api_key": SENTINEL},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return Server.objects.get(name="Sentinel")


def test_the_database_column_holds_only_ciphertext(added):
    stored = raw_secrets()
    assert stored
    for value in stored:
        assert value.startswith("gAAAAA")  # a Fernet token
        assert not leaks(value)
    assert Server.objects.get(pk=added.pk).api_key == SENTINEL


def test_rotation_re_encrypts_every_secret_with_the_new_key(settings, server, other_server, added):
    old = settings.MAILROOM_ENCRYPTION_KEYS[0]
    before = raw_secrets()
    new = Fernet.generate_key().decode()
    settings.MAILROOM_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115
    after = raw_secrets()
    assert len(after) == len(before) >= 4
    assert not set(after) & set(before)

    settings.MAILROOM_ENCRYPTION_KEYS = [new]  # the old key is gone
    only_new = Fernet(new.encode())
    for token in after:
        only_new.decrypt(token.encode())
        with pytest.raises(InvalidToken):
            Fernet(old.encode()).decrypt(token.encode())
    assert Server.objects.get(pk=added.pk).api_key == SENTINEL
    assert Server.objects.get(pk=server.pk).injection_key == "inject-key-1234"
    # Every model with an encrypted column reads back with only the new key.
    for model, fields in encrypted_columns():
        for row in model._default_manager.all():
            for field in fields:
                getattr(row, field.attname)


def test_without_the_right_key_reading_fails_loudly(settings, added):
    settings.MAILROOM_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(DecryptionError, match="MAILROOM_ENCRYPTION_KEYS"):
        Server.objects.get(pk=added.pk)


@pytest.mark.parametrize(
    ("keys", "error_id"),
    [
        ([], "mailroom.E001"),
        (["not-a-key"], "mailroom.E002"),
        ([Fernet.generate_key().decode(), "short"], "mailroom.E002"),
    ],
)
def test_a_missing_or_invalid_key_fails_the_system_check(settings, keys, error_id):
    settings.MAILROOM_ENCRYPTION_KEYS = keys
    errors = checks.check_encryption_keys(None)
    assert [e.id for e in errors] == [error_id]


def test_valid_keys_pass_the_system_check(settings):
    settings.MAILROOM_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), Fernet.generate_key().decode()]
    assert checks.check_encryption_keys(None) == []


@responses.activate
def test_the_key_never_appears_in_pages_logs_audit_or_the_api(as_user, site_admin, added, emitted):  # noqa: F811
    # A hostile or buggy SocketLabs that echoes the key back in its error message.
    responses.get(
        f"https://api.socketlabs.com/v2/servers/{added.socketlabs_id}",
        status=400,
        json={"data": None, "errors": [{"errorType": "BadRequest", "message": f"Key {SENTINEL} is malformed"}]},
    )
    client = as_user(site_admin)
    seen = []
    for url in [
        reverse("dashboard"),
        reverse("server_detail", args=[added.pk]),
        reverse("server_edit", args=[added.pk]),
        reverse("audit_log"),
    ]:
        seen.append(client.get(url).content.decode())
    # A form that fails validation comes back without the key typed into it.
    invalid = client.post(
        reverse("server_edit", args=[added.pk]),
        {"name": "", "socketlabs_id": "4242", "time_zone": "UTC", "api_key": SENTINEL},
    )
    assert invalid.status_code == 200
    seen.append(invalid.content.decode())
    tested = client.post(reverse("server_test", args=[added.pk]), follow=True)
    seen.append(tested.content.decode())
    seen.append(client.get(reverse("server_detail", args=[added.pk])).content.decode())

    _, raw = ApiToken.issue(user=site_admin, name="scan")
    api = Client(headers={"Authorization": f"Bearer {raw}"})
    for url in ["/api/v1/servers/", f"/api/v1/servers/{added.pk}/", "/api/schema/"]:
        seen.append(api.get(url).content.decode())
    seen.append(api.post(f"/api/v1/servers/{added.pk}/test-connection/").content.decode())

    for body in seen:
        assert not leaks(body)
    assert "••••" + SENTINEL[-4:] in seen[2]  # the edit form shows only the last four

    audit = json.dumps([[a.target, a.before, a.after, a.actor_label, a.server_label] for a in AuditLog.objects.all()])
    assert AuditLog.objects.filter(action="server.create").exists()
    assert not leaks(audit)
    added.refresh_from_db()
    assert not leaks(added.status_message)
    assert not leaks(emitted.getvalue())
