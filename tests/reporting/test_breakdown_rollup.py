"""The weekly rollup of the breakdowns (`ReportBreakdownWeek`): kept equal to the day rows by the pulls'
`store_day`, rebuilt by migration 0006, and read by the dashboards' top keys for whole weeks."""

from __future__ import annotations

import importlib
import random
from collections import Counter, defaultdict
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection

from accounts.models import Server
from reporting import dashboards
from reporting.models import ReportBreakdown, ReportBreakdownWeek, ReportDimension, ReportKind, week_start
from reporting.pulls import DayData, roll_up_weeks, store_day

pytestmark = pytest.mark.django_db

MONDAY = date(2026, 3, 2)  # a Monday
FAILED_CODE = (ReportKind.FAILED, ReportDimension.FAILURE_CODE)
FAILED_REASON = (ReportKind.FAILED, ReportDimension.REASON)
DELIVERED_DOMAIN = (ReportKind.DELIVERED, ReportDimension.DOMAIN)
DELIVERED_MAILING = (ReportKind.DELIVERED, ReportDimension.MAILING)
PAIRS = [FAILED_CODE, FAILED_REASON, DELIVERED_DOMAIN, DELIVERED_MAILING]


def day_data(**breakdowns: dict[str, int]) -> DayData:
    """day_data(failed_failure_code={"5001": 3}, delivered_domain={...}) — what a pull fetched for one day."""
    data = DayData(totals={ReportKind.DELIVERED: (10, None), ReportKind.FAILED: (1, None)})
    for name, counts in breakdowns.items():
        kind, dimension = name.split("_", 1)
        data.breakdowns[(kind, dimension)] = Counter(counts)
    return data


def weeks_from_days(server: Server | None = None) -> dict[tuple[int, date, str, str, str], int]:
    """The week rows as they must be: the day rows summed per server, Monday, kind, dimension and key."""
    sums: dict[tuple[int, date, str, str, str], int] = defaultdict(int)
    rows = ReportBreakdown.objects.all() if server is None else ReportBreakdown.objects.filter(server=server)
    for server_id, day, kind, dimension, key, count in rows.values_list(
        "server_id", "day", "kind", "dimension", "key", "count"
    ):
        sums[(server_id, week_start(day), kind, dimension, key)] += count
    return dict(sums)


def stored_weeks(server: Server | None = None) -> dict[tuple[int, date, str, str, str], int]:
    rows = ReportBreakdownWeek.objects.all() if server is None else ReportBreakdownWeek.objects.filter(server=server)
    return {
        (server_id, monday, kind, dimension, key): count
        for server_id, monday, kind, dimension, key, count in rows.values_list(
            "server_id", "week_start", "kind", "dimension", "key", "count"
        )
    }


# --- kept by the pulls -------------------------------------------------------------------------------------
def test_week_start_is_the_monday_of_the_week() -> None:
    assert [week_start(MONDAY + timedelta(days=n)) for n in range(7)] == [MONDAY] * 7
    assert week_start(MONDAY - timedelta(days=1)) == MONDAY - timedelta(days=7)  # the Sunday before


def test_storing_days_sums_them_into_their_weeks(server: Server, other_server: Server) -> None:
    store_day(server, MONDAY, day_data(failed_failure_code={"5001": 3, "2001": 1}, delivered_domain={"a.example": 5}))
    store_day(server, MONDAY + timedelta(days=6), day_data(failed_failure_code={"5001": 4}))  # Sunday, same week
    store_day(server, MONDAY + timedelta(days=7), day_data(failed_failure_code={"5001": 100}))  # next Monday
    store_day(other_server, MONDAY, day_data(failed_failure_code={"5001": 9}))

    weeks = stored_weeks()

    next_week = MONDAY + timedelta(days=7)
    assert weeks == {
        (server.pk, MONDAY, "failed", "failure_code", "5001"): 7,
        (server.pk, MONDAY, "failed", "failure_code", "2001"): 1,
        (server.pk, MONDAY, "delivered", "domain", "a.example"): 5,
        (server.pk, next_week, "failed", "failure_code", "5001"): 100,
        (other_server.pk, MONDAY, "failed", "failure_code", "5001"): 9,
    }
    assert weeks == weeks_from_days()


def test_pulling_a_day_again_with_changed_numbers_rewrites_its_week(server: Server, other_server: Server) -> None:
    tuesday, friday = MONDAY + timedelta(days=1), MONDAY + timedelta(days=4)
    store_day(server, tuesday, day_data(failed_reason={"full": 2, "gone": 5}, delivered_mailing={"spring": 8}))
    store_day(server, friday, day_data(failed_reason={"full": 1}))
    store_day(other_server, tuesday, day_data(failed_reason={"full": 50}))
    before_other = stored_weeks(other_server)

    # The same day again: SocketLabs now counts differently, a key is gone, a kind is gone, a new one came.
    store_day(server, tuesday, day_data(failed_reason={"full": 3}, delivered_domain={"b.example": 4}))

    assert stored_weeks(server) == {
        (server.pk, MONDAY, "failed", "reason", "full"): 4,
        (server.pk, MONDAY, "delivered", "domain", "b.example"): 4,
    }
    assert stored_weeks(server) == weeks_from_days(server)
    assert stored_weeks(other_server) == before_other  # another server's week is left alone


def test_storing_the_same_day_twice_leaves_the_same_week_rows(server: Server) -> None:
    data = day_data(failed_failure_code={"5001": 3}, delivered_domain={"a.example": 5, "b.example": 1})
    store_day(server, MONDAY + timedelta(days=2), data)
    store_day(server, MONDAY + timedelta(days=3), data)
    once = stored_weeks(server)

    store_day(server, MONDAY + timedelta(days=2), data)
    store_day(server, MONDAY + timedelta(days=2), data)

    assert stored_weeks(server) == once == weeks_from_days(server)
    assert once[(server.pk, MONDAY, "delivered", "domain", "a.example")] == 10


def test_a_day_that_reports_nothing_any_more_empties_its_week(server: Server) -> None:
    store_day(server, MONDAY, day_data(failed_failure_code={"5001": 3}))

    store_day(server, MONDAY, day_data())

    assert stored_weeks(server) == {}


def test_random_pulls_and_re_pulls_keep_every_week_equal_to_its_days(server: Server, other_server: Server) -> None:
    rng = random.Random(9)
    for _ in range(60):
        target = rng.choice([server, other_server])
        day = MONDAY + timedelta(days=rng.randrange(21))
        keys = {f"k{n}": rng.randrange(0, 6) for n in rng.sample(range(8), rng.randrange(0, 5))}
        store_day(target, day, day_data(failed_reason=keys, delivered_domain={"x.example": rng.randrange(1, 9)}))
        assert stored_weeks() == weeks_from_days()
    assert ReportBreakdownWeek.objects.filter(count=0).count() == 0


# --- read by the dashboards ------------------------------------------------------------------------------
def days_only(server_ids: list[int], first: date, last: date) -> dict[tuple[str, str], list[tuple[str, int]]]:
    """The top ten keys of each pair from the day rows alone, ranked like the dashboard (count, then key)."""
    sums: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for kind, dimension, key, count in ReportBreakdown.objects.filter(
        server_id__in=server_ids, day__gte=first, day__lte=last
    ).values_list("kind", "dimension", "key", "count"):
        sums[(kind, dimension)][key] += count
    return {pair: sorted(sums[pair].items(), key=lambda kv: (-kv[1], kv[0]))[:10] for pair in PAIRS}


@pytest.fixture
def five_weeks(server: Server, other_server: Server) -> list[int]:
    """Five weeks of random breakdowns (with ties) on two servers, stored the way a pull stores them."""
    rng = random.Random(2026)
    start = MONDAY - timedelta(days=3)  # a Friday: the stored days start and end mid-week
    for offset in range(37):
        day = start + timedelta(days=offset)
        for target in (server, other_server):
            store_day(
                target,
                day,
                day_data(
                    failed_failure_code={f"{code}": rng.randrange(0, 4) for code in range(5000, 5014)},
                    failed_reason={f"reason{n:02d}": rng.randrange(0, 3) for n in range(12)},
                    delivered_domain={f"d{n:02d}.example": rng.randrange(1, 30) for n in range(25)},
                    delivered_mailing={f"m{n:02d}": rng.randrange(0, 2) for n in range(11)},
                ),
            )
    return [server.pk, other_server.pk]


def test_top_keys_from_weeks_and_edge_days_equal_top_keys_from_days_alone(five_weeks: list[int]) -> None:
    first_day = MONDAY - timedelta(days=3)
    rng = random.Random(7)
    ranges = [(first_day, first_day + timedelta(days=36)), (MONDAY, MONDAY + timedelta(days=13))]
    ranges += [(MONDAY + timedelta(days=1), MONDAY + timedelta(days=5))]  # inside one week: days only
    ranges += [(MONDAY + timedelta(days=6), MONDAY + timedelta(days=7))]  # Sunday to Monday
    ranges += [(MONDAY - timedelta(days=20), MONDAY + timedelta(days=60))]  # wider than the data
    for _ in range(25):
        a, b = sorted(rng.sample(range(-4, 40), 2))
        ranges.append((first_day + timedelta(days=a), first_day + timedelta(days=b)))
    seen_weeks = 0
    for first, last in ranges:
        seen_weeks += dashboards.whole_weeks(first, last) is not None
        got = dashboards.top_keys(five_weeks, first, last, PAIRS)
        assert got == days_only(five_weeks, first, last), (first, last)
        assert dashboards.top_keys(five_weeks[:1], first, last, PAIRS) == days_only(five_weeks[:1], first, last)
    assert seen_weeks >= 10  # most ranges did read whole weeks from the rollup


def test_the_top_keys_read_the_week_rows_for_whole_weeks(five_weeks: list[int], server: Server) -> None:
    # A week row that disagrees with its days shows up for a range holding the whole week, and not
    # for one that only holds some of its days: the rollup is what a long range reads.
    ReportBreakdownWeek.objects.create(
        server=server, week_start=MONDAY, kind="failed", dimension="failure_code", key="9999", count=10**6
    )
    whole = dashboards.top_keys(five_weeks, MONDAY, MONDAY + timedelta(days=6), [FAILED_CODE])
    part = dashboards.top_keys(five_weeks, MONDAY, MONDAY + timedelta(days=5), [FAILED_CODE])
    assert whole[FAILED_CODE][0] == ("9999", 10**6)
    assert "9999" not in dict(part[FAILED_CODE])


def test_whole_weeks_are_the_mondays_of_the_weeks_inside_the_range() -> None:
    sunday = MONDAY + timedelta(days=6)
    assert dashboards.whole_weeks(MONDAY, sunday) == (MONDAY, MONDAY)
    assert dashboards.whole_weeks(MONDAY, sunday - timedelta(days=1)) is None
    assert dashboards.whole_weeks(MONDAY + timedelta(days=1), sunday + timedelta(days=7)) == (
        MONDAY + timedelta(days=7),
        MONDAY + timedelta(days=7),
    )
    assert dashboards.whole_weeks(MONDAY - timedelta(days=1), sunday + timedelta(days=15)) == (
        MONDAY,
        MONDAY + timedelta(days=14),
    )


def test_the_overview_board_shows_the_same_top_tables_as_the_days_give(five_weeks: list[int]) -> None:
    first, last = MONDAY - timedelta(days=2), MONDAY + timedelta(days=24)  # Saturday to a Friday
    board = dashboards.build(
        page="overview",
        server_ids=five_weeks,
        server_names={pk: f"S{pk}" for pk in five_weeks},
        first=first,
        last=last,
        link=lambda **kw: "",
        cross_server=True,
    )
    expected = days_only(five_weeks, first, last)
    shown = {name: [(row[0].value, row[1].value) for row in board.tables[name].rows] for name in board.tables}
    assert shown["failure_code"] == expected[FAILED_CODE]
    assert shown["reason"] == expected[FAILED_REASON]
    assert shown["delivered_domain"] == expected[DELIVERED_DOMAIN]
    assert shown["delivered_mailing"] == expected[DELIVERED_MAILING]


# --- rebuilt by the migration ----------------------------------------------------------------------------
def test_the_migration_rebuilds_the_weeks_from_the_stored_days(server: Server, other_server: Server) -> None:
    migration = importlib.import_module("reporting.migrations.0006_report_breakdown_week")
    for offset, count in ((0, 3), (2, 4), (6, 1), (7, 8), (15, 2)):
        for target in (server, other_server):
            ReportBreakdown.objects.create(
                server=target,
                day=MONDAY + timedelta(days=offset),
                kind="failed",
                dimension="reason",
                key="full",
                count=count,
            )
    ReportBreakdown.objects.create(server=server, day=MONDAY, kind="clicks", dimension="url", key="https://x/", count=5)
    # A stale week row (no day rows behind it) and rows written before any rollup existed.
    ReportBreakdownWeek.objects.create(
        server=server, week_start=MONDAY + timedelta(days=70), kind="failed", dimension="reason", key="old", count=1
    )

    migration.rebuild_weeks(apps, SimpleNamespace(connection=connection))

    weeks = stored_weeks()
    assert weeks == weeks_from_days()
    assert weeks[(server.pk, MONDAY, "failed", "reason", "full")] == 8
    assert weeks[(other_server.pk, MONDAY + timedelta(days=7), "failed", "reason", "full")] == 8
    assert weeks[(server.pk, MONDAY + timedelta(days=14), "failed", "reason", "full")] == 2
    assert weeks[(server.pk, MONDAY, "clicks", "url", "https://x/")] == 5
    assert len(weeks) == 7


def test_roll_up_weeks_repairs_a_week_written_without_it(server: Server) -> None:
    ReportBreakdown.objects.create(server=server, day=MONDAY, kind="failed", dimension="reason", key="full", count=3)
    ReportBreakdownWeek.objects.create(
        server=server, week_start=MONDAY, kind="failed", dimension="reason", key="full", count=999
    )
    roll_up_weeks(server.pk, [MONDAY + timedelta(days=3)])
    assert stored_weeks(server) == weeks_from_days(server) == {(server.pk, MONDAY, "failed", "reason", "full"): 3}
