"""Injection throughput of the sandbox: 10,000 merge recipients over real HTTP.

What is measured: 200 POSTs of `/sandbox/inject/api/v1/email`, each one bulk message with 50
`PerMessage` rows (the SDK's per-call limit), sent one after another from a `requests` session to
the whole Django app served by `wsgiref` on 127.0.0.1 in this process. Each request authenticates,
validates, expands the merge rows, stores 50 messages and their planned events with COPY, logs the
request and enqueues one dispatch task (Celery on an in-memory broker, so the run leaves nothing in
a real queue). The figure is recipients per second.

Baseline, measured in the same run with the same 200 request bodies: a bare Django view on the
same server and middleware stack that only parses the JSON and answers `Success`. Its rate is the
ceiling set by HTTP, WSGI, Django's middleware and JSON decoding on this machine, so
`ratio = injection rate / bare rate` says how much of that ceiling the real work (validation,
expansion, database writes) leaves. A ratio near 1 would mean the database work is free; the
bodies are pre-encoded so client-side JSON encoding is in neither figure.

The database is a throwaway copy created from DATABASE_URL's server (`<name>_bench_injection`,
migrated, dropped afterwards), so benchmarks never touch real data.

Output: exactly one line, `BENCH injection_merge <value> recipients/s ratio=<r> baseline=<what>`;
details go to stderr. Each figure is the median of three rounds.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
import types
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

REQUESTS = 200
ROWS_PER_REQUEST = 50
ROUNDS = 3
SUCCESS = b'{"ErrorCode": "Success", "MessageResults": [], "TransactionReceipt": null}'


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


def bodies(server_id: int, key: str) -> list[bytes]:
    encoded = []
    for r in range(REQUESTS):
        rows = [
            [
                {"Field": "DeliveryAddress", "Value": f"user{r}x{i}@example.net"},
                {"Field": "RecipientName", "Value": f"User {r}-{i}"},
                {"Field": "FirstName", "Value": f"First{i}"},
                {"Field": "Code", "Value": f"C{r:03d}{i:02d}"},
            ]
            for i in range(ROWS_PER_REQUEST)
        ]
        body = {
            "serverId": str(server_id),
            "apiKey": "",
            "messages": [
                {
                    "from": {"emailAddress": "news@example.com", "friendlyName": "Example News"},
                    "to": [{"emailAddress": "%%DeliveryAddress%%", "friendlyName": "%%RecipientName%%"}],
                    "subject": "Hello %%FirstName%%, your code %%Code%%",
                    "textBody": "Hi %%FirstName%%,\n\nYour code is %%Code%%. %%Motto%%\n",
                    "htmlBody": "<p>Hi %%FirstName%%,</p><p>Your code is <b>%%Code%%</b>.</p>"
                    '<p><a href="https://example.com/c/%%Code%%">Use it</a></p><p>%%Motto%%</p>',
                    "mailingId": "bench",
                    "messageId": "bench-%%Code%%",
                    "customHeaders": [{"name": "X-Code", "value": "%%Code%%"}],
                    "mergeData": {"perMessage": rows, "global": [{"field": "Motto", "value": "be kind"}]},
                }
            ],
        }
        encoded.append(json.dumps(body).encode())
    return encoded


def run_round(session: Any, url: str, payloads: list[bytes], key: str) -> float:
    headers = {"Content-Type": "application/json; charset=utf-8", "Authorization": f"Bearer {key}"}
    started = time.perf_counter()
    for payload in payloads:
        response = session.post(url, data=payload, headers=headers, timeout=60)
        if response.status_code != 200 or response.json().get("ErrorCode") != "Success":
            raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:200]}")
    elapsed = time.perf_counter() - started
    return len(payloads) * ROWS_PER_REQUEST / elapsed


def main() -> None:
    import django

    django.setup()
    import requests
    from django.conf import settings
    from django.contrib.auth.decorators import login_not_required
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection, connections
    from django.http import HttpRequest, HttpResponse
    from django.urls import include, path
    from django.views.decorators.csrf import csrf_exempt

    from config.celery import app as celery_app
    from sandbox.models import Permission, SandboxAccount, SandboxApiKey, SandboxMessage, SandboxServer

    @login_not_required
    @csrf_exempt
    def bare(request: HttpRequest) -> HttpResponse:
        json.loads(request.body)
        return HttpResponse(SUCCESS, content_type="application/json; charset=utf-8")

    urls = types.ModuleType("bench_injection_urls")
    urls.urlpatterns = [path("bench/bare", bare), path("", include("config.urls"))]  # type: ignore[attr-defined]
    sys.modules[urls.__name__] = urls
    settings.ROOT_URLCONF = urls.__name__
    settings.DEBUG = False  # no per-query logging
    settings.SANDBOX_ENABLED = True
    celery_app.conf.broker_url = "memory://"

    if connection.vendor != "postgresql":
        print("# bench_injection: DATABASE_URL is not PostgreSQL; figures are not comparable.", file=sys.stderr)
    real_name = settings.DATABASES["default"]["NAME"]
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = f"{real_name}_bench_injection"
    print("# bench_injection: creating and migrating a throwaway database …", file=sys.stderr, flush=True)
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    server = None
    thread = None
    try:
        account = SandboxAccount.objects.create(account_id=990001, name="Bench")
        sandbox = SandboxServer.objects.create(
            account=account, server_id=990001, name="Bench", delivery_delay_seconds=0, tracking_delay_seconds=0
        )
        _, key = SandboxApiKey.issue(server=sandbox, name="bench", permissions=[Permission.INJECTION])

        server = make_server("127.0.0.1", 0, WSGIHandler(), server_class=WSGIServer, handler_class=QuietHandler)
        port = server.server_address[1]

        def serve() -> None:
            assert server is not None
            server.serve_forever(poll_interval=0.05)
            connections.close_all()  # this thread's database session, so the database can be dropped

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{port}"
        payloads = bodies(sandbox.server_id, key)
        session = requests.Session()
        # Warm-up (not timed): imports, URL resolver, prepared statements, connection.
        run_round(session, f"{base}/bench/bare", payloads[:5], key)
        run_round(session, f"{base}/sandbox/inject/api/v1/email", payloads[:5], key)

        injected: list[float] = []
        baseline: list[float] = []
        for n in range(ROUNDS):
            baseline.append(run_round(session, f"{base}/bench/bare", payloads, key))
            injected.append(run_round(session, f"{base}/sandbox/inject/api/v1/email", payloads, key))
            print(
                f"# round {n + 1}: injection {injected[-1]:,.0f} recipients/s, bare view {baseline[-1]:,.0f}",
                file=sys.stderr,
            )
        expected = (ROUNDS * REQUESTS + 5) * ROWS_PER_REQUEST
        stored = SandboxMessage.objects.filter(server=sandbox).count()
        if stored != expected:
            raise RuntimeError(f"expected {expected} stored messages, found {stored}")
        session.close()
        rate, floor = statistics.median(injected), statistics.median(baseline)
        print(
            f"BENCH injection_merge {rate:.0f} recipients/s ratio={rate / floor:.3f} "
            f"baseline=bare_json_view_{floor:.0f}_recipients_per_s"
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
