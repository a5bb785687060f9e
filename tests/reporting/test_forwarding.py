"""Inbound forwarding: each parsed message POSTed to its route's URL, retried on 5xx/timeouts, never on 4xx.

The receiving side is a real HTTP server on 127.0.0.1 (http.server in a thread) that answers from a script.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditLog, Server, User
from reporting import forwarding, routes
from reporting.models import ForwardStatus, InboundEndpoint, InboundMessage, InboundRoute
from reporting.tasks import forward_inbound_message, sweep_inbound_forwards
from tests.reporting.conftest import fixture_json, post

AsUser = Callable[[User], Client]


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A scripted HTTP receiver: each POST takes the next (status, delay) from `script`; the last one repeats."""

    script: list[tuple[int, float]] = field(default_factory=lambda: [(200, 0.0)])
    received: list[Received] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, *statuses: int, delay: float = 0.0) -> None:
        self.script = [(status, delay) for status in statuses]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                state.received.append(Received(dict(self.headers.items()), body))
                status, delay = state.script.pop(0) if len(state.script) > 1 else state.script[0]
            if delay:
                time.sleep(delay)
            text = b"nope, bad request" if status == 400 else b"ok"
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)
            except OSError:  # the client gave up waiting (timeout tests)
                pass

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/inbound"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def fast_forwarding(settings: Any) -> None:
    settings.REPORTING_FORWARD_CONNECT_TIMEOUT = 1.0
    settings.REPORTING_FORWARD_READ_TIMEOUT = 0.5
    settings.REPORTING_FORWARD_MAX_ATTEMPTS = 4


@pytest.fixture
def route(server: Server, inbound_endpoint: InboundEndpoint, receiver: Receiver) -> InboundRoute:
    route = InboundRoute.objects.create(endpoint=inbound_endpoint, server=server, domain_or_address="parse.example.com")
    routes.set_forwarding(route=route, url=receiver.url)
    route.refresh_from_db()
    return route


def receive(client: Client, endpoint: InboundEndpoint, **changes: Any) -> InboundMessage:
    body = fixture_json("inbound.json") | changes
    response = post(client, f"/hooks/socketlabs/inbound/{endpoint.uuid}/", body)
    assert response.status_code == 200, response.content
    return InboundMessage.objects.order_by("-id").first()  # type: ignore[return-value]


def test_a_500_is_retried_and_the_message_delivered_once(
    client: Client,
    inbound_endpoint: InboundEndpoint,
    route: InboundRoute,
    receiver: Receiver,
    fast_forwarding: None,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queued: list[int] = []
    monkeypatch.setattr(forward_inbound_message, "delay", lambda pk: queued.append(pk))
    receiver.answer(500, 200)
    with django_capture_on_commit_callbacks(execute=True):
        message = receive(client, inbound_endpoint)
    assert message.route == route
    assert message.forward_status == ForwardStatus.PENDING
    assert queued == [message.pk]  # handed to the task by id, after commit

    forward_inbound_message.apply(args=[message.pk])  # eager: the retry runs at once, in place of the countdown

    message.refresh_from_db()
    assert message.forward_status == ForwardStatus.DELIVERED
    assert (message.forward_attempts, message.forward_response_status) == (2, 200)
    assert message.forwarded_at is not None and message.forward_error == ""
    assert len(receiver.received) == 2
    first, second = receiver.received
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]  # the same message both times
    assert second.headers[forwarding.SECRET_HEADER] == route.forward_secret
    assert second.headers["Content-Type"].startswith("application/json")
    sent = second.json()
    assert sent["subject"] == message.subject and sent["route"] == "parse.example.com"
    assert sent["envelope"]["rcpt_to"] == "support@parse.example.com"
    assert "SecretKey" not in json.dumps(sent) and "inbound-secret" not in json.dumps(sent)

    # A late duplicate of the task (the sweep, a redelivered broker message) posts nothing more.
    assert forward_inbound_message.apply(args=[message.pk]).get() == "skipped"
    assert len(receiver.received) == 2


def test_a_400_is_not_retried(
    client: Client, inbound_endpoint: InboundEndpoint, route: InboundRoute, receiver: Receiver, fast_forwarding: None
) -> None:
    receiver.answer(400, 200)
    message = receive(client, inbound_endpoint)

    assert forward_inbound_message.apply(args=[message.pk]).get() == "failed"

    message.refresh_from_db()
    assert len(receiver.received) == 1
    assert message.forward_status == ForwardStatus.FAILED
    assert (message.forward_attempts, message.forward_response_status) == (1, 400)
    assert message.forward_error == "HTTP 400: nope, bad request"
    assert message.forward_next_at is None


def test_a_timeout_is_retried_after_a_backoff(
    client: Client, inbound_endpoint: InboundEndpoint, route: InboundRoute, receiver: Receiver, fast_forwarding: None
) -> None:
    receiver.answer(200, delay=1.5)  # longer than the 0.5 s read timeout
    message = receive(client, inbound_endpoint)
    before = timezone.now()

    result = forwarding.attempt(message.pk)

    assert result.outcome == "retry"
    assert result.retry_in is not None and 24 <= result.retry_in <= 36  # 30 s ± 20 %
    message.refresh_from_db()
    assert message.forward_status == ForwardStatus.PENDING
    assert message.forward_lease_until is None  # the next attempt may claim it
    assert "No answer within 0.5 s" in message.forward_error
    assert message.forward_next_at is not None and message.forward_next_at >= before + timedelta(seconds=24)


def test_connection_errors_are_retried_until_the_attempts_run_out(
    client: Client, inbound_endpoint: InboundEndpoint, route: InboundRoute, fast_forwarding: None
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: connection refused
    InboundRoute.objects.filter(pk=route.pk).update(forward_url=f"http://127.0.0.1:{port}/x")
    message = receive(client, inbound_endpoint)

    outcomes = [forwarding.attempt(message.pk).outcome for _ in range(5)]

    assert outcomes == ["retry", "retry", "retry", "failed", "skipped"]
    message.refresh_from_db()
    assert message.forward_status == ForwardStatus.FAILED
    assert message.forward_attempts == 4
    assert message.forward_error.startswith("Gave up after 4 attempts. Last: Could not connect:")
    assert "refused" in message.forward_error.lower()


def test_the_backoff_doubles_and_is_capped(settings: Any) -> None:
    settings.REPORTING_FORWARD_BACKOFF_SECONDS = 30
    settings.REPORTING_FORWARD_BACKOFF_MAX_SECONDS = 600

    assert [forwarding.backoff(n, jitter=1.0) for n in range(1, 7)] == [30, 60, 120, 240, 480, 600]
    assert 24 <= forwarding.backoff(1) <= 36


def test_an_attempt_in_flight_is_not_taken_over(
    client: Client, inbound_endpoint: InboundEndpoint, route: InboundRoute, receiver: Receiver
) -> None:
    message = receive(client, inbound_endpoint)
    InboundMessage.objects.filter(pk=message.pk).update(forward_lease_until=timezone.now() + timedelta(minutes=1))

    assert forwarding.attempt(message.pk).outcome == "skipped"
    assert receiver.received == []

    InboundMessage.objects.filter(pk=message.pk).update(forward_lease_until=timezone.now() - timedelta(seconds=1))
    assert forwarding.attempt(message.pk).outcome == "delivered"  # the lease of a dead worker runs out


def test_the_forwarded_json_carries_the_attachments(
    client: Client, inbound_endpoint: InboundEndpoint, route: InboundRoute, receiver: Receiver
) -> None:
    message = receive(client, inbound_endpoint)
    stored = list(message.attachments.all())
    assert stored, "the inbound example has attachments"

    assert forwarding.attempt(message.pk).outcome == "delivered"

    sent = receiver.received[0].json()
    assert [a["name"] for a in sent["attachments"]] == [a.name for a in stored]
    for part, original in zip(sent["attachments"], stored, strict=True):
        content = base64.b64decode(part["content"])
        assert hashlib.sha256(content).hexdigest() == original.sha256 == part["sha256"]
    assert sent["payload"]["InboundMailFrom"] == message.mail_from


def test_an_address_route_wins_over_its_domain_route(
    client: Client, server: Server, inbound_endpoint: InboundEndpoint, route: InboundRoute, receiver: Receiver
) -> None:
    address = InboundRoute.objects.create(
        endpoint=inbound_endpoint, server=server, domain_or_address="support@parse.example.com"
    )

    message = receive(client, inbound_endpoint)

    assert message.route == address
    assert message.forward_status == ForwardStatus.NONE  # that route does not forward
    other = receive(client, inbound_endpoint, InboundRcptTo="Sales@Parse.example.com", SpamScore=1.5)
    assert other.route == route and other.forward_status == ForwardStatus.PENDING


def test_messages_of_a_route_without_forwarding_are_not_forwarded(
    client: Client, server: Server, inbound_endpoint: InboundEndpoint, django_capture_on_commit_callbacks: Any
) -> None:
    InboundRoute.objects.create(endpoint=inbound_endpoint, server=server, domain_or_address="parse.example.com")

    with django_capture_on_commit_callbacks() as callbacks:
        message = receive(client, inbound_endpoint)

    assert (message.forward_status, message.forward_next_at) == (ForwardStatus.NONE, None)
    assert callbacks == []


def test_switching_forwarding_off_fails_what_is_still_pending_with_a_reason(
    client: Client, inbound_endpoint: InboundEndpoint, route: InboundRoute, receiver: Receiver
) -> None:
    message = receive(client, inbound_endpoint)
    routes.set_forwarding(route=route, url="")

    assert forwarding.attempt(message.pk).outcome == "failed"

    message.refresh_from_db()
    assert message.forward_status == ForwardStatus.FAILED
    assert "switched off" in message.forward_error
    assert receiver.received == []


def test_the_sweep_re_enqueues_only_stale_pending_forwards(
    client: Client,
    inbound_endpoint: InboundEndpoint,
    route: InboundRoute,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stale, _fresh, leased, failed = (
        receive(client, inbound_endpoint, InboundIpAddress=f"198.51.100.{n}") for n in range(4)
    )
    long_ago = timezone.now() - timedelta(hours=1)
    InboundMessage.objects.filter(pk__in=[stale.pk, leased.pk, failed.pk]).update(forward_next_at=long_ago)
    InboundMessage.objects.filter(pk=leased.pk).update(forward_lease_until=timezone.now() + timedelta(minutes=1))
    InboundMessage.objects.filter(pk=failed.pk).update(forward_status=ForwardStatus.FAILED)
    queued: list[int] = []
    monkeypatch.setattr(forward_inbound_message, "delay", lambda pk: queued.append(pk))

    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_inbound_forwards.apply().get() == 1

    assert queued == [stale.pk]
    stale.refresh_from_db()
    assert stale.forward_next_at is not None and stale.forward_next_at > long_ago  # not asked again next sweep
    with django_capture_on_commit_callbacks(execute=True):
        assert forwarding.sweep() == 0


def test_the_beat_schedule_runs_the_sweep_and_the_nightly_mx_check() -> None:
    from config.celery import app

    tasks = {entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"reporting.tasks.sweep_inbound_forwards", "reporting.tasks.nightly_inbound_mx_checks"} <= tasks
    assert {"reporting.tasks.sweep_inbound_forwards", "reporting.tasks.nightly_inbound_mx_checks"} <= set(app.tasks)


# --- Pages ------------------------------------------------------------------------------------


def route_url(name: str, server: Server, route: InboundRoute) -> str:
    return reverse(f"reporting:{name}", args=[server.pk, route.endpoint_id, route.pk])


def test_setting_a_forwarding_url_shows_its_secret_once(
    as_user: AsUser, ops: User, server: Server, inbound_endpoint: InboundEndpoint
) -> None:
    route = InboundRoute.objects.create(endpoint=inbound_endpoint, server=server, domain_or_address="parse.example.com")
    client = as_user(ops)
    field_name = f"route-{route.pk}-forward_url"

    response = client.post(route_url("route_forwarding", server, route), {field_name: "https://app.example.com/in"})

    route.refresh_from_db()
    assert response.status_code == 200
    assert route.forward_url == "https://app.example.com/in"
    assert route.forward_secret and route.forward_secret in response.content.decode()
    assert AuditLog.objects.filter(action="reporting.inbound_route.forwarding", target="parse.example.com").exists()
    page = client.get(reverse("reporting:endpoint_detail", args=[server.pk, "inbound", inbound_endpoint.pk]))
    assert route.forward_secret not in page.content.decode()
    assert route.masked_forward_secret in page.content.decode()

    changed = client.post(route_url("route_forwarding", server, route), {field_name: "https://app.example.com/v2"})
    assert changed.status_code == 302  # the URL changed, the secret did not: nothing to show
    kept = route.forward_secret
    route.refresh_from_db()
    assert (route.forward_url, route.forward_secret) == ("https://app.example.com/v2", kept)

    rotated = client.post(route_url("route_forward_rotate", server, route))
    route.refresh_from_db()
    assert route.forward_secret != kept and route.forward_secret in rotated.content.decode()

    client.post(route_url("route_forwarding", server, route), {field_name: ""})
    route.refresh_from_db()
    assert (route.forward_url, route.forward_secret) == ("", "")


def test_a_forwarding_url_that_is_not_http_is_refused_with_a_reason(
    as_user: AsUser, ops: User, server: Server, inbound_endpoint: InboundEndpoint
) -> None:
    route = InboundRoute.objects.create(endpoint=inbound_endpoint, server=server, domain_or_address="parse.example.com")

    response = as_user(ops).post(
        route_url("route_forwarding", server, route), {f"route-{route.pk}-forward_url": "ftp://files.example.com/in"}
    )

    assert response.status_code == 400
    assert "must start with http:// or https://" in response.content.decode()
    route.refresh_from_db()
    assert (route.forward_url, route.forward_secret) == ("", "")


def test_viewers_cannot_change_forwarding(
    as_user: AsUser, viewer: User, outsider: User, server: Server, inbound_endpoint: InboundEndpoint
) -> None:
    route = InboundRoute.objects.create(endpoint=inbound_endpoint, server=server, domain_or_address="parse.example.com")
    data = {f"route-{route.pk}-forward_url": "https://app.example.com/in"}

    assert as_user(viewer).post(route_url("route_forwarding", server, route), data).status_code == 403
    assert as_user(outsider).post(route_url("route_forwarding", server, route), data).status_code == 404
    assert as_user(viewer).post(route_url("route_forward_rotate", server, route)).status_code == 403
    route.refresh_from_db()
    assert route.forward_url == ""


def test_the_inbound_browser_shows_each_messages_forwarding(
    as_user: AsUser,
    client: Client,
    ops: User,
    viewer: User,
    server: Server,
    inbound_endpoint: InboundEndpoint,
    route: InboundRoute,
    receiver: Receiver,
    fast_forwarding: None,
) -> None:
    receiver.answer(400)
    failed = receive(client, inbound_endpoint)
    forwarding.attempt(failed.pk)
    receiver.answer(200)
    delivered = receive(client, inbound_endpoint, InboundIpAddress="198.51.100.9")
    forwarding.attempt(delivered.pk)

    listing = as_user(viewer).get(reverse("reporting:inbound_messages", args=[server.pk])).content.decode()
    assert listing.count("forward-delivered") == 1 and listing.count("forward-failed") == 1

    detail_url = reverse("reporting:inbound_message", args=[server.pk, failed.pk])
    as_viewer = as_user(viewer).get(detail_url).content.decode()
    assert "HTTP 400: nope, bad request" in as_viewer and "Why it failed" in as_viewer
    assert "Forward again" not in as_viewer
    assert "Forward again" in as_user(ops).get(detail_url).content.decode()


def test_forwarding_a_failed_message_again_starts_fresh_attempts(
    as_user: AsUser,
    client: Client,
    ops: User,
    viewer: User,
    server: Server,
    inbound_endpoint: InboundEndpoint,
    route: InboundRoute,
    receiver: Receiver,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver.answer(400)
    message = receive(client, inbound_endpoint)
    forwarding.attempt(message.pk)
    url = reverse("reporting:inbound_forward_retry", args=[server.pk, message.pk])
    assert as_user(viewer).post(url).status_code == 403
    queued: list[int] = []
    monkeypatch.setattr(forward_inbound_message, "delay", lambda pk: queued.append(pk))

    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(ops).post(url)

    assert response.status_code == 302
    message.refresh_from_db()
    assert (message.forward_status, message.forward_attempts) == (ForwardStatus.PENDING, 0)
    assert queued == [message.pk]
    assert AuditLog.objects.filter(action="reporting.inbound_forward.retry").count() == 1
    receiver.answer(200)
    assert forward_inbound_message.apply(args=[message.pk]).get() == "delivered"


def test_a_private_target_is_refused_at_send_time_in_production(
    client: Client,
    inbound_endpoint: InboundEndpoint,
    route: InboundRoute,
    receiver: Receiver,
    fast_forwarding: None,
    settings: Any,
) -> None:
    message = receive(client, inbound_endpoint)
    settings.MAILROOM_ALLOW_PRIVATE_TARGETS = False  # the receiver listens on 127.0.0.1

    assert forward_inbound_message.apply(args=[message.pk]).get() == "failed"

    message.refresh_from_db()
    assert receiver.received == []
    assert message.forward_status == ForwardStatus.FAILED
    assert "not a public address" in message.forward_error
