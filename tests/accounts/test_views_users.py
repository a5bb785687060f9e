"""Users & roles: invitations with a one-time link, deactivation, search."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditLog, Membership, User
from accounts.roles import Role
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new passphrase 77"


def sign_in(email: str, password: str) -> Client | None:
    """Through the real sign-in form (django-axes needs the request), as the user would."""
    client = Client()
    response = client.post(reverse("account_login"), {"login": email, "password": password})
    return client if response.status_code == 302 else None


def invite_link(html: str) -> str:
    match = re.search(r'id="invite-link" readonly value="([^"]+)"', html)
    assert match, "the invitation link is not on the page"
    return match.group(1)


def test_it_lists_users_with_their_access(as_user, site_admin, viewer, server):
    body = as_user(site_admin).get(reverse("user_list")).content.decode()
    assert "viewer@example.com" in body
    assert "Acme-1</a>: Viewer" in body
    assert "site admin" in body


def test_only_site_admins_see_users(as_user, admin):
    assert as_user(admin).get(reverse("user_list")).status_code == 403
    assert as_user(admin).post(reverse("user_invite"), {"email": "x@example.com"}).status_code == 403
    assert not User.objects.filter(email="x@example.com").exists()


def test_it_searches_by_email_and_name(as_user, site_admin, viewer, ops):
    ops.first_name = "Olga"
    ops.save()
    client = as_user(site_admin)
    by_email = client.get(reverse("user_list"), {"q": "VIEWER@"}).content.decode()
    assert "viewer@example.com" in by_email
    assert "ops@example.com" not in by_email
    by_name = client.get(reverse("user_list"), {"q": "olga"}).content.decode()
    assert "ops@example.com" in by_name
    assert "viewer@example.com" not in by_name
    nothing = client.get(reverse("user_list"), {"q": "nobody"}).content.decode()
    assert "No users match “nobody”" in nothing


def test_an_invitation_shows_a_one_time_link_that_works_once(as_user, site_admin, server):
    response = as_user(site_admin).post(
        reverse("user_invite"), {"email": "New.Person@Example.com", "server": server.pk, "role": Role.OPS}
    )
    assert response.status_code == 200
    link = invite_link(response.content.decode())
    user = User.objects.get(email="new.person@example.com")
    assert not user.has_usable_password()
    assert Membership.objects.get(user=user, server=server).role == Role.OPS
    assert AuditLog.objects.filter(action="user.invite", target="new.person@example.com").exists()
    assert not AuditLog.objects.filter(target__contains=link.rsplit("/", 2)[-2]).exists()

    # The invitee follows the link and chooses a password.
    invitee = Client()
    path = link.removeprefix("http://testserver")
    set_password = invitee.get(path, follow=True)
    assert set_password.status_code == 200
    form_url = set_password.redirect_chain[-1][0] if set_password.redirect_chain else path
    done = invitee.post(form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)

    # The same link does not work a second time.
    again = Client().get(path, follow=True)
    assert b"password1" not in again.content
    assert sign_in("new.person@example.com", NEW_PASSWORD) is not None


def test_an_invalid_invitation_keeps_what_was_typed_and_says_why(as_user, site_admin, server):
    response = as_user(site_admin).post(reverse("user_invite"), {"email": "not-an-address", "role": Role.VIEWER})
    body = response.content.decode()
    assert response.status_code == 400
    assert 'value="not-an-address"' in body
    assert "Enter a valid email address." in body
    assert User.objects.count() == 1  # only the site admin


def test_it_deactivates_a_user_and_ends_their_sessions(as_user, site_admin, viewer, server):
    viewer_client = sign_in(viewer.email, PASSWORD)
    assert viewer_client is not None
    assert viewer_client.get(reverse("dashboard")).status_code == 200

    response = as_user(site_admin).post(reverse("user_set_active", args=[viewer.pk]), {"active": "0"})
    assert response.status_code == 302
    viewer.refresh_from_db()
    assert viewer.is_active is False
    assert AuditLog.objects.filter(action="user.deactivate", target=viewer.email).exists()
    kicked_out = viewer_client.get(reverse("dashboard"))
    assert kicked_out.status_code == 302
    assert kicked_out["Location"].startswith(reverse("account_login"))


def test_it_reactivates_a_user(as_user, site_admin, viewer):
    viewer.is_active = False
    viewer.save()
    client = as_user(site_admin)
    client.post(reverse("user_set_active", args=[viewer.pk]), {"active": "1"})
    viewer.refresh_from_db()
    assert viewer.is_active is True
    assert AuditLog.objects.filter(action="user.activate", target=viewer.email).exists()
    assert sign_in(viewer.email, PASSWORD) is not None


def test_a_site_admin_cannot_deactivate_themselves(as_user, site_admin):
    client = as_user(site_admin)
    response = client.post(reverse("user_set_active", args=[site_admin.pk]), {"active": "0"}, follow=True)
    site_admin.refresh_from_db()
    assert site_admin.is_active is True
    assert "You cannot deactivate yourself." in response.content.decode()


def test_only_site_admins_deactivate(as_user, admin, viewer):
    assert as_user(admin).post(reverse("user_set_active", args=[viewer.pk]), {"active": "0"}).status_code == 403
    viewer.refresh_from_db()
    assert viewer.is_active is True


def test_deactivation_asks_for_confirmation_naming_the_user(as_user, site_admin, viewer):
    body = as_user(site_admin).get(reverse("user_list")).content.decode()
    assert 'data-confirm="Deactivate viewer@example.com? They are signed out everywhere at once."' in body
