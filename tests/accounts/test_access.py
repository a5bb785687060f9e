"""The access helper: 404 without membership, 403 without the capability, both audited."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from accounts.access import get_server_for_user, require_site_admin
from accounts.models import AuditLog
from accounts.roles import Capability

pytestmark = pytest.mark.django_db


def test_it_hides_a_server_from_someone_without_access_and_audits_the_attempt(outsider, server):
    with pytest.raises(Http404):
        get_server_for_user(outsider, server.pk)
    entry = AuditLog.objects.get(action="access.denied")
    assert entry.actor == outsider
    assert entry.server == server
    assert entry.target == f"server {server.pk}: read"


def test_it_refuses_a_capability_the_role_lacks_and_audits_it(viewer, server):
    with pytest.raises(PermissionDenied):
        get_server_for_user(viewer, server.pk, Capability.OPS)
    entry = AuditLog.objects.get(action="access.denied")
    assert entry.actor == viewer
    assert "role viewer" in entry.target


def test_allowed_access_writes_nothing(ops, server):
    assert get_server_for_user(ops, server.pk, Capability.OPS) == server
    assert not AuditLog.objects.filter(action="access.denied").exists()


def test_a_missing_server_is_audited_without_a_server(viewer):
    with pytest.raises(Http404):
        get_server_for_user(viewer, 999_999)
    assert AuditLog.objects.get(action="access.denied").server is None


def test_site_administration_refusals_are_audited(admin):
    with pytest.raises(PermissionDenied):
        require_site_admin(admin)
    assert AuditLog.objects.get(action="access.denied").target == "site administration"


def test_users_cannot_add_sign_in_addresses_themselves(as_user, viewer):
    from allauth.account.models import EmailAddress

    as_user(viewer).post("/accounts/email/", {"action_add": "", "email": "second@example.com"})
    assert not EmailAddress.objects.filter(email="second@example.com").exists()
    assert list(EmailAddress.objects.filter(user=viewer).values_list("email", "primary", "verified")) == [
        (viewer.email, True, True)
    ]
