"""A merge send end to end: 100,000 recipients (`BENCH_SEND_RECIPIENTS`) with 5 merge fields each.

What is measured (Mailroom's path), from "here is the audience" to "every recipient accepted and
recorded": `engine.create_send` → `engine.add_recipients` (normalise, one suppression query per
5,000-row chunk, COPY) → `engine.start` (batches planned in SQL) → `engine.run_dispatcher` in
`max_in_flight()` threads at once, as that many Celery worker processes would run it (claim a batch
atomically, build 10 bulk messages of 50 rows, POST to the sandbox over real HTTP, record every
recipient's result) until the send is done. The Celery hop itself is not in the figure.

The sandbox runs in its own gunicorn (`BENCH_SEND_SANDBOX_WORKERS`, default 3, sync workers) on
127.0.0.1 against a throwaway database (`<name>_bench_send`, migrated, dropped afterwards), so
its work does not share this process (or its GIL) with the engine's.

Baseline, in the same run against the same sandbox: its raw injection throughput — the same
number of recipients posted as pre-encoded request bodies of the same shape (10 messages × 50
merge rows, 5 fields) from as many threads as the engine's concurrency, with no Mailroom work at
all; once before and once after Mailroom's run, the faster round counts.
`ratio = Mailroom's rate / raw rate`; 1.0 would mean the engine costs nothing over the injection.

Memory: the engine's peak RSS (VmHWM, reset before each run) for a 25,000- and a 100,000-recipient
send (`BENCH_SEND_SMALL`); flat memory means the two are about the same.

Output:
`BENCH merge_send <recipients/s> recipients/s ratio=<r> baseline=raw_sandbox_injection_<n>_recipients_per_s`
`BENCH merge_send_rss <MB at 100k> MB ratio=<100k / 25k> baseline=rss_at_<small>_recipients_<MB>_MB`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RECIPIENTS = int(os.environ.get("BENCH_SEND_RECIPIENTS", "100000"))
SMALL = int(os.environ.get("BENCH_SEND_SMALL", "25000"))
SANDBOX_WORKERS = int(os.environ.get("BENCH_SEND_SANDBOX_WORKERS", "3"))
PER_MESSAGE = 50
MESSAGES = 10
FIELDS = ("FirstName", "LastName", "City", "Code", "Plan")

SUBJECT = "Hello %%FirstName%% %%LastName%%"
TEXT = "Hi %%FirstName%% from %%City%%, your code %%Code%% on %%Plan%%. %%Motto%%"
HTML = "<p>Hi %%FirstName%% from %%City%%,</p><p>your code <b>%%Code%%</b> on %%Plan%%.</p><p>%%Motto%%</p>"


def fields_for(i: int) -> dict[str, str]:
    return {"FirstName": f"F{i}", "LastName": f"L{i}", "City": f"City{i % 97}", "Code": f"C{i:07d}", "Plan": "gold"}


def raw_bodies(server_id: int, prefix: str, count: int) -> list[bytes]:
    bodies = []
    per_request = PER_MESSAGE * MESSAGES
    for start in range(0, count, per_request):
        messages = []
        for m in range(start, min(start + per_request, count), PER_MESSAGE):
            rows = [
                [
                    *({"Field": k, "Value": v} for k, v in fields_for(i).items()),
                    {"Field": "DeliveryAddress", "Value": f"{prefix}{i}@example.net"},
                ]
                for i in range(m, min(m + PER_MESSAGE, count))
            ]
            messages.append(
                {
                    "From": {"EmailAddress": "news@example.com"},
                    "To": [{"EmailAddress": "%%DeliveryAddress%%"}],
                    "Subject": SUBJECT,
                    "TextBody": TEXT,
                    "HtmlBody": HTML,
                    "MailingId": "raw",
                    "MessageId": "raw-%%Code%%",
                    "MergeData": {"PerMessage": rows, "Global": [{"Field": "Motto", "Value": "be kind"}]},
                }
            )
        bodies.append(json.dumps({"ServerId": server_id, "Messages": messages}).encode())
    return bodies


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_sandbox(database_url: str) -> tuple[subprocess.Popen[bytes], int]:
    """The sandbox in its own gunicorn, on the bench database; its webhook tasks go to an in-memory broker."""
    from cryptography.fernet import Fernet

    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-" + Fernet.generate_key().decode(),
        "MAILROOM_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "SANDBOX_ENABLED": "true",
        "CELERY_BROKER_URL": "memory://",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    command = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "--chdir",
        str(ROOT),
        "-b",
        f"127.0.0.1:{port}",
        "-w",
        str(SANDBOX_WORKERS),
        "-k",
        "sync",
        "--timeout",
        "300",
        "--log-level",
        "warning",
        "config.wsgi:application",
    ]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}: {proc.stderr.read()[-2000:]!r}")  # type: ignore[union-attr]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the sandbox's gunicorn did not start in time")


def peak_rss_mb() -> float:
    """VmHWM of this process in MB (reset with `reset_peak_rss`)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: reset the peak RSS to the current RSS
    except OSError:
        pass


def in_threads(count: int, work: Callable[[int], None]) -> None:
    """Run `work(i)` in `count` threads; the first error is raised here."""
    from django.db import connections

    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            work(i)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def main() -> None:
    import django

    django.setup()
    import requests
    from django.conf import settings
    from django.db import connection, connections

    settings.DEBUG = False
    real_name = settings.DATABASES["default"]["NAME"]
    bench_name = f"{real_name}_bench_send"
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = bench_name
    print(f"# bench_send: {RECIPIENTS:,} recipients; creating a throwaway database …", file=sys.stderr, flush=True)
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mailroom")
    bench_url = urlunsplit(urlsplit(base_url)._replace(path="/" + bench_name))
    proc = None
    try:
        from accounts.models import Server
        from sandbox.models import Permission, SandboxAccount, SandboxApiKey, SandboxMessage, SandboxServer
        from sending import engine

        account = SandboxAccount.objects.create(account_id=990002, name="Bench")
        sandbox = SandboxServer.objects.create(
            account=account, server_id=990002, name="Bench", delivery_delay_seconds=0, tracking_delay_seconds=0
        )
        _, key = SandboxApiKey.issue(server=sandbox, name="bench", permissions=[Permission.INJECTION])
        connections.close_all()  # the gunicorn workers must see committed rows on fresh connections
        proc, port = start_sandbox(bench_url)
        inject_url = f"http://127.0.0.1:{port}/sandbox/inject/api/v1/email"
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        concurrency = engine.max_in_flight()

        def raw_round(prefix: str, count: int = RECIPIENTS) -> float:
            """The baseline: raw injection of the same volume and shape, `concurrency` posters at once."""
            bodies = raw_bodies(sandbox.server_id, prefix, count)

            def post(i: int) -> None:
                with requests.Session() as session:
                    for body in bodies[i::concurrency]:
                        response = session.post(inject_url, data=body, headers=headers, timeout=300)
                        if response.status_code != 200 or response.json().get("ErrorCode") != "Success":
                            raise RuntimeError(f"raw injection answered {response.status_code}: {response.text[:200]}")

            started = time.perf_counter()
            in_threads(concurrency, post)
            return count / (time.perf_counter() - started)

        raw_round("warm", 5000)  # the gunicorn workers import Django and open connections on first use
        raw_rates = [raw_round("rawa")]

        mr_server = Server.objects.create(
            name="Bench",
            socketlabs_id=sandbox.server_id,
            api_url=f"http://127.0.0.1:{port}/sandbox/api/v2",
            inject_url=inject_url,
            injection_key=key,
        )
        engine._enqueue = lambda send_id, copies=1: None  # type: ignore[assignment]  # dispatchers run below

        def mailroom(count: int, prefix: str) -> tuple[float, float, float]:
            """One send of `count` recipients from the audience to all accepted; (rate, expansion s, peak MB)."""
            reset_peak_rss()
            cpu = time.process_time()
            started = time.perf_counter()
            send = engine.create_send(
                server=mr_server,
                actor=None,
                subject=SUBJECT,
                text_body=TEXT,
                html_body=HTML,
                from_address="news@example.com",
                global_fields={"Motto": "be kind"},
            )
            engine.add_recipients(
                send, (engine.AudienceRow(f"{prefix}{i}@example.net", "", fields_for(i)) for i in range(count))
            )
            expanded = time.perf_counter()
            engine.start(send, actor=None)

            def dispatch(_: int) -> None:
                engine.run_dispatcher(send.pk, time_budget=3600)

            in_threads(concurrency, dispatch)
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu
            peak = peak_rss_mb()
            send.refresh_from_db()
            progress = engine.progress(send)
            if send.status != "done" or progress.accepted != count:
                raise RuntimeError(f"send ended {send.status} with {progress}")
            stored = SandboxMessage.objects.filter(server=sandbox, mailing_id=send.effective_mailing_id).count()
            if stored != count:
                raise RuntimeError(f"expected {count} messages in the sandbox, found {stored}")
            print(
                f"# mailroom {count:,}: expansion {expanded - started:.2f} s, "
                f"dispatch {elapsed - (expanded - started):.2f} s, total {elapsed:.2f} s, "
                f"{count / elapsed:,.0f} recipients/s; engine CPU {cpu:.1f} s; peak RSS {peak:.0f} MB",
                file=sys.stderr,
                flush=True,
            )
            return count / elapsed, expanded - started, peak

        _, _, small_rss = mailroom(SMALL, "small")
        rate, _, big_rss = mailroom(RECIPIENTS, "mr")
        # Once more after Mailroom's run, so both sides see similar table sizes; the better round counts.
        raw_rates.append(raw_round("rawb"))
        raw_rate = max(raw_rates)
        print(
            f"# raw sandbox injection ({concurrency} posters, gunicorn -w {SANDBOX_WORKERS}): "
            f"{', '.join(f'{r:,.0f}' for r in raw_rates)} recipients/s",
            file=sys.stderr,
        )
        print(
            f"BENCH merge_send {rate:.0f} recipients/s ratio={rate / raw_rate:.3f} "
            f"baseline=raw_sandbox_injection_{raw_rate:.0f}_recipients_per_s"
        )
        print(
            f"BENCH merge_send_rss {big_rss:.0f} MB ratio={big_rss / small_rss:.2f} "
            f"baseline=rss_at_{SMALL}_recipients_{small_rss:.0f}_MB"
        )
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        connections.close_all()
        connection.creation.destroy_test_db(real_name, verbosity=0)


if __name__ == "__main__":
    main()
