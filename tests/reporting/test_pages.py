"""Pages: roles on every page (viewer reads, Ops/Admin change, outsider 404), HTMX fragments, audit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditLog, Server, User
from reporting import processing
from reporting.models import DeadLetter, Event, EventEndpoint, InboundEndpoint, InboundMessage, RawEvent
from tests.reporting.conftest import EVENT_SECRET, fixture_bytes, fixture_json, post

AsUser = Callable[[User], Client]


@pytest.fixture
def stored(client: Client, endpoint: EventEndpoint, inbound_endpoint: InboundEndpoint) -> dict[str, Any]:
    """One of each: processed events, a dead letter, an inbound message with an attachment."""
    for name in ("delivered.json", "failed.json", "tracking_click.json"):
        post(client, f"/hooks/socketlabs/events/{endpoint.uuid}/", fixture_bytes(name))
    post(client, f"/hooks/socketlabs/events/{endpoint.uuid}/", fixture_json("failed.json") | {"Type": "Strange"})
    processing.drain()
    post(client, f"/hooks/socketlabs/inbound/{inbound_endpoint.uuid}/", fixture_bytes("inbound.json"))
    message = InboundMessage.objects.get()
    return {
        "endpoint": endpoint,
        "inbound_endpoint": inbound_endpoint,
        "raw": RawEvent.objects.order_by("id").first(),
        "message": message,
        "attachment": message.attachments.get(),
        "dead_letter": DeadLetter.objects.get(),
    }


def read_urls(server: Server, stored: dict[str, Any]) -> list[str]:
    s = server.pk
    return [
        reverse("reporting:endpoints", args=[s, "events"]),
        reverse("reporting:endpoints", args=[s, "inbound"]),
        reverse("reporting:endpoint_detail", args=[s, "events", stored["endpoint"].pk]),
        reverse("reporting:endpoint_detail", args=[s, "inbound", stored["inbound_endpoint"].pk]),
        reverse("reporting:request_log", args=[s]),
        reverse("reporting:raw_event", args=[s, stored["raw"].pk]),
        reverse("reporting:dead_letters", args=[s]),
        reverse("reporting:inbound_messages", args=[s]),
        reverse("reporting:inbound_message", args=[s, stored["message"].pk]),
        reverse("reporting:inbound_message_html", args=[s, stored["message"].pk]),
        reverse("reporting:inbound_attachment", args=[s, stored["attachment"].pk]),
        reverse("activity:feed", args=[s]),
        reverse("activity:timeline", args=[s]) + "?q=user@example.net",
    ]


def change_requests(server: Server, stored: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    s = server.pk
    endpoint = stored["endpoint"]
    return [
        (reverse("reporting:endpoints", args=[s, "events"]), {"name": "new"}),
        (reverse("reporting:endpoint_detail", args=[s, "events", endpoint.pk]), {"name": "renamed"}),
        (reverse("reporting:endpoint_rotate", args=[s, "events", endpoint.pk]), {}),
        (reverse("reporting:endpoint_register", args=[s, "events", endpoint.pk]), {}),
        (reverse("reporting:endpoint_delete", args=[s, "inbound", stored["inbound_endpoint"].pk]), {}),
        (reverse("reporting:replay", args=[s]), {"raw_id": [stored["raw"].pk]}),
        (reverse("reporting:dead_letter_replay", args=[s]), {"dead_letter_id": [stored["dead_letter"].pk]}),
    ]


def test_a_viewer_reads_every_page(as_user: AsUser, viewer: User, server: Server, stored: dict[str, Any]) -> None:
    client = as_user(viewer)
    for url in read_urls(server, stored):
        assert client.get(url).status_code == 200, url


def test_a_viewer_cannot_change_anything(as_user: AsUser, viewer: User, server: Server, stored: dict[str, Any]) -> None:
    client = as_user(viewer)
    for url, data in change_requests(server, stored):
        assert client.post(url, data).status_code == 403, url
    assert (
        client.get(reverse("reporting:endpoint_delete", args=[server.pk, "events", stored["endpoint"].pk])).status_code
        == 403
    )
    assert EventEndpoint.objects.count() == 1
    assert not AuditLog.objects.exclude(action="access.denied").exists()  # refusals are audited, nothing else


def test_an_outsider_gets_404_everywhere(
    as_user: AsUser, outsider: User, server: Server, stored: dict[str, Any]
) -> None:
    client = as_user(outsider)
    for url in read_urls(server, stored):
        assert client.get(url).status_code == 404, url
    for url, data in change_requests(server, stored):
        assert client.post(url, data).status_code == 404, url


def test_objects_of_another_server_are_404_even_for_its_admin(
    as_user: AsUser, outsider: User, other_server: Server, server: Server, stored: dict[str, Any]
) -> None:
    # The outsider is Admin of other_server: its ids must not reach server's objects.
    client = as_user(outsider)
    o = other_server.pk
    assert (
        client.get(reverse("reporting:endpoint_detail", args=[o, "events", stored["endpoint"].pk])).status_code == 404
    )
    assert client.get(reverse("reporting:inbound_message", args=[o, stored["message"].pk])).status_code == 404
    assert client.get(reverse("reporting:inbound_attachment", args=[o, stored["attachment"].pk])).status_code == 404
    assert client.get(reverse("reporting:raw_event", args=[o, stored["raw"].pk])).status_code == 404
    client.post(reverse("reporting:replay", args=[o]), {"raw_id": [stored["raw"].pk]})
    assert not RawEvent.objects.pending().exists()


@pytest.mark.parametrize("persona", ["ops", "admin"])
def test_ops_and_admin_create_an_endpoint_and_see_its_secret_once(
    as_user: AsUser, server: Server, persona: str, request: pytest.FixtureRequest
) -> None:
    client = as_user(request.getfixturevalue(persona))

    response = client.post(
        reverse("reporting:endpoints", args=[server.pk, "events"]),
        {"name": "production", "allowed_networks": "142.0.176.0/20\n52.152.150.178"},
    )

    assert response.status_code == 200
    endpoint = EventEndpoint.objects.get()
    body = response.content.decode()
    assert endpoint.secret_key in body
    assert f"http://testserver/hooks/socketlabs/events/{endpoint.uuid}/" in body
    assert endpoint.allowed_networks == ["142.0.176.0/20", "52.152.150.178/32"]
    assert AuditLog.objects.get().action == "reporting.webhook_endpoint.create"
    assert endpoint.secret_key not in str(AuditLog.objects.get().after)

    again = client.get(reverse("reporting:endpoint_detail", args=[server.pk, "events", endpoint.pk]))
    assert endpoint.secret_key not in again.content.decode()
    assert endpoint.masked_secret in again.content.decode()


def test_it_says_which_network_line_is_wrong(as_user: AsUser, ops: User, server: Server) -> None:
    response = as_user(ops).post(
        reverse("reporting:endpoints", args=[server.pk, "events"]), {"allowed_networks": "10.0.0.0/8\nnot-a-net"}
    )

    assert response.status_code == 400
    assert "Line 2: “not-a-net” is not a network" in response.content.decode()
    assert not EventEndpoint.objects.exists()


def test_rotating_the_secret_refuses_the_old_one(
    as_user: AsUser, ops: User, server: Server, endpoint: EventEndpoint, client: Client
) -> None:
    response = as_user(ops).post(reverse("reporting:endpoint_rotate", args=[server.pk, "events", endpoint.pk]))

    endpoint.refresh_from_db()
    assert endpoint.secret_key != EVENT_SECRET
    assert endpoint.secret_key in response.content.decode()
    old = post(client, f"/hooks/socketlabs/events/{endpoint.uuid}/", fixture_bytes("delivered.json"))
    new = post(
        client,
        f"/hooks/socketlabs/events/{endpoint.uuid}/",
        fixture_json("delivered.json") | {"SecretKey": endpoint.secret_key},
    )
    assert (old.status_code, new.status_code) == (401, 200)
    assert AuditLog.objects.filter(action="reporting.endpoint.rotate_secret").count() == 1


def test_deleting_an_endpoint_keeps_its_events(
    as_user: AsUser, admin: User, server: Server, stored: dict[str, Any], client: Client
) -> None:
    endpoint = stored["endpoint"]

    response = as_user(admin).post(reverse("reporting:endpoint_delete", args=[server.pk, "events", endpoint.pk]))

    assert response.status_code == 302
    assert not EventEndpoint.objects.exists()
    assert Event.objects.count() == 3
    gone = post(client, f"/hooks/socketlabs/events/{endpoint.uuid}/", fixture_bytes("delivered.json"))
    assert gone.status_code == 401


def test_replaying_many_requests_from_the_log(
    as_user: AsUser, ops: User, server: Server, stored: dict[str, Any]
) -> None:
    ids = list(RawEvent.objects.values_list("id", flat=True))

    response = as_user(ops).post(reverse("reporting:replay", args=[server.pk]), {"raw_id": ids})

    assert response.status_code == 302
    assert RawEvent.objects.pending().count() == len(ids)
    processing.drain()
    assert Event.objects.count() == 3
    assert AuditLog.objects.get(action="reporting.replay").after == {"raw_ids": sorted(ids)}


def test_replaying_one_dead_letter(as_user: AsUser, ops: User, server: Server, stored: dict[str, Any]) -> None:
    letter = stored["dead_letter"]

    as_user(ops).post(reverse("reporting:dead_letter_replay", args=[server.pk]), {"only": letter.pk})
    processing.drain()

    letter.refresh_from_db()
    assert letter.replayed_at is not None
    assert DeadLetter.objects.filter(replayed_at__isnull=True).count() == 1  # still not understood: back again


# --- HTMX fragments -----------------------------------------------------------------------------

HX = {"HTTP_HX_REQUEST": "true"}


def test_the_activity_feed_polls_a_fragment(
    as_user: AsUser, viewer: User, server: Server, stored: dict[str, Any]
) -> None:
    client = as_user(viewer)

    page = client.get(reverse("activity:feed", args=[server.pk]))
    fragment = client.get(reverse("activity:feed", args=[server.pk]), {"type": "click"}, **HX)

    assert 'hx-trigger="every 2s"' in page.content.decode()
    text = fragment.content.decode()
    assert text.lstrip().startswith('<div id="feed"')
    assert "<html" not in text
    assert "https://example.com/p" in text
    assert "order-43" not in text  # the failed event is filtered out
    assert "type=click" in text  # the next poll keeps the filter


def test_the_activity_feed_filters_by_address(
    as_user: AsUser, viewer: User, server: Server, stored: dict[str, Any]
) -> None:
    fragment = as_user(viewer).get(reverse("activity:feed", args=[server.pk]), {"address": "NOBODY@"}, **HX)

    text = fragment.content.decode()
    assert "nobody@example.net" in text
    assert "user@example.net" not in text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"q": "User@Example.net"}, ["delivered", "click"]),
        ({"q": "order-43"}, ["failed"]),
        ({"q": "spring", "field": "mailing"}, ["delivered", "click"]),
        ({"q": "order-42", "field": "message"}, ["delivered", "click"]),
    ],
)
def test_the_timeline_finds_events_by_address_message_or_mailing(
    as_user: AsUser, viewer: User, server: Server, stored: dict[str, Any], query: dict[str, str], expected: list[str]
) -> None:
    response = as_user(viewer).get(reverse("activity:timeline", args=[server.pk]), query, **HX)

    text = response.content.decode()
    assert text.lstrip().startswith('<div id="timeline-results"')
    found = [t for t in ("delivered", "failed", "click") if f"event-{t}" in text]
    assert found == [t for t in ("delivered", "failed", "click") if t in expected]
    assert response.context["events"][0].occurred_at <= response.context["events"][-1].occurred_at


def test_the_request_log_fragment_filters_errors(
    as_user: AsUser, viewer: User, server: Server, stored: dict[str, Any], client: Client
) -> None:
    post(client, f"/hooks/socketlabs/events/{stored['endpoint'].uuid}/", b"{broken")

    fragment = as_user(viewer).get(reverse("reporting:request_log", args=[server.pk]), {"show": "errors"}, **HX)

    text = fragment.content.decode()
    assert text.lstrip().startswith('<div id="log-table"')
    assert "not valid JSON" in text
    assert "Accepted" not in text
    assert "Replay" not in text  # viewers get no replay buttons


def test_the_endpoint_health_shows_last_event_and_error_rate(
    as_user: AsUser, viewer: User, server: Server, stored: dict[str, Any], client: Client
) -> None:
    endpoint = stored["endpoint"]
    post(client, f"/hooks/socketlabs/events/{endpoint.uuid}/", fixture_json("delivered.json") | {"SecretKey": "x"})

    fragment = as_user(viewer).get(
        reverse("reporting:endpoint_detail", args=[server.pk, "events", endpoint.pk]), {"part": "health"}, **HX
    )

    text = fragment.content.decode()
    assert text.lstrip().startswith('<div id="endpoint-health"')
    assert "20 % (1 of 5)" in text
    assert "none yet" not in text


def test_the_inbound_browser_searches(as_user: AsUser, viewer: User, server: Server, stored: dict[str, Any]) -> None:
    client = as_user(viewer)

    hit = client.get(reverse("reporting:inbound_messages", args=[server.pk]), {"q": "alice"}, **HX)
    miss = client.get(reverse("reporting:inbound_messages", args=[server.pk]), {"q": "bob"}, **HX)

    assert "Help" in hit.content.decode()
    assert "No message matches “bob”" in miss.content.decode()
    assert hit.content.decode().lstrip().startswith('<div id="message-list"')


def test_pages_carry_no_inline_script_or_style(
    as_user: AsUser, ops: User, server: Server, stored: dict[str, Any]
) -> None:
    client = as_user(ops)
    for url in read_urls(server, stored):
        response = client.get(url)
        if response.get("Content-Type", "").startswith("text/html"):
            text = response.content.decode()
            assert "<script>" not in text and " style=" not in text and "<style" not in text, url
