"""Processing keeps EventDayTotal (UTC day, per server and type) beside the rollups, once per event."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.test import Client

from accounts.models import Server
from reporting import processing, services
from reporting.models import EventDayTotal, EventEndpoint, RawEvent
from tests.reporting.conftest import fixture_bytes, fixture_json, post


def send(client: Client, endpoint: EventEndpoint, body: bytes | dict[str, Any]) -> None:
    response = post(client, f"/hooks/socketlabs/events/{endpoint.uuid}/", body)
    assert response.status_code == 200, response.content


def totals() -> list[tuple[Any, ...]]:
    return list(EventDayTotal.objects.order_by("day", "type").values_list("server_id", "day", "type", "count"))


def test_processing_counts_events_per_utc_day_and_type(client: Client, endpoint: EventEndpoint) -> None:
    for name in ("delivered.json", "failed.json", "tracking_click.json", "complaint.json"):
        send(client, endpoint, fixture_bytes(name))
    send(client, endpoint, fixture_json("delivered.json") | {"Address": "other@example.org", "MessageId": "o-2"})

    processing.drain()

    sid = endpoint.server_id
    assert totals() == [
        (sid, date(2024, 5, 1), "click", 1),
        (sid, date(2024, 5, 1), "delivered", 2),
        (sid, date(2024, 5, 1), "failed", 1),
        (sid, date(2024, 5, 2), "complaint", 1),
    ]


def test_days_are_utc_even_when_the_rollups_use_the_servers_zone(
    client: Client, endpoint: EventEndpoint, server: Server
) -> None:
    server.time_zone = "America/New_York"
    server.save()
    send(client, endpoint, fixture_json("delivered.json") | {"DateTime": "2024-05-01T02:00:00Z"})

    processing.drain()

    assert totals() == [(server.pk, date(2024, 5, 1), "delivered", 1)]  # the rollup says 30 April


def test_later_batches_add_to_the_same_day(client: Client, endpoint: EventEndpoint) -> None:
    send(client, endpoint, fixture_bytes("delivered.json"))
    processing.drain()
    send(client, endpoint, fixture_json("delivered.json") | {"MessageId": "order-43"})
    processing.drain()

    assert totals() == [(endpoint.server_id, date(2024, 5, 1), "delivered", 2)]


def test_reprocessing_and_duplicates_change_nothing(client: Client, endpoint: EventEndpoint) -> None:
    for name in ("delivered.json", "failed.json", "tracking_click.json"):
        send(client, endpoint, fixture_bytes(name))
    processing.drain()
    first = totals()

    send(client, endpoint, fixture_bytes("failed.json"))  # a duplicate post
    services.replay_raw_events(server=endpoint.server, raw_ids=list(RawEvent.objects.values_list("id", flat=True)))
    processing.drain()
    processing.drain()

    assert totals() == first
    assert sum(row[3] for row in first) == 3


def test_a_failed_batch_leaves_no_totals_behind(client: Client, endpoint: EventEndpoint, monkeypatch: Any) -> None:
    send(client, endpoint, fixture_bytes("delivered.json"))

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("worker died")

    monkeypatch.setattr(processing.effects, "needs_effect", boom)
    try:
        processing.drain()
    except RuntimeError:
        pass
    assert totals() == []  # same transaction as the events: rolled back together
    monkeypatch.undo()
    processing.drain()
    assert totals() == [(endpoint.server_id, date(2024, 5, 1), "delivered", 1)]
