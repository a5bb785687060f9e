"""End to end over real HTTP: register an endpoint at the sandbox, send mail, see the events live.

The sandbox is Mailroom's local SocketLabs served by `live_server`; the test only sets it up through its
models (as its own tests do) and runs its dispatcher, which is what the sandbox's worker does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from django.test import Client
from django.urls import reverse

from accounts.models import AuditLog, Server, User
from reporting import processing
from reporting.models import Event, EventEndpoint, Outcome, RawEvent, RequestLog
from sandbox import webhooks as sandbox_webhooks
from sandbox.models import SandboxEventWebhook, SandboxServer
from tests.sandbox.conftest import make_sandbox_server

AsUser = Callable[[User], Client]
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def wired(live_server: Any, settings: Any, server: Server, short_db_sessions: None) -> tuple[Server, Any]:
    settings.SANDBOX_ENABLED = True
    settings.REPORTING_PUBLIC_BASE_URL = live_server.url
    keys = make_sandbox_server()
    SandboxServer.objects.filter(pk=keys.server.pk).update(
        bounce_rate=0, deferral_rate=0, complaint_rate=0, open_rate=0, click_rate=0, unsubscribe_rate=0
    )
    server.socketlabs_id = keys.server_id
    server.api_url = f"{live_server.url}/sandbox/api/v2"
    server.inject_url = f"{live_server.url}/sandbox/inject/api/v1/email"
    server.api_key = keys.api_key
    server.injection_key = keys.injection_key
    server.save()
    return server, keys


@pytest.mark.django_db(transaction=True)
def test_mail_sent_through_the_sandbox_shows_up_in_the_feed_and_the_timeline(
    as_user: AsUser, ops: User, viewer: User, wired: tuple[Server, Any]
) -> None:
    server, keys = wired
    endpoint = EventEndpoint.objects.create(server=server, name="sandbox")
    client = as_user(ops)

    client.post(reverse("reporting:endpoint_register", args=[server.pk, "events", endpoint.pk]))

    endpoint.refresh_from_db()
    registered = SandboxEventWebhook.objects.get()
    assert registered.status == "Active"  # it posted a Validation event here and got 200
    assert registered.url.endswith(endpoint.path)
    assert endpoint.socketlabs_webhook_id == str(registered.pk)
    assert RequestLog.objects.filter(endpoint=endpoint, outcome=Outcome.VALIDATION).count() == 1
    assert AuditLog.objects.filter(action="reporting.webhook_endpoint.register").exists()

    sent = requests.post(
        server.inject_url,
        json={
            "ServerId": keys.server_id,
            "Messages": [
                {
                    "From": {"EmailAddress": "shop@example.com"},
                    "To": [{"EmailAddress": "open.ann@example.net"}],
                    "Subject": "Hello",
                    "TextBody": "Hi",
                    "MessageId": "hello-1",
                    "MailingId": "launch",
                }
            ],
        },
        headers={"Authorization": f"Bearer {keys.injection_key}"},
        timeout=10,
    )
    assert sent.json()["ErrorCode"] == "Success"
    sandbox_webhooks.dispatch_due(budget_seconds=20)
    processing.drain()

    assert sorted(Event.objects.values_list("type", flat=True)) == ["delivered", "open", "queued"]
    reader = as_user(viewer)
    feed = reader.get(reverse("activity:feed", args=[server.pk]), **HX).content.decode()
    assert "open.ann@example.net" in feed and "event-open" in feed and "event-delivered" in feed
    timeline = reader.get(reverse("activity:timeline", args=[server.pk]), {"q": "open.ann@example.net"})
    assert [e.type for e in timeline.context["events"]] == ["queued", "delivered", "open"]
    assert all(e.message_id == "hello-1" and e.mailing_id == "launch" for e in timeline.context["events"])


@pytest.mark.django_db(transaction=True)
def test_rotating_a_registered_secret_registers_the_new_one(
    as_user: AsUser, ops: User, wired: tuple[Server, Any]
) -> None:
    server, _keys = wired
    endpoint = EventEndpoint.objects.create(server=server, name="sandbox")
    client = as_user(ops)
    client.post(reverse("reporting:endpoint_register", args=[server.pk, "events", endpoint.pk]))

    client.post(reverse("reporting:endpoint_rotate", args=[server.pk, "events", endpoint.pk]))

    endpoint.refresh_from_db()
    registered = SandboxEventWebhook.objects.get()  # the old registration was removed
    assert registered.secret_key == endpoint.secret_key
    assert endpoint.socketlabs_webhook_id == str(registered.pk)


@pytest.mark.django_db(transaction=True)
def test_deleting_a_registered_endpoint_unregisters_it(as_user: AsUser, ops: User, wired: tuple[Server, Any]) -> None:
    server, _keys = wired
    endpoint = EventEndpoint.objects.create(server=server, name="sandbox")
    client = as_user(ops)
    client.post(reverse("reporting:endpoint_register", args=[server.pk, "events", endpoint.pk]))

    client.post(reverse("reporting:endpoint_delete", args=[server.pk, "events", endpoint.pk]))

    assert not SandboxEventWebhook.objects.exists()
    assert not EventEndpoint.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_refused_registration_says_why(as_user: AsUser, ops: User, wired: tuple[Server, Any]) -> None:
    server, _keys = wired
    server.api_key = "wrong-key"
    server.save()
    endpoint = EventEndpoint.objects.create(server=server, name="sandbox")

    response = as_user(ops).post(
        reverse("reporting:endpoint_register", args=[server.pk, "events", endpoint.pk]), follow=True
    )

    assert "SocketLabs did not register the endpoint" in response.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.socketlabs_webhook_id == ""


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_registered_for_legacy_form_posts_receives_form_encoded_events(
    as_user: AsUser, ops: User, wired: tuple[Server, Any]
) -> None:
    server, keys = wired
    endpoint = EventEndpoint.objects.create(server=server, name="legacy")
    client = as_user(ops)

    client.post(reverse("reporting:endpoint_register", args=[server.pk, "events", endpoint.pk]), {"format": "form"})

    endpoint.refresh_from_db()
    registered = SandboxEventWebhook.objects.get()
    assert (registered.format, registered.status) == ("form", "Active")  # it validated with a form post
    assert endpoint.webhook_format == "form"
    sent = requests.post(
        server.inject_url,
        json={
            "ServerId": keys.server_id,
            "Messages": [
                {
                    "From": {"EmailAddress": "shop@example.com"},
                    "To": [{"EmailAddress": "form.fan@example.net"}],
                    "Subject": "Hello",
                    "TextBody": "Hi",
                }
            ],
        },
        headers={"Authorization": f"Bearer {keys.injection_key}"},
        timeout=10,
    )
    assert sent.json()["ErrorCode"] == "Success"
    sandbox_webhooks.dispatch_due(budget_seconds=20)
    processing.drain()

    assert set(RawEvent.objects.values_list("content_type", flat=True)) == {"form"}
    assert set(Event.objects.values_list("address", flat=True)) == {"form.fan@example.net"}

    # A secret rotation registers again and keeps the chosen format.
    client.post(reverse("reporting:endpoint_rotate", args=[server.pk, "events", endpoint.pk]))
    assert SandboxEventWebhook.objects.get().format == "form"
    page = client.get(reverse("reporting:endpoint_detail", args=[server.pk, "events", endpoint.pk])).content.decode()
    assert "Form-encoded (legacy)" in page


@pytest.mark.django_db(transaction=True)
def test_registration_asks_for_json_unless_told_otherwise_and_refuses_unknown_formats(
    as_user: AsUser, ops: User, wired: tuple[Server, Any]
) -> None:
    server, _keys = wired
    endpoint = EventEndpoint.objects.create(server=server, name="default")
    client = as_user(ops)
    url = reverse("reporting:endpoint_register", args=[server.pk, "events", endpoint.pk])

    refused = client.post(url, {"format": "xml"}, follow=True)
    assert "Choose a body format" in refused.content.decode()
    assert not SandboxEventWebhook.objects.exists()

    client.post(url)

    assert SandboxEventWebhook.objects.get().format == "json"
    endpoint.refresh_from_db()
    assert endpoint.webhook_format == "json"
