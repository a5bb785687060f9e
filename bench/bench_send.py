"""A merge send end to end: `BENCH_SEND_RECIPIENTS` recipients (default 20,000) with 5 merge fields each.

What is measured (Mailroom's path), from "here is the audience" to "every recipient accepted":
`engine.create_send` → `engine.add_recipients` (normalise, one suppression query per 5,000-row chunk,
`bulk_create`) → `engine.start` (batches planned in SQL) → `engine.run_dispatcher` in this process
(claim a batch atomically, build 10 bulk messages of 50 rows, POST to the sandbox over real HTTP,
record every recipient's result set-based) until the send is done. One dispatcher, as one Celery
worker process would run it; the Celery hop itself is not in the figure.

Baseline, in the same run against the same sandbox: the sandbox's own raw injection throughput — the
same number of recipients posted (once before and once after Mailroom's run; the faster
round counts) as pre-encoded request bodies of the same shape (10 messages × 50
merge rows, 5 fields) one after another from a `requests` session, with no Mailroom work at all.
`ratio = Mailroom's rate / raw rate`; 1.0 would mean the engine costs nothing over the injection.

The sandbox runs in this process under `wsgiref` on 127.0.0.1 against a throwaway database
(`<name>_bench_send`, migrated, dropped afterwards). Peak RSS is printed to stderr.

Output: `BENCH merge_send <recipients/s> recipients/s ratio=<r> baseline=raw_sandbox_injection_<n>_recipients_per_s`.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

RECIPIENTS = int(os.environ.get("BENCH_SEND_RECIPIENTS", "20000"))
PER_MESSAGE = 50
MESSAGES = 10
FIELDS = ("FirstName", "LastName", "City", "Code", "Plan")


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


SUBJECT = "Hello %%FirstName%% %%LastName%%"
TEXT = "Hi %%FirstName%% from %%City%%, your code %%Code%% on %%Plan%%. %%Motto%%"
HTML = "<p>Hi %%FirstName%% from %%City%%,</p><p>your code <b>%%Code%%</b> on %%Plan%%.</p><p>%%Motto%%</p>"


def fields_for(i: int) -> dict[str, str]:
    return {"FirstName": f"F{i}", "LastName": f"L{i}", "City": f"City{i % 97}", "Code": f"C{i:07d}", "Plan": "gold"}


def raw_bodies(server_id: int, prefix: str) -> list[bytes]:
    bodies = []
    per_request = PER_MESSAGE * MESSAGES
    for start in range(0, RECIPIENTS, per_request):
        messages = []
        for m in range(start, min(start + per_request, RECIPIENTS), PER_MESSAGE):
            rows = [
                [
                    *({"Field": k, "Value": v} for k, v in fields_for(i).items()),
                    {"Field": "DeliveryAddress", "Value": f"{prefix}{i}@example.net"},
                ]
                for i in range(m, min(m + PER_MESSAGE, RECIPIENTS))
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


def main() -> None:
    import django

    django.setup()
    import requests
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection, connections

    from config.celery import app as celery_app

    settings.DEBUG = False
    settings.SANDBOX_ENABLED = True
    celery_app.conf.update(broker_url="memory://")  # the sandbox queues a task per request; keep it in memory
    real_name = settings.DATABASES["default"]["NAME"]
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = f"{real_name}_bench_send"
    print(f"# bench_send: {RECIPIENTS:,} recipients; creating a throwaway database …", file=sys.stderr, flush=True)
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    server = None
    thread = None
    try:
        from accounts.models import Server
        from sandbox.models import Permission, SandboxAccount, SandboxApiKey, SandboxMessage, SandboxServer
        from sending import engine

        account = SandboxAccount.objects.create(account_id=990002, name="Bench")
        sandbox = SandboxServer.objects.create(
            account=account, server_id=990002, name="Bench", delivery_delay_seconds=0, tracking_delay_seconds=0
        )
        _, key = SandboxApiKey.issue(server=sandbox, name="bench", permissions=[Permission.INJECTION])
        server = make_server("127.0.0.1", 0, WSGIHandler(), server_class=WSGIServer, handler_class=QuietHandler)
        port = server.server_address[1]

        def serve() -> None:
            assert server is not None
            server.serve_forever(poll_interval=0.05)
            connections.close_all()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        inject_url = f"http://127.0.0.1:{port}/sandbox/inject/api/v1/email"

        session = requests.Session()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}

        def raw_round(prefix: str) -> float:
            """The baseline: raw injection of the same volume and shape (bodies pre-encoded, not timed)."""
            bodies = raw_bodies(sandbox.server_id, prefix)
            started = time.perf_counter()
            for body in bodies:
                response = session.post(inject_url, data=body, headers=headers, timeout=120)
                if response.status_code != 200 or response.json().get("ErrorCode") != "Success":
                    raise RuntimeError(f"raw injection answered {response.status_code}: {response.text[:200]}")
            return RECIPIENTS / (time.perf_counter() - started)

        raw_rates = [raw_round("rawa")]

        # Mailroom's path.
        mr_server = Server.objects.create(
            name="Bench",
            socketlabs_id=sandbox.server_id,
            api_url=f"http://127.0.0.1:{port}/sandbox/api/v2",
            inject_url=inject_url,
            injection_key=key,
        )
        engine._enqueue = lambda send_id, copies=1: None  # type: ignore[assignment]  # the dispatcher runs inline
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
            send, (engine.AudienceRow(f"mr{i}@example.net", "", fields_for(i)) for i in range(RECIPIENTS))
        )
        expanded = time.perf_counter()
        engine.start(send, actor=None)
        outcome = engine.run_dispatcher(send.pk, time_budget=3600)
        elapsed = time.perf_counter() - started
        progress = engine.progress(send)
        if outcome != "done" or progress.accepted != RECIPIENTS:
            raise RuntimeError(f"send ended {outcome} with {progress}")
        stored = SandboxMessage.objects.filter(server=sandbox, mailing_id=send.effective_mailing_id).count()
        if stored != RECIPIENTS:
            raise RuntimeError(f"expected {RECIPIENTS} messages in the sandbox, found {stored}")
        rate = RECIPIENTS / elapsed
        # Once more after Mailroom's run, so both sides see the same table sizes; the better round counts.
        raw_rates.append(raw_round("rawb"))
        session.close()
        raw_rate = max(raw_rates)
        print(f"# raw sandbox injection: {', '.join(f'{r:,.0f}' for r in raw_rates)} recipients/s", file=sys.stderr)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"# mailroom: expansion {expanded - started:.2f} s, dispatch {elapsed - (expanded - started):.2f} s, "
            f"total {elapsed:.2f} s; peak RSS {rss_mb:.0f} MB",
            file=sys.stderr,
        )
        print(
            f"BENCH merge_send {rate:.0f} recipients/s ratio={rate / raw_rate:.3f} "
            f"baseline=raw_sandbox_injection_{raw_rate:.0f}_recipients_per_s"
        )
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=10)
        connections.close_all()
        connection.creation.destroy_test_db(real_name, verbosity=0)


if __name__ == "__main__":
    main()
