"""The cross-server report dashboard over 10M events and 90 days, against the naive raw-event aggregation.

What runs (all on 127.0.0.1, one scratch database `<DATABASE_URL name>_bench_dashboard`, dropped at the end):

1. `BENCH_DASHBOARD_SERVERS` servers (default 20) and one user who is a Viewer on all of them.
2. `BENCH_DASHBOARD_EVENTS` webhook events (default 10,000,000) spread over the last 90 UTC days, written
   with one `INSERT … SELECT … FROM generate_series` per million into `reporting_event` (its real
   indexes in place): 70 % delivered, 5 % failed (20 codes, 30 reasons), 1 % complaints, 15 % opens,
   6 % clicks (40 URLs), 1 % unsubscribes, 2 % queued; 200 recipient domains, 50 mailings.
3. The report tables are built from those events with `INSERT … SELECT … GROUP BY` (standing in for
   the nightly pulls): `ReportDay` per server/day/kind (unique opens and clicks by address),
   `ReportBreakdown` for the dimensions the pages show, `StreamScoreDay` from the day's rates; then
   the weekly rollup `ReportBreakdownWeek` by the pulls' own `roll_up_weeks` for every server and week
   (what `store_day` runs after each day it stores).
4. **Mailroom**: the cross-server overview `/reports/?range=90` through the Django test client, signed
   in as that user (the real view, middleware, template and charts' JSON), `ROUNDS` times after a
   warm-up, twice: with the dashboard cache (repeat views between pulls) and with it switched off
   (every request computes the figures from the report tables: the headline figure); p95, and the
   queries one uncached request makes.
5. **Baseline — the naive raw-event aggregation**: the same figures (totals and unique tracking
   counts per day and type, top failure codes, reasons, domains and mailings, per-server totals)
   computed with GROUP BY over `reporting_event` for the same 90 days, `BASELINE_ROUNDS` times.

Where the time went before the weekly rollup (uncached p95 221 ms, median 157 ms): the one top-keys
query (sum per key over every breakdown row of the range, 227k rows for the overview's four tables,
ranked) was about half of an uncached page; fetching the 10,800 report-day rows and adding them up in
Python, a correlated StreamScore weight lookup and building tables the page does not show were most
of the rest. Now the top keys read whole weeks from `ReportBreakdownWeek` plus the edge days from
`ReportBreakdown` (45k rows), the report days are summed per day and per server in SQL (660 rows),
the StreamScore weights come from one hash join, and only the page's own tables are built.

Prints:
  BENCH dashboard_p95 <ms> ms ratio=<dashboard p95 / naive p95> baseline=naive raw-event aggregation …
  BENCH dashboard_cached_p95 <ms> ms ratio=<…> baseline=naive raw-event aggregation …
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
EVENTS = int(os.environ.get("BENCH_DASHBOARD_EVENTS", "10000000"))
SERVERS = int(os.environ.get("BENCH_DASHBOARD_SERVERS", "20"))
ROUNDS = int(os.environ.get("BENCH_DASHBOARD_ROUNDS", "60"))
BASELINE_ROUNDS = int(os.environ.get("BENCH_DASHBOARD_BASELINE_ROUNDS", "3"))
DAYS = 90
CHUNK = 1_000_000


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


# --- data ---------------------------------------------------------------------------------------------
# g → a deterministic event: server by g % 20, type by (g / 20) % 100 (so every server has every type),
# time spread over the 90 days by a multiplicative hash.
EVENT_INSERT = """
INSERT INTO reporting_event (server_id, type, occurred_at, received_at, address, message_id, mailing_id,
                             failure_type, failure_code, reason, url, user_agent, client_ip, extra)
SELECT ids[1 + g %% cardinality(ids)],
       t.type,
       t.at,
       t.at,
       'u' || (g %% 400000) || '@d' || ((g / 7) %% 200) || '.example',
       'msg-' || g,
       'm' || ((g / 3) %% 50),
       CASE WHEN t.type = 'failed' THEN 'permanent' ELSE '' END,
       CASE WHEN t.type = 'failed' THEN 2000 + (g / 11) %% 20 END,
       CASE WHEN t.type = 'failed' THEN 'reason ' || ((g / 13) %% 30) ELSE '' END,
       CASE WHEN t.type = 'click' THEN 'https://shop.example/p/' || ((g / 5) %% 40) ELSE '' END,
       '', '', '{}'::jsonb
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g,
     LATERAL (SELECT %(ids)s::int[] AS ids) AS s,
     LATERAL (
       SELECT CASE
                WHEN (g / 20) %% 100 < 70 THEN 'delivered'
                WHEN (g / 20) %% 100 < 75 THEN 'failed'
                WHEN (g / 20) %% 100 < 76 THEN 'complaint'
                WHEN (g / 20) %% 100 < 91 THEN 'open'
                WHEN (g / 20) %% 100 < 97 THEN 'click'
                WHEN (g / 20) %% 100 < 98 THEN 'unsubscribe'
                ELSE 'queued'
              END AS type,
              %(start)s::timestamptz + ((g * 7919) %% (%(days)s * 86400)) * interval '1 second' AS at
     ) AS t
"""

KIND_CASE = (
    "CASE type WHEN 'delivered' THEN 'delivered' WHEN 'failed' THEN 'failed' WHEN 'complaint' THEN 'complaints'"
    " WHEN 'open' THEN 'opens' WHEN 'click' THEN 'clicks' WHEN 'unsubscribe' THEN 'unsubscribes' END"
)
UTC_DAY = "(occurred_at AT TIME ZONE 'UTC')::date"
REPORT_DAY = f"""
INSERT INTO reporting_reportday (server_id, day, kind, total, "unique", pulled_at)
SELECT server_id, {UTC_DAY}, {KIND_CASE}, count(*),
       CASE WHEN type IN ('open', 'click') THEN count(DISTINCT address) END, now()
FROM reporting_event WHERE type <> 'queued'
GROUP BY server_id, {UTC_DAY}, type
"""
BREAKDOWN_KEYS = {
    "domain": "split_part(address, '@', 2)",
    "mailing": "mailing_id",
    "failure_code": "failure_code::text",
    "reason": "reason",
    "url": "url",
}
BREAKDOWNS = [
    ("delivered", "domain"),
    ("delivered", "mailing"),
    ("failed", "failure_code"),
    ("failed", "reason"),
    ("failed", "domain"),
    ("failed", "mailing"),
    ("complaint", "domain"),
    ("complaint", "mailing"),
    ("click", "url"),
    ("open", "mailing"),
    ("click", "mailing"),
]
STREAMSCORE = """
INSERT INTO reporting_streamscoreday (server_id, day, score, rating, pulled_at)
SELECT server_id, day, s, CASE WHEN s >= 80 THEN 'Good' WHEN s >= 50 THEN 'Fair' ELSE 'Poor' END, now()
FROM (
  SELECT server_id, day,
         GREATEST(0, LEAST(100, round(100
           - 200 * sum(total) FILTER (WHERE kind = 'failed')::numeric
                 / NULLIF(sum(total) FILTER (WHERE kind IN ('delivered', 'failed')), 0)
           - 5000 * COALESCE(sum(total) FILTER (WHERE kind = 'complaints'), 0)::numeric
                 / NULLIF(sum(total) FILTER (WHERE kind = 'delivered'), 0))))::int AS s
  FROM reporting_reportday GROUP BY server_id, day
) AS x WHERE s IS NOT NULL
"""


def breakdown_sql(type_: str, dimension: str) -> str:
    kind = {"complaint": "complaints", "open": "opens", "click": "clicks"}.get(type_, type_)
    key = BREAKDOWN_KEYS[dimension]
    return (
        "INSERT INTO reporting_reportbreakdown (server_id, day, kind, dimension, key, count) "
        f"SELECT server_id, {UTC_DAY}, '{kind}', '{dimension}', {key}, count(*) FROM reporting_event "
        f"WHERE type = '{type_}' AND {key} IS NOT NULL AND {key} <> '' GROUP BY server_id, {UTC_DAY}, {key}"
    )


# --- the naive baseline: the same figures straight from the events -----------------------------------------
NAIVE = [
    # totals and unique tracking counts per day and type, and per server
    "SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, type, count(*), count(DISTINCT address) "
    "FILTER (WHERE type IN ('open', 'click')) FROM reporting_event "
    "WHERE server_id = ANY(%(ids)s) AND occurred_at >= %(start)s AND occurred_at < %(end)s GROUP BY 1, 2",
    "SELECT server_id, type, count(*) FROM reporting_event "
    "WHERE server_id = ANY(%(ids)s) AND occurred_at >= %(start)s AND occurred_at < %(end)s GROUP BY 1, 2",
    # top failure codes, reasons, recipient domains, mailings
    "SELECT failure_code, count(*) FROM reporting_event WHERE server_id = ANY(%(ids)s) AND type = 'failed' "
    "AND occurred_at >= %(start)s AND occurred_at < %(end)s GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
    "SELECT reason, count(*) FROM reporting_event WHERE server_id = ANY(%(ids)s) AND type = 'failed' "
    "AND occurred_at >= %(start)s AND occurred_at < %(end)s GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
    "SELECT split_part(address, '@', 2), count(*) FROM reporting_event WHERE server_id = ANY(%(ids)s) "
    "AND type = 'delivered' AND occurred_at >= %(start)s AND occurred_at < %(end)s GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
    "SELECT mailing_id, count(*) FROM reporting_event WHERE server_id = ANY(%(ids)s) AND type = 'delivered' "
    "AND occurred_at >= %(start)s AND occurred_at < %(end)s GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
]


# --- child: the page ------------------------------------------------------------------------------------
def child_pages() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from accounts.models import User

    user = User.objects.get(email="bench@example.com")
    client = Client()
    client.force_login(user)
    url = "/reports/?range=90"
    for _ in range(3):  # warm-up: templates compiled, connections open, caches warm
        response = client.get(url)
        assert response.status_code == 200, response.status_code
    body = response.content.decode()
    assert 'data-chart="chart-volume"' in body and "No report data yet" not in body
    from reporting import dashboards

    def series() -> list[float]:
        timings = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        return timings

    warm = series()  # repeat views: the board comes from the cache (one query on the report days)

    class NoCache:
        def get(self, key: str) -> None:
            return None

        def set(self, key: str, value: Any, timeout: int) -> None:
            return None

    dashboards.cache = NoCache()  # type: ignore[assignment]
    queries: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        client.get(url)
    cold = series()  # every request computes everything from the report tables
    return {
        "p95": percentile(cold, 0.95),
        "median": statistics.median(cold),
        "warm_p95": percentile(warm, 0.95),
        "warm_median": statistics.median(warm),
        "queries": len(queries),
        "bytes": len(body),
    }


# --- orchestration ----------------------------------------------------------------------------------------
def _setup(env: dict[str, str]) -> list[int]:
    code = f"""
import django, json
django.setup()
from accounts.models import Membership, Server, User
user = User.objects.create_user("bench@example.com", "bench-password-0123")
ids = []
for n in range({SERVERS}):
    server = Server.objects.create(name=f"Bench {{n:02d}}", socketlabs_id=90000 + n)
    Membership.objects.create(user=user, server=server, role="viewer")
    ids.append(server.pk)
print(json.dumps(ids))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _roll_up_weeks(env: dict[str, str]) -> None:
    """The week rows of every server and week, by the same function the pulls run after storing a day."""
    code = """
import django
django.setup()
from django.db import transaction
from reporting.models import ReportBreakdown
from reporting.pulls import roll_up_weeks
days = {}
for server_id, day in ReportBreakdown.objects.order_by().values_list("server_id", "day").distinct():
    days.setdefault(server_id, []).append(day)
for server_id, server_days in sorted(days.items()):
    with transaction.atomic():
        roll_up_weeks(server_id, server_days)
"""
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)


def main() -> None:
    from datetime import UTC, datetime, timedelta

    import psycopg

    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mailroom")
    parts = urlsplit(base_url)
    bench_db = parts.path.lstrip("/") + "_bench_dashboard"
    scheme = "postgresql" if parts.scheme in ("postgres", "postgresql") else parts.scheme
    dsn = urlunsplit((scheme, parts.netloc, "/" + bench_db, "", ""))
    admin_dsn = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    reuse = os.environ.get("BENCH_DASHBOARD_REUSE") == "1"  # keep and reuse the loaded database (tuning)
    if not reuse:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{bench_db}"')
    env = {**os.environ, "DATABASE_URL": urlunsplit((parts.scheme, parts.netloc, "/" + bench_db, "", ""))}
    try:
        if reuse:
            with psycopg.connect(dsn) as conn:
                ids = [r[0] for r in conn.execute("SELECT id FROM accounts_server ORDER BY id").fetchall()]
        else:
            subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
            ids = _setup(env)
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = today - timedelta(days=DAYS - 1)
        end = today + timedelta(days=1)
        with psycopg.connect(dsn, autocommit=True) as conn:
            started = time.perf_counter()
            for lo in range(0, 0 if reuse else EVENTS, CHUNK):
                hi = min(EVENTS, lo + CHUNK) - 1
                conn.execute(EVENT_INSERT, {"lo": lo, "hi": hi, "ids": ids, "start": start, "days": DAYS})
            load_s = time.perf_counter() - started
            print(f"# {EVENTS:,} events over {DAYS} days, {SERVERS} servers: {load_s:.1f} s", file=sys.stderr)
            started = time.perf_counter()
            if not reuse:
                conn.execute("VACUUM ANALYZE reporting_event")
                conn.execute(REPORT_DAY)
                for type_, dimension in BREAKDOWNS:
                    conn.execute(breakdown_sql(type_, dimension))
                conn.execute(STREAMSCORE)
                weeks_started = time.perf_counter()
                _roll_up_weeks(env)
                print(f"# weekly rollup (roll_up_weeks): {time.perf_counter() - weeks_started:.1f} s", file=sys.stderr)
            conn.execute("VACUUM ANALYZE reporting_reportday")
            conn.execute("VACUUM ANALYZE reporting_reportbreakdown")
            conn.execute("VACUUM ANALYZE reporting_streamscoreday")
            conn.execute("VACUUM ANALYZE reporting_reportbreakdownweek")
            sizes = {
                t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                for t in (
                    "reporting_event",
                    "reporting_reportday",
                    "reporting_reportbreakdown",
                    "reporting_reportbreakdownweek",
                )
            }
            print(f"# report tables built in {time.perf_counter() - started:.1f} s: {sizes}", file=sys.stderr)
            naive: list[float] = []
            params = {"ids": ids, "start": start, "end": end}
            for _ in range(BASELINE_ROUNDS):
                began = time.perf_counter()
                for query in NAIVE:
                    conn.execute(query, params).fetchall()
                naive.append((time.perf_counter() - began) * 1000)
        print(f"# naive rounds (ms): {[round(n) for n in naive]}", file=sys.stderr)
        out = subprocess.run(
            [sys.executable, __file__, "pages"], cwd=ROOT, env=env, check=True, capture_output=True, text=True
        )
        page = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"# page {page}", file=sys.stderr)
        naive_p95 = percentile(naive, 0.95)
        print(
            f"BENCH dashboard_p95 {page['p95']:.1f} ms ratio={page['p95'] / naive_p95:.4f} "
            f"baseline=naive raw-event aggregation p95 {naive_p95:,.0f} ms "
            f"({sizes['reporting_event']:,} events, {DAYS} days, {SERVERS} servers; "
            f"{page['queries']} queries per page; median {page['median']:.1f} ms over {ROUNDS} requests; "
            f"target < 150 ms; every request computes the page from the report tables)"
        )
        print(
            f"BENCH dashboard_cached_p95 {page['warm_p95']:.1f} ms ratio={page['warm_p95'] / naive_p95:.4f} "
            f"baseline=naive raw-event aggregation p95 {naive_p95:,.0f} ms (repeat views of the same range "
            f"between pulls, the board from the cache; median {page['warm_median']:.1f} ms)"
        )
    finally:
        if os.environ.get("BENCH_DASHBOARD_KEEP") != "1":
            with psycopg.connect(admin_dsn, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "pages":
        print(json.dumps(child_pages()))
    else:
        main()
