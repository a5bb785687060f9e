"""R13: session cookies, fixation, logout, idle and absolute lifetimes, ending sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from typing import Any

import pytest
import time_machine
from allauth.usersessions.models import UserSession
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from accounts import services
from accounts.models import AuditLog, User
from tests.accounts.test_security_headers import SECURITY_SETTINGS
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = reverse("account_login")


def sign_in(client: Client, email: str, password: str = PASSWORD, **extra: Any) -> Any:
    response = client.post(LOGIN, {"login": email, "password": password}, **extra)
    assert response.status_code == 302, response.content.decode()[:2000]
    return response


def session_cookie(client: Client) -> str:
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


def is_signed_in(client: Client) -> bool:
    response = client.get(reverse("dashboard"))
    if response.status_code == 302:
        assert response["Location"].startswith(LOGIN)
        return False
    assert response.status_code == 200
    return True


def test_the_production_session_cookie_is_host_only_secure_httponly_and_lax(settings, tmp_path, monkeypatch, viewer):
    from tests.accounts.test_deploy import production_settings

    values = production_settings(tmp_path, monkeypatch)
    for name in SECURITY_SETTINGS:
        setattr(settings, name, values[name])
    client = Client()
    response = client.post(LOGIN, {"login": viewer.email, "password": PASSWORD}, secure=True)
    assert response.status_code == 302
    raw = response.cookies["__Host-sessionid"].output()
    morsel = SimpleCookie(raw.split(":", 1)[1].strip())["__Host-sessionid"]
    assert morsel["secure"]
    assert morsel["httponly"]
    assert morsel["samesite"] == "Lax"
    assert morsel["path"] == "/"
    assert not morsel["domain"]
    assert "sessionid" not in response.cookies  # only the __Host- name is used


def test_the_session_key_changes_at_login(client, viewer):
    client.get(LOGIN)  # the login form stores a CSRF token, so a pre-login session may exist
    session = client.session
    session["before-login"] = True
    session.save()
    before = session.session_key
    assert session_cookie(client) == before
    sign_in(client, viewer.email)
    assert session_cookie(client) != before
    assert not Session.objects.filter(session_key=before).exists()


def test_the_old_cookie_is_refused_after_logout(client, viewer):
    sign_in(client, viewer.email)
    old = session_cookie(client)
    assert client.post(reverse("account_logout")).status_code == 302
    replay = Client()
    replay.cookies[django_settings.SESSION_COOKIE_NAME] = old
    assert not is_signed_in(replay)
    assert not Session.objects.filter(session_key=old).exists()


def test_an_idle_session_ends_after_30_minutes(client, viewer):
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        sign_in(client, viewer.email)
        clock.move_to(start + timedelta(minutes=29))
        assert is_signed_in(client)  # each request starts the idle clock again
        clock.move_to(start + timedelta(minutes=29 + 29))
        assert is_signed_in(client)
        clock.move_to(start + timedelta(minutes=29 + 29 + 31))
        assert not is_signed_in(client)


def test_a_busy_session_still_ends_12_hours_after_login(client, viewer):
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        sign_in(client, viewer.email)
        now = start
        while now < start + timedelta(hours=11, minutes=50):
            now += timedelta(minutes=20)
            clock.move_to(now)
            assert is_signed_in(client), f"signed out early, at {now - start}"
        clock.move_to(start + timedelta(hours=12, minutes=1))
        assert not is_signed_in(client)
        assert AuditLog.objects.filter(action="logout", target=viewer.email).exists()


def test_an_expired_session_answers_the_api_with_401_not_a_redirect(client, viewer, server):
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        sign_in(client, viewer.email)
        assert client.get(f"/api/v1/servers/{server.pk}/").status_code == 200
        for hours in range(1, 13):
            clock.move_to(start + timedelta(hours=hours, minutes=-1))
            client.get(reverse("dashboard"))
        clock.move_to(start + timedelta(hours=12, minutes=5))
        assert client.get(f"/api/v1/servers/{server.pk}/").status_code in (401, 403)


def test_deactivating_a_user_ends_all_their_sessions(viewer, site_admin):
    laptop, phone = Client(), Client()
    sign_in(laptop, viewer.email)
    sign_in(phone, viewer.email, HTTP_USER_AGENT="Phone")
    assert UserSession.objects.filter(user=viewer).count() == 2

    admin = Client()
    admin.force_login(site_admin)
    response = admin.post(reverse("user_set_active", args=[viewer.pk]), {"active": "0"})
    assert response.status_code == 302

    assert not Session.objects.filter(session_key__in=[session_cookie(laptop), session_cookie(phone)]).exists()
    assert not is_signed_in(laptop)
    assert not is_signed_in(phone)
    assert not UserSession.objects.filter(user=viewer).exists()
    assert AuditLog.objects.filter(action="user.deactivate", target=viewer.email).count() == 1


def test_the_deactivation_service_ends_sessions_for_any_caller(viewer, site_admin, rf):
    client = Client()
    sign_in(client, viewer.email)
    request = rf.post("/")
    request.user = site_admin
    services.set_user_active(request=request, actor=site_admin, user=viewer, active=False)
    assert not is_signed_in(client)
    # And signing in again is refused while the account is off.
    response = client.post(LOGIN, {"login": viewer.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("account_inactive")
    assert not is_signed_in(client)


def test_a_user_sees_their_sessions_and_signs_out_the_others(viewer):
    laptop, phone = Client(), Client()
    sign_in(laptop, viewer.email, HTTP_USER_AGENT="Laptop Browser")
    sign_in(phone, viewer.email, HTTP_USER_AGENT="Phone Browser")

    page = laptop.get(reverse("usersessions_list"), HTTP_USER_AGENT="Laptop Browser")
    body = page.content.decode()
    assert page.status_code == 200
    assert "Laptop Browser" in body
    assert "Phone Browser" in body
    assert "This browser" in body
    assert "Sign out other sessions" in body

    response = laptop.post(reverse("usersessions_list"), HTTP_USER_AGENT="Laptop Browser")
    assert response.status_code == 302
    assert is_signed_in(laptop)
    assert not is_signed_in(phone)
    assert UserSession.objects.filter(user=viewer).count() == 1
    assert AuditLog.objects.filter(action="session.end", target=viewer.email).count() == 1


def test_with_one_session_there_is_nothing_else_to_sign_out(client, viewer):
    sign_in(client, viewer.email)
    body = client.get(reverse("usersessions_list")).content.decode()
    assert "This browser is your only session." in body
    assert "Sign out other sessions" not in body


def test_a_user_cannot_see_another_users_sessions(viewer, admin):
    mine, theirs = Client(), Client()
    sign_in(mine, viewer.email, HTTP_USER_AGENT="Viewer Browser")
    sign_in(theirs, admin.email, HTTP_USER_AGENT="Admin Browser")
    body = mine.get(reverse("usersessions_list")).content.decode()
    assert "Admin Browser" not in body
    mine.post(reverse("usersessions_list"))
    assert is_signed_in(theirs)


def test_force_login_sessions_are_ended_too(viewer: User, site_admin: User, rf: Any):
    client = Client()
    client.force_login(viewer)
    assert is_signed_in(client)
    key = session_cookie(client)
    request = rf.post("/")
    request.user = site_admin
    services.set_user_active(request=request, actor=site_admin, user=viewer, active=False)
    # The session row itself is gone, not merely refused because the user is inactive.
    assert not Session.objects.filter(session_key=key).exists()
    services.set_user_active(request=request, actor=site_admin, user=viewer, active=True)
    assert not is_signed_in(client)
