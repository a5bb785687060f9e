"""Raw events → typed events, rollups, effects, dead letters; idempotent and crash-safe."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.db.models import Sum
from django.test import Client

from accounts.models import Server
from reporting import effects, payloads, processing, services
from reporting.models import (
    DailyRollup,
    DeadLetter,
    Effect,
    EffectKind,
    Event,
    EventEndpoint,
    RawEvent,
)
from tests.reporting.conftest import EVENT_SECRET, fixture_bytes, fixture_json, post


def send(client: Client, endpoint: EventEndpoint, body: bytes | dict[str, Any], form: bool = False) -> None:
    content_type = "application/x-www-form-urlencoded" if form else "application/json"
    response = post(client, f"/hooks/socketlabs/events/{endpoint.uuid}/", body, content_type=content_type)
    assert response.status_code == 200, response.content


def rollups() -> list[tuple[Any, ...]]:
    return list(
        DailyRollup.objects.order_by("day", "type", "recipient_domain", "mailing_id").values_list(
            "day", "type", "recipient_domain", "mailing_id", "count"
        )
    )


def test_it_types_the_delivered_example(client: Client, endpoint: EventEndpoint) -> None:
    send(client, endpoint, fixture_bytes("delivered.json"))

    processing.drain()

    event = Event.objects.get()
    assert event.type == "delivered"
    assert event.occurred_at == datetime(2024, 5, 1, 10, 0, 3, 123456, tzinfo=UTC)
    assert (event.address, event.message_id, event.mailing_id) == ("user@example.net", "order-42", "spring")
    assert event.server_id == endpoint.server_id
    assert event.extra["Response"] == "250 2.0.0 OK"
    assert event.extra["RemoteMta"] == "mx1.example.net"
    assert event.extra["Data"] == {"Meta": [{"Key": "userId", "Value": "77"}], "Tags": ["receipt"]}
    assert event.extra["ServerId"] == 12345
    assert "SecretKey" not in event.extra
    assert RawEvent.objects.get().processed_at is not None


def test_it_types_the_failed_example(client: Client, endpoint: EventEndpoint) -> None:
    send(client, endpoint, fixture_bytes("failed.json"))

    processing.drain()

    event = Event.objects.get()
    assert (event.type, event.failure_type, event.failure_code) == ("failed", "permanent", 2001)
    assert event.reason == "550 5.1.1 user unknown"
    assert event.extra["BounceStatus"] == "5.1.1"
    assert "FailureType" not in event.extra


def test_it_types_the_click_example(client: Client, endpoint: EventEndpoint) -> None:
    send(client, endpoint, fixture_bytes("tracking_click.json"))

    processing.drain()

    event = Event.objects.get()
    assert (event.type, event.url, event.client_ip, event.user_agent) == (
        "click",
        "https://example.com/p",
        "203.0.113.9",
        "Mozilla/5.0",
    )


def test_it_types_the_complaint_example(client: Client, endpoint: EventEndpoint) -> None:
    send(client, endpoint, fixture_bytes("complaint.json"))

    processing.drain()

    event = Event.objects.get()
    assert (event.type, event.user_agent) == ("complaint", "Yahoo!-Mail-Feedback/1.0")
    assert event.extra["FblType"] == "abuse"
    assert event.extra["Length"] == 495


def test_it_types_the_legacy_form_example(client: Client, endpoint: EventEndpoint) -> None:
    send(client, endpoint, fixture_bytes("failed_legacy.form"), form=True)

    processing.drain()

    event = Event.objects.get()
    assert (event.type, event.failure_type, event.failure_code) == ("failed", "temporary", 4003)
    assert event.occurred_at == datetime(2018, 8, 13, 20, 29, 59, tzinfo=UTC)
    assert event.address == "someone@example.org"
    assert event.message_id == "legacy-7"
    assert event.reason == "Unable to connect"


@pytest.mark.parametrize(
    ("tracking_type", "expected"),
    [
        ("Open", "open"),
        ("open", "open"),
        (1, "open"),
        ("1", "open"),
        (0, "click"),
        ("Unsubscribe", "unsubscribe"),
        (2, "unsubscribe"),
    ],
)
def test_it_reads_tracking_type_as_string_or_number(
    client: Client, endpoint: EventEndpoint, tracking_type: Any, expected: str
) -> None:
    send(client, endpoint, fixture_json("tracking_click.json") | {"TrackingType": tracking_type})

    processing.drain()

    assert Event.objects.get().type == expected


@pytest.mark.parametrize(
    ("failure_type", "expected"), [("Temporary", "temporary"), (1, "permanent"), (2, "suppressed")]
)
def test_it_reads_failure_type_as_string_or_number(
    client: Client, endpoint: EventEndpoint, failure_type: Any, expected: str
) -> None:
    send(client, endpoint, fixture_json("failed.json") | {"FailureType": failure_type})

    processing.drain()

    assert Event.objects.get().failure_type == expected


def test_it_counts_rollups_per_day_type_domain_and_mailing(client: Client, endpoint: EventEndpoint) -> None:
    for name in ("delivered.json", "failed.json", "tracking_click.json", "complaint.json"):
        send(client, endpoint, fixture_bytes(name))
    send(client, endpoint, fixture_json("delivered.json") | {"Address": "Other@Example.NET", "MessageId": "order-44"})

    processing.drain()

    assert rollups() == [
        (date(2024, 5, 1), "click", "example.net", "spring", 1),
        (date(2024, 5, 1), "delivered", "example.net", "spring", 2),
        (date(2024, 5, 1), "failed", "example.net", "", 1),
        (date(2024, 5, 2), "complaint", "example.net", "spring", 1),
    ]


def test_it_counts_days_in_the_servers_time_zone(client: Client, endpoint: EventEndpoint, server: Server) -> None:
    server.time_zone = "America/New_York"
    server.save()
    send(client, endpoint, fixture_json("delivered.json") | {"DateTime": "2024-05-01T02:00:00Z"})

    processing.drain()

    assert rollups()[0][0] == date(2024, 4, 30)


def test_it_changes_nothing_when_run_twice_or_replayed(client: Client, endpoint: EventEndpoint) -> None:
    for name in ("delivered.json", "failed.json", "tracking_click.json"):
        send(client, endpoint, fixture_bytes(name))
    processing.drain()
    first = (rollups(), Event.objects.count(), Effect.objects.count())

    processing.drain()
    services.replay_raw_events(server=endpoint.server, raw_ids=list(RawEvent.objects.values_list("id", flat=True)))
    assert RawEvent.objects.pending().count() == 3
    processing.drain()

    assert (rollups(), Event.objects.count(), Effect.objects.count()) == first
    assert RawEvent.objects.pending().count() == 0


def test_a_duplicate_post_changes_nothing(client: Client, endpoint: EventEndpoint) -> None:
    send(client, endpoint, fixture_bytes("failed.json"))
    processing.drain()
    send(client, endpoint, fixture_bytes("failed.json"))
    processing.drain()

    assert Event.objects.count() == 1
    assert rollups() == [(date(2024, 5, 1), "failed", "example.net", "", 1)]


def test_it_dead_letters_what_it_cannot_understand_and_replays_it(
    client: Client, endpoint: EventEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    send(client, endpoint, fixture_json("failed.json") | {"Type": "Bounced"})
    send(client, endpoint, fixture_bytes("delivered.json"))

    result = processing.drain()

    assert (result.claimed, result.created, result.dead) == (2, 1, 1)
    letter = DeadLetter.objects.get()
    assert letter.error == "Unknown event Type 'Bounced'."
    assert letter.raw.processed_at is not None
    assert letter.raw.error == letter.error

    # A later version learns the new type; the dead letter is replayed.
    monkeypatch.setitem(payloads.TYPE_MAP, "bounced", "failed")
    assert services.replay_dead_letters(server=endpoint.server, dead_letter_ids=[letter.pk]) == 1
    processing.drain()

    assert Event.objects.filter(type="failed").count() == 1
    letter.refresh_from_db()
    assert letter.replayed_at is not None
    assert DeadLetter.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"DateTime": "yesterday"}, "DateTime 'yesterday' is not ISO-8601 or RFC-1123."),
        ({"Type": ""}, "The event has no Type."),
        ({"Type": "Tracking", "TrackingType": "Bogus"}, "Tracking event with unknown TrackingType 'Bogus'"),
        ({"MessageId": "m" * 300}, "MessageId is 300 characters long; at most 255 are stored."),
        ({"Address": ["a@example.net"]}, "Address must be text, not list."),
    ],
)
def test_it_says_why_an_event_was_dead_lettered(
    client: Client, endpoint: EventEndpoint, change: dict[str, Any], error: str
) -> None:
    send(client, endpoint, fixture_json("delivered.json") | change)

    processing.drain()

    assert not Event.objects.exists()
    assert DeadLetter.objects.get().error.startswith(error)


def test_it_falls_back_to_one_row_at_a_time_when_the_database_refuses_one(
    client: Client, endpoint: EventEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    send(client, endpoint, fixture_bytes("delivered.json"))
    send(client, endpoint, fixture_json("failed.json") | {"MessageId": "poison"})
    send(client, endpoint, fixture_bytes("complaint.json"))
    real_event = processing._event

    def poisoned(raw: RawEvent, parsed: payloads.ParsedEvent) -> Event:
        event = real_event(raw, parsed)
        if parsed.message_id == "poison":
            event.client_ip = "x" * 100  # longer than the column: the database refuses the row
        return event

    monkeypatch.setattr(processing, "_event", poisoned)

    processing.drain()

    assert sorted(Event.objects.values_list("type", flat=True)) == ["complaint", "delivered"]
    assert "refused" in DeadLetter.objects.get().error
    assert RawEvent.objects.pending().count() == 0


def test_a_crash_mid_batch_loses_nothing_and_duplicates_nothing(
    client: Client, endpoint: EventEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(30):
        send(client, endpoint, fixture_json("failed.json") | {"MessageId": f"m-{index}"})
    real_apply = effects.apply

    def crash(events: Any) -> Any:
        raise RuntimeError("worker died mid-batch")

    monkeypatch.setattr(effects, "apply", crash)
    with pytest.raises(RuntimeError):
        processing.drain()

    # Events were inserted and rollups upserted before the crash, in the same transaction: all gone.
    assert not Event.objects.exists()
    assert not DailyRollup.objects.exists()
    assert RawEvent.objects.pending().count() == 30

    monkeypatch.setattr(effects, "apply", real_apply)
    processing.drain()
    processing.drain()

    assert Event.objects.count() == 30
    assert DailyRollup.objects.aggregate(total=Sum("count"))["total"] == 30
    assert Effect.objects.count() == 30
    assert RawEvent.objects.pending().count() == 0


def test_it_processes_in_batches(client: Client, endpoint: EventEndpoint, settings: Any) -> None:
    settings.REPORTING_BATCH_SIZE = 4
    for index in range(10):
        send(client, endpoint, fixture_json("delivered.json") | {"MessageId": f"m-{index}"})

    first = processing.process_batch()
    assert (first.claimed, first.more) == (4, True)
    processing.drain()

    assert Event.objects.count() == 10
    endpoint.refresh_from_db()
    assert endpoint.events_processed == 10
    assert endpoint.last_event_at is not None


def test_it_records_effects_for_permanent_failures_complaints_and_unsubscribes(
    client: Client, endpoint: EventEndpoint, django_capture_on_commit_callbacks: Any
) -> None:
    send(client, endpoint, fixture_bytes("failed.json"))
    send(client, endpoint, fixture_json("failed.json") | {"FailureType": "Temporary", "MessageId": "t"})
    send(client, endpoint, fixture_bytes("complaint.json"))
    send(client, endpoint, fixture_json("tracking_click.json") | {"TrackingType": "Unsubscribe"})
    send(client, endpoint, fixture_bytes("delivered.json"))
    received: list[list[int]] = []

    def receiver(sender: Any, effect_ids: list[int], **kwargs: Any) -> None:
        received.append(effect_ids)

    effects.effects_recorded.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            processing.drain()
    finally:
        effects.effects_recorded.disconnect(receiver)

    assert sorted(Effect.objects.values_list("kind", "address")) == [
        (EffectKind.SUPPRESS_BOUNCE, "nobody@example.net"),
        (EffectKind.SUPPRESS_COMPLAINT, "user@example.net"),
        (EffectKind.UNSUBSCRIBE, "user@example.net"),
    ]
    assert sorted(received[0]) == sorted(Effect.objects.values_list("id", flat=True))
    assert effects.pending(server=endpoint.server).count() == 3


def test_it_ignores_a_stored_validation_event(endpoint: EventEndpoint) -> None:
    RawEvent.objects.create(
        server=endpoint.server, endpoint=endpoint, dedup_key="v" * 64, payload={"Type": "Validation", "ServerId": 1}
    )

    result = processing.drain()

    assert (result.claimed, result.created, result.dead) == (1, 0, 0)
    assert RawEvent.objects.pending().count() == 0


def test_the_task_drains_and_clears_the_wake_flag(client: Client, endpoint: EventEndpoint) -> None:
    from django.core.cache import cache

    from reporting.receivers import WAKE_KEY
    from reporting.tasks import process_raw_events

    send(client, endpoint, fixture_bytes("delivered.json"))
    assert cache.get(WAKE_KEY) is not None

    assert process_raw_events.apply().get() == 1

    assert cache.get(WAKE_KEY) is None
    assert Event.objects.count() == 1


def test_the_secret_is_not_in_any_stored_row(client: Client, endpoint: EventEndpoint) -> None:
    from django.db import connection

    send(client, endpoint, fixture_bytes("failed.json"))
    processing.drain()

    with connection.cursor() as cursor:
        for table in ("reporting_rawevent", "reporting_event", "reporting_eventendpoint"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
            assert EVENT_SECRET not in repr(cursor.fetchall())


def test_suppression_effects_reach_the_suppression_mirror_once(
    client: Client, endpoint: EventEndpoint, server: Server
) -> None:
    suppression = pytest.importorskip("suppression.services", reason="the suppression app is not installed")
    send(client, endpoint, fixture_bytes("failed.json"))
    send(client, endpoint, fixture_bytes("complaint.json"))
    send(client, endpoint, fixture_json("failed.json") | {"FailureType": "Temporary", "Address": "later@example.net"})
    processing.drain()

    assert effects.apply_pending() == 2
    assert effects.apply_pending() == 0

    on_list = suppression.is_suppressed(
        server=server, addresses=["nobody@example.net", "user@example.net", "later@example.net"]
    )
    assert on_list == {"nobody@example.net", "user@example.net"}
    assert not effects.pending(server=server).exists()
