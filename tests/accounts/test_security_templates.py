"""Sign-in, password and two-factor pages: closed sign-up, labelled inputs, and markup our CSP allows.

`test_every_page_is_csp_clean_and_labelled` renders every GET page of the site (the URL sweep's
routes, as a site administrator) plus allauth's pages that need a particular state, and checks
the HTML: no inline script or style, no event-handler attributes, no `javascript:` links, images
only from our origin or `data:`, a nonce on every script, and a label for every input.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP
from django.test import Client
from django.urls import reverse

from accounts import services
from accounts.models import ApiToken, Server, User
from tests.accounts.test_url_sweep import PUBLIC_ROUTES, Ids, all_routes, build_url, classify
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

UNLABELLED_TYPES = {"hidden", "submit", "button", "reset", "image"}


class PageAudit(HTMLParser):
    """Collects what a strict CSP would block and inputs a screen reader could not name."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.label_for: set[str] = set()
        self.inputs: list[tuple[str, dict[str, str | None]]] = []
        self.open_labels = 0
        self.in_script: dict[str, str | None] | None = None
        self.script_text = ""
        self.nonces: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=…> event-handler attribute")
            if name == "style":
                self.problems.append(f"<{tag} style=…> inline style")
            if name in ("href", "src", "action", "formaction") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.problems.append(f"<{tag} {name}=javascript:…>")
        if tag == "style":
            self.problems.append("<style> element")
        if tag == "script":
            self.in_script = a
            self.script_text = ""
            data_block = (a.get("type") or "text/javascript") not in ("text/javascript", "module")
            if data_block:
                pass  # json_script and friends: never executed, so the CSP does not apply
            elif not a.get("nonce"):
                self.problems.append(f"<script src={a.get('src')!r}> without a nonce")
            else:
                self.nonces.add(a["nonce"] or "")
        if tag == "img":
            src = a.get("src") or ""
            if not (src.startswith("/") and not src.startswith("//")) and not src.startswith("data:image/"):
                self.problems.append(f"<img src={src[:60]!r}> from another origin")
        if tag == "label":
            self.open_labels += 1
            if a.get("for"):
                self.label_for.add(a["for"] or "")
        if tag in ("input", "select", "textarea"):
            if tag == "input" and (a.get("type") or "text") in UNLABELLED_TYPES:
                return
            if self.open_labels or a.get("aria-label") or a.get("aria-labelledby"):
                return
            self.inputs.append((tag, a))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.open_labels -= 1
        if tag == "script" and self.in_script is not None:
            executable = (self.in_script.get("type") or "text/javascript") in ("text/javascript", "module")
            if executable and self.script_text.strip() and not self.in_script.get("src"):
                self.problems.append("inline <script> with code")
            self.in_script = None

    def handle_data(self, data: str) -> None:
        if self.in_script is not None:
            self.script_text += data

    def report(self) -> list[str]:
        problems = list(self.problems)
        for tag, a in self.inputs:
            if a.get("id") not in self.label_for:
                problems.append(f"<{tag} name={a.get('name')!r}> has no label")
        if len(self.nonces) > 1:
            problems.append(f"scripts carry different nonces {self.nonces}")
        return problems


def audit_html(html: str) -> list[str]:
    parser = PageAudit()
    parser.feed(html)
    parser.close()
    return parser.report()


def html_of(response) -> str | None:
    if response.status_code != 200 or not response.get("Content-Type", "").startswith("text/html"):
        return None
    return response.content.decode()


# --- Sign-in and sign-up ----------------------------------------------------------------------


def test_the_login_page_has_no_sign_up_link_and_labels_its_fields(client):
    body = client.get(reverse("account_login")).content.decode()
    assert reverse("account_signup") not in body
    assert "Sign up" not in body and "sign up" not in body
    assert re.search(r'<label for="id_login">E-mail address</label>', body)
    assert '<label for="id_password">Password</label>' in body
    assert f'href="{reverse("account_reset_password")}"' in body
    assert "Ask yours for an invitation" in body
    assert audit_html(body) == []


@pytest.mark.parametrize("method", ["get", "post"])
def test_sign_up_is_closed(client, method):
    data = {"email": "walk-in@example.com", "password1": PASSWORD, "password2": PASSWORD}
    response = getattr(client, method)(reverse("account_signup"), data if method == "post" else None)
    body = response.content.decode()
    assert "Mailroom is invitation only" in body
    assert "<form" not in body.split("<main", 1)[1]
    assert not User.objects.filter(email="walk-in@example.com").exists()


def test_a_wrong_password_keeps_the_address_and_says_why(client, viewer):
    body = client.post(reverse("account_login"), {"login": viewer.email, "password": "nope"}).content.decode()
    assert 'role="alert"' in body
    assert "not correct" in body
    assert f'value="{viewer.email}"' in body
    assert "nope" not in body


def test_the_password_reset_pages_fit_the_layout(client, viewer, mailoutbox):
    page = client.get(reverse("account_reset_password")).content.decode()
    assert '<label for="id_email">' in page
    assert audit_html(page) == []
    response = client.post(reverse("account_reset_password"), {"email": viewer.email})
    assert response.status_code == 302
    done = client.get(response["Location"]).content.decode()
    assert "Check your e-mail" in done
    assert len(mailoutbox) == 1
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+)", mailoutbox[0].body).group(1)
    form = client.get(link, follow=True).content.decode()
    assert "Choose your password" in form
    assert '<label for="id_password1">' in form
    assert audit_html(form) == []


def test_a_reset_for_an_unknown_address_sends_nothing_and_reads_the_same(client, viewer, mailoutbox):
    unknown = client.post(reverse("account_reset_password"), {"email": "nobody@example.org"})
    known = client.post(reverse("account_reset_password"), {"email": viewer.email})
    assert unknown.status_code == known.status_code == 302
    assert unknown["Location"] == known["Location"]
    assert [m.to for m in mailoutbox] == [[viewer.email]]


def test_an_invitation_link_sets_the_first_password_once(site_admin, rf):
    request = rf.get("/")
    request.user = site_admin
    invited, link = services.invite_user(request=request, actor=site_admin, email="first@example.com")
    path = link.split("testserver", 1)[1]
    client = Client()
    form = client.get(path, follow=True)
    assert "Choose your password" in form.content.decode()
    set_url = form.redirect_chain[-1][0]
    weak = client.post(set_url, {"password1": "short", "password2": "short"})
    assert weak.status_code == 200
    assert "at least 12 characters" in weak.content.decode()
    done = client.post(set_url, {"password1": PASSWORD, "password2": PASSWORD})
    assert done.status_code == 302
    assert "Password saved" in client.get(done["Location"]).content.decode()
    invited.refresh_from_db()
    assert invited.check_password(PASSWORD)
    again = Client().get(path, follow=True).content.decode()
    assert "This link is no longer valid" in again


# --- Every page, CSP-clean and labelled --------------------------------------------------------


@pytest.fixture
def stateful_pages(viewer: User) -> list[tuple[str, Client, str]]:
    """allauth pages that only render in a particular state, with a client in that state."""
    pages = []
    # Second sign-in step.
    with_totp = User.objects.create_user("totp@example.com", PASSWORD)
    TOTP.activate(with_totp, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    RecoveryCodes.activate(with_totp)
    stage = Client()
    stage.post(reverse("account_login"), {"login": with_totp.email, "password": PASSWORD})
    pages.append(("mfa authenticate", stage, reverse("mfa_authenticate")))
    # Re-authentication, then the QR code page.
    fresh = Client()
    fresh.post(reverse("account_login"), {"login": viewer.email, "password": PASSWORD})
    pages.append(("reauthenticate", fresh, reverse("account_reauthenticate")))
    fresh.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    pages.append(("totp activate", fresh, reverse("mfa_activate_totp")))
    # Managing two-factor when it is on.
    mfa_user = Client()
    mfa_user.force_login(with_totp)
    mfa_user.post(reverse("account_reauthenticate"), {"password": PASSWORD})  # showing codes asks again
    pages.append(("mfa index (on)", mfa_user, reverse("mfa_index")))
    pages.append(("recovery codes", mfa_user, reverse("mfa_view_recovery_codes")))
    pages.append(("recovery codes generate", mfa_user, reverse("mfa_generate_recovery_codes")))
    pages.append(("mfa reauthenticate", mfa_user, reverse("mfa_reauthenticate")))
    # Sign-out confirmation and the lockout page are plain GETs.
    pages.append(("logout", mfa_user, reverse("account_logout")))
    return pages


def test_every_page_is_csp_clean_and_labelled(site_admin, server, viewer, settings, stateful_pages):
    settings.SANDBOX_ENABLED = True
    token, _ = ApiToken.issue(user=viewer, name="sweep")
    ids = Ids(server=server, user=viewer, token=token)
    admin = Client(raise_request_exception=False)
    admin.force_login(site_admin)
    anonymous = Client(raise_request_exception=False)
    checked, failures = [], []
    for route in all_routes():
        url = build_url(route, ids)
        kind = classify(route, url)
        if kind == "page":
            html = html_of(admin.get(url))
        elif kind == "public":
            html = html_of(anonymous.get(url))
        else:
            continue
        if html is None:
            continue
        checked.append(route.name)
        failures += [f"{url}: {problem}" for problem in audit_html(html)]
    for label, client, url in stateful_pages:
        html = html_of(client.get(url))
        assert html is not None, f"{label} ({url}) did not render"
        checked.append(label)
        failures += [f"{label} {url}: {problem}" for problem in audit_html(html)]
    assert not failures, "\n".join(failures)
    # The pages this issue styles were all among them.
    for name in ["account_login", "account_reset_password", "mfa_index", "usersessions_list", "dashboard"]:
        assert name in checked
    assert len(checked) >= 20
    assert set(PUBLIC_ROUTES) & set(checked)


def test_the_checker_catches_what_the_csp_would_block():
    bad = (
        '<script>alert(1)</script><script src="/static/x.js"></script><p style="color:red" onclick="x()">'
        '<a href="javascript:void(0)">x</a><img src="https://cdn.example.com/a.png"><style>p{}</style>'
        '<input name="q" id="q">'
    )
    problems = audit_html(bad)
    assert len(problems) == 9, problems  # the inline script counts twice: no nonce, and code
    good = (
        '<script nonce="n" src="/static/x.js"></script><script type="application/json" id="d">{"a": 1}</script>'
        '<img src="data:image/svg+xml;base64,AAAA" alt="qr"><label for="q">Search</label><input name="q" id="q">'
        '<label>Remember <input type="checkbox" name="r"></label><input type="hidden" name="h">'
    )
    assert audit_html(good) == []


def test_the_qr_code_is_an_image_the_csp_allows(client, viewer):
    client.post(reverse("account_login"), {"login": viewer.email, "password": PASSWORD})
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    response = client.get(reverse("mfa_activate_totp"))
    body = response.content.decode()
    src = re.search(r'<img class="totp-qr" src="([^"]+)"', body).group(1)
    assert src.startswith("data:image/svg+xml;base64,")
    img_src = re.search(r"img-src ([^;]+)", response["Content-Security-Policy"]).group(1).split()
    assert "data:" in img_src
    assert "<svg" not in body  # no inline SVG markup that could carry scripts or styles
    assert re.search(r'alt="QR code for your authenticator app', body)


def test_the_sessions_page_labels_its_table(as_user, viewer):
    body = as_user(viewer).get(reverse("usersessions_list")).content.decode()
    assert '<th scope="col">IP address</th>' in body
    assert audit_html(body) == []


def test_signed_in_pages_link_to_two_factor_and_sessions(as_user, viewer, server: Server):
    body = as_user(viewer).get(reverse("dashboard")).content.decode()
    assert f'href="{reverse("mfa_index")}"' in body
    assert f'href="{reverse("usersessions_list")}"' in body
