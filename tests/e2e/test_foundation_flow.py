"""The first thing a site administrator does: sign in, add a server, test its connection."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from accounts.models import AuditLog, Server
from tests.e2e.conftest import BrowserProblems, ConnectionTarget

pytestmark = pytest.mark.browser


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
    if target.expected_badge_class != "status-ok":
        # Red in the light theme: the badge uses the danger colour, not just a word.
        expect(badge).to_have_css("color", "rgb(180, 35, 24)")
        expect(result).to_have_class(re.compile(r"\berror\b"))

    assert AuditLog.objects.filter(action="server.test_connection", server=server).count() == 1
    problems.assert_clean()
