"""Contacts at a million: the CSV import against the raw SQL path, then the contacts page and a segment count.

What runs (all on 127.0.0.1, one scratch database `<DATABASE_URL name>_bench_contacts`, dropped at the end):

1. A deterministic CSV of `BENCH_CONTACTS_ROWS` rows (default 1,000,000; seed 42) with e-mail, first and
   last name and five custom fields (city text, plan choice, signup_date date, score number, newsletter
   yes/no), 1.5 % of addresses in mixed case, some cells empty. Written under var/bench/ once.
2. **Baseline — the raw SQL path**, in a fresh process: psycopg `COPY … FROM STDIN (FORMAT csv)` of the
   same file (1 MiB chunks) into a TEMP staging table with typed columns, then one
   `INSERT … SELECT lower(email), …, jsonb_strip_nulls(jsonb_build_object(…)) … ON CONFLICT (server_id,
   email) DO UPDATE SET …, custom = contact.custom || excluded.custom` into Mailroom's own contacts table
   (its primary key, unique (server_id, email) and GIN index), one transaction, no Python per row.
3. The table is emptied and CHECKPOINTed; then **Mailroom's import**, in a fresh process (steps 2 and 3
   are repeated `BENCH_CONTACTS_ROUNDS` times, default 2, and the best of each is compared):
   `marketing.imports.run(job)` — the code the Celery task runs — on a job made by the upload service
   with the suggested mapping: claim, stream + validate every row in Python, COPY to the stage,
   duplicate check, upsert, report, recount, audit. Timed from claim to the end; peak RSS of that process.
4. With the million contacts in place: the contacts page (Django test client, the real view, signed in)
   with filters — status, a choice, a number range, a search prefix, a list — over first and later keyset
   pages, 60 requests: p95 against the p95 of the same filtered keyset query run raw; and a
   three-condition segment count through `services.contacts_matching(...).count()` against the same
   count in hand-written SQL.

Prints:
  BENCH contacts_import <rows/s> rows/s ratio=<to raw> baseline=raw COPY+upsert <rows/s> rows/s
  BENCH contacts_import_rss <MB> MB ratio=<to 250 MB target> baseline=target 250 MB
  BENCH contacts_page_p95 <ms> ms ratio=<to raw query p95> baseline=raw keyset query p95 <ms> ms
  BENCH segment_count <ms> ms ratio=<to raw SQL count> baseline=raw SQL count <ms> ms
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
ROWS = int(os.environ.get("BENCH_CONTACTS_ROWS", "1000000"))
ROUNDS = int(os.environ.get("BENCH_CONTACTS_ROUNDS", "2"))
SEED = 42
PAGE_REQUESTS = 60

FIRST = [
    "ann",
    "bob",
    "carla",
    "dmitri",
    "eva",
    "femi",
    "gita",
    "hiro",
    "ines",
    "jack",
    "kofi",
    "lena",
    "mateo",
    "nia",
    "omar",
    "petra",
    "quinn",
    "rosa",
    "sven",
    "tara",
    "ugo",
    "vera",
    "wim",
    "xia",
    "yusuf",
    "zoe",
]
LAST = [
    "lee",
    "smith",
    "garcia",
    "muller",
    "rossi",
    "kowalski",
    "novak",
    "silva",
    "tanaka",
    "okafor",
    "dubois",
    "jensen",
    "berg",
    "costa",
    "ivanova",
    "wong",
    "khan",
    "patel",
    "meyer",
]
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "web.de", "example.org", "mail.example.net"]
CITIES = [
    "Berlin",
    "Paris",
    "Lisbon",
    "Madrid",
    "Rome",
    "Oslo",
    "Lagos",
    "Tokyo",
    "Austin",
    "Lima",
    "Cairo",
    "Delhi",
    "Quito",
    "Perth",
]
PLANS = ["free", "pro", "team", "enterprise"]


# --- the data ---------------------------------------------------------------------------------
def company_domain(rng: random.Random) -> str:
    return f"co{rng.randrange(20000)}.example.com"


def generate(path: Path, rows: int) -> None:
    """A realistic, deterministic file: unique addresses (case-insensitively), typed custom values."""
    rng = random.Random(SEED)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as out:
        out.write("email,first_name,last_name,city,plan,signup_date,score,newsletter\n")
        lines = []
        for n in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            domain = rng.choice(DOMAINS) if rng.random() < 0.7 else company_domain(rng)
            style = n % 4
            local = (
                f"{first}.{last}{n}"
                if style == 0
                else f"{first[0]}{last}{n}"
                if style == 1
                else f"{first}_{last}.{n}"
                if style == 2
                else f"{last}.{first}{n}"
            )
            email = f"{local}@{domain}"
            if rng.random() < 0.015:
                email = email.title()
            city = rng.choice(CITIES) if rng.random() > 0.1 else ""
            plan = rng.choice(PLANS)
            day = f"20{rng.randrange(15, 25)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
            score = str(rng.randrange(0, 1000)) if rng.random() > 0.15 else ""
            newsletter = ("yes", "no")[rng.random() < 0.4] if rng.random() > 0.2 else ""
            lines.append(f"{email},{first.title()},{last.title()},{city},{plan},{day},{score},{newsletter}\n")
            if len(lines) >= 10000:
                out.writelines(lines)
                lines = []
        out.writelines(lines)
    tmp.replace(path)


# --- the raw SQL path (child process) ------------------------------------------------------------
RAW_UPSERT = """
INSERT INTO marketing_contact AS c
  (server_id, email, first_name, last_name, status, custom, created_at, updated_at, created_via)
SELECT %(server)s, lower(s.email), COALESCE(s.first_name, ''), COALESCE(s.last_name, ''), 'subscribed',
       jsonb_strip_nulls(jsonb_build_object('city', s.city, 'plan', s.plan, 'signup_date', s.signup_date,
                                            'score', s.score, 'newsletter', s.newsletter)),
       now(), now(), 'import'
FROM raw_stage s
ON CONFLICT (server_id, email) DO UPDATE SET
  first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
  custom = c.custom || EXCLUDED.custom, updated_at = EXCLUDED.updated_at
"""


def child_raw(dsn: str, csv_path: str, server_id: int) -> dict[str, Any]:
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            'CREATE TEMPORARY TABLE raw_stage (email text COLLATE "C", first_name text, last_name text, city text, '
            "plan text, signup_date date, score numeric, newsletter boolean) ON COMMIT DROP"
        )
        with open(csv_path, "rb") as src, cur.copy("COPY raw_stage FROM STDIN (FORMAT csv, HEADER true)") as copy:
            while chunk := src.read(1 << 20):
                copy.write(chunk)
        cur.execute(RAW_UPSERT, {"server": server_id})
        written = cur.rowcount
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "rows": written, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


# --- Mailroom's import (child process) ------------------------------------------------------------
def child_product(csv_path: str, server_id: int) -> dict[str, Any]:
    import django

    django.setup()
    from django.core.files import File

    from accounts.models import Server, User
    from marketing import imports
    from marketing.models import Contact

    server = Server.objects.get(pk=server_id)
    user = User.objects.get(email="bench@example.com")
    with open(csv_path, "rb") as handle:
        job = imports.create_job(server=server, actor=user, upload=File(handle, name="contacts_1m.csv"))
    imports.queue(
        job=job,
        actor=user,
        update_existing=True,
        skip_invalid=False,
        new_status="subscribed",
        list_ids=[],
        create_fields=False,
    )
    started = time.perf_counter()
    job = imports.run(job.pk)
    elapsed = time.perf_counter() - started
    assert job is not None
    count = Contact.objects.filter(server=server).count()
    imports.job_path(job).unlink(missing_ok=True)
    return {
        "seconds": elapsed,
        "rows": job.created_count + job.updated_count + job.unchanged_count,
        "status": job.status,
        "error": job.error,
        "invalid": job.invalid_count,
        "contacts": count,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# --- pages and counts (child process) ---------------------------------------------------------------
def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def child_pages(dsn: str, server_id: int, list_id: int) -> dict[str, Any]:
    import django

    django.setup()
    import psycopg
    from django.test import Client
    from django.urls import reverse

    from accounts.models import Server, User
    from marketing import services

    server = Server.objects.get(pk=server_id)
    user = User.objects.get(email="bench@example.com")
    client = Client()
    client.force_login(user)
    base = reverse("marketing:contacts", args=[server_id])
    filters: list[dict[str, str]] = [
        {"status": "subscribed"},
        {"status": "subscribed", "match": "all", "c-0-field": "custom.plan", "c-0-op": "eq", "c-0-value": "pro"},
        {
            "match": "all",
            "c-0-field": "custom.score",
            "c-0-op": "gte",
            "c-0-value": "500",
            "c-1-field": "custom.city",
            "c-1-op": "eq",
            "c-1-value": "Oslo",
        },
        {"q": "ann."},
        {"q": "zoe", "status": "subscribed"},
        {"status": "subscribed", "c-0-field": "first_name", "c-0-op": "eq", "c-0-value": "Petra"},
        {"list": str(list_id)},
        {
            "match": "any",
            "c-0-field": "custom.plan",
            "c-0-op": "eq",
            "c-0-value": "team",
            "c-1-field": "custom.newsletter",
            "c-1-op": "true",
        },
    ]
    timings: list[float] = []
    statuses: dict[int, int] = {}
    for round_ in range(PAGE_REQUESTS // len(filters) + 1):
        for params in filters:
            query = dict(params)
            started = time.perf_counter()
            response = client.get(base, query)
            if (
                round_ % 2 == 1
                and response.status_code == 200
                and response.context
                and response.context.get("next_after")
            ):
                # A later page: follow the keyset cursor once.
                response = client.get(base, {**query, "after": response.context["next_after"]})
            timings.append((time.perf_counter() - started) * 1000)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if len(timings) >= PAGE_REQUESTS:
                break
        if len(timings) >= PAGE_REQUESTS:
            break
    # The raw baseline: the same kind of filtered keyset page query, by hand, over psycopg.
    raw_queries = [
        (
            "SELECT id, email, first_name, last_name, status, custom FROM marketing_contact WHERE server_id = %s "
            "AND status = 'subscribed' ORDER BY email LIMIT 51",
            [server_id],
        ),
        (
            "SELECT id, email, first_name, last_name, status, custom FROM marketing_contact WHERE server_id = %s "
            "AND status = 'subscribed' AND custom @> '{\"plan\": \"pro\"}' ORDER BY email LIMIT 51",
            [server_id],
        ),
        (
            "SELECT id, email, first_name, last_name, status, custom FROM marketing_contact WHERE server_id = %s "
            "AND (custom->>'score')::float8 >= 500 AND upper(custom->>'city') = upper('Oslo') ORDER BY email LIMIT 51",
            [server_id],
        ),
        (
            "SELECT id, email, first_name, last_name, status, custom FROM marketing_contact WHERE server_id = %s "
            "AND email LIKE 'ann.%%' ORDER BY email LIMIT 51",
            [server_id],
        ),
        (
            "SELECT id, email, first_name, last_name, status, custom FROM marketing_contact c WHERE server_id = %s "
            "AND EXISTS (SELECT 1 FROM marketing_membership m WHERE m.contact_list_id = %s AND m.contact_id = c.id) "
            "ORDER BY email LIMIT 51",
            [server_id, list_id],
        ),
    ]
    raw_timings: list[float] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(PAGE_REQUESTS // len(raw_queries) + 1):
            for query, params in raw_queries:
                started = time.perf_counter()
                conn.execute(query, params).fetchall()
                raw_timings.append((time.perf_counter() - started) * 1000)
        # The segment count: plan is pro AND score >= 500 AND signed up after 2020-01-01.
        definition = {
            "match": "all",
            "conditions": [
                {"field": "custom.plan", "op": "eq", "value": "pro"},
                {"field": "custom.score", "op": "gte", "value": 500},
                {"field": "custom.signup_date", "op": "after", "value": "2020-01-01"},
            ],
        }
        from marketing.segments import validate

        clean = validate(definition, services.segment_fields(server))
        counts, count_timings, raw_count_timings = set(), [], []
        raw_count = (
            'SELECT count(*) FROM marketing_contact WHERE server_id = %s AND custom @> \'{"plan": "pro"}\' '
            "AND (custom->>'score')::float8 >= 500 AND (custom->>'signup_date')::date > '2020-01-01'"
        )
        for _ in range(5):
            started = time.perf_counter()
            counts.add(services.contacts_matching(server, clean).count())
            count_timings.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            counts.add(conn.execute(raw_count, [server_id]).fetchone()[0])
            raw_count_timings.append((time.perf_counter() - started) * 1000)
    return {
        "page_p95": percentile(timings, 0.95),
        "page_p50": percentile(timings, 0.5),
        "statuses": statuses,
        "raw_p95": percentile(raw_timings, 0.95),
        "count_ms": statistics.median(count_timings),
        "raw_count_ms": statistics.median(raw_count_timings),
        "counts": sorted(counts),
    }


# --- orchestration --------------------------------------------------------------------------------
def _child(mode: str, env: dict[str, str], *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, mode, *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _setup(env: dict[str, str]) -> dict[str, int]:
    code = """
import django, json
django.setup()
from accounts.models import Server, User, Membership
from marketing import services
from marketing.models import FieldType
user = User.objects.create_user("bench@example.com", "bench-password-0123")
server = Server.objects.create(name="Bench", socketlabs_id=99001)
Membership.objects.create(user=user, server=server, role="admin")
services.create_field(server=server, actor=user, label="city", type=FieldType.TEXT)
plans = ["free", "pro", "team", "enterprise"]
services.create_field(server=server, actor=user, label="plan", type=FieldType.CHOICE, choices=plans)
services.create_field(server=server, actor=user, label="signup_date", type=FieldType.DATE)
services.create_field(server=server, actor=user, label="score", type=FieldType.NUMBER)
services.create_field(server=server, actor=user, label="newsletter", type=FieldType.BOOLEAN)
lst = services.create_list(server=server, actor=user, name="Newsletter")
print(json.dumps({"server": server.pk, "list": lst.pk}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _sql(dsn: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def _reset(dsn: str) -> None:
    _sql(
        dsn,
        "TRUNCATE marketing_membership, marketing_contacthistory, marketing_remotechange, marketing_contact",
        "VACUUM ANALYZE marketing_contact",
        "CHECKPOINT",
    )


def main() -> None:
    import psycopg

    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mailroom")
    parts = urlsplit(base_url)
    bench_db = parts.path.lstrip("/") + "_bench_contacts"
    dsn = urlunsplit(
        (
            parts.scheme.replace("postgres", "postgresql", 1) if parts.scheme == "postgres" else parts.scheme,
            parts.netloc,
            "/" + bench_db,
            "",
            "",
        )
    )
    admin_dsn = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    csv_path = ROOT / "var" / "bench" / f"contacts_{ROWS}.csv"
    if not csv_path.exists():
        started = time.perf_counter()
        generate(csv_path, ROWS)
        print(
            f"# generated {csv_path.name} ({csv_path.stat().st_size / 1e6:.1f} MB) "
            f"in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{bench_db}"')
    env = {
        **os.environ,
        "DATABASE_URL": urlunsplit((parts.scheme, parts.netloc, "/" + bench_db, "", "")),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "MEDIA_ROOT": str(ROOT / "var" / "bench" / "media"),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        ids = _setup(env)
        raws, products = [], []
        for round_ in range(ROUNDS):
            _reset(dsn)
            raws.append(_child("raw", env, dsn, str(csv_path), str(ids["server"])))
            print(f"# round {round_ + 1}: raw {raws[-1]}", file=sys.stderr)
            _reset(dsn)
            products.append(_child("product", env, str(csv_path), str(ids["server"])))
            print(f"# round {round_ + 1}: mailroom {products[-1]}", file=sys.stderr)
        raw = min(raws, key=lambda r: r["seconds"])
        product = min(products, key=lambda r: r["seconds"])
        assert product["status"] == "done" and product["contacts"] == ROWS, product
        raw_rate, rate = ROWS / raw["seconds"], ROWS / product["seconds"]
        rss = max(p["rss_mb"] for p in products)
        # Rounds run raw then Mailroom back to back; the machine is shared, so each pair is also shown.
        per_round = ", ".join(f"{r['seconds'] / p['seconds']:.2f}" for r, p in zip(raws, products, strict=True))
        print(
            f"BENCH contacts_import {rate:,.0f} rows/s ratio={rate / raw_rate:.2f} "
            f"baseline=raw COPY+upsert {raw_rate:,.0f} rows/s ({ROWS:,} rows x 5 custom fields; "
            f"mailroom {product['seconds']:.1f} s, raw {raw['seconds']:.1f} s, best of {ROUNDS}; "
            f"ratio per round {per_round})"
        )
        print(
            f"BENCH contacts_import_rss {rss:.0f} MB ratio={rss / 250:.2f} "
            "baseline=target 250 MB (peak RSS of the import process)"
        )
        # A list holding a third of the contacts, for the list filter.
        _sql(
            dsn,
            f"INSERT INTO marketing_membership (contact_list_id, contact_id, added_at, added_via) "
            f"SELECT {ids['list']}, id, now(), 'bulk' FROM marketing_contact WHERE id % 3 = 0",
            "VACUUM ANALYZE marketing_contact",
            "VACUUM ANALYZE marketing_membership",
        )
        pages = _child("pages", env, dsn, str(ids["server"]), str(ids["list"]))
        print(f"# pages {pages}", file=sys.stderr)
        print(
            f"BENCH contacts_page_p95 {pages['page_p95']:.1f} ms ratio={pages['page_p95'] / pages['raw_p95']:.1f} "
            f"baseline=raw keyset query p95 {pages['raw_p95']:.1f} ms (target < 200 ms; {ROWS:,} contacts, filters)"
        )
        print(
            f"BENCH segment_count {pages['count_ms']:.1f} ms ratio={pages['count_ms'] / pages['raw_count_ms']:.2f} "
            f"baseline=raw SQL count {pages['raw_count_ms']:.1f} ms (3 conditions, target < 500 ms)"
        )
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "raw":
        print(json.dumps(child_raw(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
    elif len(sys.argv) > 1 and sys.argv[1] == "product":
        print(json.dumps(child_product(sys.argv[2], int(sys.argv[3]))))
    elif len(sys.argv) > 1 and sys.argv[1] == "pages":
        print(json.dumps(child_pages(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    else:
        main()
