"""The first thing a site administrator does: sign in, add a server, test its connection."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from accounts.models import AuditLog, Server
from tests.e2e.conftest import BrowserProblems, ConnectionTarget
from tests.sandbox.conftest import SandboxKeys

pytestmark = pytest.mark.browser

# The badge colours of the light theme (--ok, --danger): a status is a word and a colour.
BADGE_COLOURS = {
    "status-ok": "rgb(17, 99, 41)",
    "status-auth_failed": "rgb(180, 35, 24)",
    "status-unreachable": "rgb(180, 35, 24)",
}


def test_it_adds_a_server_and_tests_its_connection_in_place(
    admin_page: Page, connection_target: ConnectionTarget, problems: BrowserProblems
) -> None:
    page = admin_page
    target = connection_target

    # An empty dashboard says what to do next.
    empty = page.locator(".empty")
    expect(empty).to_contain_text("No servers yet")
    empty.get_by_role("link", name="Add your first server").click()

    page.get_by_label("Display name").fill("Acme-1")
    page.get_by_label("SocketLabs server id").fill(str(target.socketlabs_id))
    page.get_by_label("API key (v2)", exact=True).fill(target.api_key)
    page.get_by_text("Custom API addresses").click()
    page.get_by_label("API v2 URL").fill(target.api_url)
    page.get_by_role("button", name="Add server").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Acme-1")
    expect(page.locator("#messages")).to_contain_text("Added Acme-1")
    server = Server.objects.get(name="Acme-1")
    expect(page).to_have_url(re.compile(rf"/servers/{server.pk}/$"))
    expect(page.locator("#connection-status .badge")).to_have_text("Not checked")

    # The check happens in place: an HTMX request, and only #connection-status changes.
    page.locator("h1").evaluate("h => h.setAttribute('data-still-here', '1')")
    with page.expect_response(re.compile(rf"/servers/{server.pk}/test/$")) as response_info:
        page.get_by_role("button", name="Test connection").click()
    response = response_info.value
    assert response.request.headers.get("hx-request") == "true"
    assert response.status == 200

    result = page.get_by_test_id("connection-result")
    expect(result).to_contain_text(target.expected_message)
    badge = page.locator("#connection-status .badge")
    expect(badge).to_have_text(target.expected_status)
    expect(badge).to_have_class(re.compile(target.expected_badge_class))
    expect(page.locator("h1[data-still-here]")).to_have_count(1)  # no full page load
    expect(badge).to_have_css("color", BADGE_COLOURS[target.expected_badge_class])

    assert AuditLog.objects.filter(action="server.test_connection", server=server).count() == 1
    page.goto("/")
    expect(page.locator("#server-table")).to_contain_text(target.expected_status)
    problems.assert_clean()


def test_a_refused_key_shows_a_red_badge_and_says_what_to_do(
    admin_page: Page, sandbox: SandboxKeys, base_url: str, problems: BrowserProblems
) -> None:
    server = Server.objects.create(
        name="Wrong key",
        socketlabs_id=sandbox.server_id,
        api_url=f"{base_url}/sandbox/api/v2",
        api_key="W" * 20 + "." + "w" * 40,
    )
    page = admin_page
    page.goto(f"/servers/{server.pk}/")
    page.get_by_role("button", name="Test connection").click()

    result = page.get_by_test_id("connection-result")
    expect(result).to_contain_text(f"SocketLabs refused the API key for server {sandbox.server_id} (401)")
    expect(result).to_contain_text("Check the key under Admin → Servers.")
    expect(result).to_have_class(re.compile(r"\berror\b"))
    badge = page.locator("#connection-status .badge")
    expect(badge).to_have_text("Key refused")
    expect(badge).to_have_css("color", BADGE_COLOURS["status-auth_failed"])
    problems.assert_clean()
