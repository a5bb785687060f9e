"""The audit log page: administrators only, and each sees only their servers' entries."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts import audit
from accounts.models import Server

pytestmark = pytest.mark.django_db


@pytest.fixture
def entries(server: Server, other_server: Server) -> None:
    audit.record(action="server.update", server=server, target="on-acme")
    audit.record(action="server.update", server=other_server, target="on-other")
    audit.record(action="site.require_mfa", target="site-wide")


def test_a_site_admin_sees_every_entry(as_user, site_admin, entries):
    body = as_user(site_admin).get(reverse("audit_log")).content.decode()
    assert "on-acme" in body
    assert "on-other" in body
    assert "site-wide" in body


def test_a_server_admin_sees_only_their_servers_entries(as_user, admin, entries):
    body = as_user(admin).get(reverse("audit_log")).content.decode()
    assert "on-acme" in body
    assert "on-other" not in body
    assert "site-wide" not in body


def test_a_server_admin_cannot_filter_their_way_into_another_server(as_user, admin, entries, other_server):
    body = as_user(admin).get(reverse("audit_log"), {"server": other_server.pk}).content.decode()
    assert "on-other" not in body


@pytest.mark.parametrize("persona", ["ops", "marketing", "viewer"])
def test_other_roles_may_not_see_the_audit_log(request, as_user, entries, persona):
    assert as_user(request.getfixturevalue(persona)).get(reverse("audit_log")).status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(client, entries):
    response = client.get(reverse("audit_log"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_it_filters_by_who_and_date(as_user, site_admin, viewer, server):
    audit.record(action="membership.set", actor=viewer, server=server, target="by-viewer")
    audit.record(action="membership.set", actor=site_admin, server=server, target="by-root")
    body = as_user(site_admin).get(reverse("audit_log"), {"actor": "viewer@"}).content.decode()
    assert "by-viewer" in body
    assert "by-root" not in body
    future = as_user(site_admin).get(reverse("audit_log"), {"since": "2999-01-01"}).content.decode()
    assert "Nothing recorded for these filters." in future
