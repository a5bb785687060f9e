"""Sandbox pages: site administrators only; messages with events (keyset pages, filters), servers, request log."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from accounts.models import User
from sandbox import page_views
from sandbox.models import EventType, SandboxEvent, SandboxMessage, SandboxRequestLog
from tests.sandbox.conftest import SandboxKeys

pytestmark = pytest.mark.django_db
PAGES = ["/sandbox/", "/sandbox/servers/", "/sandbox/requests/"]
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def message(keys: SandboxKeys, to: str, when: datetime, subject: str = "Hello") -> SandboxMessage:
    msg = SandboxMessage.objects.create(
        server=keys.server,
        transaction_receipt="r",
        message_index=0,
        from_address="shop@example.com",
        to=[{"emailAddress": to, "friendlyName": ""}],
        subject=subject,
        created_on=when,
    )
    SandboxEvent.objects.create(
        server=keys.server, outbound=msg, type=EventType.QUEUED, address=to, due_at=when, happened=True
    )
    SandboxEvent.objects.create(
        server=keys.server,
        outbound=msg,
        type=EventType.FAILED,
        address=to,
        due_at=when + timedelta(seconds=2),
        payload={"FailureType": "Permanent", "FailureCode": 2001},
    )
    return msg


@pytest.fixture
def root(client: Client, site_admin: User) -> Client:
    client.force_login(site_admin)
    return client


@pytest.mark.parametrize("path", PAGES)
def test_the_pages_are_for_site_admins_only(
    path: str, client: Client, as_user: Callable[[User], Client], admin: User, sandbox_server: SandboxKeys
) -> None:
    anonymous = client.get(path)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert as_user(admin).get(path).status_code == 403  # an admin of a Mailroom server is not a site admin


@pytest.mark.parametrize("path", PAGES)
def test_the_pages_are_404_when_the_sandbox_is_off(path: str, root: Client, settings: Settings) -> None:
    settings.SANDBOX_ENABLED = False
    assert root.get(path).status_code == 404


@pytest.mark.parametrize("path", PAGES)
def test_the_pages_have_no_inline_scripts_or_styles(path: str, root: Client, sandbox_server: SandboxKeys) -> None:
    message(sandbox_server, "ann@example.net", T0)
    html = root.get(path).content.decode()
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None
    assert "<style" not in html and " style=" not in html and " onclick=" not in html


def test_it_lists_messages_newest_first_with_their_events(root: Client, sandbox_server: SandboxKeys) -> None:
    message(sandbox_server, "old@example.net", T0, subject="Older one")
    message(sandbox_server, "new@example.net", T0 + timedelta(hours=1), subject="Newer one")
    html = root.get("/sandbox/").content.decode()
    assert html.index("Newer one") < html.index("Older one")
    assert "2 events" in html
    assert "<code>FailureCode</code>=2001" in html
    assert "scheduled" in html  # the Failed event has not happened yet


def test_it_filters_messages_by_server_and_address(
    root: Client, sandbox_server: SandboxKeys, other_sandbox_server: SandboxKeys
) -> None:
    message(sandbox_server, "ann@example.net", T0, subject="For Ann")
    message(sandbox_server, "bob@example.net", T0, subject="For Bob")
    message(other_sandbox_server, "ann@example.net", T0, subject="Elsewhere")
    by_address = root.get("/sandbox/?address=ANN@example.net").content.decode()
    assert "For Ann" in by_address and "Elsewhere" in by_address and "For Bob" not in by_address
    by_server = root.get(f"/sandbox/?server={other_sandbox_server.server_id}").content.decode()
    assert "Elsewhere" in by_server and "For Ann" not in by_server
    empty = root.get("/sandbox/?address=nobody@example.net").content.decode()
    assert "No simulated messages for these filters" in empty


def test_it_pages_messages_by_keyset(
    root: Client, sandbox_server: SandboxKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(page_views, "PAGE_SIZE", 2)
    for i in range(5):
        # Two messages share a timestamp: the id breaks the tie so none is skipped or repeated.
        message(sandbox_server, f"u{i}@example.net", T0 + timedelta(minutes=i // 2), subject=f"Subject-{i}")
    seen: list[str] = []
    url: str | None = "/sandbox/"
    while url:
        response = root.get(url)
        html = response.content.decode()
        seen += re.findall(r"Subject-\d", html)
        found = re.search(r'href="(\?[^"]*after=[^"]*)">Older', html)
        url = "/sandbox/" + found.group(1).replace("&amp;", "&") if found else None
    assert seen == ["Subject-4", "Subject-3", "Subject-2", "Subject-1", "Subject-0"]


def test_it_shows_each_servers_knobs_plan_flags_and_keys_without_secrets(
    root: Client, sandbox_server: SandboxKeys
) -> None:
    server = sandbox_server.server
    server.suppression_enabled = False
    server.rate_limit_per_minute = 120
    server.save()
    html = root.get("/sandbox/servers/").content.decode()
    assert "Sandbox One" in html
    assert "not in plan (403)" in html
    assert "120 requests per minute" in html
    assert sandbox_server.api_key.split(".")[0] in html
    for secret in (sandbox_server.api_key, sandbox_server.injection_key, sandbox_server.legacy_key):
        assert secret not in html


def test_it_shows_the_recent_request_log_with_filters(root: Client, sandbox_server: SandboxKeys) -> None:
    SandboxRequestLog.objects.create(
        api="v2", method="GET", path="/sandbox/api/v2/servers/17001", status_code=200, server_id_value=17001
    )
    SandboxRequestLog.objects.create(
        api="injection",
        method="POST",
        path="/sandbox/inject/api/v1/email",
        status_code=401,
        error_code="InvalidAuthentication",
    )
    html = root.get("/sandbox/requests/").content.decode()
    assert "GET /sandbox/api/v2/servers/17001" in html and "InvalidAuthentication" in html
    only_v2 = root.get("/sandbox/requests/?api=v2").content.decode()
    assert "InvalidAuthentication" not in only_v2 and "GET /sandbox/api/v2/servers/17001" in only_v2
    by_server = root.get("/sandbox/requests/?server=17001").content.decode()
    assert "/inject/api/v1/email" not in by_server


def test_it_links_the_inbound_simulation_only_when_that_page_exists(
    root: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(page_views, "INBOUND_PAGE_NAMES", ("sandbox:does-not-exist",))
    assert "Inbound simulation" not in root.get("/sandbox/servers/").content.decode()
    monkeypatch.setattr(page_views, "INBOUND_PAGE_NAMES", ("sandbox:page-requests",))
    assert 'href="/sandbox/requests/">Inbound simulation' in root.get("/sandbox/servers/").content.decode()
