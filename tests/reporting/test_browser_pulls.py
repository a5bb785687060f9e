"""In Chromium: the report jobs page → Pull now → the row follows the pull (HTMX polling) to Done; then a backfill.

The pull runs in a real Celery worker (a thread, on the Redis broker) that reads the sandbox over real HTTP,
as in production. Uses the browser harness of tests/e2e (Debian's Chromium, console-error and CSP capture).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from playwright.sync_api import Page, expect

import reporting.pull_tasks  # noqa: F401 - registers the tasks with the app before the worker starts
from accounts.models import AuditLog, Membership, Server, User
from accounts.roles import Role
from config.celery import app as celery_app
from reporting.models import PullStatus, ReportDay, ReportPull
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
from tests.reporting.test_pulls import TODAY, seed_day
from tests.sandbox.conftest import SandboxKeys

pytestmark = pytest.mark.browser


@pytest.fixture
def worker() -> Iterator[None]:
    celery_app.control.purge()  # leftovers of other tests on this broker database
    with start_worker(celery_app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10):
        yield


def test_pull_now_and_a_backfill_run_in_the_background_and_the_rows_follow_them_to_done(
    log_in: Callable[[User], Page],  # noqa: F811
    sandbox: SandboxKeys,  # noqa: F811
    base_url: str,  # noqa: F811
    worker: None,
    problems: BrowserProblems,  # noqa: F811
    settings: Any,
) -> None:
    yesterday = TODAY - timedelta(days=1)
    for back in range(3):
        seed_day(sandbox, yesterday - timedelta(days=back), scale=back + 1)
    server = Server.objects.create(
        name="Acme-1", socketlabs_id=sandbox.server_id, api_url=f"{base_url}/sandbox/api/v2", api_key=sandbox.api_key
    )
    admin = User.objects.create_user("admin@example.com", "correct horse battery staple 42")
    Membership.objects.create(user=admin, server=server, role=Role.ADMIN)
    page = log_in(admin)  # noqa: F811

    page.goto(f"/servers/{server.pk}/reports/jobs/")
    expect(page.get_by_test_id("no-pulls")).to_be_visible()
    expect(page.get_by_label("Day (UTC)")).to_have_value(f"{yesterday:%Y-%m-%d}")
    page.get_by_role("button", name="Pull now").click()

    expect(page.get_by_role("status").filter(has_text="Pulling the reports of")).to_be_visible()
    row = page.get_by_test_id("pull-row").first
    # The page is not reloaded: the row polls until the worker has stored the day.
    expect(row.get_by_test_id("pull-status")).to_have_text("Done", timeout=30_000)
    expect(row.get_by_test_id("pull-progress")).to_have_text("1 of 1 day")
    assert ReportDay.objects.get(server=server, day=yesterday, kind="delivered").total == 3

    first = yesterday - timedelta(days=2)
    page.get_by_label("From (UTC)").fill(f"{first:%Y-%m-%d}")
    page.get_by_label("To (UTC)").fill(f"{yesterday:%Y-%m-%d}")
    page.get_by_role("button", name="Backfill").click()
    row = page.get_by_test_id("pull-row").first
    expect(row).to_contain_text(f"{first:%Y-%m-%d} to {yesterday:%Y-%m-%d}")
    expect(row.get_by_test_id("pull-status")).to_have_text("Done", timeout=30_000)
    expect(row.get_by_test_id("pull-progress")).to_have_text("3 of 3 days")
    delivered = dict(ReportDay.objects.filter(server=server, kind="delivered").values_list("day", "total"))
    assert delivered == {yesterday: 3, yesterday - timedelta(days=1): 5, first: 7}
    assert list(ReportPull.objects.values_list("status", flat=True)) == [PullStatus.DONE, PullStatus.DONE]
    assert AuditLog.objects.filter(action__in=["reports.pull", "reports.backfill"]).count() == 2

    # The cross-server jobs page lists both.
    page.goto("/reports/jobs/")
    expect(page.get_by_test_id("pull-row")).to_have_count(2)
    problems.assert_clean()
