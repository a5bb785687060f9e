"""In Chromium: subscribe to a digest, send a preview, see an alert notice on the dashboard and dismiss it.

Uses the browser harness of tests/e2e (Debian's Chromium, console-error and CSP-violation capture).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

import pytest
from django.core import mail
from playwright.sync_api import Page, expect

from accounts.models import AuditLog, Membership, Server, User
from accounts.roles import Role
from reporting import alerts
from reporting.models import Alert, ReportSubscription
from tests.conftest import PASSWORD
from tests.e2e.conftest import (  # noqa: F401 - fixtures shared with the browser suite
    BrowserProblems,
    base_url,
    browser_context_args,
    browser_type_launch_args,
    log_in,
    page,
    problems,
)
from tests.reporting.report_rows import put_day

pytestmark = pytest.mark.browser


def test_subscribe_preview_and_dismiss_an_alert_notice(
    log_in: Callable[[User], Page],  # noqa: F811
    base_url: str,  # noqa: F811
    problems: BrowserProblems,  # noqa: F811
) -> None:
    server = Server.objects.create(name="Acme-1", socketlabs_id=10001, api_key="A" * 20 + "." + "b" * 40)
    ops = User.objects.create_user("ops@example.com", PASSWORD)
    Membership.objects.create(user=ops, server=server, role=Role.OPS)
    put_day(server, date(2026, 11, 24), delivered=90, failed=10, complaints=0)
    alerts.evaluate_days(server, [date(2026, 11, 24)])
    mail.outbox = []
    page = log_in(ops)  # noqa: F811

    # Digests: choose nightly with alert e-mails, save in place.
    page.goto(f"/servers/{server.pk}/reports/digests/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Digests")
    expect(page.get_by_test_id("next-send")).to_contain_text("You get no digest for Acme-1.")
    page.get_by_label("Digest").select_option("nightly")
    page.get_by_label("E-mail me alerts").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("flash")).to_have_text(
        "Saved: ops@example.com gets a nightly digest and alert e-mails for Acme-1."
    )
    expect(page.get_by_test_id("next-send")).to_contain_text(re.compile(r"Covers .* \(UTC\)\. (Sent on|Due now)"))
    subscription = ReportSubscription.objects.get(user=ops, server=server)
    assert (subscription.digest, subscription.alerts) == ("nightly", True)

    # A preview goes to the signed-in user now.
    page.get_by_role("button", name="Send me a preview").click()
    expect(page.get_by_test_id("flash")).to_contain_text("Sent a preview of the digest for")
    assert [m.to for m in mail.outbox] == [["ops@example.com"]]
    assert mail.outbox[0].subject.startswith("[Preview] [Mailroom] Acme-1: nightly digest for")

    # The dashboard shows the open alert; dismissing it replaces the notice in place.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    notice = page.get_by_test_id("alert-notice")
    expect(notice).to_have_count(1)
    expect(notice).to_contain_text("Failure rate 10.00 %, above the threshold of 5.00 %.")
    expect(page.get_by_test_id("glance-alerts")).to_have_text("1 open")
    page.get_by_role("button", name=re.compile("Dismiss the Failure rate alert of Acme-1 on 2026-11-24")).click()
    expect(page.get_by_test_id("flash")).to_have_text("Dismissed the Failure rate alert of Acme-1 on 2026-11-24.")
    expect(page.get_by_test_id("alert-notice")).to_have_count(0)
    assert Alert.objects.get().dismissed_at is not None
    assert AuditLog.objects.filter(action="reports.alert_dismissed", actor=ops).count() == 1

    # After a reload the notice stays gone and the count is back to none.
    page.reload()
    expect(page.get_by_test_id("alert-notice")).to_have_count(0)
    expect(page.get_by_test_id("glance-alerts")).to_have_text("none")
    problems.assert_clean()
