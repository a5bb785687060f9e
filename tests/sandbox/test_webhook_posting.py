"""Event webhooks (§5): one event per POST to a real local receiver, JSON or legacy form, retries, validation."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from config.celery import app as celery_app
from sandbox import tasks, webhooks
from sandbox.models import SandboxEvent, SandboxEventWebhook, SandboxServer, SandboxWebhookDelivery
from tests.sandbox.conftest import SandboxKeys
from tests.sandbox.injection_support import (
    INJECT_PATH,
    Receiver,
    message,
    post_injection,
    request_body,
    running_receiver,
)

ISO_7 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
RFC_1123 = re.compile(r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as box:
        yield box


@pytest.fixture(autouse=True)
def fast_retries(settings: Any) -> None:
    settings.SANDBOX_WEBHOOK_RETRY_BASE_SECONDS = 0
    settings.SANDBOX_WEBHOOK_TIMEOUT = (1.0, 2.0)


def quiet(keys: SandboxKeys) -> SandboxServer:
    SandboxServer.objects.filter(pk=keys.server.pk).update(
        bounce_rate=0, deferral_rate=0, complaint_rate=0, open_rate=0, click_rate=0, unsubscribe_rate=0
    )
    keys.server.refresh_from_db()
    return keys.server


def endpoint(keys: SandboxKeys, url: str, **fields: Any) -> SandboxEventWebhook:
    defaults: dict[str, Any] = {"secret_key": "whsec-abc", "events": [], "format": "json", "status": "Active"}
    defaults.update(fields)
    return SandboxEventWebhook.objects.create(server=keys.server, url=url, **defaults)


def send_to(client: Client, keys: SandboxKeys, *addresses: str, **fields: Any) -> None:
    msg = message(To=[{"EmailAddress": a} for a in addresses], **fields)
    response = post_injection(client, request_body(keys.server_id, msg), key=keys.injection_key)
    assert json.loads(response.content)["ErrorCode"] == "Success"


# --- shape -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_posts_one_json_event_per_request_with_the_contract_fields(
    client: Client, sandbox_server: SandboxKeys, receiver: Receiver
) -> None:
    quiet(sandbox_server)
    endpoint(sandbox_server, receiver.url("/hook"))
    send_to(
        client,
        sandbox_server,
        "open@example.net",
        MailingId="spring",
        MessageId="order-42",
        Metadata=[{"Key": "userId", "Value": "77"}],
        Tags=["receipt"],
    )
    stats = webhooks.dispatch_due()
    assert (stats.events, stats.posts) == (3, 3)
    posted = [r.json() for r in receiver.on("/hook")]
    assert [p["Type"] for p in posted] == ["Queued", "Delivered", "Tracking"]
    assert all(r.headers["Content-Type"].startswith("application/json") for r in receiver.requests)
    for payload in posted:
        assert ISO_7.match(payload["DateTime"])
        assert payload["ServerId"] == sandbox_server.server_id
        assert payload["SecretKey"] == "whsec-abc"
        assert payload["Address"] == "open@example.net"
        assert (payload["MailingId"], payload["MessageId"]) == ("spring", "order-42")
        assert payload["SubaccountId"] is None
        assert payload["Data"] == {"Meta": [{"Key": "userId", "Value": "77"}], "Tags": ["receipt"]}
    queued, delivered, tracking = posted
    assert queued["FromAddress"] == "shop@example.com"
    assert queued["Subject"] == "Your order"
    assert queued["MessageSize"] > 0
    assert "IpPoolId" not in queued
    assert delivered["IpPoolId"] is None
    assert delivered["Response"].startswith("250")
    assert delivered["RemoteMta"] == "mx.example.net"
    assert delivered["LocalIp"]
    assert tracking["TrackingType"] == "Open"
    assert tracking["ClientIp"].startswith("203.0.113.")
    assert tracking["UserAgent"]


@pytest.mark.django_db
def test_failures_and_complaints_carry_their_own_fields(
    client: Client, sandbox_server: SandboxKeys, receiver: Receiver
) -> None:
    quiet(sandbox_server)
    endpoint(sandbox_server, receiver.url("/hook"))
    send_to(client, sandbox_server, "bounce@example.net", "complain@example.net")
    webhooks.dispatch_due()
    by_type = {(p["Type"], p["Address"]): p for p in (r.json() for r in receiver.requests)}
    failed = by_type[("Failed", "bounce@example.net")]
    assert failed["FailureType"] == "Permanent"
    assert failed["FailureCode"] == 2001
    assert failed["FromAddress"] == "shop@example.com"
    assert failed["BounceStatus"] == "5.1.1"
    assert failed["IpPoolId"] is None
    complaint = by_type[("Complaint", "complain@example.net")]
    assert complaint["FblType"] == "abuse"
    assert complaint["From"] == "shop@example.com"
    assert "Data" not in complaint
    assert "SubaccountId" not in complaint


@pytest.mark.django_db
def test_a_form_endpoint_gets_the_legacy_url_encoded_shape(
    client: Client, sandbox_server: SandboxKeys, receiver: Receiver
) -> None:
    quiet(sandbox_server)
    endpoint(sandbox_server, receiver.url("/legacy"), format="form")
    send_to(client, sandbox_server, "bounce@example.net", "click@example.net")
    webhooks.dispatch_due()
    assert all(r.headers["Content-Type"] == "application/x-www-form-urlencoded" for r in receiver.on("/legacy"))
    forms = [r.form() for r in receiver.on("/legacy")]
    failed = next(f for f in forms if f["Type"] == "Failed")
    assert failed["FailureType"] == "1"
    assert failed["FailureCode"] == "2001"
    assert failed["ServerId"] == str(sandbox_server.server_id)
    assert failed["SecretKey"] == "whsec-abc"
    assert failed["IpPoolId"] == ""
    assert RFC_1123.match(failed["DateTime"])
    assert "Data" not in failed
    click = next(f for f in forms if f["Type"] == "Tracking")
    assert click["TrackingType"] == "0"
    assert click["Url"] == "https://example.com/orders/42"


# --- who gets what --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_only_posts_the_types_an_endpoint_wants_and_only_to_active_endpoints(
    client: Client, sandbox_server: SandboxKeys, receiver: Receiver
) -> None:
    quiet(sandbox_server)
    endpoint(sandbox_server, receiver.url("/delivered"), events=["Delivered"])
    endpoint(sandbox_server, receiver.url("/all"))
    endpoint(sandbox_server, receiver.url("/failed-validation"), status="Failed")
    send_to(client, sandbox_server, "a@example.net", "b@example.net")
    webhooks.dispatch_due()
    assert [r.json()["Type"] for r in receiver.on("/delivered")] == ["Delivered", "Delivered"]
    assert len(receiver.on("/all")) == 4
    assert receiver.on("/failed-validation") == []


@pytest.mark.django_db
def test_events_of_another_server_go_to_that_servers_endpoints(
    client: Client, sandbox_server: SandboxKeys, other_sandbox_server: SandboxKeys, receiver: Receiver
) -> None:
    quiet(sandbox_server)
    endpoint(other_sandbox_server, receiver.url("/other"))
    send_to(client, sandbox_server, "a@example.net")
    webhooks.dispatch_due()
    assert receiver.requests == []


@pytest.mark.django_db
def test_each_event_is_claimed_and_posted_once(client: Client, sandbox_server: SandboxKeys, receiver: Receiver) -> None:
    quiet(sandbox_server)
    endpoint(sandbox_server, receiver.url("/hook"))
    send_to(client, sandbox_server, "a@example.net")
    webhooks.dispatch_due()
    webhooks.dispatch_due()
    assert webhooks.claim_due_events() == 0
    assert len(receiver.requests) == 2
    assert set(SandboxWebhookDelivery.objects.values_list("status", "attempts")) == {("delivered", 1)}


@pytest.mark.django_db
def test_events_not_yet_due_wait(client: Client, sandbox_server: SandboxKeys, receiver: Receiver) -> None:
    quiet(sandbox_server)
    SandboxServer.objects.filter(pk=sandbox_server.server.pk).update(delivery_delay_seconds=60)
    endpoint(sandbox_server, receiver.url("/hook"))
    send_to(client, sandbox_server, "a@example.net")
    webhooks.dispatch_due()
    assert [r.json()["Type"] for r in receiver.requests] == ["Queued"]
    assert SandboxEvent.objects.filter(happened=False).get().type == "Delivered"


# --- retries ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_retries_server_errors_until_the_endpoint_accepts(
    client: Client, sandbox_server: SandboxKeys, receiver: Receiver
) -> None:
    quiet(sandbox_server)
    endpoint(sandbox_server, receiver.url("/flaky"), events=["Queued"])
    receiver.answer("/flaky", (500, "oops"), (503, "busy"))
    send_to(client, sandbox_server, "a@example.net")
    webhooks.dispatch_due()
    assert [r.json()["Type"] for r in receiver.on("/flaky")] == ["Queued"] * 3
    delivery = SandboxWebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.last_error) == (
        "delivered",
        3,
        200,
        "",
    )


@pytest.mark.django_db
def test_it_gives_up_after_the_last_attempt_and_records_why(
    client: Client, sandbox_server: SandboxKeys, receiver: Receiver, settings: Any
) -> None:
    settings.SANDBOX_WEBHOOK_MAX_ATTEMPTS = 3
    quiet(sandbox_server)
    endpoint(sandbox_server, receiver.url("/down"), events=["Queued"])
    receiver.default = (502, "bad gateway")
    send_to(client, sandbox_server, "a@example.net")
    webhooks.dispatch_due()
    assert len(receiver.on("/down")) == 3
    delivery = SandboxWebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.last_error) == (
        "failed",
        3,
        502,
        "HTTP 502",
    )


@pytest.mark.django_db
@pytest.mark.parametrize("status", [400, 401, 404, 410])
def test_it_never_retries_a_client_error(
    client: Client, sandbox_server: SandboxKeys, receiver: Receiver, status: int
) -> None:
    quiet(sandbox_server)
    endpoint(sandbox_server, receiver.url("/strict"), events=["Queued"])
    receiver.default = (status, "no")
    send_to(client, sandbox_server, "a@example.net")
    webhooks.dispatch_due()
    assert len(receiver.on("/strict")) == 1
    delivery = SandboxWebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 1, status)


@pytest.mark.django_db
def test_it_retries_timeouts(client: Client, sandbox_server: SandboxKeys, receiver: Receiver, settings: Any) -> None:
    settings.SANDBOX_WEBHOOK_TIMEOUT = (1.0, 0.2)
    settings.SANDBOX_WEBHOOK_MAX_ATTEMPTS = 2
    quiet(sandbox_server)
    endpoint(sandbox_server, receiver.url("/slow"), events=["Queued"])
    receiver.delay = 0.5
    send_to(client, sandbox_server, "a@example.net")
    webhooks.dispatch_due()
    assert len(receiver.on("/slow")) == 2
    delivery = SandboxWebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 2, None)
    assert "Timed out" in delivery.last_error


@pytest.fixture
def closed_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    yield port


@pytest.mark.django_db
def test_it_retries_connection_errors(
    client: Client, sandbox_server: SandboxKeys, closed_port: int, settings: Any
) -> None:
    settings.SANDBOX_WEBHOOK_MAX_ATTEMPTS = 2
    quiet(sandbox_server)
    endpoint(sandbox_server, f"http://127.0.0.1:{closed_port}/nobody", events=["Queued"])
    send_to(client, sandbox_server, "a@example.net")
    webhooks.dispatch_due()
    delivery = SandboxWebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert delivery.last_error.startswith("Could not connect")


@pytest.mark.django_db
def test_a_retry_waits_for_its_backoff(
    client: Client, sandbox_server: SandboxKeys, receiver: Receiver, settings: Any
) -> None:
    settings.SANDBOX_WEBHOOK_RETRY_BASE_SECONDS = 30
    quiet(sandbox_server)
    endpoint(sandbox_server, receiver.url("/flaky"), events=["Queued"])
    receiver.answer("/flaky", (500, "oops"))
    send_to(client, sandbox_server, "a@example.net")
    before = timezone.now()
    webhooks.dispatch_due()
    webhooks.dispatch_due()
    assert len(receiver.on("/flaky")) == 1
    delivery = SandboxWebhookDelivery.objects.get()
    assert delivery.status == "pending"
    assert delivery.next_attempt_at - before >= timedelta(seconds=29)
    SandboxWebhookDelivery.objects.update(next_attempt_at=timezone.now())
    webhooks.dispatch_due()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)


def test_backoff_doubles(settings: Any) -> None:
    settings.SANDBOX_WEBHOOK_RETRY_BASE_SECONDS = 2
    assert [webhooks.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]


# --- validation ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_validating_an_endpoint_posts_the_validation_event(sandbox_server: SandboxKeys, receiver: Receiver) -> None:
    hook = endpoint(sandbox_server, receiver.url("/new"), status="Pending")
    assert webhooks.validate_endpoint(hook) is True
    posted = receiver.on("/new")[0].json()
    assert set(posted) == {"Type", "DateTime", "ServerId", "SecretKey"}
    assert (posted["Type"], posted["ServerId"], posted["SecretKey"]) == (
        "Validation",
        sandbox_server.server_id,
        "whsec-abc",
    )
    hook.refresh_from_db()
    assert hook.status == "Active"


@pytest.mark.django_db
def test_an_endpoint_that_does_not_answer_200_fails_validation(sandbox_server: SandboxKeys, receiver: Receiver) -> None:
    receiver.answer("/new", (401, "bad key"))
    hook = endpoint(sandbox_server, receiver.url("/new"), status="Pending")
    assert webhooks.validate_endpoint(hook) is False
    hook.refresh_from_db()
    assert hook.status == "Failed"


@pytest.mark.django_db
def test_a_form_endpoint_is_validated_with_a_form_post(sandbox_server: SandboxKeys, receiver: Receiver) -> None:
    hook = endpoint(sandbox_server, receiver.url("/legacy"), format="form")
    assert tasks.validate_endpoint(hook.pk) is True
    form = receiver.on("/legacy")[0].form()
    assert form["Type"] == "Validation"
    assert form["SecretKey"] == "whsec-abc"
    assert RFC_1123.match(form["DateTime"])


# --- enqueuing ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_injection_enqueues_one_dispatch_after_commit(
    client: Client, sandbox_server: SandboxKeys, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(tasks.dispatch_events, "delay", lambda: calls.append(1))
    body = request_body(sandbox_server.server_id, message(), message(), message())
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        post_injection(client, body, key=sandbox_server.injection_key)
    assert len(callbacks) == 1
    assert calls == [1]


@pytest.mark.django_db
def test_a_refused_injection_enqueues_nothing(
    client: Client, sandbox_server: SandboxKeys, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        post_injection(
            client, request_body(sandbox_server.server_id, message(Subject="")), key=sandbox_server.injection_key
        )
    assert callbacks == []


@pytest.mark.django_db
def test_a_broker_outage_does_not_fail_the_injection(
    client: Client, sandbox_server: SandboxKeys, monkeypatch: Any
) -> None:
    def down() -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.dispatch_events, "delay", down)
    response = post_injection(client, request_body(sandbox_server.server_id), key=sandbox_server.injection_key)
    assert json.loads(response.content)["ErrorCode"] == "Success"


@pytest.mark.django_db
def test_the_task_does_nothing_when_the_sandbox_is_off(
    client: Client, sandbox_server: SandboxKeys, receiver: Receiver, settings: Any
) -> None:
    endpoint(sandbox_server, receiver.url("/hook"))
    SandboxEvent.objects.create(server=sandbox_server.server, type="Queued", address="a@example.net")
    settings.SANDBOX_ENABLED = False
    assert tasks.dispatch_events() == {"events": 0, "posts": 0}
    settings.SANDBOX_ENABLED = True
    assert tasks.dispatch_events() == {"events": 1, "posts": 1}


def test_beat_sweeps_due_events_every_few_seconds() -> None:
    entry = django_settings.CELERY_BEAT_SCHEDULE["sandbox-dispatch-events"]
    assert entry["task"] == "sandbox.tasks.dispatch_events"
    assert entry["options"]["expires"] < entry["schedule"] <= 5


@pytest.fixture
def eager_celery() -> Iterator[None]:
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = previous


def test_an_injection_over_http_ends_in_webhooks_at_the_receiver(
    live_server: Any, sandbox_server: SandboxKeys, receiver: Receiver, eager_celery: None
) -> None:
    quiet(sandbox_server)
    endpoint(sandbox_server, receiver.url("/hook"))
    body = request_body(sandbox_server.server_id, message(To=[{"EmailAddress": "click@example.net"}]))
    response = requests.post(
        live_server.url + INJECT_PATH,
        json=body,
        headers={"Authorization": f"Bearer {sandbox_server.injection_key}"},
        timeout=30,
    )
    assert response.json()["ErrorCode"] == "Success"
    assert [r.json()["Type"] for r in receiver.requests] == ["Queued", "Delivered", "Tracking"]
    assert receiver.requests[-1].json()["TrackingType"] == "Click"
