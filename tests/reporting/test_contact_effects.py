"""Effects on contacts: permanent failures, complaints and unsubscribes move the contact's status, once."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import Server
from reporting import effects, processing, services
from reporting.models import Effect, EventEndpoint, RawEvent
from tests.reporting.conftest import fixture_bytes, fixture_json, post

marketing_models = pytest.importorskip("marketing.models", reason="the marketing app is not installed")
Contact = marketing_models.Contact
ContactHistory = marketing_models.ContactHistory
Status = marketing_models.Status


def send(client: Client, endpoint: EventEndpoint, body: bytes | dict[str, Any]) -> None:
    response = post(client, f"/hooks/socketlabs/events/{endpoint.uuid}/", body)
    assert response.status_code == 200, response.content


@pytest.fixture
def contacts(server: Server, other_server: Server) -> dict[str, Any]:
    made = {
        email: Contact.objects.create(server=server, email=email)
        for email in ("nobody@example.net", "user@example.net", "leaver@example.net", "quiet@example.net")
    }
    # The same address on another server must not move: effects are per server.
    made["elsewhere"] = Contact.objects.create(server=other_server, email="nobody@example.net")
    return made


def statuses(made: dict[str, Any]) -> dict[str, str]:
    return {key: Contact.objects.get(pk=c.pk).status for key, c in made.items()}


def test_events_move_contacts_status_once(
    client: Client, endpoint: EventEndpoint, server: Server, contacts: dict[str, Any]
) -> None:
    send(client, endpoint, fixture_bytes("failed.json"))  # permanent: nobody@ bounced
    send(client, endpoint, fixture_bytes("complaint.json"))  # user@ complained
    unsubscribe = fixture_json("tracking_click.json") | {"TrackingType": "Unsubscribe", "Address": "Leaver@Example.net"}
    send(client, endpoint, unsubscribe)
    temporary = fixture_json("failed.json") | {"FailureType": "Temporary", "Address": "quiet@example.net"}
    send(client, endpoint, temporary)
    processing.drain()

    assert effects.apply_pending_contacts() == 3
    assert effects.apply_pending_contacts() == 0

    assert statuses(contacts) == {
        "nobody@example.net": Status.BOUNCED,
        "user@example.net": Status.COMPLAINED,
        "leaver@example.net": Status.UNSUBSCRIBED,
        "quiet@example.net": Status.SUBSCRIBED,
        "elsewhere": Status.SUBSCRIBED,
    }
    assert not effects.pending_contacts(server=server).exists()
    histories = ContactHistory.objects.filter(contact_id__in=[c.pk for c in contacts.values()])
    assert histories.count() == 3

    # Replaying every raw event and applying again changes nothing: no new effect, no new history.
    services.replay_raw_events(server=server, raw_ids=list(RawEvent.objects.values_list("id", flat=True)))
    processing.drain()
    assert effects.apply_pending_contacts() == 0
    assert Effect.objects.count() == 3
    assert histories.count() == 3


def test_contacts_and_the_suppression_mirror_are_applied_apart(
    client: Client, endpoint: EventEndpoint, server: Server, contacts: dict[str, Any]
) -> None:
    send(client, endpoint, fixture_bytes("failed.json"))
    processing.drain()

    # The suppression side ran first (or is not installed); the contact's status still waits for its own turn.
    Effect.objects.update(applied_at=Effect.objects.get().created_at)
    assert effects.pending_contacts(server=server).count() == 1

    suppressed, moved = effects.apply_all_pending()

    assert (suppressed, moved) == (0, 1)
    assert Contact.objects.get(pk=contacts["nobody@example.net"].pk).status == Status.BOUNCED


def test_a_complaint_after_an_unsubscribe_still_counts_but_nothing_moves_down(
    client: Client, endpoint: EventEndpoint, contacts: dict[str, Any]
) -> None:
    Contact.objects.filter(pk=contacts["user@example.net"].pk).update(status=Status.COMPLAINED)
    unsubscribe = fixture_json("tracking_click.json") | {"TrackingType": "Unsubscribe"}  # user@example.net
    send(client, endpoint, unsubscribe)
    processing.drain()

    assert effects.apply_pending_contacts() == 1

    assert Contact.objects.get(pk=contacts["user@example.net"].pk).status == Status.COMPLAINED


def test_the_processing_task_applies_contact_effects(
    client: Client, endpoint: EventEndpoint, contacts: dict[str, Any]
) -> None:
    from reporting.tasks import process_raw_events

    send(client, endpoint, fixture_bytes("complaint.json"))

    process_raw_events.apply().get()

    assert Contact.objects.get(pk=contacts["user@example.net"].pk).status == Status.COMPLAINED
    assert Effect.objects.get().contacts_applied_at is not None
