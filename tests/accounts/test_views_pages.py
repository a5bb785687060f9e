"""Page conventions from the UX map: badges, times with their zone, empty states, labelled inputs."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Server, ServerStatus, User

pytestmark = pytest.mark.django_db


class FormControls(HTMLParser):
    """Collects form controls and what labels them."""

    SKIP_TYPES = frozenset({"hidden", "submit", "button", "reset"})

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.label_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "label":
            self.label_depth += 1
            if attributes.get("for"):
                self.label_for.add(str(attributes["for"]))
        elif tag in {"input", "select", "textarea"} and attributes.get("type") not in self.SKIP_TYPES:
            self.controls.append({**attributes, "_tag": tag, "_in_label": "1" if self.label_depth else None})

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.label_depth -= 1

    def unlabelled(self) -> list[str]:
        return [
            f"<{c['_tag']} name={c.get('name')!r}>"
            for c in self.controls
            if not (c.get("aria-label") or c["_in_label"] or (c.get("id") and c["id"] in self.label_for))
        ]


def unlabelled_controls(html: str) -> tuple[int, list[str]]:
    parser = FormControls()
    parser.feed(html)
    return len(parser.controls), parser.unlabelled()


@pytest.fixture
def checked(server: Server, other_server: Server) -> list[Server]:
    now = timezone.now()
    Server.objects.filter(pk=server.pk).update(
        status=ServerStatus.OK, status_message="Connected.", last_checked_at=now - timedelta(minutes=5)
    )
    Server.objects.filter(pk=other_server.pk).update(
        status=ServerStatus.AUTH_FAILED, status_message="Refused.", last_checked_at=now - timedelta(hours=3)
    )
    return [server, other_server]


def test_the_dashboard_shows_status_badges_and_relative_times_with_the_exact_time(as_user, site_admin, checked):
    body = as_user(site_admin).get(reverse("dashboard")).content.decode()
    assert re.search(r'<span class="badge status-ok"[^>]*>Connected</span>', body)
    assert re.search(r'<span class="badge status-auth_failed"[^>]*>Key refused</span>', body)
    times = re.findall(r'<time datetime="([^"]+)" title="([^"]+)">([^<]+)</time>', body)
    assert len(times) == 2
    for iso, exact, relative in times:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", exact)  # the zone is named
        assert iso.startswith(exact[:10])
        assert relative.endswith("ago")
    assert "5\xa0minutes ago" in body or "5 minutes ago" in body


def test_a_server_never_checked_says_so(as_user, site_admin, server):
    body = as_user(site_admin).get(reverse("dashboard")).content.decode()
    assert "Not checked" in body
    assert "not yet" in body


def test_the_empty_dashboard_tells_a_site_admin_what_to_do(as_user, site_admin):
    body = as_user(site_admin).get(reverse("dashboard")).content.decode()
    assert "No servers yet" in body
    assert f'href="{reverse("server_add")}">Add your first server</a>' in body


def test_the_empty_dashboard_tells_anyone_else_whom_to_ask(as_user, db):
    nobody = User.objects.create_user("new@example.com", "a long enough password 1")
    body = as_user(nobody).get(reverse("dashboard")).content.decode()
    assert "Ask an administrator to give you a role on one." in body
    assert reverse("server_add") not in body


def test_a_form_with_an_error_keeps_the_input_and_shows_the_error_next_to_the_field(as_user, site_admin):
    key = "K" * 20 + "." + "k" * 40
    response = as_user(site_admin).post(
        reverse("server_add"), {"name": "Kept name", "socketlabs_id": "0", "time_zone": "UTC", "api_key": key}
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert 'value="Kept name"' in body
    label = body.index('for="id_socketlabs_id"')
    error = body.index("greater than or equal to 1")
    field = body.index('id="id_socketlabs_id"')
    assert label < error < field
    assert re.search(r'<input[^>]*aria-invalid="true"[^>]*id="id_socketlabs_id"', body)
    assert key not in body  # secrets are never sent back, even to the person who typed them


@pytest.mark.parametrize(
    "url_name",
    [
        "dashboard",
        "server_detail",
        "server_edit",
        "server_add",
        "user_list",
        "audit_log",
        "api_tokens",
        "server_delete",
    ],
)
def test_every_input_has_a_label(as_user, site_admin, server, viewer, url_name):
    args = [server.pk] if url_name in {"server_detail", "server_edit", "server_delete"} else []
    body = as_user(site_admin).get(reverse(url_name, args=args)).content.decode()
    count, unlabelled = unlabelled_controls(body)
    assert count > 0  # the switcher at least: the check looked at something
    assert unlabelled == []


def test_the_sign_in_page_labels_its_inputs_and_offers_no_sign_up(db):
    body = Client().get(reverse("account_login")).content.decode()
    count, unlabelled = unlabelled_controls(body)
    assert count == 2
    assert unlabelled == []
    assert "sign up" not in body.lower()
    assert "Forgot your password?" in body


def test_a_failed_sign_in_says_why_and_keeps_the_address(db, site_admin):
    response = Client().post(reverse("account_login"), {"login": "root@example.com", "password": "wrong"})
    body = response.content.decode()
    assert response.status_code == 200
    assert 'value="root@example.com"' in body
    assert "not correct" in body
    assert 'role="alert"' in body


def test_the_current_page_is_marked_in_the_navigation(as_user, site_admin, server):
    body = as_user(site_admin).get(reverse("user_list")).content.decode()
    assert re.findall(r'<a href="([^"]+)" aria-current="page"', body) == [reverse("user_list")]
