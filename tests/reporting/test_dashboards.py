"""Dashboard selectors: totals, rates, series, top keys, StreamScore, reconciliation, coverage."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from accounts.models import Server
from reporting import dashboards
from reporting.dashboard_forms import RangeForm, range_form
from reporting.models import Event, EventDayTotal, ReportBreakdown, ReportDay, StreamScoreDay
from reporting.pulls import roll_up_weeks

D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)


def report(server: Server, day: date, **kinds: int | tuple[int, int | None]) -> None:
    """report(server, day, delivered=90, failed=10, opens=(30, 20)) — (total, unique) for tracking kinds."""
    for kind, value in kinds.items():
        total, unique = value if isinstance(value, tuple) else (value, None)
        ReportDay.objects.create(server=server, day=day, kind=kind, total=total, unique=unique)


def breakdown(server: Server, day: date, kind: str, dimension: str, **counts: int) -> None:
    """Day rows as a pull stores them: the server's week rows are recomputed after them."""
    for key, count in counts.items():
        ReportBreakdown.objects.create(server=server, day=day, kind=kind, dimension=dimension, key=key, count=count)
    roll_up_weeks(server.pk, [day])


def event(server: Server, type_: str, when: datetime, address: str = "a@example.net", **extra: Any) -> Event:
    return Event.objects.create(server=server, type=type_, occurred_at=when, address=address, **extra)


def no_link(**kwargs: Any) -> str:
    parts = "&".join(f"{k}={v}" for k, v in sorted(kwargs.items()))
    return f"/events?{parts}"


def build(page: str, servers: list[Server], first: date = D1, last: date = D3, **kw: Any) -> dashboards.Dashboard:
    return dashboards.build(
        page=page,
        server_ids=[s.pk for s in servers],
        server_names={s.pk: s.name for s in servers},
        first=first,
        last=last,
        link=no_link,
        **kw,
    )


def cells(table: dashboards.Table) -> list[list[str]]:
    return [[c.text for c in row] for row in table.rows]


# --- figures and rates -----------------------------------------------------------------------------
def test_rates_follow_the_documented_definitions() -> None:
    f = dashboards.Figures(delivered=900, failed=100, complaints=9, opens=500, unique_opens=300, clicks=80)
    f.unique_clicks = 45
    assert f.delivery_rate == 0.9
    assert f.failure_rate == 0.1
    assert f.complaint_rate == 0.01
    assert f.open_rate == pytest.approx(300 / 900)
    assert f.click_rate == 0.05


def test_a_rate_without_a_denominator_is_unknown_not_zero() -> None:
    f = dashboards.Figures(complaints=3)
    assert f.delivery_rate is None and f.complaint_rate is None and f.open_rate is None
    assert dashboards.fmt_pct(None) == "–"
    assert dashboards.fmt_pct(0.12345) == "12.3 %"
    assert dashboards.fmt_int(1234567) == "1,234,567"


def test_totals_sum_servers_and_days_and_use_unique_tracking_counts(server: Server, other_server: Server) -> None:
    report(server, D1, delivered=900, failed=100, complaints=2, opens=(500, 300), clicks=(90, 60), unsubscribes=4)
    report(server, D2, delivered=100, failed=0, opens=(10, None))
    report(other_server, D1, delivered=1000, failed=1000)
    report(server, date(2026, 2, 28), delivered=77777)  # outside the range

    board = build("overview", [server, other_server])

    t = board.totals
    assert (t.delivered, t.failed, t.complaints, t.unsubscribes) == (2000, 1100, 2, 4)
    assert (t.opens, t.unique_opens, t.clicks, t.unique_clicks) == (510, 310, 90, 60)  # no unique → total
    assert t.delivery_rate == pytest.approx(2000 / 3100)
    assert t.open_rate == pytest.approx(310 / 2000)
    assert board.by_server[other_server.pk].failure_rate == 0.5


def test_the_volume_series_has_every_day_of_the_range_with_drill_down_links(server: Server) -> None:
    report(server, D1, delivered=1500, failed=5)
    report(server, D3, complaints=1)

    volume = build("overview", [server]).tables["volume"]

    assert cells(volume) == [
        ["2026-03-01", "1,500", "5", "0", "0", "0", "0"],
        ["2026-03-02", "0", "0", "0", "0", "0", "0"],
        ["2026-03-03", "0", "0", "1", "0", "0", "0"],
    ]
    assert volume.rows[0][1].href == "/events?first=2026-03-01&last=2026-03-01&type=delivered"
    assert volume.chart is not None
    assert volume.chart["labels"] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert volume.chart["datasets"][0]["data"] == [1500, 0, 0]
    assert list(volume.csv_rows)[0] == ["2026-03-01", 1500, 5, 0, 0, 0, 0]


def test_daily_rates_are_per_day(server: Server) -> None:
    report(server, D1, delivered=90, failed=10, complaints=9)
    rates = build("overview", [server]).tables["rates"]
    assert cells(rates)[0] == ["2026-03-01", "90.0 %", "10.0 %", "10.0 %", "0.0 %", "0.0 %"]
    assert cells(rates)[1] == ["2026-03-02", "–", "–", "–", "–", "–"]
    assert rates.chart and rates.chart["datasets"][1]["data"] == [10.0, None, None]


# --- top keys -----------------------------------------------------------------------------------------
def test_top_failure_codes_are_summed_over_days_and_servers_and_ranked(server: Server, other_server: Server) -> None:
    breakdown(server, D1, "failed", "failure_code", **{"2001": 5, "3001": 1})
    breakdown(server, D2, "failed", "failure_code", **{"2001": 2, "4002": 9})
    breakdown(other_server, D1, "failed", "failure_code", **{"3001": 20})
    breakdown(server, D1, "failed", "domain", **{"2001": 999})  # another dimension: not mixed in

    table = build("failed", [server, other_server]).tables["failure_code"]

    assert cells(table) == [["3001", "21", "56.8 %"], ["4002", "9", "24.3 %"], ["2001", "7", "18.9 %"]]
    assert table.rows[0][1].href == "/events?code=3001&first=2026-03-01&last=2026-03-03&type=failed"


def test_top_keys_keep_only_the_largest_ten_per_kind_and_dimension(server: Server) -> None:
    breakdown(server, D1, "delivered", "domain", **{f"d{n:02d}.example": n for n in range(1, 16)})
    breakdown(server, D1, "delivered", "mailing", spring=3)

    board = build("overview", [server])

    domains = board.tables["delivered_domain"]
    assert [row[0].value for row in domains.rows] == [f"d{n:02d}.example" for n in range(15, 5, -1)]
    assert domains.rows[0][1].href.endswith("domain=d15.example&first=2026-03-01&last=2026-03-03&type=delivered")
    assert cells(board.tables["delivered_mailing"]) == [["spring", "3", "100.0 %"]]


def test_tracking_page_has_top_urls_and_mailings(server: Server) -> None:
    breakdown(server, D1, "clicks", "url", **{"https://x.example/a": 4})
    breakdown(server, D1, "opens", "mailing", spring=7)
    report(server, D1, delivered=10, opens=(9, 7), clicks=(4, 2), unsubscribes=1)

    board = build("tracking", [server])

    assert [t.name for t in board.shown()] == ["tracking_days", "clicks_url", "opens_mailing", "clicks_mailing"]
    assert cells(board.tables["clicks_url"])[0][:2] == ["https://x.example/a", "4"]
    assert cells(board.tables["tracking_days"])[0] == ["2026-03-01", "9", "7", "4", "2", "1", "70.0 %", "20.0 %"]


def test_selectors_cost_three_queries_whatever_the_servers(
    server: Server, other_server: Server, django_assert_num_queries: Any
) -> None:
    for day in (D1, D2, D3):
        report(server, day, delivered=10, failed=1)
        report(other_server, day, delivered=5)
        StreamScoreDay.objects.create(server=server, day=day, score=90)
        breakdown(server, day, "failed", "reason", timeout=1)
    with django_assert_num_queries(3):
        build("overview", [server, other_server], cross_server=True)


# --- StreamScore ---------------------------------------------------------------------------------------
def test_cross_server_streamscore_is_weighted_by_volume(server: Server, other_server: Server) -> None:
    report(server, D1, delivered=900, failed=100)  # weight 1000
    report(other_server, D1, delivered=0, failed=0)  # weight 0 → 1
    StreamScoreDay.objects.create(server=server, day=D1, score=90)
    StreamScoreDay.objects.create(server=other_server, day=D1, score=40)
    StreamScoreDay.objects.create(server=other_server, day=D2, score=40)

    board = build("streamscore", [server, other_server], cross_server=True)

    trend = board.tables["streamscore"]
    assert trend.rows[0][1].value == pytest.approx((90 * 1000 + 40) / 1001, abs=0.05)
    assert cells(trend)[0][2] == "Good"
    assert cells(trend)[1][1:] == ["40", "Poor"]
    assert cells(trend)[2][1:] == ["–", "–"]
    assert board.score == 40 and board.score_rating == "Poor"  # the latest day with a score
    assert trend.chart and trend.chart["thresholds"] == [
        {"value": 80, "label": "Good ≥ 80"},
        {"value": 50, "label": "Fair ≥ 50"},
    ]
    per_server = cells(board.tables["streamscore_servers"])
    assert per_server == [["Acme-1", "2026-03-01", "90", "Good", "90"], ["Other-2", "2026-03-02", "40", "Poor", "40"]]


@pytest.mark.parametrize(("score", "expected"), [(80, "Good"), (79, "Fair"), (50, "Fair"), (49, "Poor"), (None, "")])
def test_ratings_follow_the_thresholds(score: int | None, expected: str) -> None:
    assert dashboards.rating(score) == expected


# --- reconciliation and coverage -----------------------------------------------------------------------
def test_reconciliation_compares_pulled_and_webhook_totals(server: Server) -> None:
    report(server, D1, delivered=100, failed=3)
    report(server, D2, delivered=50)
    EventDayTotal.objects.create(server=server, day=D1, type="delivered", count=98)
    EventDayTotal.objects.create(server=server, day=D1, type="failed", count=3)
    EventDayTotal.objects.create(server=server, day=D3, type="open", count=4)
    EventDayTotal.objects.create(server=server, day=D3, type="queued", count=50)  # no report kind: left out

    rows, pulled, webhook = dashboards.reconciliation([server.pk], D1, D3)

    assert pulled and webhook
    assert [(r.day, r.kind, r.pulled, r.webhook, r.difference) for r in rows] == [
        (D3, "opens", None, 4, None),
        (D2, "delivered", 50, None, None),
        (D1, "delivered", 100, 98, -2),
        (D1, "failed", 3, 3, 0),
    ]
    table = dashboards.reconciliation_table(rows, no_link)
    assert cells(table)[2] == ["2026-03-01", "Delivered", "100", "98", "-2"]
    assert table.rows[2][4].flag == "diff" and table.rows[3][4].flag == ""
    assert cells(table)[1][3] == "no events" and cells(table)[0][2] == "not pulled"


def test_coverage_says_which_days_have_webhook_events(server: Server) -> None:
    EventDayTotal.objects.create(server=server, day=D2, type="delivered", count=1)
    cover = dashboards.coverage([server.pk], D1, D3)
    assert (cover.first_day, cover.days_with_events, cover.days_in_range, cover.complete) == (D2, 1, 3, False)


def test_day_bounds_are_utc_midnights() -> None:
    assert dashboards.day_bounds(D1, D2) == (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))


# --- the range picker ---------------------------------------------------------------------------------
TODAY = date(2026, 11, 26)


def test_the_default_range_is_the_last_30_utc_days() -> None:
    r = range_form({}, today=TODAY).day_range()
    assert (r.first, r.last, r.preset, r.days) == (date(2026, 10, 28), TODAY, "30", 30)


@pytest.mark.parametrize(("preset", "first"), [("7", date(2026, 11, 20)), ("90", date(2026, 8, 29))])
def test_presets(preset: str, first: date) -> None:
    r = range_form({"range": preset}, today=TODAY).day_range()
    assert (r.first, r.last, r.days) == (first, TODAY, int(preset))


def test_a_custom_range() -> None:
    form = range_form({"range": "custom", "from": "2026-01-01", "to": "2026-01-31"}, today=TODAY)
    assert form.is_valid()
    r = form.day_range()
    assert (r.first, r.last, r.days) == (date(2026, 1, 1), date(2026, 1, 31), 31)
    assert r.query() == {"range": "custom", "from": "2026-01-01", "to": "2026-01-31"}


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"range": "custom", "from": "2026-02-01", "to": "2026-01-01"}, "to", "on or after the first day"),
        ({"range": "custom", "from": "2026-01-01", "to": "2026-12-01"}, "to", "cannot be after today (2026-11-26"),
        ({"range": "custom", "from": "01/02/2026", "to": "2026-01-03"}, "from", "YYYY-MM-DD"),
        ({"range": "custom", "to": "2026-01-03"}, "from", "Enter the first day"),
        ({"range": "custom", "from": "2020-01-01", "to": "2026-01-03"}, "from", "at most 731 days"),
        ({"range": "13"}, "range", "Choose 7, 30 or 90 days"),
    ],
)
def test_a_bad_range_says_what_is_wrong_and_falls_back_to_30_days(
    params: dict[str, str], field: str, message: str
) -> None:
    form = range_form(params, today=TODAY)
    assert not form.is_valid()
    assert message in " ".join(str(e) for e in form.errors[field])
    assert form.day_range().days == 30


def test_dates_alone_mean_a_custom_range() -> None:
    form = RangeForm({"from": "2026-01-01", "to": "2026-01-02"}, today=TODAY)
    assert form.day_range().days == 2
