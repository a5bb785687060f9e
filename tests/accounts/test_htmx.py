"""HTMX requests get only the fragment they swap; plain requests get the whole page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditLog, Server, ServerStatus

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def unreachable(server: Server) -> Server:
    """A server whose API address is a closed loopback port: the one attempt "Test connection"
    makes is refused at once. (Breakers are reset around every test by tests/conftest.py.)"""
    server.api_url = "http://127.0.0.1:9/v2"
    server.save(update_fields=["api_url"])
    return server


def test_it_answers_the_connection_test_with_only_the_status_fragment(as_user, admin, unreachable):
    response = as_user(admin).post(reverse("server_test", args=[unreachable.pk]), headers=HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="connection-status">')
    assert "<html" not in body
    assert "<nav" not in body
    assert 'id="members-h"' not in body
    assert "Could not reach http://127.0.0.1:9/v2" in body
    assert "status-unreachable" in body
    assert body.count('id="connection-status"') == 1  # swapped outerHTML: the target comes back once
    unreachable.refresh_from_db()
    assert unreachable.status == ServerStatus.UNREACHABLE


def test_the_fragment_keeps_the_button_so_the_check_can_run_again(as_user, admin, unreachable):
    body = as_user(admin).post(reverse("server_test", args=[unreachable.pk]), headers=HTMX).content.decode()
    assert f'hx-post="{reverse("server_test", args=[unreachable.pk])}"' in body
    assert "Test connection" in body


def test_without_htmx_the_connection_test_redirects_with_a_message(as_user, admin, unreachable):
    client = as_user(admin)
    response = client.post(reverse("server_test", args=[unreachable.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("server_detail", args=[unreachable.pk])
    page = client.get(response["Location"]).content.decode()
    assert "<html" in page
    assert "Could not reach http://127.0.0.1:9/v2" in page


def test_the_audit_page_answers_htmx_with_only_the_table(as_user, site_admin, server):
    AuditLog.objects.create(action="server.update", target="Acme-1 (10001)", server=server)
    client = as_user(site_admin)
    body = client.get(reverse("audit_log"), {"action": "server."}, headers=HTMX).content.decode()
    assert body.lstrip().startswith('<div id="audit-table">')
    assert "<html" not in body
    assert "<form" not in body  # the filters stay on the page
    assert "server.update" in body

    full = client.get(reverse("audit_log")).content.decode()
    assert "<html" in full
    assert 'id="audit-table"' in full
    assert 'class="filters"' in full


def test_the_audit_fragment_applies_the_filters(as_user, site_admin, server):
    AuditLog.objects.create(action="server.update", target="kept")
    AuditLog.objects.create(action="membership.set", target="filtered-out")
    body = as_user(site_admin).get(reverse("audit_log"), {"action": "server."}, headers=HTMX).content.decode()
    assert "kept" in body
    assert "filtered-out" not in body


def test_htmx_requests_need_the_csrf_token(admin, server):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    url = reverse("server_test", args=[server.pk])
    assert client.post(url, headers=HTMX).status_code == 403
    page = client.get(reverse("server_detail", args=[server.pk])).content.decode()
    token = page.split('"X-CSRFToken": "')[1].split('"')[0]
    server.api_key = ""
    server.save(update_fields=["api_key"])
    response = client.post(url, headers={**HTMX, "X-CSRFToken": token})
    assert response.status_code == 200
    assert b"No API key is stored" in response.content
