"""Webhook ingest over HTTP: Mailroom's receiver under gunicorn against two baselines in the same run.

What runs (all on 127.0.0.1, bounded in count and time):
- a scratch PostgreSQL database `<DATABASE_URL name>_bench_webhook`, migrated, dropped at the end;
- three gunicorn servers in turn, each `-w 5 -k sync` (limits.md §3), each sent the same load:
  1. Mailroom (`config.wsgi`, production settings: DEBUG off, full middleware, persistent connections),
     to a real event endpoint: verify the secret, store the raw event + request log, answer 200;
  2. a bare Django view (startproject middleware; Mailroom's connection settings: CONN_MAX_AGE and
     CONN_HEALTH_CHECKS, the latter off with BENCH_HEALTH_CHECKS=false) that parses the JSON and does
     one INSERT … ON CONFLICT DO NOTHING into a copy of Mailroom's inbox table (the issue's baseline);
  3. a bare WSGI app doing the same parse + INSERT with psycopg (limits.md's baseline).
- a threaded client: 8 senders, 5,000 events (~600 bytes, 10 % exact duplicates), after 200 warm-up,
  sent in 10 rounds that alternate between the three servers; ratios are the median of per-round
  ratios, so load from other processes on the machine hits both sides alike.

Prints:
  BENCH webhook_ingest <events/s> events/s ratio=<to bare Django> baseline=<…>
  BENCH webhook_ingest_p99 <ms> ms ratio=<to bare Django p99> baseline=<…>
  BENCH webhook_ingest_vs_wsgi <events/s> events/s ratio=<to bare WSGI> baseline=<…>
  BENCH webhook_process <events/s> events/s ratio=<to ingest> baseline=<…>
and checks that every request got 200 and the inbox holds exactly the unique events.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
SENDERS = 8
EVENTS = 5000
DUPLICATE_SHARE = 0.10
WARMUP = 200
WORKERS = 5
ROUNDS = 10
SECRET = "bench-secret-key-0123456789abcdef"
TIME_LIMIT_S = 120  # per load run; the whole benchmark stays well under five minutes


# --- The baselines (loaded by gunicorn from this file) ------------------------------------------

# Each baseline has its own copy of Mailroom's inbox table (same columns and indexes, no foreign keys).
BASELINE_SQL = (
    "INSERT INTO {table} (endpoint_id, server_id, dedup_key, payload, content_type, received_at, attempts, error)"
    " VALUES (NULL, %s, %s, %s::jsonb, 'json', now(), 0, '') ON CONFLICT (dedup_key) DO NOTHING"
)
WSGI_SQL = BASELINE_SQL.format(table="bench_inbox_wsgi")
DJANGO_SQL = BASELINE_SQL.format(table="bench_inbox_django")
_local = threading.local()


def _baseline_params(body: bytes) -> list[Any]:
    data = json.loads(body)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return [1, hashlib.sha256(text.encode()).hexdigest(), text]


def bare_wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """No framework: parse the JSON and INSERT with one autocommit psycopg connection per worker."""
    import psycopg

    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = psycopg.connect(os.environ["BENCH_DSN"], autocommit=True)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    try:
        params = _baseline_params(body)
    except ValueError:
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"bad json\n"]
    conn.execute(WSGI_SQL, params)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def _bare_django_view(request: Any) -> Any:
    from django.db import connection
    from django.http import HttpResponse, HttpResponseBadRequest

    try:
        params = _baseline_params(request.body)
    except ValueError:
        return HttpResponseBadRequest("bad json")
    with connection.cursor() as cursor:
        cursor.execute(DJANGO_SQL, params)
    return HttpResponse("ok", content_type="text/plain")


def _urlpatterns() -> list[Any]:
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt

    return [path("hook/", csrf_exempt(_bare_django_view))]


def __getattr__(name: str) -> Any:
    # ROOT_URLCONF points here; build the patterns only when Django asks, after settings exist.
    if name == "urlpatterns":
        return _urlpatterns()
    raise AttributeError(name)


def bare_django_app() -> Any:
    """A startproject-shaped Django: default middleware, persistent connection, one view."""
    import django
    from django.conf import settings

    parts = urlsplit(os.environ["BENCH_DSN"])
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only-not-secret-0123456789-abcdefghijklmnopqrstuvwxyz",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF="bench_webhook",
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
        ],
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": parts.path.lstrip("/"),
                "USER": parts.username or "",
                "PASSWORD": parts.password or "",
                "HOST": parts.hostname or "",
                "PORT": parts.port or "",
                # The same connection settings as Mailroom's (config/settings.py): persistent, health-checked.
                "CONN_MAX_AGE": 600,
                "CONN_HEALTH_CHECKS": os.environ.get("BENCH_HEALTH_CHECKS", "true") == "true",
            }
        },
    )
    django.setup()
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


# --- Load generation ---------------------------------------------------------------------------


def make_events(count: int, start: int, mailing: str = "spring-sale") -> list[bytes]:
    bodies = []
    for index in range(start, start + count):
        event = {
            "Type": "Delivered",
            "DateTime": f"2024-05-01T10:{(index // 60) % 60:02d}:{index % 60:02d}.1234567Z",
            "ServerId": 12345,
            "SubaccountId": None,
            "IpPoolId": 7,
            "SecretKey": SECRET,
            "Address": f"user{index}@example.net",
            "MailingId": mailing,
            "MessageId": f"order-{index:08d}",
            "Response": "250 2.0.0 OK id=1a2b3c",
            "LocalIp": "10.0.0.5",
            "RemoteMta": "mx1.example.net",
            "Data": {"Meta": [{"Key": "userId", "Value": str(index)}], "Tags": ["receipt", "bench"]},
        }
        bodies.append(json.dumps(event).encode())
    return bodies


def workload(seed: int = 42) -> tuple[list[bytes], int]:
    """EVENTS bodies, DUPLICATE_SHARE of them exact repeats of earlier ones; returns (bodies, unique count)."""
    unique = int(EVENTS * (1 - DUPLICATE_SHARE))
    bodies = make_events(unique, start=1)
    rng = random.Random(seed)
    for _ in range(EVENTS - unique):
        bodies.insert(rng.randrange(len(bodies) // 2, len(bodies) + 1), bodies[rng.randrange(0, len(bodies) // 2)])
    return bodies, unique


def request_bytes(path: str, body: bytes, port: int) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def send_raw(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def send_one(port: int, raw: bytes) -> int:
    response = send_raw(port, raw)
    try:
        return int(response.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def drive(port: int, path: str, bodies: list[bytes]) -> tuple[float, list[float], dict[int, int]]:
    """Send every body with SENDERS threads; returns (elapsed s, latencies ms, status counts)."""
    requests = [request_bytes(path, body, port) for body in bodies]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    position = iter(range(len(requests)))
    deadline = time.monotonic() + TIME_LIMIT_S

    def sender() -> None:
        local_latencies = []
        local_statuses: dict[int, int] = {}
        while time.monotonic() < deadline:
            with lock:
                index = next(position, None)
            if index is None:
                break
            started = time.perf_counter()
            try:
                status = send_one(port, requests[index])
            except OSError:
                status = 0
            local_latencies.append((time.perf_counter() - started) * 1000)
            local_statuses[status] = local_statuses.get(status, 0) + 1
        with lock:
            latencies.extend(local_latencies)
            for status, n in local_statuses.items():
                statuses[status] = statuses.get(status, 0) + n

    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, statuses


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


# --- Orchestration -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start in time")


def start_gunicorn(app: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "--chdir",
        str(ROOT),
        "--pythonpath",
        f"{ROOT},{HERE}",
        "-b",
        f"127.0.0.1:{port}",
        "-w",
        str(WORKERS),
        "-k",
        "sync",
        "--log-level",
        "warning",
        app,
    ]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_port(port, proc)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Target:
    """One server under test and what the client measured against it."""

    # A plain class: bench/run.py loads this file without registering it in sys.modules,
    # which @dataclass (with postponed annotations) needs.
    def __init__(self, name: str, app: str, path: str) -> None:
        self.name = name
        self.app = app
        self.path = path
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.elapsed = 0.0
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.round_rates: list[float] = []

    @property
    def rps(self) -> float:
        return statistics.median(self.round_rates)

    def ratio_to(self, baseline: Target) -> float:
        """Median of per-round ratios: each pair of rounds ran back to back, so shared-machine noise cancels."""
        return statistics.median(m / b for m, b in zip(self.round_rates, baseline.round_rates, strict=True))

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 0.50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 0.99)


def warm(target: Target, warmup: list[bytes]) -> None:
    # Workers import Django after the port opens: warm up until every request is answered.
    for _attempt in range(5):
        _, _, statuses = drive(target.port, target.path, warmup)
        if set(statuses) == {200}:
            return
        time.sleep(1)
    sample = send_raw(target.port, request_bytes(target.path, warmup[0], target.port))[:600]
    raise RuntimeError(f"{target.name}: warm-up answers {statuses}; e.g. {sample!r}")


def run_interleaved(targets: list[Target], env: dict[str, str], warmup: list[bytes], bodies: list[bytes]) -> None:
    """All servers up at once; ROUNDS bursts each, alternating, so load from elsewhere hits all alike."""
    try:
        for target in targets:
            target.port = free_port()
            target.proc = start_gunicorn(target.app, target.port, env)
        for target in targets:
            warm(target, warmup)
        size = -(-len(bodies) // ROUNDS)
        for start in range(0, len(bodies), size):
            chunk = bodies[start : start + size]
            for target in targets:
                elapsed, latencies, statuses = drive(target.port, target.path, chunk)
                target.elapsed += elapsed
                target.latencies += latencies
                target.round_rates.append(len(latencies) / elapsed)
                for status, n in statuses.items():
                    target.statuses[status] = target.statuses.get(status, 0) + n
    finally:
        for target in targets:
            if target.proc is not None:
                stop(target.proc)
    for target in targets:
        rates = ", ".join(f"{r:.0f}" for r in target.round_rates)
        print(
            f"# {target.name}: median {target.rps:.0f} req/s (rounds {rates}), p50 {target.p50:.1f} ms, "
            f"p99 {target.p99:.1f} ms, statuses {target.statuses}",
            file=sys.stderr,
            flush=True,
        )


def main() -> None:
    import psycopg
    from cryptography.fernet import Fernet

    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mailroom")
    parts = urlsplit(base_url)
    if not parts.scheme.startswith("postgres"):
        raise RuntimeError("bench_webhook needs PostgreSQL in DATABASE_URL")
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise RuntimeError("bench_webhook only runs against a database on loopback")
    bench_db = parts.path.lstrip("/") + "_bench_webhook"
    bench_url = urlunsplit(parts._replace(path="/" + bench_db))
    admin_url = urlunsplit(parts._replace(path="/postgres"))

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{bench_db}"')
    try:
        env = {
            **os.environ,
            "DATABASE_URL": bench_url,
            "BENCH_DSN": bench_url,
            "DEBUG": "false",
            "SECRET_KEY": "bench-only-" + Fernet.generate_key().decode(),
            "MAILROOM_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false",
            "SANDBOX_ENABLED": "false",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PYTHONPATH": f"{ROOT}:{HERE}",
        }
        python = str(ROOT / ".venv" / "bin" / "python")
        subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        setup = (
            "from accounts.models import Server; from reporting.models import EventEndpoint;"
            "s = Server.objects.create(name='bench', socketlabs_id=12345);"
            f"e = EventEndpoint.objects.create(server=s, name='bench', secret_key={SECRET!r});"
            "print(e.uuid)"
        )
        endpoint_uuid = subprocess.run(
            [python, "manage.py", "shell", "-c", setup], cwd=ROOT, env=env, check=True, capture_output=True, text=True
        ).stdout.split()[-1]
        with psycopg.connect(bench_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE bench_inbox_django (LIKE reporting_rawevent INCLUDING ALL)")
            conn.execute("CREATE TABLE bench_inbox_wsgi (LIKE reporting_rawevent INCLUDING ALL)")

        bodies, unique = workload()
        warmup = make_events(WARMUP, start=1, mailing="warm-up")
        mailroom = Target("mailroom", "config.wsgi:application", f"/hooks/socketlabs/events/{endpoint_uuid}/")
        django_base = Target("bare-django", "bench_webhook:bare_django_app()", "/hook/")
        wsgi_base = Target("bare-wsgi", "bench_webhook:bare_wsgi_app", "/hook")
        run_interleaved([mailroom, django_base, wsgi_base], env, warmup, bodies)

        with psycopg.connect(bench_url, autocommit=True) as conn:
            stored = conn.execute(
                "SELECT count(*) FROM reporting_rawevent WHERE payload->>'MailingId' = 'spring-sale'"
            ).fetchone()[0]  # type: ignore[index]
            logged = conn.execute(
                "SELECT count(*) FROM reporting_requestlog l JOIN reporting_rawevent r ON r.id = l.raw_id"
                " WHERE l.status = 200 AND r.payload->>'MailingId' = 'spring-sale'"
            ).fetchone()[0]  # type: ignore[index]
        if mailroom.statuses != {200: EVENTS} or stored != unique or logged != EVENTS:
            raise RuntimeError(
                f"mailroom: statuses {mailroom.statuses}, {stored} raw rows (expected {unique}), "
                f"{logged} request-log rows (expected {EVENTS})"
            )
        print(
            f"# checked: {EVENTS} × 200, {stored} raw rows = unique events, {logged} logged: 0 lost, 0 duplicated",
            file=sys.stderr,
        )

        timing = (
            "import time; from reporting import processing; t = time.perf_counter();"
            "r = processing.drain(max_seconds=300); print(r.created, time.perf_counter() - t)"
        )
        created, seconds = subprocess.run(
            [python, "manage.py", "shell", "-c", timing], cwd=ROOT, env=env, check=True, capture_output=True, text=True
        ).stdout.split()[-2:]
        process_rate = int(created) / float(seconds)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')

    setup_note = (
        f"gunicorn -w {WORKERS} -k sync, {SENDERS} senders, {EVENTS} events, 10% duplicates, "
        f"{ROUNDS} interleaved rounds, median rate and median per-round ratio"
    )
    print(
        f"BENCH webhook_ingest {mailroom.rps:.0f} events/s ratio={mailroom.ratio_to(django_base):.2f} "
        f"baseline=bare Django view+JSON parse+INSERT {django_base.rps:.0f}/s ({setup_note})"
    )
    print(
        f"BENCH webhook_ingest_p99 {mailroom.p99:.1f} ms ratio={mailroom.p99 / django_base.p99:.2f} "
        f"baseline=bare Django p99 {django_base.p99:.1f} ms (p50 {mailroom.p50:.1f} vs {django_base.p50:.1f} ms)"
    )
    print(
        f"BENCH webhook_ingest_vs_wsgi {mailroom.rps:.0f} events/s ratio={mailroom.ratio_to(wsgi_base):.2f} "
        f"baseline=bare WSGI+psycopg JSON parse+INSERT {wsgi_base.rps:.0f}/s"
    )
    print(
        f"BENCH webhook_process {process_rate:.0f} events/s ratio={process_rate / mailroom.rps:.2f} "
        f"baseline=ingest rate {mailroom.rps:.0f}/s (raw rows → typed events + rollups, batches of 1,000)"
    )


if __name__ == "__main__":
    main()
