"""REST API: events query and inbound messages, with the same access rules as the pages."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from accounts.models import ApiToken, Server, User
from reporting import processing
from reporting.models import EventEndpoint, InboundEndpoint, InboundMessage
from tests.reporting.conftest import fixture_bytes, fixture_json, post

AsUser = Callable[[User], Client]


@pytest.fixture
def stored(client: Client, endpoint: EventEndpoint, inbound_endpoint: InboundEndpoint) -> InboundMessage:
    for name in ("delivered.json", "failed.json", "tracking_click.json", "complaint.json"):
        post(client, f"/hooks/socketlabs/events/{endpoint.uuid}/", fixture_bytes(name))
    processing.drain()
    post(client, f"/hooks/socketlabs/inbound/{inbound_endpoint.uuid}/", fixture_bytes("inbound.json"))
    return InboundMessage.objects.get()


def test_it_lists_events_newest_first_with_a_token(viewer: User, server: Server, stored: InboundMessage) -> None:
    _token, raw = ApiToken.issue(user=viewer, name="script")

    response = Client().get(f"/api/v1/servers/{server.pk}/events/", HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["type"] for r in results] == ["complaint", "click", "failed", "delivered"]
    failed = results[2]
    assert (failed["failure_type"], failed["failure_code"], failed["address"]) == (
        "permanent",
        2001,
        "nobody@example.net",
    )
    assert "SecretKey" not in str(results)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"type": "click"}, ["click"]),
        ({"address": "USER@example.net"}, ["complaint", "click", "delivered"]),
        ({"message_id": "order-43"}, ["failed"]),
        ({"mailing_id": "spring", "since": "2024-05-01T10:30:00Z"}, ["complaint", "click"]),
        ({"until": "2024-05-01T10:00:04Z"}, ["delivered"]),
    ],
)
def test_it_filters_events(
    as_user: AsUser, viewer: User, server: Server, stored: InboundMessage, query: dict[str, str], expected: list[str]
) -> None:
    response = as_user(viewer).get(f"/api/v1/servers/{server.pk}/events/", query)

    assert [r["type"] for r in response.json()["results"]] == expected


def test_it_says_which_filter_is_wrong(as_user: AsUser, viewer: User, server: Server, stored: InboundMessage) -> None:
    bad_type = as_user(viewer).get(f"/api/v1/servers/{server.pk}/events/", {"type": "opened"})
    bad_time = as_user(viewer).get(f"/api/v1/servers/{server.pk}/events/", {"since": "last week"})

    assert bad_type.status_code == 400 and "Unknown type “opened”" in bad_type.json()["type"]
    assert bad_time.status_code == 400 and "since" in bad_time.json()


def test_it_lists_and_shows_inbound_messages(
    as_user: AsUser, viewer: User, server: Server, stored: InboundMessage
) -> None:
    client = as_user(viewer)

    listing = client.get(f"/api/v1/servers/{server.pk}/inbound-messages/", {"q": "alice"}).json()["results"]
    detail = client.get(f"/api/v1/servers/{server.pk}/inbound-messages/{stored.pk}/").json()

    assert [m["subject"] for m in listing] == ["Help"]
    assert "text_body" not in listing[0]
    assert (detail["text_body"], detail["html_body"]) == ("Hi", "<p>Hi</p>")
    assert detail["attachments"][0]["name"] == "a.txt"
    assert "Content" not in str(detail) and "inbound-secret" not in str(detail)
    assert listing[0]["forward_status"] == "" and detail["forward_attempts"] == 0  # no route forwards it


def test_outsiders_and_anonymous_get_nothing(
    as_user: AsUser, outsider: User, other_server: Server, server: Server, stored: InboundMessage
) -> None:
    client = as_user(outsider)

    assert client.get(f"/api/v1/servers/{server.pk}/events/").status_code == 404
    assert client.get(f"/api/v1/servers/{server.pk}/inbound-messages/{stored.pk}/").status_code == 404
    assert client.get(f"/api/v1/servers/{other_server.pk}/inbound-messages/{stored.pk}/").status_code == 404
    assert client.get(f"/api/v1/servers/{other_server.pk}/events/").json()["results"] == []
    assert Client().get(f"/api/v1/servers/{server.pk}/events/").status_code in (401, 403)


def test_it_pages_with_a_cursor(as_user: AsUser, viewer: User, server: Server, stored: InboundMessage) -> None:
    client = as_user(viewer)

    first = client.get(f"/api/v1/servers/{server.pk}/events/", {"page_size": 3}).json()
    second = client.get(first["next"]).json()

    assert len(first["results"]) == 3
    assert [r["type"] for r in second["results"]] == ["delivered"]
    assert second["next"] is None
    assert fixture_json("delivered.json")["MessageId"] == second["results"][0]["message_id"]
