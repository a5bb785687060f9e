"""Suppression lists at scale: loading a 1M-row CSV into the mirror, and checks on a 5M-row mirror.

Everything runs on 127.0.0.1 in a scratch database `<DATABASE_URL name>_bench_suppression`, dropped at
the end. Each figure is a ratio to a baseline measured in the same run on the same database.

1. A deterministic CSV of `BENCH_SUPPRESSION_ROWS` rows (default 1,000,000; seed 42) in the format of
   SocketLabs' `suppressions/download` (serverId, suppressionLastUpdate, reason, emailAddress, source):
   realistic addresses over the big providers and 20,000 company domains, 1.5 % in mixed case.
2. **Baseline — the raw SQL path**, in a fresh process: psycopg `COPY … FROM STDIN (FORMAT csv)` of the
   same file (1 MiB chunks) into a TEMP staging table, then one `INSERT … SELECT lower(trim(email)), … ON
   CONFLICT (server_id, address) DO UPDATE` into Mailroom's indexed mirror table, one transaction, no
   Python per row. Also once with `ORDER BY` in that SELECT (the best hand-written SQL), for reference.
3. **Mailroom's path**, in a fresh process: `mirror.load(server, mirror.download_rows(file), replace=True)`
   — the code a pull runs after streaming the download to disk: parse with `common.csvio`, validate and
   normalise every address in Python, COPY to the stage, one upsert, delete-missing. Peak RSS of that
   process, for 1M rows and for a quarter of them (memory must stay flat as the file grows).
4. A 5M-row mirror over 500 servers (largest ≈ 224k rows), made with `generate_series` in SQL: 10,000
   single checks through `services.check_many` (the API's path; 5,000 hits, 2,500 "on another server",
   2,500 unknown) against the same lookup raw on one autocommit psycopg connection; and 10,000-address
   bulk checks on the largest server against the raw `= ANY` query.
5. Bulk-import validation of a file of 1M copies of one address (the "1M duplicates" bad input).
6. The CSV export of the largest server's list (the page's streamed response) against `COPY … TO STDOUT`.

Prints:
  BENCH suppression_import <rows/s> rows/s ratio=<to raw> baseline=raw COPY+upsert <rows/s> rows/s
  BENCH suppression_import_rss <MB> MB ratio=<1M-row RSS / 250k-row RSS> baseline=250k-row import <MB> MB
  BENCH suppression_check_p99 <ms> ms ratio=<to raw p99> baseline=raw index lookup p99 <ms> ms
  BENCH suppression_bulk_check_10k <ms> ms ratio=<to raw> baseline=raw = ANY query <ms> ms
  BENCH suppression_duplicates_1m <rows/s> rows/s ratio=<to raw COPY> baseline=raw COPY of the file
  BENCH suppression_export <rows/s> rows/s ratio=<to raw COPY TO STDOUT> baseline=raw COPY TO STDOUT
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
ROWS = int(os.environ.get("BENCH_SUPPRESSION_ROWS", "1000000"))
MIRROR_ROWS = int(os.environ.get("BENCH_SUPPRESSION_MIRROR_ROWS", "5000000"))
SEED = 42
PROBES = 10_000
BULK_RUNS = 10

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
    "amir",
    "bea",
    "chen",
    "dana",
    "emil",
    "farah",
    "gus",
    "hana",
    "ivan",
    "jun",
    "kai",
    "lior",
    "maya",
    "nils",
    "olga",
    "pia",
    "raj",
    "sara",
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
    "nguyen",
    "brown",
    "martin",
    "lopez",
    "hansen",
    "kim",
    "sato",
    "ali",
    "cohen",
    "fischer",
    "moreau",
]
PROVIDERS = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "aol.com", "icloud.com", "gmx.de", "web.de"]
REASONS = ["Bounce"] * 12 + ["Unsubscribe"] * 4 + ["Complaint"] * 2 + ["Failure", "CustomerRequest"]
SOURCES = {"Bounce": "bounce", "Unsubscribe": "unsubscribe", "Complaint": "complaint"}


# --- data ----------------------------------------------------------------------------------------
def generate(path: Path, rows: int) -> None:
    """A SocketLabs-style download: unique addresses (case-insensitively), realistic shapes."""
    rng = random.Random(SEED)
    path.parent.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    patterns = ("{f}.{l}", "{f}{l}", "{f0}{l}", "{f}_{l}", "{f}.{l}{n}", "{f}{y}", "{l}.{f}{n}")
    base = 1_700_000_000
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("serverId,suppressionLastUpdate,reason,emailAddress,source\n")
        written = 0
        while written < rows:
            f, last = rng.choice(FIRST), rng.choice(LAST)
            local = rng.choice(patterns).format(
                f=f, l=last, f0=f[0], n=rng.randrange(1000), y=rng.randrange(1950, 2010)
            )
            domain = rng.choice(PROVIDERS) if rng.random() < 0.6 else f"co{rng.randrange(20000)}.example.com"
            address = f"{local}@{domain}"
            if address in seen:
                address = f"{local}.{written}@{domain}"
            seen.add(address)
            if rng.random() < 0.015:
                address = address.capitalize()
            reason = rng.choice(REASONS)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + rng.randrange(60_000_000)))
            out.write(f"17001,{stamp},{reason},{address},{SOURCES.get(reason, 'api')}\n")
            written += 1


def head(path: Path, rows: int, target: Path) -> Path:
    if not target.exists():
        with path.open() as source, target.open("w") as out:
            for index, line in enumerate(source):
                if index > rows:
                    break
                out.write(line)
    return target


# --- children (fresh processes, so RSS and timing are the import's own) ---------------------------
def rss_mb() -> float:
    """Peak RSS of this process since it started.

    VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the forked parent (here the
    benchmark driver that generated the file), which would hide this process's own peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_raw(dsn: str, csv_path: str, server_id: int, sorted_: str) -> dict[str, Any]:
    import psycopg

    order = "ORDER BY 2" if sorted_ == "1" else ""
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SET LOCAL work_mem = '128MB'")
        cur.execute(
            "CREATE TEMP TABLE raw_stage (server_id bigint, last_update text, reason text, email text, source text) "
            "ON COMMIT DROP"
        )
        with cur.copy("COPY raw_stage FROM STDIN (FORMAT csv, HEADER true)") as copy, open(csv_path, "rb") as f:
            while chunk := f.read(1 << 20):
                copy.write(chunk)
        cur.execute(
            f"""
            INSERT INTO suppression_suppression AS m
              (server_id, address, domain, reason, source, first_seen_at, last_update, mirrored_at)
            SELECT %s, lower(trim(email)), split_part(lower(trim(email)), '@', 2), reason, source, now(),
                   last_update::timestamptz, now()
            FROM raw_stage {order}
            ON CONFLICT (server_id, address) DO UPDATE SET reason = EXCLUDED.reason, source = EXCLUDED.source,
              last_update = EXCLUDED.last_update, mirrored_at = EXCLUDED.mirrored_at
            """,
            [server_id],
        )
        inserted = cur.rowcount
        conn.commit()
    return {"seconds": time.perf_counter() - started, "rows": inserted, "rss_mb": rss_mb()}


def child_product(csv_path: str, server_id: int) -> dict[str, Any]:
    import django

    django.setup()
    from django.db import connection

    from suppression import mirror

    connection.ensure_connection()
    started = time.perf_counter()
    stats = mirror.DownloadStats()
    result = mirror.load(server_id, mirror.download_rows(Path(csv_path), stats), replace=True)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": result.rows,
        "added": result.added,
        "skipped": stats.skipped,
        "rss_mb": rss_mb(),
    }


def child_duplicates(csv_path: str, server_id: int) -> dict[str, Any]:
    import django

    django.setup()
    from accounts.models import Server
    from suppression import imports
    from suppression.models import ImportJob, ImportTarget

    job = ImportJob.objects.create(kind="add", filename="dupes.csv", file_path=csv_path)
    job.size_bytes = Path(csv_path).stat().st_size
    job.save()
    ImportTarget.objects.create(job=job, server=Server.objects.get(pk=server_id))
    started = time.perf_counter()
    imports.validate(job.pk)
    seconds = time.perf_counter() - started
    job.refresh_from_db()
    return {
        "seconds": seconds,
        "status": job.status,
        "rows": job.rows_read,
        "unique": job.unique_addresses,
        "duplicates": job.duplicate_rows,
        "rss_mb": rss_mb(),
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def child_checks(dsn: str) -> dict[str, Any]:
    """Single and bulk checks on the 5M-row mirror: Mailroom's code against the raw queries."""
    import django
    import psycopg

    django.setup()
    from accounts.models import Server
    from suppression import services

    rng = random.Random(SEED)
    with psycopg.connect(dsn, autocommit=True) as raw:
        biggest_id, biggest_rows = raw.execute(
            "SELECT server_id, count(*) FROM suppression_suppression GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
        ).fetchone()
        sample = raw.execute(
            "SELECT server_id, address FROM suppression_suppression TABLESAMPLE SYSTEM (1) LIMIT 20000"
        ).fetchall()
        rng.shuffle(sample)
        server_ids = [r[0] for r in raw.execute("SELECT DISTINCT server_id FROM suppression_suppression").fetchall()]
        probes: list[tuple[int, str, bool]] = []
        for sid, address in sample[:5000]:
            probes.append((sid, address, True))
        for sid, address in sample[5000:7500]:
            other = rng.choice([s for s in server_ids[:50] if s != sid])
            probes.append((other, address, False))  # may exist there by chance; verified below
        for index in range(2500):
            probes.append((rng.choice(server_ids), f"nobody{index}@nowhere.example", False))
        rng.shuffle(probes)
        servers = {s.pk: s for s in Server.objects.filter(pk__in={p[0] for p in probes} | {biggest_id})}

        def raw_lookup(sid: int, address: str) -> bool:
            return bool(
                raw.execute(
                    "SELECT EXISTS (SELECT 1 FROM suppression_suppression WHERE server_id = %s AND address = %s)",
                    (sid, address),
                ).fetchone()[0]
            )

        expected = {(sid, a): raw_lookup(sid, a) for sid, a, _ in probes}
        product_times: list[float] = []
        raw_times: list[float] = []
        wrong = 0
        for _ in range(2):  # two passes each, alternating, best p99 kept
            for sid, address, _hit in probes:
                t = time.perf_counter()
                got = raw_lookup(sid, address)
                raw_times.append(time.perf_counter() - t)
                wrong += got != expected[(sid, address)]
            for sid, address, _hit in probes:
                t = time.perf_counter()
                answer = services.check_many(server=servers[sid], addresses=[address])
                product_times.append(time.perf_counter() - t)
                wrong += answer.results[0]["suppressed"] != expected[(sid, address)]
        half = len(probes)
        product_p99 = min(percentile(product_times[:half], 0.99), percentile(product_times[half:], 0.99))
        raw_p99 = min(percentile(raw_times[:half], 0.99), percentile(raw_times[half:], 0.99))

        # Bulk: 10,000 addresses on the largest server, half of them on its list.
        mine = [
            r[0]
            for r in raw.execute(
                "SELECT address FROM suppression_suppression WHERE server_id = %s ORDER BY random() LIMIT 5000",
                (biggest_id,),
            ).fetchall()
        ]
        wanted = mine + [f"stranger{i}@nowhere.example" for i in range(10_000 - len(mine))]
        rng.shuffle(wanted)
        bulk_raw: list[float] = []
        bulk_raw_addresses: list[float] = []
        bulk_product: list[float] = []
        bulk_api: list[float] = []
        for _ in range(BULK_RUNS):
            # The same answer as Mailroom's (reason, source and date of each hit) ...
            t = time.perf_counter()
            hits = raw.execute(
                "SELECT server_id, address, reason, source, last_update FROM suppression_suppression "
                "WHERE server_id = %s AND address = ANY(%s)",
                (biggest_id, wanted),
            ).fetchall()
            bulk_raw.append(time.perf_counter() - t)
            # ... and the bare membership test of limits.md §2, for reference.
            t = time.perf_counter()
            raw.execute(
                "SELECT address FROM suppression_suppression WHERE server_id = %s AND address = ANY(%s)",
                (biggest_id, wanted),
            ).fetchall()
            bulk_raw_addresses.append(time.perf_counter() - t)
            t = time.perf_counter()
            answer = services.check_many(server=servers[biggest_id], addresses=wanted)
            bulk_product.append(time.perf_counter() - t)
            assert answer.suppressed_count == len(hits) == len(mine), (answer.suppressed_count, len(hits))
        # The same through the REST API in process (DRF parsing, permissions, JSON of 10,000 results).
        from django.test import Client

        from accounts.models import ApiToken, User

        user = User.objects.filter(is_superuser=True).first() or User.objects.create_superuser(
            "bench@example.com", "bench-password-0123"
        )
        _, token = ApiToken.issue(user=user, name="bench")
        client = Client()
        body = json.dumps({"addresses": wanted})
        for _ in range(5):
            t = time.perf_counter()
            response = client.post(
                f"/api/v1/servers/{biggest_id}/suppressions/check/",
                body,
                content_type="application/json",
                headers={"Authorization": f"Bearer {token}"},
            )
            bulk_api.append(time.perf_counter() - t)
            assert response.status_code == 200, response.content[:300]
        # The export of the largest server's whole list (R8): the streamed page against COPY TO STDOUT.
        client.force_login(user)
        t = time.perf_counter()
        response = client.get(f"/servers/{biggest_id}/suppressions/export.csv")
        stream = iter(response.streaming_content)
        exported = next(stream)
        first_byte = time.perf_counter() - t
        size = len(exported)
        for chunk in stream:
            size += len(chunk)
        export_seconds = time.perf_counter() - t
        t = time.perf_counter()
        raw_size = 0
        with raw.cursor().copy(
            "COPY (SELECT address, reason, source, last_update, first_seen_at FROM suppression_suppression "
            f"WHERE server_id = {int(biggest_id)} ORDER BY address) TO STDOUT (FORMAT csv)"
        ) as copy:
            for block in copy:
                raw_size += len(block)
        raw_export_seconds = time.perf_counter() - t
    return {
        "export_seconds": export_seconds,
        "export_first_byte": first_byte,
        "export_mb": size / 1e6,
        "raw_export_seconds": raw_export_seconds,
        "product_p99_ms": product_p99 * 1000,
        "product_p50_ms": statistics.median(product_times) * 1000,
        "raw_p99_ms": raw_p99 * 1000,
        "raw_p50_ms": statistics.median(raw_times) * 1000,
        "wrong": wrong,
        "biggest_rows": biggest_rows,
        "bulk_product_ms": statistics.median(bulk_product) * 1000,
        "bulk_raw_ms": statistics.median(bulk_raw) * 1000,
        "bulk_raw_addresses_ms": statistics.median(bulk_raw_addresses) * 1000,
        "bulk_api_ms": statistics.median(bulk_api) * 1000,
    }


# --- orchestration --------------------------------------------------------------------------------
def _child(mode: str, env: dict[str, str], *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, mode, *args], cwd=ROOT, env=env, check=False, capture_output=True, text=True
    )
    if out.returncode:
        raise RuntimeError(f"{mode} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _sql(dsn: str, *statements: str) -> list[Any]:
    import psycopg

    results = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            cursor = conn.execute(statement)
            results.append(cursor.fetchall() if cursor.description else None)
    return results


def _reset(dsn: str) -> None:
    _sql(dsn, "TRUNCATE suppression_suppression", "CHECKPOINT")


def raw_copy_seconds(dsn: str, path: Path) -> float:
    """psycopg COPY of the file into a bare temporary table (the floor for reading it at all)."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE dupes_raw (email text) ON COMMIT DROP")
        with cur.copy("COPY dupes_raw FROM STDIN (FORMAT csv, HEADER true)") as copy, path.open("rb") as f:
            while chunk := f.read(1 << 20):
                copy.write(chunk)
        conn.commit()
    return time.perf_counter() - started


def build_mirror(dsn: str, rows: int, servers: list[int]) -> float:
    """`rows` rows over the servers, skewed (the largest holds ~4.5 %), indexes built after the load."""
    started = time.perf_counter()
    indexes = _sql(
        dsn,
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'suppression_suppression' "
        "AND indexname NOT LIKE '%pkey'",
    )[0]
    pkey = _sql(
        dsn,
        "SELECT conname FROM pg_constraint WHERE conrelid = 'suppression_suppression'::regclass AND contype = 'p'",
    )[0][0][0]
    count = len(servers)
    ids = "ARRAY[" + ",".join(str(s) for s in servers) + "]::bigint[]"
    _sql(
        dsn,
        "TRUNCATE suppression_suppression",
        f"ALTER TABLE suppression_suppression DROP CONSTRAINT {pkey}",
        *(f"DROP INDEX {name}" for name, _ in indexes),
        "SELECT setseed(0.42)",
        f"""
        INSERT INTO suppression_suppression
          (server_id, address, domain, reason, source, first_seen_at, last_update, mirrored_at)
        SELECT ({ids})[1 + floor(power(random(), 2.2) * {count})::int % {count}],
               'u' || i || '.' || substr(md5(i::text), 1, 6) || '@' || d, d,
               (ARRAY['Bounce','Bounce','Bounce','Unsubscribe','Complaint','Failure','CustomerRequest'])[1 + i % 7],
               'api', now(), now() - (i % 700000) * interval '1 minute', now()
        FROM generate_series(1, {rows}) AS i,
             LATERAL (SELECT CASE WHEN i % 5 < 3 THEN (ARRAY['gmail.com','yahoo.com','outlook.com'])[1 + i % 3]
                                  ELSE 'co' || (i % 20000) || '.example.com' END AS d) AS dom
        """,
        "SET maintenance_work_mem = '512MB'",
        f"ALTER TABLE suppression_suppression ADD CONSTRAINT {pkey} PRIMARY KEY (server_id, address)",
        *(definition for _, definition in indexes),
        "VACUUM ANALYZE suppression_suppression",
        "CHECKPOINT",
    )
    return time.perf_counter() - started


def main() -> None:
    import psycopg

    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mailroom")
    parts = urlsplit(base_url)
    bench_db = parts.path.lstrip("/") + "_bench_suppression"
    dsn = urlunsplit(("postgresql", parts.netloc, "/" + bench_db, "", ""))
    admin_dsn = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    data_dir = ROOT / "var" / "bench"
    csv_path = data_dir / f"suppressions_{ROWS}.csv"
    if not csv_path.exists():
        started = time.perf_counter()
        generate(csv_path, ROWS)
        print(
            f"# generated {csv_path.name} ({csv_path.stat().st_size / 1e6:.1f} MB) in "
            f"{time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
    quarter = head(csv_path, ROWS // 4, data_dir / f"suppressions_{ROWS // 4}.csv")
    dupes = data_dir / f"suppression_duplicates_{ROWS}.csv"
    if not dupes.exists():
        dupes.write_text("email\n" + "Same.Person@Example.com\n" * ROWS)
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{bench_db}"')
    env = {
        **os.environ,
        "DATABASE_URL": urlunsplit((parts.scheme, parts.netloc, "/" + bench_db, "", "")),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "MEDIA_ROOT": str(data_dir / "media"),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("CELERY_BROKER_URL", None)  # nothing is enqueued here
    # Production settings: DEBUG off (Django then does not record every query), no HTTPS redirect in process.
    from cryptography.fernet import Fernet

    env.update(
        DEBUG="false",
        SECRET_KEY="bench-only-" + "k" * 50,
        MAILROOM_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        SECURE_SSL_REDIRECT="false",
    )
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        _sql(
            dsn,
            "INSERT INTO accounts_server (name, socketlabs_id, api_url, inject_url, marketing_url, time_zone, "
            "api_key, injection_key, marketing_key, status, status_message, created_at) "
            "SELECT 'Bench ' || i, 17000 + i, '', '', '', 'UTC', '', '', '', 'unknown', '', now() "
            "FROM generate_series(1, 500) i",
        )
        servers = [row[0] for row in _sql(dsn, "SELECT id FROM accounts_server ORDER BY id")[0]]
        target = servers[0]

        # 1. Import 1M rows into the mirror: raw, Mailroom, raw, Mailroom (best of each).
        raws, products = [], []
        for round_ in range(2):
            _reset(dsn)
            raws.append(_child("raw", env, dsn, str(csv_path), str(target), "0"))
            print(f"# round {round_ + 1}: raw {raws[-1]}", file=sys.stderr)
            _reset(dsn)
            products.append(_child("product", env, str(csv_path), str(target)))
            print(f"# round {round_ + 1}: mailroom {products[-1]}", file=sys.stderr)
        _reset(dsn)
        raw_sorted = _child("raw", env, dsn, str(csv_path), str(target), "1")
        print(f"# raw with ORDER BY: {raw_sorted}", file=sys.stderr)
        _reset(dsn)
        small = _child("product", env, str(quarter), str(target))
        print(f"# mailroom, {ROWS // 4:,} rows: {small}", file=sys.stderr)
        raw = min(raws, key=lambda r: r["seconds"])
        product = min(products, key=lambda r: r["seconds"])
        assert product["rows"] == ROWS and product["added"] == ROWS and raw["rows"] == ROWS, (product, raw)
        raw_rate, rate, sorted_rate = ROWS / raw["seconds"], ROWS / product["seconds"], ROWS / raw_sorted["seconds"]
        rss = max(p["rss_mb"] for p in products)
        print(
            f"BENCH suppression_import {rate:,.0f} rows/s ratio={rate / raw_rate:.2f} baseline=raw COPY+upsert "
            f"{raw_rate:,.0f} rows/s ({ROWS:,} rows; mailroom {product['seconds']:.1f} s, raw {raw['seconds']:.1f} s)"
        )
        print(
            f"BENCH suppression_import_vs_sorted_sql {rate:,.0f} rows/s ratio={rate / sorted_rate:.2f} "
            f"baseline=raw COPY+upsert with ORDER BY {sorted_rate:,.0f} rows/s ({raw_sorted['seconds']:.1f} s)"
        )
        print(
            f"BENCH suppression_import_rss {rss:.0f} MB ratio={rss / small['rss_mb']:.2f} "
            f"baseline={ROWS // 4:,}-row import {small['rss_mb']:.0f} MB (peak RSS of the import process)"
        )

        # 2. Bulk-import validation of 1M copies of one address.
        _reset(dsn)
        copy = data_dir / "media" / "dupes-copy.csv"
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(dupes.read_bytes())
        raw_copy = raw_copy_seconds(dsn, dupes)
        dup = _child("dupes", env, str(copy), str(target))
        assert dup["status"] == "ready" and dup["unique"] == 1 and dup["duplicates"] == ROWS - 1, dup
        print(
            f"BENCH suppression_duplicates_1m {ROWS / dup['seconds']:,.0f} rows/s "
            f"ratio={raw_copy / dup['seconds']:.2f} baseline=raw psycopg COPY of the file "
            f"{ROWS / raw_copy:,.0f} rows/s "
            f"(validate + dedupe + diff {dup['seconds']:.1f} s, RSS {dup['rss_mb']:.0f} MB)"
        )

        if os.environ.get("BENCH_SUPPRESSION_SKIP_CHECKS"):
            return
        # 3. Checks on a 5M-row mirror.
        built = build_mirror(dsn, MIRROR_ROWS, servers)
        print(f"# built the {MIRROR_ROWS:,}-row mirror in {built:.1f} s", file=sys.stderr)
        checks = _child("checks", env, dsn)
        print(f"# checks {checks}", file=sys.stderr)
        assert checks["wrong"] == 0, checks
        print(
            f"BENCH suppression_check_p99 {checks['product_p99_ms']:.3f} ms "
            f"ratio={checks['product_p99_ms'] / checks['raw_p99_ms']:.2f} baseline=raw index lookup p99 "
            f"{checks['raw_p99_ms']:.3f} ms ({MIRROR_ROWS:,}-row mirror, {PROBES:,} probes; "
            f"p50 {checks['product_p50_ms']:.3f} vs {checks['raw_p50_ms']:.3f} ms)"
        )
        print(
            f"BENCH suppression_bulk_check_10k {checks['bulk_product_ms']:.1f} ms "
            f"ratio={checks['bulk_product_ms'] / checks['bulk_raw_ms']:.2f} baseline=raw = ANY query with the same "
            f"columns {checks['bulk_raw_ms']:.1f} ms (addresses only: {checks['bulk_raw_addresses_ms']:.1f} ms; "
            f"server with {checks['biggest_rows']:,} rows; through the REST API in process "
            f"{checks['bulk_api_ms']:.1f} ms)"
        )
        rate, raw_rate = (
            checks["biggest_rows"] / checks["export_seconds"],
            checks["biggest_rows"] / checks["raw_export_seconds"],
        )
        print(
            f"BENCH suppression_export {rate:,.0f} rows/s ratio={rate / raw_rate:.2f} baseline=raw COPY TO STDOUT "
            f"{raw_rate:,.0f} rows/s ({checks['biggest_rows']:,} rows, {checks['export_mb']:.1f} MB streamed; "
            f"first byte after {checks['export_first_byte'] * 1000:.0f} ms)"
        )
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')


if __name__ == "__main__" and len(sys.argv) > 1:
    sys.path.insert(0, str(ROOT))
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "raw":
        result = child_raw(args[0], args[1], int(args[2]), args[3])
    elif mode == "product":
        result = child_product(args[0], int(args[1]))
    elif mode == "dupes":
        result = child_duplicates(args[0], int(args[1]))
    elif mode == "checks":
        result = child_checks(args[0])
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(result))
