"""Removing a server from Mailroom: only site admins, and only after typing its name."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditLog, Membership, Server

pytestmark = pytest.mark.django_db


def test_it_shows_a_confirmation_page_naming_the_server(as_user, site_admin, server):
    body = as_user(site_admin).get(reverse("server_delete", args=[server.pk])).content.decode()
    assert "Remove Acme-1 from Mailroom?" in body
    assert "Nothing changes at SocketLabs" in body
    assert 'name="confirm_name"' in body


def test_a_wrong_name_is_refused_with_400_and_nothing_is_deleted(as_user, site_admin, server):
    response = as_user(site_admin).post(reverse("server_delete", args=[server.pk]), {"confirm_name": "acme-1"})
    assert response.status_code == 400
    assert "Type the server&#x27;s name exactly to confirm." in response.content.decode()
    assert Server.objects.filter(pk=server.pk).exists()
    assert not AuditLog.objects.filter(action="server.delete").exists()


def test_the_right_name_deletes_the_server_and_audits_it(as_user, site_admin, server, viewer):
    client = as_user(site_admin)
    response = client.post(reverse("server_delete", args=[server.pk]), {"confirm_name": " Acme-1 "})
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")
    assert not Server.objects.filter(pk=server.pk).exists()
    assert not Membership.objects.filter(user=viewer).exists()
    entry = AuditLog.objects.get(action="server.delete")
    assert entry.target == "Acme-1 (10001)"
    assert entry.actor == site_admin
    assert entry.before["socketlabs_id"] == 10001
    assert entry.before["api_key_set"] is True
    assert server.api_key not in str(entry.before)
    assert "Removed Acme-1 from Mailroom." in client.get(reverse("dashboard")).content.decode()


def test_with_htmx_it_redirects_the_browser(as_user, site_admin, server):
    response = as_user(site_admin).post(
        reverse("server_delete", args=[server.pk]), {"confirm_name": "Acme-1"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/"


def test_a_server_admin_who_is_not_site_admin_may_not_delete(as_user, admin, server):
    client = as_user(admin)
    assert client.get(reverse("server_delete", args=[server.pk])).status_code == 403
    assert client.post(reverse("server_delete", args=[server.pk]), {"confirm_name": "Acme-1"}).status_code == 403
    assert Server.objects.filter(pk=server.pk).exists()


def test_an_outsider_gets_404(as_user, outsider, server):
    response = as_user(outsider).post(reverse("server_delete", args=[server.pk]), {"confirm_name": "Acme-1"})
    assert response.status_code == 404
    assert Server.objects.filter(pk=server.pk).exists()
