"""Reads for the report dashboards: figures for a set of servers over a range of UTC days.

Everything here comes from the pulled report tables (`ReportDay`, `ReportBreakdown`,
`StreamScoreDay`) and, for reconciliation and the drill-down coverage note, the small
`EventDayTotal` tally; a dashboard never scans `Event`. One dashboard costs three queries
(report days summed per day and per server, top keys, StreamScore weighted by volume) whatever the
number of servers or days. Top keys over whole weeks come from `ReportBreakdownWeek` (the pulls
keep it equal to the sums of the day rows), so a long range sums about seven times fewer rows.

Definitions (the same on every page, in exports and in the help text):

* **delivery rate** = delivered / (delivered + failed)
* **failure rate** = failed / (delivered + failed)
* **complaint rate** = complaints / delivered
* **open rate** = unique opens / delivered; **click rate** = unique clicks / delivered
  (when SocketLabs gave no unique count for a day, that day's total stands in for it)

A rate whose denominator is zero is shown as "–", never as 0 %.

StreamScore across several servers is the **volume-weighted average** per day: each server's
score weighs by its delivered + failed messages that day (servers that sent nothing that day
weigh 1, so a quiet day still has a score). The per-server scores are listed beside it.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Max, Sum

from reporting.models import (
    EventDayTotal,
    EventType,
    ReportDay,
    ReportDimension,
    ReportKind,
    StreamScoreDay,
)

GOOD = 80
FAIR = 50
TOP = 10
CACHE_SECONDS = 600

# Which webhook event type each report kind counts (the drill-down and reconciliation need it).
EVENT_TYPE: dict[str, str] = {
    ReportKind.DELIVERED: EventType.DELIVERED,
    ReportKind.FAILED: EventType.FAILED,
    ReportKind.COMPLAINTS: EventType.COMPLAINT,
    ReportKind.OPENS: EventType.OPEN,
    ReportKind.CLICKS: EventType.CLICK,
    ReportKind.UNSUBSCRIBES: EventType.UNSUBSCRIBE,
}
KIND_OF_EVENT = {v: k for k, v in EVENT_TYPE.items()}
# The drill-down filter each dimension becomes.
DIMENSION_FILTER: dict[str, str] = {
    ReportDimension.DOMAIN: "domain",
    ReportDimension.MAILING: "mailing",
    ReportDimension.FAILURE_CODE: "code",
    ReportDimension.REASON: "reason",
    ReportDimension.URL: "url",
}
PAGES = ("overview", "delivered", "failed", "complaints", "tracking", "streamscore")
KIND_PAGES = ("delivered", "failed", "complaints", "tracking")


def rating(score: float | None) -> str:
    if score is None:
        return ""
    return "Good" if score >= GOOD else "Fair" if score >= FAIR else "Poor"


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def fmt_int(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def fmt_pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[first 00:00 UTC, the day after last 00:00 UTC): report days are UTC days."""
    return (
        datetime.combine(first, time.min, tzinfo=UTC),
        datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC),
    )


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


# --- figures --------------------------------------------------------------------------------------
@dataclass
class Figures:
    """Counts of one day (or a whole range); `unique_*` fall back to totals when not reported."""

    delivered: int = 0
    failed: int = 0
    complaints: int = 0
    opens: int = 0
    unique_opens: int = 0
    clicks: int = 0
    unique_clicks: int = 0
    unsubscribes: int = 0

    def add(self, kind: str, total: int, unique: int | None) -> None:
        if kind == "delivered":
            self.delivered += total
        elif kind == "failed":
            self.failed += total
        elif kind == "opens":
            self.opens += total
            self.unique_opens += total if unique is None else unique
        elif kind == "clicks":
            self.clicks += total
            self.unique_clicks += total if unique is None else unique
        elif kind == "complaints":
            self.complaints += total
        elif kind == "unsubscribes":
            self.unsubscribes += total

    @property
    def attempted(self) -> int:
        return self.delivered + self.failed

    @property
    def delivery_rate(self) -> float | None:
        return ratio(self.delivered, self.attempted)

    @property
    def failure_rate(self) -> float | None:
        return ratio(self.failed, self.attempted)

    @property
    def complaint_rate(self) -> float | None:
        return ratio(self.complaints, self.delivered)

    @property
    def open_rate(self) -> float | None:
        return ratio(self.unique_opens, self.delivered)

    @property
    def click_rate(self) -> float | None:
        return ratio(self.unique_clicks, self.delivered)

    @property
    def empty(self) -> bool:
        return not any((self.delivered, self.failed, self.complaints, self.opens, self.clicks, self.unsubscribes))


# --- tables (each chart draws one; the page shows it and the export writes it) ---------------------
@dataclass(frozen=True)
class Cell:
    value: Any  # what the CSV gets
    text: str  # what the page shows
    href: str = ""
    numeric: bool = False
    flag: str = ""  # a CSS hint: "good", "fair", "poor", "diff"


@dataclass
class Table:
    name: str
    title: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    chart: dict[str, Any] | None = None
    note: str = ""

    @property
    def csv_rows(self) -> Iterable[list[Any]]:
        return ([cell.value for cell in row] for row in self.rows)


Linker = Callable[..., str]  # link(type=…, first=…, last=…, domain=…, …) → the drill-down URL


def num(value: int, href: str = "") -> Cell:
    return Cell(value, fmt_int(value), href, numeric=True)


def pct(value: float | None) -> Cell:
    return Cell("" if value is None else round(value * 100, 3), fmt_pct(value), numeric=True)


def score_cell(value: float | None) -> Cell:
    if value is None:
        return Cell("", "–", numeric=True)
    return Cell(round(value, 1), f"{value:.0f}", numeric=True, flag=rating(value).lower())


def day_cell(day: date) -> Cell:
    return Cell(day.isoformat(), day.isoformat())


# --- queries --------------------------------------------------------------------------------------
def report_sums(
    server_ids: Sequence[int], first: date, last: date
) -> tuple[list[tuple[date, str, int, int]], list[tuple[int, str, int, int]]]:
    """The report days summed per (day, kind) over the servers and per (server, kind) over the range: one query.

    Each row is (day or server, kind, total, unique) where a day without a unique count counts its
    total instead (row by row, as `Figures.add` does). At most (days + servers) × kinds rows come
    back instead of one per server, day and kind. Portable SQL (PostgreSQL and SQLite; SQLite gives
    the days back as ISO text).
    """
    if not server_ids:
        return [], []
    table = connection.ops.quote_name(ReportDay._meta.db_table)
    unique = connection.ops.quote_name("unique")
    where = f"WHERE server_id IN ({', '.join(['%s'] * len(server_ids))}) AND day >= %s AND day <= %s"
    sums = f"kind, SUM(total), SUM(COALESCE({unique}, total))"
    sql = (
        f"SELECT NULL, day, {sums} FROM {table} {where} GROUP BY day, kind"
        f" UNION ALL SELECT server_id, NULL, {sums} FROM {table} {where} GROUP BY server_id, kind"
    )
    params: list[Any] = [*server_ids, first, last]
    with connection.cursor() as cursor:
        cursor.execute(sql, params + params)
        rows = cursor.fetchall()
    by_day: list[tuple[date, str, int, int]] = []
    by_server: list[tuple[int, str, int, int]] = []
    for server_id, day, kind, total, unique_or_total in rows:
        if server_id is None:
            day = date.fromisoformat(day) if isinstance(day, str) else day
            by_day.append((day, kind, int(total), int(unique_or_total)))
        else:
            by_server.append((int(server_id), kind, int(total), int(unique_or_total)))
    return by_day, by_server


def pulled_stamp(server_ids: Sequence[int], first: date, last: date) -> tuple[int, datetime | None]:
    """How many report days are stored for the range and when the latest was pulled: one small aggregate."""
    figures = ReportDay.objects.filter(server_id__in=server_ids, day__gte=first, day__lte=last).aggregate(
        n=Count("id"), stamp=Max("pulled_at")
    )
    return int(figures["n"] or 0), figures["stamp"]


def whole_weeks(first: date, last: date) -> tuple[date, date] | None:
    """The Mondays of the first and last whole week (Monday to Sunday) inside [first, last], or None."""
    first_monday = first + timedelta(days=-first.weekday() % 7)
    last_sunday = last - timedelta(days=(last.weekday() + 1) % 7)
    if first_monday > last_sunday:
        return None
    return first_monday, last_sunday - timedelta(days=6)


def top_keys(
    server_ids: Sequence[int], first: date, last: date, pairs: Sequence[tuple[str, str]], *, limit: int = TOP
) -> dict[tuple[str, str], list[tuple[str, int]]]:
    """The `limit` largest keys of each (kind, dimension) over the range, summed across servers: one query.

    Whole weeks inside the range are read from `ReportBreakdownWeek` (one row per server, week and key)
    and only the days of the partial weeks at either edge from `ReportBreakdown`; the two are added up
    per key. A week row is the sum of that week's day rows (kept so by the pull that stores the day),
    so the result is the same as summing the day rows, with about seven times fewer rows to read.
    """
    if not pairs:
        return {}
    if not server_ids:
        return {pair: [] for pair in pairs}
    # Summed per key in a subquery, ranked per (kind, dimension), cut at `limit`: the database returns
    # at most limit × pairs rows however many keys there are. Portable SQL (PostgreSQL and SQLite).
    servers = ", ".join(["%s"] * len(server_ids))
    wanted = " OR ".join(["(kind = %s AND dimension = %s)"] * len(pairs))
    pair_params: list[Any] = []
    for kind, dimension in pairs:
        pair_params += [str(kind), str(dimension)]
    weeks = whole_weeks(first, last)
    spans = [(first, last)]
    if weeks is not None:
        spans = [(first, weeks[0] - timedelta(days=1)), (weeks[1] + timedelta(days=7), last)]
    spans = [(a, b) for a, b in spans if a <= b]
    parts: list[str] = []
    params: list[Any] = []
    if weeks is not None:
        parts.append(
            "SELECT kind, dimension, key, count FROM reporting_reportbreakdownweek"
            f" WHERE server_id IN ({servers}) AND week_start >= %s AND week_start <= %s AND ({wanted})"
        )
        params += [*server_ids, weeks[0], weeks[1], *pair_params]
    for day_first, day_last in spans:
        parts.append(
            "SELECT kind, dimension, key, count FROM reporting_reportbreakdown"
            f" WHERE server_id IN ({servers}) AND day >= %s AND day <= %s AND ({wanted})"
        )
        params += [*server_ids, day_first, day_last, *pair_params]
    sql = (
        "SELECT kind, dimension, key, n, rank FROM ("
        " SELECT kind, dimension, key, n,"
        " ROW_NUMBER() OVER (PARTITION BY kind, dimension ORDER BY n DESC, key) AS rank"
        " FROM (SELECT kind, dimension, key, SUM(count) AS n FROM ("
        + " UNION ALL ".join(parts)
        + ") AS parts GROUP BY kind, dimension, key) AS sums"
        ") AS ranked WHERE rank <= %s ORDER BY kind, dimension, rank"
    )
    params.append(limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    result: dict[tuple[str, str], list[tuple[str, int]]] = {pair: [] for pair in pairs}
    for kind, dimension, key, n, _rank in rows:
        result[(kind, dimension)].append((key, int(n)))
    return result


def weighted_streamscores(server_ids: Sequence[int], first: date, last: date) -> list[tuple[int, date, int, int]]:
    """(server, day, score, delivered + failed that server and day) ordered by day: one query.

    The volumes are summed once for the range and joined to the scores (a hash join, not a lookup
    per score). Portable SQL (PostgreSQL and SQLite; SQLite gives the days back as ISO text).
    """
    if not server_ids:
        return []
    scores = connection.ops.quote_name(StreamScoreDay._meta.db_table)
    days = connection.ops.quote_name(ReportDay._meta.db_table)
    servers = ", ".join(["%s"] * len(server_ids))
    sql = (
        f"SELECT s.server_id, s.day, s.score, COALESCE(v.n, 0) FROM {scores} AS s LEFT JOIN ("
        f" SELECT server_id, day, SUM(total) AS n FROM {days}"
        f" WHERE server_id IN ({servers}) AND day >= %s AND day <= %s AND kind IN (%s, %s)"
        " GROUP BY server_id, day"
        ") AS v ON v.server_id = s.server_id AND v.day = s.day"
        f" WHERE s.server_id IN ({servers}) AND s.day >= %s AND s.day <= %s"
        " ORDER BY s.day, s.server_id"
    )
    params: list[Any] = [
        *server_ids,
        first,
        last,
        str(ReportKind.DELIVERED),
        str(ReportKind.FAILED),
        *server_ids,
        first,
        last,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        (int(server_id), date.fromisoformat(day) if isinstance(day, str) else day, int(score), int(volume))
        for server_id, day, score, volume in rows
    ]


# --- the dashboard ----------------------------------------------------------------------------------
BREAKDOWNS: dict[str, list[tuple[str, str]]] = {
    "overview": [
        (ReportKind.FAILED, ReportDimension.FAILURE_CODE),
        (ReportKind.FAILED, ReportDimension.REASON),
        (ReportKind.DELIVERED, ReportDimension.DOMAIN),
        (ReportKind.DELIVERED, ReportDimension.MAILING),
    ],
    "delivered": [(ReportKind.DELIVERED, ReportDimension.DOMAIN), (ReportKind.DELIVERED, ReportDimension.MAILING)],
    "failed": [
        (ReportKind.FAILED, ReportDimension.FAILURE_CODE),
        (ReportKind.FAILED, ReportDimension.REASON),
        (ReportKind.FAILED, ReportDimension.DOMAIN),
        (ReportKind.FAILED, ReportDimension.MAILING),
    ],
    "complaints": [
        (ReportKind.COMPLAINTS, ReportDimension.DOMAIN),
        (ReportKind.COMPLAINTS, ReportDimension.MAILING),
    ],
    "tracking": [
        (ReportKind.CLICKS, ReportDimension.URL),
        (ReportKind.OPENS, ReportDimension.MAILING),
        (ReportKind.CLICKS, ReportDimension.MAILING),
    ],
    "streamscore": [],
}
# Which tables each page shows, in order.
PAGE_TABLES: dict[str, list[str]] = {
    "overview": ["volume", "rates", "streamscore", "failure_code", "reason", "delivered_domain", "delivered_mailing"],
    "delivered": ["delivered_days", "delivered_domain", "delivered_mailing"],
    "failed": ["failed_days", "failure_code", "reason", "failed_domain", "failed_mailing"],
    "complaints": ["complaints_days", "complaints_domain", "complaints_mailing"],
    "tracking": ["tracking_days", "clicks_url", "opens_mailing", "clicks_mailing"],
    "streamscore": ["streamscore", "streamscore_servers"],
}
COLORS: dict[str, str] = {
    ReportKind.DELIVERED: "ok",
    ReportKind.FAILED: "danger",
    ReportKind.COMPLAINTS: "warn",
    ReportKind.OPENS: "accent",
    ReportKind.CLICKS: "violet",
    ReportKind.UNSUBSCRIBES: "muted",
}
DIMENSION_TITLE: dict[str, str] = {
    ReportDimension.DOMAIN: "Recipient domain",
    ReportDimension.MAILING: "Mailing id",
    ReportDimension.FAILURE_CODE: "Failure code",
    ReportDimension.REASON: "Failure reason",
    ReportDimension.URL: "Clicked URL",
}


@dataclass
class Dashboard:
    page: str
    first: date
    last: date
    totals: Figures
    by_day: dict[date, Figures]
    by_server: dict[int, Figures]
    tables: dict[str, Table]
    has_data: bool
    score: float | None  # the latest (weighted) StreamScore in the range

    def shown(self) -> list[Table]:
        return [self.tables[name] for name in PAGE_TABLES[self.page] if name in self.tables]

    @property
    def score_rating(self) -> str:
        return rating(self.score)


def build(
    *,
    page: str,
    server_ids: Sequence[int],
    server_names: dict[int, str],
    first: date,
    last: date,
    link: Linker,
    cross_server: bool = False,
    cache_scope: str = "",
) -> Dashboard:
    """Every figure and table of one dashboard page, from three queries.

    With `cache_scope` (what the links depend on: the URL namespace and chosen servers) the result
    is cached, keyed by the page, servers, range and a fingerprint of the pulled days (how many
    rows, when last pulled). A pull rewrites a day's totals, breakdowns and StreamScore in one
    transaction and stamps `pulled_at`, so a new pull changes the key; a repeat view of the same
    range then costs one small aggregate query. The TTL only bounds how long an unused entry lingers.
    """
    if page not in PAGE_TABLES:
        raise ValueError(f"Unknown dashboard page {page!r}.")
    key = ""
    if cache_scope:
        stamp = pulled_stamp(server_ids, first, last)
        fingerprint = repr((page, cache_scope, sorted(server_ids), first, last, cross_server, stamp))
        key = "reports:dashboard:v1:" + hashlib.sha256(fingerprint.encode()).hexdigest()
        cached = cache.get(key)
        if isinstance(cached, Dashboard):
            return cached
    board = _build(page, server_ids, server_names, first, last, link, cross_server)
    if key:
        cache.set(key, board, CACHE_SECONDS)
    return board


def _build(
    page: str,
    server_ids: Sequence[int],
    server_names: dict[int, str],
    first: date,
    last: date,
    link: Linker,
    cross_server: bool,
) -> Dashboard:
    days = days_between(first, last)
    by_day: dict[date, Figures] = {d: Figures() for d in days}
    by_server: dict[int, Figures] = {pk: Figures() for pk in server_ids}
    totals = Figures()
    # The database sums the report days per day and per server (a few hundred rows instead of one
    # row per server, day and kind): the sums are the same, the page skips ~10k rows for 20 servers.
    day_rows, server_rows = report_sums(server_ids, first, last)
    for day, kind, total, unique in day_rows:
        by_day[day].add(kind, total, unique)
        totals.add(kind, total, unique)
    for server_id, kind, total, unique in server_rows:
        by_server[server_id].add(kind, total, unique)

    weighted = weighted_streamscores(server_ids, first, last) if page in ("overview", "streamscore") else []
    scores = [(server_id, day, score) for server_id, day, score, _volume in weighted]
    tops = top_keys(server_ids, first, last, BREAKDOWNS[page])

    def drill(kind: str, day_first: date = first, day_last: date = last, **filters: str) -> str:
        return link(type=EVENT_TYPE[kind], first=day_first, last=day_last, **filters)

    # Only the tables this page shows (and exports): a 90-day table is a few hundred cells and links.
    wanted = set(PAGE_TABLES[page]) | ({"servers"} if cross_server and page == "overview" else set())
    tables: dict[str, Table] = {}
    if "volume" in wanted:
        tables["volume"] = _volume_table(days, by_day, drill)
    if "rates" in wanted:
        tables["rates"] = _rates_table(days, by_day)
    for kind in (ReportKind.DELIVERED, ReportKind.FAILED, ReportKind.COMPLAINTS):
        if f"{kind}_days" in wanted:
            tables[f"{kind}_days"] = _kind_days_table(kind, days, by_day, drill)
    if "tracking_days" in wanted:
        tables["tracking_days"] = _tracking_table(days, by_day, drill)
    for (kind, dimension), keys in tops.items():
        top = _top_table(kind, dimension, keys, drill)
        tables[top.name] = top
    daily_scores, latest = _weighted_scores(weighted)
    if "streamscore" in wanted:
        tables["streamscore"] = _streamscore_table(days, daily_scores, cross_server=cross_server)
    if "streamscore_servers" in wanted:
        tables["streamscore_servers"] = _streamscore_servers_table(scores, server_ids, server_names)
    if "servers" in wanted:
        tables["servers"] = _servers_table(server_ids, server_names, by_server, scores, drill)
    return Dashboard(
        page=page,
        first=first,
        last=last,
        totals=totals,
        by_day=by_day,
        by_server=by_server,
        tables=tables,
        has_data=bool(day_rows) or bool(scores),
        score=latest,
    )


def _line(labels: list[str], datasets: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    return {"type": "line", "labels": labels, "datasets": datasets, **options}


def _volume_table(days: list[date], by_day: dict[date, Figures], drill: Callable[..., str]) -> Table:
    kinds = [ReportKind.DELIVERED, ReportKind.FAILED, ReportKind.COMPLAINTS]
    table = Table(
        "volume",
        "Volume by day",
        ["Day (UTC)", "Delivered", "Failed", "Complaints", "Unique opens", "Unique clicks", "Unsubscribes"],
    )
    for d in days:
        f = by_day[d]
        table.rows.append(
            [
                day_cell(d),
                num(f.delivered, drill(ReportKind.DELIVERED, d, d)),
                num(f.failed, drill(ReportKind.FAILED, d, d)),
                num(f.complaints, drill(ReportKind.COMPLAINTS, d, d)),
                num(f.unique_opens, drill(ReportKind.OPENS, d, d)),
                num(f.unique_clicks, drill(ReportKind.CLICKS, d, d)),
                num(f.unsubscribes, drill(ReportKind.UNSUBSCRIBES, d, d)),
            ]
        )
    table.chart = {
        "type": "bar",
        "stacked": True,
        "labels": [d.isoformat() for d in days],
        "datasets": [
            {"label": ReportKind(k).label, "data": [getattr(by_day[d], k) for d in days], "color": COLORS[k]}
            for k in kinds
        ],
    }
    return table


def _rates_table(days: list[date], by_day: dict[date, Figures]) -> Table:
    names = [
        ("delivery_rate", "Delivery rate", "ok"),
        ("failure_rate", "Failure rate", "danger"),
        ("complaint_rate", "Complaint rate", "warn"),
        ("open_rate", "Open rate", "accent"),
        ("click_rate", "Click rate", "violet"),
    ]
    table = Table("rates", "Rates by day", ["Day (UTC)", *(label for _, label, _ in names)])
    for d in days:
        table.rows.append([day_cell(d), *(pct(getattr(by_day[d], attr)) for attr, _, _ in names)])
    table.chart = _line(
        [d.isoformat() for d in days],
        [
            {"label": label, "data": [_pct_point(getattr(by_day[d], attr)) for d in days], "color": color}
            for attr, label, color in names
        ],
        percent=True,
    )
    return table


def _pct_point(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 3)


def _kind_days_table(kind: str, days: list[date], by_day: dict[date, Figures], drill: Callable[..., str]) -> Table:
    rates: dict[str, tuple[str, str]] = {
        ReportKind.DELIVERED: ("delivery_rate", "Delivery rate"),
        ReportKind.FAILED: ("failure_rate", "Failure rate"),
        ReportKind.COMPLAINTS: ("complaint_rate", "Complaint rate"),
    }
    rate_attr, rate_label = rates[kind]
    label = ReportKind(kind).label
    table = Table(f"{kind}_days", f"{label} by day", ["Day (UTC)", label, rate_label])
    for d in days:
        f = by_day[d]
        table.rows.append([day_cell(d), num(getattr(f, kind), drill(kind, d, d)), pct(getattr(f, rate_attr))])
    table.chart = {
        "type": "bar",
        "labels": [d.isoformat() for d in days],
        "datasets": [{"label": label, "data": [getattr(by_day[d], kind) for d in days], "color": COLORS[kind]}],
    }
    return table


def _tracking_table(days: list[date], by_day: dict[date, Figures], drill: Callable[..., str]) -> Table:
    table = Table(
        "tracking_days",
        "Opens, clicks and unsubscribes by day",
        ["Day (UTC)", "Opens", "Unique opens", "Clicks", "Unique clicks", "Unsubscribes", "Open rate", "Click rate"],
    )
    for d in days:
        f = by_day[d]
        table.rows.append(
            [
                day_cell(d),
                num(f.opens, drill(ReportKind.OPENS, d, d)),
                num(f.unique_opens),
                num(f.clicks, drill(ReportKind.CLICKS, d, d)),
                num(f.unique_clicks),
                num(f.unsubscribes, drill(ReportKind.UNSUBSCRIBES, d, d)),
                pct(f.open_rate),
                pct(f.click_rate),
            ]
        )
    table.chart = _line(
        [d.isoformat() for d in days],
        [
            {"label": "Unique opens", "data": [by_day[d].unique_opens for d in days], "color": "accent"},
            {"label": "Unique clicks", "data": [by_day[d].unique_clicks for d in days], "color": "violet"},
            {"label": "Unsubscribes", "data": [by_day[d].unsubscribes for d in days], "color": "muted"},
        ],
    )
    return table


def _top_table(kind: str, dimension: str, keys: list[tuple[str, int]], drill: Callable[..., str]) -> Table:
    label = ReportKind(kind).label
    title = f"Top {DIMENSION_TITLE[dimension].lower()}s"
    if dimension in ("domain", "mailing"):
        title += f" ({label.lower()})"
    name = dimension if kind == ReportKind.FAILED and dimension in ("failure_code", "reason") else f"{kind}_{dimension}"
    table = Table(name, title, [DIMENSION_TITLE[dimension], label, "Share of the top"])
    whole = sum(n for _, n in keys)
    param = DIMENSION_FILTER[dimension]
    for key, n in keys:
        table.rows.append([Cell(key, key or "(none)"), num(n, drill(kind, **{param: key})), pct(ratio(n, whole))])
    table.chart = {
        "type": "bar",
        "horizontal": True,
        "labels": [key[:60] or "(none)" for key, _ in keys],
        "datasets": [{"label": label, "data": [n for _, n in keys], "color": COLORS[kind]}],
    }
    return table


def _weighted_scores(scores: list[tuple[int, date, int, int]]) -> tuple[dict[date, float], float | None]:
    """(server, day, score, volume) rows → the volume-weighted score per day (volume 0 weighs 1)."""
    sums: dict[date, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for _server_id, day, score, volume in scores:
        weight = volume or 1
        sums[day][0] += score * weight
        sums[day][1] += weight
    daily = {day: total / weight for day, (total, weight) in sums.items()}
    latest = daily[max(daily)] if daily else None
    return daily, latest


def _streamscore_table(days: list[date], daily: dict[date, float], *, cross_server: bool) -> Table:
    title = "StreamScore by day" + (" (volume-weighted across servers)" if cross_server else "")
    table = Table("streamscore", title, ["Day (UTC)", "StreamScore", "Rating"])
    for d in days:
        value = daily.get(d)
        table.rows.append([day_cell(d), score_cell(value), Cell(rating(value), rating(value) or "–")])
    table.chart = _line(
        [d.isoformat() for d in days],
        [{"label": "StreamScore", "data": [_round(daily.get(d)) for d in days], "color": "accent"}],
        min=0,
        max=100,
        thresholds=[{"value": GOOD, "label": f"Good ≥ {GOOD}"}, {"value": FAIR, "label": f"Fair ≥ {FAIR}"}],
    )
    table.note = f"Good is {GOOD} or more, Fair {FAIR}–{GOOD - 1}, Poor below {FAIR}."
    return table


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _streamscore_servers_table(
    scores: list[tuple[int, date, int]], server_ids: Sequence[int], names: dict[int, str]
) -> Table:
    latest: dict[int, tuple[date, int]] = {}
    sums: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for server_id, day, value in scores:  # ordered by day
        latest[server_id] = (day, value)
        sums[server_id][0] += value
        sums[server_id][1] += 1
    table = Table(
        "streamscore_servers", "StreamScore per server", ["Server", "Latest day", "Latest", "Rating", "Average"]
    )
    for pk in sorted(server_ids, key=lambda pk: names.get(pk, "").lower()):
        last_day, score = latest.get(pk) or (None, None)
        total, count = sums.get(pk, (0, 0))
        table.rows.append(
            [
                Cell(names.get(pk, str(pk)), names.get(pk, str(pk))),
                Cell(last_day.isoformat() if last_day else "", last_day.isoformat() if last_day else "–"),
                score_cell(score),
                Cell(rating(score), rating(score) or "–"),
                score_cell(total / count if count else None),
            ]
        )
    return table


def _servers_table(
    server_ids: Sequence[int],
    names: dict[int, str],
    by_server: dict[int, Figures],
    scores: list[tuple[int, date, int]],
    drill: Callable[..., str],
) -> Table:
    latest = {server_id: score for server_id, _day, score in scores}
    table = Table(
        "servers",
        "Servers",
        ["Server", "Delivered", "Failed", "Complaints", "Delivery rate", "Complaint rate", "StreamScore"],
    )
    for pk in sorted(server_ids, key=lambda pk: names.get(pk, "").lower()):
        f = by_server[pk]
        table.rows.append(
            [
                Cell(names.get(pk, str(pk)), names.get(pk, str(pk))),
                num(f.delivered, drill(ReportKind.DELIVERED, server=str(pk))),
                num(f.failed, drill(ReportKind.FAILED, server=str(pk))),
                num(f.complaints, drill(ReportKind.COMPLAINTS, server=str(pk))),
                pct(f.delivery_rate),
                pct(f.complaint_rate),
                score_cell(latest.get(pk)),
            ]
        )
    return table


# --- reconciliation -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReconciliationRow:
    day: date
    kind: str
    pulled: int | None
    webhook: int | None

    @property
    def difference(self) -> int | None:
        if self.pulled is None or self.webhook is None:
            return None
        return self.webhook - self.pulled

    @property
    def differs(self) -> bool:
        return bool(self.difference)


def reconciliation(server_ids: Sequence[int], first: date, last: date) -> tuple[list[ReconciliationRow], bool, bool]:
    """Pulled totals against webhook-ingested totals per (day, kind), summed over the servers: two queries.

    Returns (rows, any pulled data, any webhook data). A side with no row for that day and kind is
    None ("not pulled" / "no webhook events"), so a missing pull never reads as a difference.
    """
    pulled: dict[tuple[date, str], int] = defaultdict(int)
    for day, kind, total in (
        ReportDay.objects.filter(server_id__in=server_ids, day__gte=first, day__lte=last)
        .order_by()
        .values("day", "kind")
        .annotate(n=Sum("total"))
        .values_list("day", "kind", "n")
    ):
        pulled[(day, kind)] += int(total)
    webhook: dict[tuple[date, str], int] = defaultdict(int)
    for day, type_, count in (
        EventDayTotal.objects.filter(
            server_id__in=server_ids, day__gte=first, day__lte=last, type__in=list(KIND_OF_EVENT)
        )
        .order_by()
        .values("day", "type")
        .annotate(n=Sum("count"))
        .values_list("day", "type", "n")
    ):
        webhook[(day, KIND_OF_EVENT[type_])] += int(count)
    keys = sorted(set(pulled) | set(webhook), key=lambda k: (k[0], list(EVENT_TYPE).index(k[1])), reverse=False)
    rows = [ReconciliationRow(day, kind, pulled.get((day, kind)), webhook.get((day, kind))) for day, kind in keys]
    rows.sort(key=lambda r: r.day, reverse=True)
    return rows, bool(pulled), bool(webhook)


def reconciliation_table(rows: list[ReconciliationRow], link: Linker) -> Table:
    table = Table(
        "reconciliation",
        "Pulled reports against webhook events",
        ["Day (UTC)", "Kind", "Pulled (SocketLabs)", "Webhook events", "Difference (webhook − pulled)"],
    )
    for row in rows:
        href = link(type=EVENT_TYPE[row.kind], first=row.day, last=row.day)
        diff = row.difference
        table.rows.append(
            [
                day_cell(row.day),
                Cell(row.kind, ReportKind(row.kind).label),
                Cell(
                    "" if row.pulled is None else row.pulled,
                    fmt_int(row.pulled) if row.pulled is not None else "not pulled",
                    numeric=True,
                ),
                Cell(
                    "" if row.webhook is None else row.webhook,
                    fmt_int(row.webhook) if row.webhook is not None else "no events",
                    href if row.webhook else "",
                    numeric=True,
                ),
                Cell(
                    "" if diff is None else diff,
                    "–" if diff is None else f"{diff:+,}" if diff else "0",
                    numeric=True,
                    flag="diff" if diff else "",
                ),
            ]
        )
    return table


# --- drill-down coverage -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Coverage:
    first_day: date | None  # the first UTC day with webhook events for these servers
    days_with_events: int
    days_in_range: int

    @property
    def complete(self) -> bool:
        return self.days_with_events >= self.days_in_range


def coverage(server_ids: Sequence[int], first: date, last: date) -> Coverage:
    """How much of the range webhook events cover, from the small daily tally (one query)."""
    days = (
        EventDayTotal.objects.filter(server_id__in=server_ids, day__gte=first, day__lte=last, count__gt=0)
        .order_by("day")
        .values_list("day", flat=True)
        .distinct()
    )
    found = list(days)
    return Coverage(
        first_day=found[0] if found else None, days_with_events=len(found), days_in_range=(last - first).days + 1
    )
