from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from accounts.models import AuditLog, Server, ServerStatus

pytestmark = pytest.mark.django_db


def test_dashboard_lists_only_servers_the_user_may_see(as_user, viewer, server, other_server):
    response = as_user(viewer).get(reverse("dashboard"))
    assert response.status_code == 200
    assert b"Acme-1" in response.content
    assert b"Other-2" not in response.content


def test_site_admin_adds_a_server_and_the_key_is_encrypted_at_rest(as_user, site_admin):
    secret = "S" * 20 + "." + "t" * 36 + "WXYZ"
    response = as_user(site_admin).post(
        reverse("server_add"),
        {"name": "New", "socketlabs_id": "4242", "time_zone": "UTC", "api_key": secret},
    )
    server = Server.objects.get(name="New")
    assert response.status_code == 302
    assert server.api_key == secret
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM accounts_server WHERE id = %s", [server.pk])
        stored = cursor.fetchone()[0]
    assert secret not in stored
    assert stored.startswith("gAAAAA")
    entry = AuditLog.objects.get(action="server.create")
    assert secret not in str(entry.after)
    assert entry.after["api_key_set"] is True


def test_non_admin_cannot_add_a_server(as_user, admin):
    response = as_user(admin).post(reverse("server_add"), {"name": "X", "socketlabs_id": "1", "time_zone": "UTC"})
    assert response.status_code == 403
    assert not Server.objects.filter(name="X").exists()


def test_edit_keeps_the_stored_key_when_the_field_is_left_empty(as_user, admin, server):
    original = server.api_key
    response = as_user(admin).post(
        reverse("server_edit", args=[server.pk]),
        {"name": "Renamed", "socketlabs_id": "10001", "time_zone": "Europe/Paris", "api_key": ""},
    )
    assert response.status_code == 302
    server.refresh_from_db()
    assert server.name == "Renamed"
    assert server.api_key == original


def test_edit_form_never_renders_the_stored_key(as_user, admin, server):
    response = as_user(admin).get(reverse("server_edit", args=[server.pk]))
    assert server.api_key.encode() not in response.content
    assert "••••".encode() in response.content


def test_pasted_key_with_a_line_break_is_refused_with_a_clear_message(as_user, admin, server):
    response = as_user(admin).post(
        reverse("server_edit", args=[server.pk]),
        {"name": "Acme-1", "socketlabs_id": "10001", "time_zone": "UTC", "api_key": "abc\ndef"},
    )
    assert response.status_code == 200
    assert b"no spaces or line breaks" in response.content


def test_viewer_may_read_but_not_edit(as_user, viewer, server):
    client = as_user(viewer)
    assert client.get(reverse("server_detail", args=[server.pk])).status_code == 200
    assert client.get(reverse("server_edit", args=[server.pk])).status_code == 403
    assert client.post(reverse("server_test", args=[server.pk])).status_code == 403


def test_outsider_gets_404_not_403(as_user, outsider, server):
    assert as_user(outsider).get(reverse("server_detail", args=[server.pk])).status_code == 404


def test_invalid_server_id_is_reported_next_to_the_field(as_user, site_admin):
    response = as_user(site_admin).post(
        reverse("server_add"), {"name": "Bad", "socketlabs_id": "0", "time_zone": "UTC"}
    )
    assert response.status_code == 200
    assert not Server.objects.filter(name="Bad").exists()
    assert b"greater than or equal to 1" in response.content


def test_test_connection_without_a_key_says_so(as_user, admin, server):
    server.api_key = ""
    server.save()
    response = as_user(admin).post(reverse("server_test", args=[server.pk]), headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert b"No API key is stored" in response.content
    assert b"<html" not in response.content  # only the fragment
    server.refresh_from_db()
    assert server.status == ServerStatus.AUTH_FAILED
