"""Side effects of events on other apps: the hook, not the work.

Permanent failures, complaints and unsubscribes must update the local suppression mirror and the
contact's status. Those belong to the `suppression` and `marketing` apps, so reporting only
*records* what each new event calls for:

* `apply(events)` runs inside the processing transaction with the events inserted by that batch
  (never with re-processed ones), and writes one `Effect` row per event that needs one — unique
  per event, so a replay or a re-run adds nothing.
* After the transaction commits, the `effects_recorded` signal is sent with the new Effect ids.

The suppression mirror is wired: `apply_pending()` (run by the processing task after each drain,
so at least every 10 s) hands pending suppression effects to
`suppression.services.apply_event_effects` (one statement per few hundred rows, newest wins, no API
call: SocketLabs already suppressed these addresses itself) and marks them applied. Until that app
is installed the effects simply wait.

Contact status is wired the same way and tracked apart (`Effect.contacts_applied_at`), so either
owner app can be late without holding the other back: `apply_pending_contacts()` hands pending
effects to `marketing.services.apply_event_effects` as (address, kind, when). That function only
moves a status up (subscribed → unsubscribed → bounced → complained) and ignores addresses that are
not contacts, so a replay, a re-run or an out-of-order event changes nothing twice.

How another owner app consumes them (either way is safe to run twice):

    from reporting.models import Effect
    for effect in Effect.objects.filter(server=server, applied_at__isnull=True, kind__in=[...]):
        ...  # upsert the suppression / set the contact status
    Effect.objects.filter(pk__in=done).update(applied_at=timezone.now())

or connect a receiver to `reporting.effects.effects_recorded` and enqueue its own task with the ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from reporting.models import Effect, EffectKind, Event, EventType, FailureType

# Sent after commit with `effect_ids: list[int]`.
effects_recorded = Signal()


def kind_for(event: Event) -> str | None:
    """Which effect an event calls for, if any."""
    if not event.address:
        return None
    if event.type == EventType.FAILED and event.failure_type == FailureType.PERMANENT:
        return EffectKind.SUPPRESS_BOUNCE
    if event.type == EventType.COMPLAINT:
        return EffectKind.SUPPRESS_COMPLAINT
    if event.type == EventType.UNSUBSCRIBE:
        return EffectKind.UNSUBSCRIBE
    return None


def needs_effect(*, type: str, failure_type: str, address: str) -> bool:
    return kind_for(Event(type=type, failure_type=failure_type, address=address)) is not None


def apply(events: Sequence[Event]) -> list[Effect]:
    """Record the effects of newly inserted events (which must have primary keys)."""
    effects = [
        Effect(event_id=event.pk, server_id=event.server_id, kind=kind, address=event.address)
        for event in events
        if (kind := kind_for(event)) is not None
    ]
    if not effects:
        return []
    Effect.objects.bulk_create(effects, ignore_conflicts=True)
    ids = list(
        Effect.objects.filter(event_id__in=[e.event_id for e in effects], applied_at__isnull=True).values_list(
            "id", flat=True
        )
    )

    def notify() -> None:
        effects_recorded.send(sender=Effect, effect_ids=ids)

    transaction.on_commit(notify, robust=True)
    return effects


SUPPRESSION_REASONS: dict[str, str] = {
    EffectKind.SUPPRESS_BOUNCE: "Bounce",
    EffectKind.SUPPRESS_COMPLAINT: "Complaint",
    EffectKind.UNSUBSCRIBE: "Unsubscribe",
}


def apply_pending(*, limit: int = 5000) -> int:
    """Mirror pending suppression effects into the suppression app; returns how many were applied."""
    try:
        from suppression.services import EffectEntry, apply_event_effects
    except ImportError:  # the suppression app is not installed: effects wait for it
        return 0
    rows = list(
        Effect.objects.filter(applied_at__isnull=True, kind__in=list(SUPPRESSION_REASONS))
        .select_related("event", "server")
        .order_by("server_id", "id")[:limit]
    )
    applied = 0
    for server_id in sorted({row.server_id for row in rows}):
        batch = [row for row in rows if row.server_id == server_id]
        with transaction.atomic():
            apply_event_effects(
                server=batch[0].server,
                entries=[
                    EffectEntry(
                        address=row.address, reason=SUPPRESSION_REASONS[row.kind], occurred_at=row.event.occurred_at
                    )
                    for row in batch
                ],
            )
            Effect.objects.filter(pk__in=[row.pk for row in batch]).update(applied_at=timezone.now())
        applied += len(batch)
    return applied


CONTACT_KINDS: tuple[str, ...] = (EffectKind.SUPPRESS_BOUNCE, EffectKind.SUPPRESS_COMPLAINT, EffectKind.UNSUBSCRIBE)


def apply_pending_contacts(*, limit: int = 5000) -> int:
    """Move contacts' status for pending effects through the marketing app; returns how many were applied."""
    try:
        from marketing.services import apply_event_effects as apply_to_contacts
    except ImportError:  # the marketing app is not installed: effects wait for it
        return 0
    rows = list(
        Effect.objects.filter(contacts_applied_at__isnull=True, kind__in=CONTACT_KINDS)
        .select_related("event", "server")
        .order_by("server_id", "id")[:limit]
    )
    applied = 0
    for server_id in sorted({row.server_id for row in rows}):
        batch = [row for row in rows if row.server_id == server_id]
        # One transaction per server: the status change and "applied" commit together or not at all.
        with transaction.atomic():
            apply_to_contacts(
                server=batch[0].server,
                entries=[(row.address, str(row.kind), row.event.occurred_at) for row in batch],
            )
            Effect.objects.filter(pk__in=[row.pk for row in batch]).update(contacts_applied_at=timezone.now())
        applied += len(batch)
    return applied


def apply_all_pending() -> tuple[int, int]:
    """Both owner apps' pending effects: (applied to the suppression mirror, applied to contacts)."""
    return apply_pending(), apply_pending_contacts()


def pending_contacts(**filters: Any) -> Any:
    """Effects not yet applied to contacts' status."""
    return Effect.objects.filter(contacts_applied_at__isnull=True, **filters).order_by("id")


def pending(**filters: Any) -> Any:
    """Effects not yet applied by their owner app."""
    return Effect.objects.filter(applied_at__isnull=True, **filters).order_by("id")
