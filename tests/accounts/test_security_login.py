"""R14: lockout per (user, IP), two-factor at login, single-use codes, the site-wide two-factor rule."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP
from django.test import Client
from django.urls import reverse

from accounts import services
from accounts.models import ApiToken, AuditLog, User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = reverse("account_login")
HOME_IP = "203.0.113.10"
OTHER_IP = "198.51.100.20"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOON = datetime(2026, 3, 2, 12, 0, 5, tzinfo=UTC)


def totp(secret: str, at: datetime) -> str:
    """RFC 6238 (SHA-1, 30 s, 6 digits), written here so the test does not trust allauth's own."""
    counter = int(at.timestamp()) // 30
    digest = hmac.new(base64.b32decode(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def attempt(client: Client, email: str, password: str, ip: str = HOME_IP) -> Any:
    return client.post(LOGIN, {"login": email, "password": password}, REMOTE_ADDR=ip)


def reauthenticate(client: Client, url: str) -> None:
    """allauth asks for the password again before two-factor changes (ASVS 7.5.1)."""
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    page = client.get(response["Location"])
    assert '<label for="id_password">Password</label>' in page.content.decode()
    back = client.post(response["Location"], {"password": PASSWORD})
    assert back.status_code == 302
    assert back["Location"] == url


def signed_in(client: Client, ip: str = HOME_IP) -> bool:
    return client.get(reverse("dashboard"), REMOTE_ADDR=ip).status_code == 200


@pytest.fixture
def with_totp(viewer: User) -> User:
    TOTP.activate(viewer, SECRET)
    return viewer


# --- Lockout --------------------------------------------------------------------------------


def test_five_wrong_passwords_lock_out_the_sixth_attempt_even_with_the_right_one(client, viewer):
    for _ in range(5):
        response = attempt(client, viewer.email, "wrong password")
        assert response.status_code in (200, 429)
        assert not signed_in(client)
    response = attempt(client, viewer.email, PASSWORD)
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert not signed_in(client)
    assert AuditLog.objects.filter(action="login.locked_out", target=viewer.email, ip=HOME_IP).exists()
    assert AuditLog.objects.filter(action="login.failed", target=viewer.email).count() >= 5


def test_four_wrong_passwords_do_not_lock(client, viewer):
    for _ in range(4):
        attempt(client, viewer.email, "wrong password")
    assert attempt(client, viewer.email, PASSWORD).status_code == 302
    assert signed_in(client)


def test_the_same_user_from_another_address_is_not_locked_out(viewer):
    attacker, owner = Client(), Client()
    for _ in range(6):
        attempt(attacker, viewer.email, "wrong password", ip=HOME_IP)
    assert attempt(attacker, viewer.email, PASSWORD, ip=HOME_IP).status_code == 429
    response = attempt(owner, viewer.email, PASSWORD, ip=OTHER_IP)
    assert response.status_code == 302
    assert signed_in(owner, ip=OTHER_IP)


def test_failures_for_one_user_do_not_lock_out_a_colleague_at_the_same_address(client, viewer, admin):
    # Counting is per (address, IP): an office behind one IP is not locked out by one person.
    for _ in range(6):
        attempt(client, viewer.email, "wrong password")
    colleague = Client()
    assert attempt(colleague, admin.email, PASSWORD).status_code == 302
    assert AuditLog.objects.filter(action="login.locked_out", target=viewer.email).exists()


def test_changing_the_case_of_the_address_does_not_reset_the_count(client, viewer):
    for variant in [
        "Viewer@example.com",
        "VIEWER@EXAMPLE.COM",
        "viewer@Example.com",
        " viewer@example.com",
        "vIewer@example.com",
    ]:
        attempt(client, variant, "wrong password")
    assert attempt(client, viewer.email, PASSWORD).status_code == 429


def test_the_lockout_lifts_after_15_minutes(client, viewer):
    with time_machine.travel(NOON, tick=False) as clock:
        for _ in range(5):
            attempt(client, viewer.email, "wrong password")
        clock.move_to(NOON + timedelta(minutes=14))
        assert attempt(client, viewer.email, PASSWORD).status_code == 429
        # A try during the lockout restarts the cool-off (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT).
        clock.move_to(NOON + timedelta(minutes=14 + 16))
        assert attempt(client, viewer.email, PASSWORD).status_code == 302


def test_a_successful_login_resets_the_count(client, viewer):
    for _ in range(4):
        attempt(client, viewer.email, "wrong password")
    assert attempt(client, viewer.email, PASSWORD).status_code == 302
    client.post(reverse("account_logout"))
    for _ in range(4):
        attempt(client, viewer.email, "wrong password")
    assert attempt(client, viewer.email, PASSWORD).status_code == 302


def test_failed_logins_are_audited_without_the_password(client, viewer):
    attempt(client, viewer.email, "hunter2-not-mine")
    entry = AuditLog.objects.get(action="login.failed")
    assert entry.target == viewer.email
    assert entry.ip == HOME_IP
    assert "hunter2" not in f"{entry.target}{entry.before}{entry.after}"


# --- Two-factor at login ----------------------------------------------------------------------


def test_a_user_with_an_authenticator_app_must_enter_a_code(client, with_totp):
    with time_machine.travel(NOON, tick=False):
        response = attempt(client, with_totp.email, PASSWORD)
        assert response.status_code == 302
        assert response["Location"] == reverse("mfa_authenticate")
        assert not signed_in(client)
        assert not AuditLog.objects.filter(action="login").exists()

        page = client.get(reverse("mfa_authenticate"))
        assert page.status_code == 200
        assert '<label for="id_code">Code</label>' in page.content.decode()

        wrong = client.post(reverse("mfa_authenticate"), {"code": "000000"})
        assert wrong.status_code == 200
        assert not signed_in(client)
        assert AuditLog.objects.filter(action="mfa.failed", target=with_totp.email).count() == 1

        right = client.post(reverse("mfa_authenticate"), {"code": totp(SECRET, NOON)})
        assert right.status_code == 302
        assert signed_in(client)
        assert AuditLog.objects.filter(action="login", target=with_totp.email).count() == 1


def test_a_totp_code_works_only_once(with_totp):
    with time_machine.travel(NOON, tick=False):
        code = totp(SECRET, NOON)
        first = Client()
        attempt(first, with_totp.email, PASSWORD)
        assert first.post(reverse("mfa_authenticate"), {"code": code}).status_code == 302
        assert signed_in(first)

        second = Client()
        attempt(second, with_totp.email, PASSWORD)
        replay = second.post(reverse("mfa_authenticate"), {"code": code})
        assert replay.status_code == 200
        assert "Incorrect code" in replay.content.decode()
        assert not signed_in(second)


def test_a_code_from_an_earlier_window_is_refused(client, with_totp):
    with time_machine.travel(NOON, tick=False):
        attempt(client, with_totp.email, PASSWORD)
        stale = totp(SECRET, NOON - timedelta(seconds=60))
        assert client.post(reverse("mfa_authenticate"), {"code": stale}).status_code == 200
        assert not signed_in(client)


def test_guessing_codes_is_limited_per_user_from_any_address(with_totp):
    with time_machine.travel(NOON, tick=False) as clock:
        guesser = Client()
        attempt(guesser, with_totp.email, PASSWORD)
        for guess in range(5):
            assert guesser.post(reverse("mfa_authenticate"), {"code": f"{guess:06d}"}).status_code == 200
        blocked = guesser.post(reverse("mfa_authenticate"), {"code": totp(SECRET, NOON)})
        assert blocked.status_code == 200
        assert "Too many failed login attempts" in blocked.content.decode()
        assert not signed_in(guesser)
        # A new address does not buy new guesses: the password is already known to whoever guesses.
        elsewhere = Client()
        attempt(elsewhere, with_totp.email, PASSWORD, ip=OTHER_IP)
        assert elsewhere.post(reverse("mfa_authenticate"), {"code": totp(SECRET, NOON)}).status_code == 200
        assert not signed_in(elsewhere, ip=OTHER_IP)

        later = NOON + timedelta(minutes=5, seconds=30)
        clock.move_to(later)
        owner = Client()
        attempt(owner, with_totp.email, PASSWORD, ip=OTHER_IP)
        assert owner.post(reverse("mfa_authenticate"), {"code": totp(SECRET, later)}).status_code == 302
        assert signed_in(owner, ip=OTHER_IP)


def test_a_recovery_code_signs_in_once(with_totp):
    codes = RecoveryCodes.activate(with_totp).generate_codes()
    first = Client()
    attempt(first, with_totp.email, PASSWORD)
    assert first.post(reverse("mfa_authenticate"), {"code": codes[0]}).status_code == 302
    assert signed_in(first)
    second = Client()
    attempt(second, with_totp.email, PASSWORD)
    assert second.post(reverse("mfa_authenticate"), {"code": codes[0]}).status_code == 200
    assert not signed_in(second)


def test_the_second_step_cannot_be_skipped_by_going_to_a_page(client, with_totp, server):
    attempt(client, with_totp.email, PASSWORD)
    response = client.get(reverse("server_detail", args=[server.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)
    assert client.get(f"/api/v1/servers/{server.pk}/").status_code in (401, 403)


# --- Setting up two-factor --------------------------------------------------------------------


def test_a_user_sets_up_an_authenticator_app_from_the_qr_page(client, viewer, django_capture_on_commit_callbacks):
    with time_machine.travel(NOON, tick=False):
        attempt(client, viewer.email, PASSWORD)
        reauthenticate(client, reverse("mfa_activate_totp"))
        page = client.get(reverse("mfa_activate_totp"))
        body = page.content.decode()
        assert page.status_code == 200
        assert re.search(r'<img class="totp-qr" src="data:image/svg\+xml;base64,[A-Za-z0-9+/=]+"', body)
        secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', body).group(1)
        assert '<label for="id_code">Code from the app</label>' in body

        wrong = client.post(reverse("mfa_activate_totp"), {"code": "123456"})
        assert wrong.status_code == 200
        assert not Authenticator.objects.filter(user=viewer, type=Authenticator.Type.TOTP).exists()

        with django_capture_on_commit_callbacks(execute=True):
            done = client.post(reverse("mfa_activate_totp"), {"code": totp(secret, NOON)})
        assert done.status_code == 302
        assert done["Location"] == reverse("mfa_view_recovery_codes")
        assert Authenticator.objects.filter(user=viewer, type=Authenticator.Type.TOTP).exists()
        assert AuditLog.objects.filter(action="mfa.totp.activate", target=viewer.email).count() == 1

        codes = client.get(done["Location"]).content.decode()
        assert codes.count("<li><code>") == 10


def test_turning_off_the_authenticator_app_is_audited(client, with_totp, django_capture_on_commit_callbacks):
    with time_machine.travel(NOON, tick=False):
        attempt(client, with_totp.email, PASSWORD)
        client.post(reverse("mfa_authenticate"), {"code": totp(SECRET, NOON)})
        reauthenticate(client, reverse("mfa_deactivate_totp"))
        assert client.get(reverse("mfa_deactivate_totp")).status_code == 200
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("mfa_deactivate_totp"))
        assert response.status_code == 302
    assert not Authenticator.objects.filter(user=with_totp, type=Authenticator.Type.TOTP).exists()
    assert AuditLog.objects.filter(action="mfa.totp.deactivate", target=with_totp.email).count() == 1


# --- Two-factor required for everyone -----------------------------------------------------------


@pytest.fixture
def mfa_required(site_admin: User, rf: Any) -> None:
    request = rf.post("/")
    request.user = site_admin
    services.set_require_mfa(request=request, actor=site_admin, required=True)


def test_without_an_authenticator_app_every_server_page_sends_you_to_set_one_up(as_user, viewer, server, mfa_required):
    client = as_user(viewer)
    for url in [reverse("dashboard"), reverse("server_detail", args=[server.pk]), reverse("api_tokens")]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == reverse("mfa_activate_totp"), url
    # Setting it up is reachable: allauth first asks for the password again, then shows the QR code.
    assert client.get(reverse("mfa_activate_totp"))["Location"].startswith(reverse("account_reauthenticate"))
    htmx = client.post(reverse("server_test", args=[server.pk]), headers={"HX-Request": "true"})
    assert htmx["HX-Redirect"] == reverse("mfa_activate_totp")


def test_the_requirement_is_not_a_way_around_through_the_api_session(as_user, viewer, server, mfa_required):
    response = as_user(viewer).get(f"/api/v1/servers/{server.pk}/")
    assert response.status_code == 403
    assert "Two-factor" in response.json()["detail"]


def test_with_an_authenticator_app_pages_open_normally(as_user, with_totp, server, mfa_required):
    assert as_user(with_totp).get(reverse("server_detail", args=[server.pk])).status_code == 200


def test_public_routes_and_sign_out_still_work_when_two_factor_is_required(as_user, viewer, mfa_required):
    client = as_user(viewer)
    assert client.get(reverse("health")).status_code in (200, 503)
    assert client.get(reverse("mfa_index")).status_code == 200
    assert client.post(reverse("account_logout")).status_code == 302


def test_api_tokens_keep_working_under_the_requirement(viewer, server, mfa_required):
    # A token is a credential of its own (made on a page the requirement guards).
    _, raw = ApiToken.issue(user=viewer, name="script")
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    assert client.get(f"/api/v1/servers/{server.pk}/").status_code == 200


def test_switching_the_requirement_is_audited_and_takes_effect_at_once(as_user, site_admin, viewer):
    admin = as_user(site_admin)
    TOTP.activate(site_admin, SECRET)
    admin.post(reverse("site_security"), {"require_mfa": "on"})
    assert as_user(viewer).get(reverse("dashboard")).status_code == 302
    admin.post(reverse("site_security"), {})
    assert as_user(viewer).get(reverse("dashboard")).status_code == 200
    changes = AuditLog.objects.filter(action="site.require_mfa").order_by("id")
    assert [c.after for c in changes] == [{"require_mfa": True}, {"require_mfa": False}]
