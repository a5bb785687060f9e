"""Delivery simulation (§0a): outcomes by address, suppression list, seeded rates, delays, side effects."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from sandbox import simulation, webhooks
from sandbox.models import SandboxEvent, SandboxMessage, SandboxServer, SandboxSuppression
from tests.sandbox.conftest import SandboxKeys
from tests.sandbox.injection_support import message, post_injection, request_body

pytestmark = pytest.mark.django_db

NO_RATES = {
    "bounce_rate": 0,
    "deferral_rate": 0,
    "complaint_rate": 0,
    "open_rate": 0,
    "click_rate": 0,
    "unsubscribe_rate": 0,
}


def quiet(keys: SandboxKeys, **fields: Any) -> SandboxServer:
    SandboxServer.objects.filter(pk=keys.server.pk).update(**{**NO_RATES, **fields})
    keys.server.refresh_from_db()
    return keys.server


def send_to(client: Client, keys: SandboxKeys, *addresses: str) -> None:
    msg = message(To=[{"EmailAddress": a} for a in addresses])
    response = post_injection(client, request_body(keys.server_id, msg), key=keys.injection_key)
    assert json.loads(response.content)["ErrorCode"] == "Success"


def timeline(address: str) -> list[tuple[str, dict[str, Any]]]:
    return [(e.type, e.payload) for e in SandboxEvent.objects.filter(address=address).order_by("due_at", "id")]


@pytest.mark.parametrize(
    ("local", "types"),
    [
        ("plain", ["Queued", "Delivered"]),
        ("bounce", ["Queued", "Failed"]),
        ("softbounce", ["Queued", "Deferred", "Failed"]),
        ("complain", ["Queued", "Delivered", "Complaint"]),
        ("open", ["Queued", "Delivered", "Tracking"]),
        ("click", ["Queued", "Delivered", "Tracking"]),
        ("unsub", ["Queued", "Delivered", "Tracking"]),
        ("Hard.Bounce.42", ["Queued", "Failed"]),
    ],
)
def test_the_local_part_decides_the_outcome(
    client: Client, sandbox_server: SandboxKeys, local: str, types: list[str]
) -> None:
    quiet(sandbox_server)
    send_to(client, sandbox_server, f"{local}@example.net")
    assert [t for t, _ in timeline(f"{local}@example.net")] == types


def test_failure_and_tracking_details_follow_the_contract(client: Client, sandbox_server: SandboxKeys) -> None:
    quiet(sandbox_server)
    send_to(client, sandbox_server, "bounce@example.net", "softbounce@example.net", "click@example.net", "unsub@x.net")
    hard = timeline("bounce@example.net")[-1][1]
    assert (hard["FailureType"], hard["FailureCode"], hard["BounceStatus"]) == ("Permanent", 2001, "5.1.1")
    soft = timeline("softbounce@example.net")
    assert soft[1][1]["DeferralCode"] == 4001
    assert (soft[2][1]["FailureType"], soft[2][1]["FailureCode"]) == ("Temporary", 3001)
    click = timeline("click@example.net")[-1][1]
    assert click["TrackingType"] == "Click"
    assert click["Url"] == "https://example.com/orders/42"  # the message's first link
    assert timeline("unsub@x.net")[-1][1]["TrackingType"] == "Unsubscribe"


def test_a_complaint_names_the_sender_and_the_size(client: Client, sandbox_server: SandboxKeys) -> None:
    quiet(sandbox_server)
    send_to(client, sandbox_server, "complain@example.net")
    complaint = timeline("complain@example.net")[-1][1]
    stored = SandboxMessage.objects.get()
    assert complaint["From"] == "shop@example.com"
    assert complaint["To"] == "complain@example.net"
    assert complaint["Length"] == stored.size
    assert complaint["FblType"] == "abuse"


def test_an_address_on_the_suppression_list_fails_as_suppressed(client: Client, sandbox_server: SandboxKeys) -> None:
    quiet(sandbox_server)
    SandboxSuppression.objects.create(server=sandbox_server.server, email_address="gone@example.net", reason="Bounce")
    send_to(client, sandbox_server, "Gone@Example.net", "open@example.net")
    events = timeline("Gone@Example.net")
    assert [t for t, _ in events] == ["Queued", "Failed"]
    assert (events[1][1]["FailureType"], events[1][1]["FailureCode"]) == ("Suppressed", 9999)
    assert [t for t, _ in timeline("open@example.net")] == ["Queued", "Delivered", "Tracking"]


def test_the_suppression_list_of_another_server_does_not_count(
    client: Client, sandbox_server: SandboxKeys, other_sandbox_server: SandboxKeys
) -> None:
    quiet(sandbox_server)
    SandboxSuppression.objects.create(
        server=other_sandbox_server.server, email_address="a@example.net", reason="Bounce"
    )
    send_to(client, sandbox_server, "a@example.net")
    assert [t for t, _ in timeline("a@example.net")] == ["Queued", "Delivered"]


def test_events_fall_due_after_the_servers_delays(client: Client, sandbox_server: SandboxKeys) -> None:
    quiet(sandbox_server, delivery_delay_seconds=2, tracking_delay_seconds=30)
    send_to(client, sandbox_server, "open@example.net", "softbounce@example.net")
    queued = SandboxEvent.objects.get(address="open@example.net", type="Queued").due_at
    opened = {e.type: e.due_at - queued for e in SandboxEvent.objects.filter(address="open@example.net")}
    assert opened == {"Queued": timedelta(0), "Delivered": timedelta(seconds=2), "Tracking": timedelta(seconds=32)}
    soft = {e.type: e.due_at - queued for e in SandboxEvent.objects.filter(address="softbounce@example.net")}
    assert soft == {"Queued": timedelta(0), "Deferred": timedelta(seconds=2), "Failed": timedelta(seconds=4)}
    assert not SandboxEvent.objects.filter(happened=True).exists()


def test_hard_bounces_complaints_and_unsubscribes_join_the_suppression_list_when_they_happen(
    client: Client, sandbox_server: SandboxKeys
) -> None:
    quiet(sandbox_server)
    send_to(
        client, sandbox_server, "bounce@example.net", "complain@example.net", "unsub@example.net", "softbounce@x.net"
    )
    assert not SandboxSuppression.objects.exists()
    webhooks.dispatch_due()
    found = dict(SandboxSuppression.objects.values_list("email_address", "reason"))
    assert found == {
        "bounce@example.net": "Bounce",
        "complain@example.net": "Complaint",
        "unsub@example.net": "Unsubscribe",
    }
    assert set(SandboxSuppression.objects.values_list("source", flat=True)) == {"simulation"}
    assert not SandboxEvent.objects.filter(happened=False).exists()


def test_a_second_send_to_a_bounced_address_is_suppressed(client: Client, sandbox_server: SandboxKeys) -> None:
    quiet(sandbox_server)
    send_to(client, sandbox_server, "bounce@example.net")
    webhooks.dispatch_due()
    send_to(client, sandbox_server, "bounce@example.net")
    failures = SandboxEvent.objects.filter(address="bounce@example.net", type="Failed").order_by("id")
    assert [e.payload["FailureType"] for e in failures] == ["Permanent", "Suppressed"]


def test_with_no_rule_and_no_rates_everything_is_delivered(client: Client, sandbox_server: SandboxKeys) -> None:
    quiet(sandbox_server)
    send_to(client, sandbox_server, *[f"person{i}@example.net" for i in range(40)])
    assert set(SandboxEvent.objects.values_list("type", flat=True)) == {"Queued", "Delivered"}
    assert SandboxEvent.objects.filter(type="Delivered").count() == 40


def test_rates_drive_outcomes_without_a_rule(client: Client, sandbox_server: SandboxKeys) -> None:
    quiet(sandbox_server, bounce_rate=1.0)
    send_to(client, sandbox_server, "person@example.net")
    assert [t for t, _ in timeline("person@example.net")] == ["Queued", "Failed"]


def test_rated_outcomes_are_seeded_by_the_server_seed_and_the_message_id(sandbox_server: SandboxKeys) -> None:
    server = quiet(sandbox_server, bounce_rate=0.2, deferral_rate=0.1, open_rate=0.5, click_rate=0.2, seed=7)

    def outcomes(seed: int) -> list[str]:
        return [
            simulation.outcome_for(f"p{i}@example.net", server=server, suppressed=set(), rng=random.Random(seed + i))
            for i in range(200)
        ]

    first, again, other = outcomes(7), outcomes(7), outcomes(8)
    assert first == again
    assert first != other
    counts = {kind: first.count(kind) for kind in set(first)}
    assert 20 <= counts["bounce"] <= 60
    assert counts.get("open", 0) + counts.get("open_click", 0) > 40


def test_plan_events_uses_seed_plus_message_id(sandbox_server: SandboxKeys) -> None:
    server = quiet(sandbox_server, bounce_rate=0.5, seed=11)
    msg = SandboxMessage(server=server, transaction_receipt="r", message_index=0, to=[{"emailAddress": "p@x.net"}])
    msg.pk = 1234
    now = msg.created_on
    planned = [[e.type for e in simulation.plan_events(server=server, messages=[msg], now=now, suppressed=set())]]
    planned.append([e.type for e in simulation.plan_events(server=server, messages=[msg], now=now, suppressed=set())])
    assert planned[0] == planned[1]
    expected = simulation.outcome_for("p@x.net", server=server, suppressed=set(), rng=random.Random(11 + 1234))
    assert ("Failed" in planned[0]) == (expected == "bounce")


def test_every_recipient_of_a_message_gets_its_own_events(client: Client, sandbox_server: SandboxKeys) -> None:
    quiet(sandbox_server)
    msg = message(
        To=[{"EmailAddress": "a@example.net"}],
        Cc=[{"EmailAddress": "bounce@example.net"}],
        Bcc=[{"EmailAddress": "open@example.net"}],
        MailingId="m1",
        MessageId="id-1",
    )
    post_injection(client, request_body(sandbox_server.server_id, msg), key=sandbox_server.injection_key)
    stored = SandboxMessage.objects.get()
    rows = SandboxEvent.objects.filter(outbound=stored, type="Queued")
    assert sorted(rows.values_list("address", flat=True)) == ["a@example.net", "bounce@example.net", "open@example.net"]
    assert set(rows.values_list("mailing_id", "message_id")) == {("m1", "id-1")}
