"""Single writes go to SocketLabs (the sandbox, over HTTP) first, then to the mirror; failures wait in the outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.models import AuditLog, User
from common.emails import InvalidAddress
from sandbox.models import SandboxSuppression
from suppression import services
from suppression.models import MirrorState, PendingWrite, RecentRemoval, Suppression, WriteStatus
from tests.suppression.conftest import CLOSED_PORT_URL, Linked

pytestmark = pytest.mark.django_db(transaction=True)


def in_mirror(linked: Linked) -> dict[str, str]:
    return dict(Suppression.objects.filter(server=linked.server).values_list("address", "reason"))


def test_it_adds_at_socketlabs_then_to_the_mirror(linked: Linked, ops: User) -> None:
    result = services.add(server=linked.server, address=" New@Example.COM ", reason="Complaint", actor=ops)
    assert result.ok, result.message
    assert linked.sandbox_addresses() == {"new@example.com"}
    assert in_mirror(linked) == {"new@example.com": "Complaint"}
    write = PendingWrite.objects.get()
    assert write.status == WriteStatus.DONE
    entry = AuditLog.objects.get(action="suppression.add")
    assert (entry.actor, entry.server, entry.target) == (ops, linked.server, "new@example.com")


def test_it_treats_an_address_already_at_socketlabs_as_added(linked: Linked, ops: User) -> None:
    linked.seed("known@example.com", reason="Bounce")
    result = services.add(server=linked.server, address="known@example.com", actor=ops)
    assert result.ok
    assert "already on the suppression list" in result.message
    assert in_mirror(linked) == {"known@example.com": "Bounce"}  # what SocketLabs holds, not what we asked


def test_it_removes_at_socketlabs_then_from_the_mirror(linked: Linked, ops: User) -> None:
    linked.seed("gone@example.com")
    services.sync(server=linked.server)
    result = services.remove(server=linked.server, address="gone@example.com", actor=ops)
    assert result.ok
    assert linked.sandbox_addresses() == set()
    assert in_mirror(linked) == {}
    assert RecentRemoval.objects.filter(address="gone@example.com").exists()
    assert AuditLog.objects.filter(action="suppression.remove", target="gone@example.com").count() == 1


def test_it_settles_a_remove_of_an_address_socketlabs_does_not_hold(linked: Linked, ops: User) -> None:
    Suppression.objects.create(
        server=linked.server,
        address="stale@example.com",
        domain="example.com",
        reason="Bounce",
        first_seen_at=timezone.now(),
        last_update=timezone.now(),
        mirrored_at=timezone.now(),
    )
    result = services.remove(server=linked.server, address="stale@example.com", actor=ops)
    assert result.ok
    assert "was not on the suppression list" in result.message
    assert in_mirror(linked) == {}


def test_it_refuses_a_bad_address_before_calling_anyone(linked: Linked, ops: User) -> None:
    with pytest.raises(InvalidAddress):
        services.add(server=linked.server, address="not an address", actor=ops)
    assert PendingWrite.objects.count() == 0


def test_it_queues_a_write_socketlabs_cannot_take_and_leaves_the_mirror_alone(linked: Linked, ops: User) -> None:
    linked.server.api_url = CLOSED_PORT_URL
    linked.server.save()
    result = services.add(server=linked.server, address="later@example.com", actor=ops)
    assert not result.ok and result.queued
    assert "queued and will be retried" in result.message
    assert in_mirror(linked) == {}
    write = PendingWrite.objects.get()
    assert write.status == WriteStatus.PENDING
    assert "Could not reach SocketLabs" in write.last_error
    assert write.next_attempt_at > timezone.now()
    assert list(services.open_writes(linked.server)) == [write]


def test_it_retries_due_writes_with_backoff_until_they_land(linked: Linked, ops: User, live_server) -> None:  # type: ignore[no-untyped-def]
    good_url = linked.server.api_url
    linked.server.api_url = CLOSED_PORT_URL
    linked.server.save()
    services.add(server=linked.server, address="later@example.com", actor=ops)
    first_due = PendingWrite.objects.get().next_attempt_at
    assert services.retry_due_writes() == 0  # not due yet
    with time_machine.travel(first_due + timedelta(seconds=1)):
        assert services.retry_due_writes() == 1  # still unreachable: waits longer this time
    write = PendingWrite.objects.get()
    assert (write.status, write.attempts) == (WriteStatus.PENDING, 2)
    assert write.next_attempt_at - first_due > timedelta(seconds=45)
    linked.server.api_url = good_url
    linked.server.save()
    with time_machine.travel(write.next_attempt_at + timedelta(seconds=1)):
        assert services.retry_due_writes() == 1
    write.refresh_from_db()
    assert write.status == WriteStatus.DONE
    assert linked.sandbox_addresses() == {"later@example.com"}
    assert in_mirror(linked) == {"later@example.com": "CustomerRequest"}


def test_a_newer_change_replaces_a_waiting_one(linked: Linked, ops: User) -> None:
    linked.server.api_url = CLOSED_PORT_URL
    linked.server.save()
    services.add(server=linked.server, address="flip@example.com", actor=ops)
    services.remove(server=linked.server, address="flip@example.com", actor=ops)
    statuses = list(PendingWrite.objects.order_by("id").values_list("op", "status"))
    assert statuses == [("add", WriteStatus.SUPERSEDED), ("remove", WriteStatus.PENDING)]


def test_it_refuses_plainly_when_the_plan_lacks_suppression(linked: Linked, ops: User) -> None:
    linked.sandbox.suppression_enabled = False
    linked.sandbox.save()
    result = services.add(server=linked.server, address="x@example.com", actor=ops)
    assert not result.ok and result.plan_refused
    assert "not part of the SocketLabs plan" in result.message
    state = MirrorState.objects.get(server=linked.server)
    assert state.plan_enabled is False
    assert PendingWrite.objects.get().status == WriteStatus.DISCARDED
    # The next write does not even call SocketLabs.
    again = services.add(server=linked.server, address="y@example.com", actor=ops)
    assert again.plan_refused
    assert PendingWrite.objects.count() == 1


def test_it_verifies_one_address_live_and_corrects_the_mirror(linked: Linked) -> None:
    linked.seed("only-at-socketlabs@example.com", reason="Complaint")
    result = services.verify_live(server=linked.server, address="only-at-socketlabs@example.com")
    assert result.ok
    assert "the mirror was corrected" in result.message
    assert in_mirror(linked) == {"only-at-socketlabs@example.com": "Complaint"}
    SandboxSuppression.objects.all().delete()
    services.verify_live(server=linked.server, address="only-at-socketlabs@example.com")
    assert in_mirror(linked) == {}


def test_event_effects_update_the_mirror_once_and_newest_wins(linked: Linked) -> None:
    t1 = datetime(2024, 6, 1, 12, tzinfo=UTC)
    entries = [
        services.EffectEntry("Bounced@Example.com", "Bounce", t1),
        services.EffectEntry("complainer@example.com", "Complaint", t1),
        services.EffectEntry("unsub@example.com", "Unsubscribe", t1),
        services.EffectEntry("not an address", "Bounce", t1),
    ]
    assert services.apply_event_effects(server=linked.server, entries=entries) == 3
    services.apply_event_effects(server=linked.server, entries=entries)  # a replay changes nothing
    older = [services.EffectEntry("complainer@example.com", "Bounce", t1 - timedelta(days=1))]
    services.apply_event_effects(server=linked.server, entries=older)
    assert in_mirror(linked) == {
        "bounced@example.com": "Bounce",
        "complainer@example.com": "Complaint",
        "unsub@example.com": "Unsubscribe",
    }
    assert set(Suppression.objects.values_list("source", flat=True)) == {"event"}


def test_contacts_follow_what_we_add_and_what_a_pull_finds(linked: Linked, ops: User) -> None:
    from marketing import services as marketing
    from marketing.models import Contact

    for email in ("complainer@example.com", "bouncer@example.com", "keeper@example.com"):
        marketing.create_contact(server=linked.server, actor=ops, data={"email": email})
    services.add(server=linked.server, address="complainer@example.com", reason="Complaint", actor=ops)
    linked.seed("bouncer@example.com", reason="Bounce")
    services.sync(server=linked.server)
    statuses = dict(Contact.objects.filter(server=linked.server).values_list("email", "status"))
    assert statuses == {
        "complainer@example.com": "complained",
        "bouncer@example.com": "bounced",
        "keeper@example.com": "subscribed",
    }
