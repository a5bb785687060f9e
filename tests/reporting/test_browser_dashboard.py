"""In Chromium: open the report dashboard, change the range, see a drawn chart beside its table, drill down, export.

Uses the browser harness of tests/e2e (Debian's Chromium, console-error and CSP-violation capture).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from accounts.models import Membership, Server, User
from accounts.roles import Role
from reporting.dashboard_forms import utc_today
from reporting.models import Event, EventDayTotal, ReportBreakdown, ReportDay, StreamScoreDay
from reporting.pulls import roll_up_weeks
from tests.e2e.conftest import (  # noqa: F401 - fixtures shared with the browser suite
    BrowserProblems,
    base_url,
    browser_context_args,
    browser_type_launch_args,
    log_in,
    page,
    problems,
)

pytestmark = pytest.mark.browser

# Counts the non-transparent pixels of a canvas: a drawn chart has many, a blank canvas none.
PAINTED = """(canvas) => {
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
  return painted;
}"""


def test_dashboard_range_chart_drill_down_and_export(
    log_in: Callable[[User], Page],  # noqa: F811
    problems: BrowserProblems,  # noqa: F811
) -> None:
    server = Server.objects.create(name="Acme-1", socketlabs_id=10001, api_key="k" * 30)
    viewer = User.objects.create_user("viewer@example.com", "correct horse battery staple 42")
    Membership.objects.create(user=viewer, server=server, role=Role.VIEWER)
    today = utc_today()
    for back in range(0, 20):
        day = today - timedelta(days=back)
        ReportDay.objects.create(server=server, day=day, kind="delivered", total=1000 + back * 10)
        ReportDay.objects.create(server=server, day=day, kind="failed", total=20 + back)
        StreamScoreDay.objects.create(server=server, day=day, score=70 + back % 15)
    old = today - timedelta(days=15)  # inside 30 days, outside 7
    ReportDay.objects.filter(day=old, kind="delivered").update(total=55555)
    ReportBreakdown.objects.create(
        server=server, day=today, kind="failed", dimension="failure_code", key="5001", count=20
    )
    roll_up_weeks(server.pk, [today])  # as the pull that stores the day does
    noon = datetime(today.year, today.month, today.day, 0, 30, tzinfo=UTC)
    Event.objects.create(
        server=server, type="failed", occurred_at=noon, address="=bad@example.net", failure_code=5001, reason="full"
    )
    Event.objects.create(server=server, type="delivered", occurred_at=noon, address="ok@example.net")
    EventDayTotal.objects.create(server=server, day=today, type="failed", count=1)

    page = log_in(viewer)  # noqa: F811
    page.goto(f"/servers/{server.pk}/reports/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Reports")
    expect(page.get_by_test_id("range-summary")).to_contain_text("30 days, UTC days")
    volume = page.get_by_test_id("table-volume")
    expect(volume.locator("tbody tr")).to_have_count(30)
    expect(volume).to_contain_text("55,555")

    # Change the range: the last 7 days.
    page.get_by_label("Range", exact=True).select_option("7")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"range=7"))
    expect(volume.locator("tbody tr")).to_have_count(7)
    expect(volume).not_to_contain_text("55,555")

    # The chart beside the table is drawn (Chart.js from our static files, data from json_script).
    canvas = volume.locator("canvas[data-chart='chart-volume']")
    expect(canvas).to_have_attribute("data-chart-ready", "true")
    assert canvas.evaluate(PAINTED) > 500
    score_canvas = page.locator("canvas[data-chart='chart-streamscore']")
    expect(score_canvas).to_have_attribute("data-chart-ready", "true")

    # Dark mode redraws the charts with the dark palette, still without errors.
    page.locator("[data-theme-toggle]").click()
    expect(canvas).to_have_attribute("data-chart-ready", "true")
    assert canvas.evaluate(PAINTED) > 500

    # Export the table beside the chart.
    with page.expect_download() as download_info:
        volume.get_by_role("link", name="Export CSV").click()
    download = download_info.value
    text = Path(download.path()).read_text(encoding="utf-8")
    assert text.splitlines()[0] == "Day (UTC),Delivered,Failed,Complaints,Unique opens,Unique clicks,Unsubscribes"
    assert len(text.splitlines()) == 8
    assert download.suggested_filename.startswith("report-volume-10001-")

    # Drill down from a top failure code to its events.
    page.get_by_test_id("table-failure_code").get_by_role("link", name="20").click()
    expect(page).to_have_url(re.compile(r"/reports/events/\?.*code=5001"))
    rows = page.get_by_test_id("events-table").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("=bad@example.net")
    expect(page.get_by_test_id("coverage-note")).to_contain_text("cover only 1 of the 7 days")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV").click()
    events_csv = Path(download_info.value.path()).read_text(encoding="utf-8").splitlines()
    assert len(events_csv) == 2 and "'=bad@example.net" in events_csv[1]
    problems.assert_clean()
