"""R16: one audit entry per privileged action (who, what, where, when, from which IP), masked, escaped, append-only.

Two-factor changes (mfa.totp.activate/deactivate, mfa.failed) are covered in test_security_login.py
and ending sessions (session.end) in test_security_sessions.py, through allauth's own pages.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.urls import reverse

from accounts import audit
from accounts.models import ApiToken, AuditLog, Server, User
from accounts.roles import Role
from accounts.signals import AuditLogIsAppendOnly
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

IP = "192.0.2.44"
NEW_KEY = "NewKeyNewKeyNewKey12.abcdefghijabcdefghijabcdefghijabcdefghij"


def only_entry(action: str, since: int) -> AuditLog:
    """Exactly one new entry with this action since id `since`."""
    entries = list(AuditLog.objects.filter(action=action, pk__gt=since))
    assert len(entries) == 1, f"{action}: {len(entries)} entries, {[e.target for e in entries]}"
    entry = entries[0]
    assert entry.created_at.tzinfo is not None
    assert entry.created_at.utcoffset().total_seconds() == 0  # stored and read back in UTC
    assert entry.ip == IP
    return entry


def last_id() -> int:
    last = AuditLog.objects.order_by("-id").first()
    return last.pk if last else 0


@pytest.fixture
def signed_in() -> Callable[[User], Client]:
    def make(user: User) -> Client:
        client = Client(REMOTE_ADDR=IP)
        client.force_login(user)
        return client

    return make


@pytest.fixture
def unreachable(server: Server) -> Server:
    server.api_url = "http://127.0.0.1:9/v2"  # closed loopback port; the connection test makes one attempt
    server.save(update_fields=["api_url"])
    return server


def test_adding_a_server(signed_in, site_admin):
    mark = last_id()
    response = signed_in(site_admin).post(
        reverse("server_add"), {"name": "Beta", "socketlabs_id": "777", "time_zone": "UTC", "api_key": NEW_KEY}
    )
    assert response.status_code == 302
    entry = only_entry("server.create", mark)
    assert entry.actor == site_admin
    assert entry.server == Server.objects.get(name="Beta")
    assert entry.target == "Beta (777)"
    assert entry.after["api_key_set"] is True
    assert NEW_KEY not in str(entry.after)


def test_changing_a_key(signed_in, admin, server):
    mark = last_id()
    data = {"name": server.name, "socketlabs_id": server.socketlabs_id, "time_zone": "UTC", "api_key": NEW_KEY}
    assert signed_in(admin).post(reverse("server_edit", args=[server.pk]), data).status_code == 302
    entry = only_entry("server.update", mark)
    assert entry.actor == admin
    assert entry.server == server
    assert entry.after["api_key_changed"] is True
    assert NEW_KEY not in f"{entry.before}{entry.after}"
    assert server.api_key not in f"{entry.before}{entry.after}"


def test_testing_the_connection(signed_in, admin, unreachable):
    mark = last_id()
    assert signed_in(admin).post(reverse("server_test", args=[unreachable.pk])).status_code == 302
    entry = only_entry("server.test_connection", mark)
    assert entry.server == unreachable
    assert entry.after == {"ok": False, "status": "unreachable"}


def test_changing_a_members_role(signed_in, admin, viewer, server):
    mark = last_id()
    url = reverse("server_member_set", args=[server.pk])
    assert signed_in(admin).post(url, {"email": viewer.email, "role": Role.OPS}).status_code == 302
    entry = only_entry("membership.set", mark)
    assert (entry.actor, entry.server, entry.target) == (admin, server, viewer.email)
    assert (entry.before, entry.after) == ({"role": "viewer"}, {"role": "ops"})


def test_inviting_a_user(signed_in, site_admin):
    mark = last_id()
    response = signed_in(site_admin).post(reverse("user_invite"), {"email": "New.Person@example.com", "role": "viewer"})
    assert response.status_code == 200
    entry = only_entry("user.invite", mark)
    assert entry.target == "new.person@example.com"
    assert entry.actor == site_admin


def test_the_invited_user_choosing_a_password(signed_in, site_admin):
    response = signed_in(site_admin).post(reverse("user_invite"), {"email": "new@example.com", "role": "viewer"})
    link = re.search(r"https?://testserver(/accounts/password/reset/key/[^\"'<\s]+)", response.content.decode())
    assert link, "the invitation page shows the one-time link"
    invited = Client(REMOTE_ADDR=IP)
    page = invited.get(link.group(1), follow=True)
    assert "Choose your password" in page.content.decode()
    mark = last_id()
    form_url = page.redirect_chain[-1][0] if page.redirect_chain else link.group(1)
    done = invited.post(form_url, {"password1": PASSWORD, "password2": PASSWORD})
    assert done.status_code == 302
    entry = only_entry("password.reset", mark)
    assert entry.target == "new@example.com"
    assert PASSWORD not in f"{entry.before}{entry.after}{entry.target}"


def test_deactivating_a_user(signed_in, site_admin, viewer):
    mark = last_id()
    url = reverse("user_set_active", args=[viewer.pk])
    assert signed_in(site_admin).post(url, {"active": "0"}).status_code == 302
    entry = only_entry("user.deactivate", mark)
    assert (entry.actor, entry.target) == (site_admin, viewer.email)


def test_login_login_failure_and_logout(viewer):
    client = Client(REMOTE_ADDR=IP)
    mark = last_id()
    client.post(reverse("account_login"), {"login": viewer.email, "password": "not it"})
    failed = only_entry("login.failed", mark)
    assert (failed.actor, failed.target) == (None, viewer.email)

    mark = last_id()
    client.post(reverse("account_login"), {"login": viewer.email, "password": PASSWORD})
    assert only_entry("login", mark).actor == viewer
    assert not AuditLog.objects.filter(pk__gt=mark).exclude(action="login").exists()

    mark = last_id()
    client.post(reverse("account_logout"))
    assert only_entry("logout", mark).actor == viewer


def test_a_lockout(viewer):
    client = Client(REMOTE_ADDR=IP)
    for _ in range(4):
        client.post(reverse("account_login"), {"login": viewer.email, "password": "not it"})
    mark = last_id()
    response = client.post(reverse("account_login"), {"login": viewer.email, "password": "not it"})
    assert response.status_code == 429
    entry = only_entry("login.locked_out", mark)
    assert entry.target == viewer.email


def test_requiring_two_factor(signed_in, site_admin):
    mark = last_id()
    assert signed_in(site_admin).post(reverse("site_security"), {"require_mfa": "on"}).status_code == 302
    entry = only_entry("site.require_mfa", mark)
    assert (entry.before, entry.after) == ({"require_mfa": False}, {"require_mfa": True})


def test_creating_and_revoking_an_api_token(signed_in, viewer):
    client = signed_in(viewer)
    mark = last_id()
    body = client.post(reverse("api_tokens"), {"name": "nightly"}).content.decode()
    entry = only_entry("api_token.create", mark)
    raw = re.search(r'value="(mr_[^"]+)"', body).group(1)
    assert raw not in f"{entry.target}{entry.before}{entry.after}"
    token = ApiToken.objects.get(user=viewer)
    mark = last_id()
    client.post(reverse("api_token_revoke", args=[token.pk]))
    assert only_entry("api_token.revoke", mark).target == "nightly"


# --- What goes into an entry ----------------------------------------------------------------


def test_secrets_are_masked_at_any_depth():
    entry = audit.record(
        action="test.mask",
        target="t",
        before={"api_key": "k-123", "nested": {"SecretKey": "s-456", "password": "p-789"}, "name": "kept"},
        after={"items": [{"webhook_token": "w-000"}], "injection_key_set": True},
    )
    stored = f"{entry.before}{entry.after}"
    for secret in ("k-123", "s-456", "p-789", "w-000"):
        assert secret not in stored
    assert entry.before["name"] == "kept"
    assert entry.after["injection_key_set"] is True


def test_newlines_in_names_and_targets_are_stored_escaped(signed_in, site_admin):
    forged = User.objects.create_user("mallory\n2026-01-01 root deleted everything@example.com", PASSWORD)
    entry = audit.record(action="test.escape", actor=forged, target="line one\r\nline two\tand\x1b[31mred")
    entry.refresh_from_db()
    for value in (entry.actor_label, entry.target):
        assert "\n" not in value
        assert "\r" not in value
        assert "\x1b" not in value
    assert entry.actor_label.startswith("mallory\\x0a2026-01-01")
    assert entry.target == "line one\\x0d\\x0aline two\\x09and\\x1b[31mred"
    page = signed_in(site_admin).get(reverse("audit_log"), {"action": "test.escape"}).content.decode()
    assert "mallory\\x0a2026" in page


def test_a_long_target_is_cut_not_refused():
    entry = audit.record(action="test.long", target="x" * 1000)
    assert len(entry.target) == 300


# --- Append-only ----------------------------------------------------------------------------


def test_an_entry_cannot_be_changed_or_deleted():
    entry = audit.record(action="test.append_only", target="original")
    entry.target = "rewritten"
    # Each attempt in its own savepoint: a refused delete rolls back its transaction.
    with pytest.raises(AuditLogIsAppendOnly), transaction.atomic():
        entry.save()
    with pytest.raises(AuditLogIsAppendOnly), transaction.atomic():
        entry.delete()
    with pytest.raises(AuditLogIsAppendOnly), transaction.atomic():
        AuditLog.objects.filter(pk=entry.pk).delete()
    entry.refresh_from_db()
    assert entry.target == "original"


def test_deleting_a_server_or_user_keeps_their_entries(signed_in, site_admin, server, viewer):
    audit.record(action="test.keep", actor=viewer, server=server, target="before deletion")
    server.delete()
    viewer.delete()
    entry = AuditLog.objects.get(action="test.keep")
    assert entry.server is None and entry.actor is None
    assert entry.actor_label == "viewer@example.com"
    assert entry.server_label == "Acme-1 (10001)"


def test_there_is_no_way_to_change_entries_over_http(signed_in, site_admin):
    assert "django.contrib.admin" not in settings.INSTALLED_APPS
    client = signed_in(site_admin)
    for method in ("post", "put", "patch", "delete"):
        assert getattr(client, method)(reverse("audit_log")).status_code == 405


# --- The audit page: filters and the HTMX fragment ------------------------------------------


@pytest.fixture
def history(server: Server, other_server: Server, admin: User, outsider: User) -> None:
    audit.record(action="server.update", actor=admin, server=server, target="acme-update")
    audit.record(action="membership.set", actor=admin, server=server, target="acme-member")
    audit.record(action="server.update", actor=outsider, server=other_server, target="other-update")


def test_the_audit_page_filters_by_server(signed_in, site_admin, history, server):
    body = signed_in(site_admin).get(reverse("audit_log"), {"server": server.pk}).content.decode()
    assert "acme-update" in body and "acme-member" in body
    assert "other-update" not in body


def test_the_audit_page_filters_by_action(signed_in, site_admin, history):
    body = signed_in(site_admin).get(reverse("audit_log"), {"action": "server."}).content.decode()
    assert "acme-update" in body and "other-update" in body
    assert "acme-member" not in body


def test_the_audit_page_filters_by_actor(signed_in, site_admin, history):
    body = signed_in(site_admin).get(reverse("audit_log"), {"actor": "outsider@"}).content.decode()
    assert "other-update" in body
    assert "acme-update" not in body


def test_an_htmx_filter_returns_only_the_table(signed_in, site_admin, history, server):
    response = signed_in(site_admin).get(
        reverse("audit_log"), {"server": server.pk, "action": "membership"}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="audit-table">')
    assert "<html" not in body and "<form" not in body
    assert "acme-member" in body
    assert "acme-update" not in body and "other-update" not in body


def test_times_on_the_audit_page_are_utc_by_default(signed_in, site_admin, history):
    body = signed_in(site_admin).get(reverse("audit_log")).content.decode()
    stamps = re.findall(r'<time datetime="([^"]+)"', body)
    assert stamps and all(s.endswith("+00:00") for s in stamps)
