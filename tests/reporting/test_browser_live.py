"""In Chromium: register an endpoint at the sandbox, send mail, watch delivered/open appear live, open the timeline.

Uses the browser harness of tests/e2e (Debian's Chromium, console-error and CSP-violation capture).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect

from accounts.models import Membership, Server, User
from accounts.roles import Role
from reporting import processing
from reporting.models import EventEndpoint
from sandbox import webhooks as sandbox_webhooks
from sandbox.models import SandboxEventWebhook, SandboxServer
from tests.e2e.conftest import (  # noqa: F401 - fixtures shared with the browser suite
    BrowserProblems,
    base_url,
    browser_context_args,
    browser_type_launch_args,
    log_in,
    page,
    problems,
    sandbox,
)
from tests.sandbox.conftest import SandboxKeys

pytestmark = pytest.mark.browser


def test_events_appear_live_and_lead_to_the_recipient_timeline(
    log_in: Callable[[User], Page],  # noqa: F811
    sandbox: SandboxKeys,  # noqa: F811
    base_url: str,  # noqa: F811
    problems: BrowserProblems,  # noqa: F811
    settings: Any,
) -> None:
    settings.REPORTING_PUBLIC_BASE_URL = base_url
    SandboxServer.objects.filter(pk=sandbox.server.pk).update(
        bounce_rate=0, deferral_rate=0, complaint_rate=0, open_rate=0, click_rate=0, unsubscribe_rate=0
    )
    server = Server.objects.create(
        name="Acme-1",
        socketlabs_id=sandbox.server_id,
        api_url=f"{base_url}/sandbox/api/v2",
        inject_url=f"{base_url}/sandbox/inject/api/v1/email",
        api_key=sandbox.api_key,
        injection_key=sandbox.injection_key,
    )
    ops = User.objects.create_user("ops@example.com", "correct horse battery staple 42")
    Membership.objects.create(user=ops, server=server, role=Role.OPS)
    page = log_in(ops)  # noqa: F811

    # Create the endpoint: its secret is shown once; register it at the sandbox.
    page.goto(f"/servers/{server.pk}/webhooks/endpoints/events/")
    page.get_by_label("Name").fill("production")
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.get_by_test_id("new-secret")).to_contain_text("shown only once")
    page.get_by_role("button", name="Register at SocketLabs").click()
    expect(page.get_by_test_id("registration")).to_contain_text("registered (webhook")
    assert SandboxEventWebhook.objects.get().status == "Active"
    endpoint = EventEndpoint.objects.get()

    # Watch the live feed while mail goes out through the sandbox.
    page.goto(f"/servers/{server.pk}/activity/")
    expect(page.locator("#feed")).to_contain_text("No events yet")
    sent = requests.post(
        server.inject_url,
        json={
            "ServerId": sandbox.server_id,
            "Messages": [
                {
                    "From": {"EmailAddress": "shop@example.com"},
                    "To": [{"EmailAddress": "open.ann@example.net"}],
                    "Subject": "Hello",
                    "TextBody": "Hi",
                    "MessageId": "hello-1",
                }
            ],
        },
        headers={"Authorization": f"Bearer {sandbox.injection_key}"},
        timeout=10,
    )
    assert sent.json()["ErrorCode"] == "Success"
    sandbox_webhooks.dispatch_due(budget_seconds=20)  # the sandbox's worker posts the events
    processing.drain()  # Mailroom's worker types them

    feed = page.locator("#feed")
    expect(feed.locator(".event-delivered")).to_have_count(1, timeout=6_000)  # the feed polls every 2 s
    expect(feed.locator(".event-open")).to_have_count(1)
    endpoint.refresh_from_db()
    assert endpoint.events_processed == 3

    feed.get_by_role("link", name="open.ann@example.net").first.click()
    expect(page).to_have_url(re.compile(r"/activity/timeline/\?q=open\.ann%40example\.net"))
    rows = page.locator("#timeline-results tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("Queued")
    expect(rows.nth(1)).to_contain_text("Delivered")
    expect(rows.nth(2)).to_contain_text("Open")
    problems.assert_clean()
