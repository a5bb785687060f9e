"""Turn raw events into typed events and daily rollups: batched, set-based, idempotent.

One batch is one transaction: claim up to REPORTING_BATCH_SIZE unprocessed raw rows (row locks
with SKIP LOCKED on PostgreSQL, so concurrent processors take disjoint batches; SQLite's
IMMEDIATE transactions serialise writers), insert their events, upsert the rollups for the events
this batch inserted, record effects, mark the rows processed. A crash anywhere rolls all of it
back and the rows are claimed again later; `Event.raw` is unique, so nothing is counted twice.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.models import Server
from reporting import conf, effects
from reporting.models import DeadLetter, Event, EventEndpoint, RawEvent
from reporting.payloads import ParsedEvent, PayloadError, parse_event

log = logging.getLogger(__name__)

# Data problems in one row; anything else (connection lost, deadlock) is transient and retried whole.
ROW_ERRORS = (DataError, IntegrityError)


@dataclass
class BatchResult:
    claimed: int = 0
    created: int = 0
    dead: int = 0
    more: bool = False

    def __iadd__(self, other: BatchResult) -> BatchResult:
        self.claimed += other.claimed
        self.created += other.created
        self.dead += other.dead
        self.more = other.more
        return self


def _claim(limit: int, ids: Sequence[int] | None = None) -> list[RawEvent]:
    qs = RawEvent.objects.filter(processed_at__isnull=True)
    if ids is not None:
        qs = qs.filter(id__in=ids)
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True)
    return list(qs.order_by("id").only("id", "server_id", "endpoint_id", "payload", "received_at")[:limit])


def _zones(server_ids: Iterable[int]) -> dict[int, ZoneInfo]:
    zones: dict[int, ZoneInfo] = {}
    for pk, name in Server.objects.filter(pk__in=set(server_ids)).values_list("pk", "time_zone"):
        try:
            zones[pk] = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            zones[pk] = ZoneInfo("UTC")
    return zones


def _event(raw: RawEvent, parsed: ParsedEvent) -> Event:
    return Event(
        server_id=raw.server_id,
        raw_id=raw.pk,
        type=parsed.type,
        occurred_at=parsed.occurred_at,
        received_at=raw.received_at,
        address=parsed.address,
        message_id=parsed.message_id,
        mailing_id=parsed.mailing_id,
        failure_type=parsed.failure_type,
        failure_code=parsed.failure_code,
        reason=parsed.reason,
        url=parsed.url,
        user_agent=parsed.user_agent,
        client_ip=parsed.client_ip,
        extra=parsed.extra,
    )


RollupKey = tuple[int, date, str, str, str]


def upsert_rollups(counts: dict[RollupKey, int]) -> None:
    """One INSERT … ON CONFLICT DO UPDATE SET count = count + excluded.count per 1,000 keys.

    Keys are sorted so concurrent batches lock rollup rows in the same order (no deadlocks).
    """
    keys = sorted(counts)
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        params: list[Any] = []
        for server_id, day, type_, domain, mailing_id in chunk:
            params += [server_id, day, type_, domain, mailing_id, counts[(server_id, day, type_, domain, mailing_id)]]
        values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO reporting_dailyrollup (server_id, day, type, recipient_domain, mailing_id, count)"
                f" VALUES {values}"
                " ON CONFLICT (server_id, day, type, recipient_domain, mailing_id)"
                " DO UPDATE SET count = reporting_dailyrollup.count + excluded.count",
                params,
            )


def rollup_counts(events: Sequence[Event], zones: dict[int, ZoneInfo]) -> dict[RollupKey, int]:
    utc = ZoneInfo("UTC")
    counts: Counter[RollupKey] = Counter()
    for event in events:
        day = event.occurred_at.astimezone(zones.get(event.server_id, utc)).date()
        counts[(event.server_id, day, event.type, event.recipient_domain[:255], event.mailing_id)] += 1
    return counts


DayTotalKey = tuple[int, date, str]


def day_total_counts(events: Sequence[Event]) -> dict[DayTotalKey, int]:
    """Counts per server, UTC day and type: the webhook side of report reconciliation (EventDayTotal)."""
    utc = ZoneInfo("UTC")
    counts: Counter[DayTotalKey] = Counter()
    for event in events:
        counts[(event.server_id, event.occurred_at.astimezone(utc).date(), event.type)] += 1
    return counts


def upsert_day_totals(counts: dict[DayTotalKey, int]) -> None:
    """Like `upsert_rollups`: sorted keys (no deadlocks), one INSERT … ON CONFLICT per 1,000 keys."""
    keys = sorted(counts)
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        params: list[Any] = []
        for key in chunk:
            params += [*key, counts[key]]
        values = ", ".join(["(%s, %s, %s, %s)"] * len(chunk))
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO reporting_eventdaytotal (server_id, day, type, count)"
                f" VALUES {values}"
                " ON CONFLICT (server_id, day, type)"
                " DO UPDATE SET count = reporting_eventdaytotal.count + excluded.count",
                params,
            )


def _process_rows(rows: list[RawEvent]) -> BatchResult:
    """Process claimed rows inside the caller's transaction."""
    now = timezone.now()
    ids = [row.pk for row in rows]
    existing = set(Event.objects.filter(raw_id__in=ids).values_list("raw_id", flat=True))
    events: list[Event] = []
    dead: list[tuple[RawEvent, str]] = []
    for row in rows:
        if row.pk in existing:
            continue  # processed before (a replay): nothing to add
        try:
            if not isinstance(row.payload, dict):
                raise PayloadError("The stored payload is not a JSON object.")
            parsed = parse_event(row.payload, received_at=row.received_at)
        except PayloadError as exc:
            dead.append((row, str(exc)))
            continue
        except Exception as exc:  # a parser bug must not block the batch behind one row forever
            log.exception("Parsing raw event %s failed", row.pk)
            dead.append((row, f"Internal error while parsing: {exc!r}"))
            continue
        if parsed is not None:
            events.append(_event(row, parsed))

    Event.objects.bulk_create(events, ignore_conflicts=True)
    if events:
        upsert_rollups(rollup_counts(events, _zones(e.server_id for e in events)))
        upsert_day_totals(day_total_counts(events))
        effect_raw_ids = [
            e.raw_id
            for e in events
            if effects.needs_effect(type=e.type, failure_type=e.failure_type, address=e.address)
        ]
        if effect_raw_ids:
            effects.apply(list(Event.objects.filter(raw_id__in=effect_raw_ids)))

    dead_ids = {row.pk for row, _ in dead}
    RawEvent.objects.filter(id__in=[i for i in ids if i not in dead_ids]).update(
        processed_at=now, attempts=F("attempts") + 1, error=""
    )
    for row, message in dead:
        RawEvent.objects.filter(id=row.pk).update(processed_at=now, attempts=F("attempts") + 1, error=message)
    DeadLetter.objects.bulk_create(
        [DeadLetter(raw_id=row.pk, server_id=row.server_id, error=message) for row, message in dead]
    )

    per_endpoint: dict[int, tuple[int, datetime]] = {}
    for row in rows:
        if row.endpoint_id is not None and row.pk not in existing and row.pk not in dead_ids:
            count, latest = per_endpoint.get(row.endpoint_id, (0, row.received_at))
            per_endpoint[row.endpoint_id] = (count + 1, max(latest, row.received_at))
    for endpoint_id, (count, latest) in sorted(per_endpoint.items()):
        EventEndpoint.objects.filter(pk=endpoint_id).update(
            events_processed=F("events_processed") + count,
            last_event_at=Greatest(Coalesce(F("last_event_at"), Value(latest)), Value(latest)),
        )
    return BatchResult(claimed=len(rows), created=len(events), dead=len(dead))


def _dead_letter(raw_id: int, message: str) -> None:
    with transaction.atomic():
        row = RawEvent.objects.filter(pk=raw_id, processed_at__isnull=True).only("id", "server_id").first()
        if row is None:
            return
        RawEvent.objects.filter(pk=raw_id).update(
            processed_at=timezone.now(), attempts=F("attempts") + 1, error=message[:2000]
        )
        DeadLetter.objects.create(raw_id=raw_id, server_id=row.server_id, error=message)


def process_batch(*, limit: int | None = None) -> BatchResult:
    """Process one batch. A data error in the batch falls back to one row per transaction."""
    size = limit or conf.get("REPORTING_BATCH_SIZE")
    try:
        with transaction.atomic():
            rows = _claim(size)
            if not rows:
                return BatchResult()
            result = _process_rows(rows)
            result.more = len(rows) == size
            return result
    except ROW_ERRORS:
        log.warning("A batch of raw events failed; processing it one row at a time.", exc_info=True)
    ids = list(RawEvent.objects.pending().order_by("id").values_list("id", flat=True)[:size])
    result = BatchResult(more=len(ids) == size)
    for raw_id in ids:
        try:
            with transaction.atomic():
                rows = _claim(1, [raw_id])
                if rows:
                    result += _process_rows(rows)
        except ROW_ERRORS as exc:
            _dead_letter(raw_id, f"The database refused this event: {exc}")
            result.claimed += 1
            result.dead += 1
    result.more = len(ids) == size
    return result


def drain(*, max_seconds: float | None = None) -> BatchResult:
    """Process batches until the inbox is empty or the time budget is spent (then `more` is True)."""
    budget = conf.get("REPORTING_DRAIN_SECONDS") if max_seconds is None else max_seconds
    deadline = time.monotonic() + budget
    total = BatchResult()
    while True:
        result = process_batch()
        total += result
        if not result.more:
            total.more = False
            return total
        if time.monotonic() >= deadline:
            total.more = True
            return total
