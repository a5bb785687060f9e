"""`sandbox_simulate`: past traffic with events and suppressions, deterministic, idempotent, silent by default."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count
from django.utils import timezone

from sandbox import webhooks
from sandbox.models import (
    SandboxEvent,
    SandboxEventWebhook,
    SandboxMessage,
    SandboxSuppression,
    SandboxWebhookDelivery,
)
from tests.sandbox.conftest import SandboxKeys
from tests.sandbox.injection_support import Receiver, running_receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as box:
        yield box


def simulate(
    *servers: SandboxKeys, days: int = 3, per_day: int = 200, seed: int = 1, extra: tuple[str, ...] = ()
) -> None:
    ids = ",".join(str(s.server_id) for s in servers)
    call_command(
        "sandbox_simulate", f"--servers={ids}", f"--days={days}", f"--per-day={per_day}", f"--seed={seed}", *extra
    )


def snapshot() -> list[tuple[Any, ...]]:
    return list(
        SandboxEvent.objects.order_by("outbound__created_on", "outbound__row_index", "due_at", "type").values_list(
            "outbound__created_on", "address", "type", "due_at", "payload__FailureType", "payload__TrackingType"
        )
    )


def test_it_generates_messages_and_events_for_each_server(
    sandbox_server: SandboxKeys, other_sandbox_server: SandboxKeys, capsys: Any
) -> None:
    simulate(sandbox_server, other_sandbox_server)
    assert "Simulated" in capsys.readouterr().out
    for keys in (sandbox_server, other_sandbox_server):
        messages = SandboxMessage.objects.filter(server=keys.server)
        assert messages.count() == 600
        assert set(messages.values_list("client", flat=True)) == {"sandbox_simulate"}
        events = SandboxEvent.objects.filter(server=keys.server)
        assert events.filter(type="Queued").count() == messages.count()
        by_type = dict(events.values_list("type").annotate(n=Count("id")))
        assert by_type["Delivered"] > 0.8 * messages.count()
        assert by_type.get("Failed", 0) > 0
        assert by_type.get("Tracking", 0) > 0.1 * messages.count()
    assert not SandboxEvent.objects.filter(happened=False).exists()
    assert not SandboxEvent.objects.filter(due_at__gt=timezone.now()).exists()


def test_every_message_and_event_lies_in_the_days_before_today(sandbox_server: SandboxKeys) -> None:
    simulate(sandbox_server, days=5, per_day=50)
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    created = SandboxMessage.objects.values_list("created_on", flat=True)
    assert min(created) >= today - timedelta(days=5)
    assert max(created) < today
    assert len({c.date() for c in created}) == 5
    assert SandboxEvent.objects.filter(due_at__gte=today).count() == 0


def test_events_follow_each_message_in_order(sandbox_server: SandboxKeys) -> None:
    simulate(sandbox_server, days=2, per_day=100)
    for message in SandboxMessage.objects.all()[:50]:
        events = list(message.events.order_by("due_at", "id").values_list("type", "due_at"))
        assert events[0] == ("Queued", message.created_on)
        assert all(a[1] <= b[1] for a, b in zip(events, events[1:], strict=False))


def test_hard_bounces_complaints_and_unsubscribes_are_suppressed_and_later_sends_fail_as_suppressed(
    sandbox_server: SandboxKeys,
) -> None:
    sandbox_server.server.bounce_rate = 0.2
    sandbox_server.server.save()
    simulate(sandbox_server, days=5, per_day=200)
    bounced = set(
        SandboxEvent.objects.filter(type="Failed", payload__FailureType="Permanent").values_list("address", flat=True)
    )
    suppressed = dict(
        SandboxSuppression.objects.filter(server=sandbox_server.server).values_list("email_address", "reason")
    )
    assert bounced
    assert bounced <= set(suppressed)
    assert {suppressed[a] for a in bounced} == {"Bounce"}
    assert SandboxEvent.objects.filter(payload__FailureType="Suppressed", address__in=bounced).exists()
    assert set(SandboxSuppression.objects.values_list("source", flat=True)) == {"simulation"}


def test_the_same_seed_gives_the_same_traffic_and_a_rerun_replaces_it(sandbox_server: SandboxKeys) -> None:
    simulate(sandbox_server, seed=3)
    first = snapshot()
    counts = (SandboxMessage.objects.count(), SandboxEvent.objects.count(), SandboxSuppression.objects.count())
    simulate(sandbox_server, seed=3)
    assert (SandboxMessage.objects.count(), SandboxEvent.objects.count(), SandboxSuppression.objects.count()) == counts
    assert snapshot() == first
    simulate(sandbox_server, seed=4)
    assert snapshot() != first


def test_it_leaves_injected_traffic_and_other_servers_alone(
    sandbox_server: SandboxKeys, other_sandbox_server: SandboxKeys
) -> None:
    simulate(other_sandbox_server, days=1, per_day=20)
    other = SandboxMessage.objects.filter(server=other_sandbox_server.server).count()
    live = SandboxMessage.objects.create(server=sandbox_server.server, transaction_receipt="live", message_index=0)
    simulate(sandbox_server, days=1, per_day=20)
    simulate(sandbox_server, days=1, per_day=20)
    assert SandboxMessage.objects.filter(pk=live.pk).exists()
    assert SandboxMessage.objects.filter(server=other_sandbox_server.server).count() == other


def test_it_posts_no_webhooks_for_past_traffic(sandbox_server: SandboxKeys, receiver: Receiver) -> None:
    SandboxEventWebhook.objects.create(server=sandbox_server.server, url=receiver.url("/hook"), secret_key="s")
    simulate(sandbox_server, days=1, per_day=30)
    stats = webhooks.dispatch_due()
    assert (stats.events, stats.posts) == (0, 0)
    assert receiver.requests == []


def test_with_post_webhooks_the_dispatcher_posts_the_past_events(
    sandbox_server: SandboxKeys, receiver: Receiver
) -> None:
    SandboxEventWebhook.objects.create(
        server=sandbox_server.server, url=receiver.url("/hook"), secret_key="s", events=["Delivered"]
    )
    simulate(sandbox_server, days=1, per_day=10, extra=("--post-webhooks",))
    delivered = SandboxEvent.objects.filter(type="Delivered").count()
    webhooks.dispatch_due()
    assert len(receiver.requests) == delivered > 0
    assert SandboxWebhookDelivery.objects.filter(status="delivered").count() == delivered
    assert {r.json()["Type"] for r in receiver.requests} == {"Delivered"}


def test_it_explains_bad_arguments(sandbox_server: SandboxKeys) -> None:
    with pytest.raises(CommandError, match="No sandbox server 999"):
        call_command("sandbox_simulate", "--servers=999")
    with pytest.raises(CommandError, match="comma-separated"):
        call_command("sandbox_simulate", "--servers=abc")
    with pytest.raises(CommandError, match="at least 1"):
        call_command("sandbox_simulate", "--days=0")


def test_a_large_run_is_written_in_chunks_and_counted_exactly(sandbox_factory: Callable[..., SandboxKeys]) -> None:
    # Speed belongs in benchmarks, not in timed tests: this checks that a run spanning several
    # COPY chunks stores every message's events (about 3 per message) and nothing twice.
    keys = sandbox_factory(server_id=17010, name="Big", account_id=9010)
    simulate(keys, days=5, per_day=12_000)
    messages = SandboxMessage.objects.filter(server=keys.server).count()
    events = SandboxEvent.objects.filter(server=keys.server).count()
    assert messages == 60_000
    assert events >= 2 * messages
    assert not SandboxEvent.objects.filter(server=keys.server, happened=False).exists()
