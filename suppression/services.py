"""Suppression lists: check, add, remove, search, export, pull, and event effects.

Writes go to SocketLabs first, then to the mirror. A write SocketLabs does not take (it could
not be reached, or it refused) stays in the outbox (`PendingWrite`), is shown on the page and
retried with backoff — the mirror never claims something SocketLabs does not have.

Public entry points for other apps:

* `apply_event_effects(server=…, entries=[EffectEntry(address, reason, occurred_at), …])` —
  for the reporting app: SocketLabs suppresses hard bounces, complaints and unsubscribes on its
  own, and this mirrors those events locally (one statement for the lot, newest wins, safe to
  run twice). It makes no API call.
* `is_suppressed(server=…, addresses=[…])` — which of these addresses the mirror holds (one query).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

import socketlabs
from accounts import audit
from accounts.models import Server
from common.emails import InvalidAddress, lenient_email, normalise_email
from suppression import mirror, remote
from suppression.models import (
    MirrorState,
    PendingWrite,
    Reason,
    RecentRemoval,
    Suppression,
    SyncStatus,
    WriteOp,
    WriteStatus,
)

log = logging.getLogger(__name__)

MAX_BULK_CHECK = 10_000
PAGE_SIZE = 50
# Backoff for outbox retries: 30 s, 1, 2, 4 … minutes, capped at an hour; given up after this many tries.
WRITE_RETRY_BASE = timedelta(seconds=30)
WRITE_RETRY_CAP = timedelta(hours=1)
WRITE_MAX_ATTEMPTS = 12
SYNC_STALE_AFTER = timedelta(minutes=30)
REMOVALS_KEPT = timedelta(days=2)


# --- state ---------------------------------------------------------------------------------
def state_for(server: Server) -> MirrorState:
    state, _ = MirrorState.objects.get_or_create(server=server)
    return state


def states_for(servers: Iterable[Server]) -> dict[int, MirrorState]:
    servers = list(servers)
    states = {s.server_id: s for s in MirrorState.objects.filter(server__in=servers)}
    for server in servers:
        if server.pk not in states:
            states[server.pk] = MirrorState(server=server)
    return states


def mark_plan(server: Server, *, enabled: bool, message: str = "") -> None:
    MirrorState.objects.get_or_create(server=server)
    MirrorState.objects.filter(server=server).update(
        plan_enabled=enabled, plan_message=message[:500], plan_checked_at=timezone.now()
    )


# --- single writes -------------------------------------------------------------------------
@dataclass(frozen=True)
class WriteResult:
    ok: bool  # SocketLabs took it and the mirror shows it
    message: str
    queued: bool = False  # in the outbox, retried automatically
    plan_refused: bool = False
    write: PendingWrite | None = None


def normalise(address: str) -> str:
    """The address as the mirror keys it; `InvalidAddress` with the reason otherwise."""
    return normalise_email(address)


def add(
    *,
    server: Server,
    address: str,
    reason: str = Reason.CUSTOMER_REQUEST,
    actor: Any,
    request: HttpRequest | None = None,
) -> WriteResult:
    """Add one address at SocketLabs, then to the mirror. Raises `InvalidAddress` for a bad address."""
    normalised = normalise(address)
    if reason not in Reason.values:
        raise ValueError(f"Unknown reason {reason!r}.")
    return _write(server=server, op=WriteOp.ADD, address=normalised, reason=reason, actor=actor, request=request)


def remove(*, server: Server, address: str, actor: Any, request: HttpRequest | None = None) -> WriteResult:
    """Remove one address at SocketLabs, then from the mirror."""
    normalised = lenient_email(address)
    if normalised is None:
        raise InvalidAddress(f"“{address[:60]}” is not an e-mail address")
    return _write(server=server, op=WriteOp.REMOVE, address=normalised, reason="", actor=actor, request=request)


def _write(
    *, server: Server, op: str, address: str, reason: str, actor: Any, request: HttpRequest | None
) -> WriteResult:
    state = state_for(server)
    if state.plan_lacks_suppression:
        return WriteResult(False, state.plan_message or remote.plan_message(server), plan_refused=True)
    now = timezone.now()
    with transaction.atomic():
        # A newer change to the same address replaces any that is still waiting.
        PendingWrite.objects.filter(
            server=server, address=address, status__in=[WriteStatus.PENDING, WriteStatus.FAILED]
        ).update(status=WriteStatus.SUPERSEDED, updated_at=now)
        write = PendingWrite.objects.create(
            server=server,
            op=op,
            address=address,
            reason=reason,
            status=WriteStatus.RUNNING,
            attempts=1,
            claimed_at=now,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
    result = _send(write, server=server, interactive=True)
    audit.record(
        action=f"suppression.{op}",
        request=request,
        actor=actor,
        server=server,
        target=address,
        after={"reason": reason, "result": write.status, "message": result.message}
        if op == WriteOp.ADD
        else {"result": write.status, "message": result.message},
    )
    return result


def _send(write: PendingWrite, *, server: Server, interactive: bool) -> WriteResult:
    """One attempt at SocketLabs for an outbox row; updates the row and, on success, the mirror."""
    client = remote.client(server, interactive=interactive)
    address = write.address
    verb = "added to" if write.op == WriteOp.ADD else "removed from"
    try:
        if write.op == WriteOp.ADD:
            try:
                entry: socketlabs.models.Suppression | None = client.suppressions.add(
                    address, reason=write.reason or None
                )
                already = False
            except socketlabs.ConflictError:
                # Already on the list (or an earlier attempt did land): read what SocketLabs holds.
                entry = client.suppressions.check(address)
                already = True
            reason_now = mirror.reason_value((entry.reason if entry else "") or write.reason) or write.reason
            with transaction.atomic():
                if entry is not None:
                    mirror.upsert_one(
                        server.pk,
                        address=address,
                        reason=mirror.reason_value(entry.reason or write.reason) or write.reason,
                        source=(entry.source or "mailroom")[:40],
                        last_update=entry.suppression_last_update,
                    )
                _finish_write(write, WriteStatus.DONE, "")
            _plan_ok(server)
            tell_contacts(server, [(address, reason_now)])
            message = f"{address} was already on the suppression list of {server.name}." if already else ""
            return WriteResult(
                True, message or f"{address} was {verb} the suppression list of {server.name}.", write=write
            )
        try:
            client.suppressions.remove(address)
            absent = False
        except socketlabs.NotFoundError:
            absent = True
        with transaction.atomic():
            mirror.delete_one(server.pk, address)
            _finish_write(write, WriteStatus.DONE, "")
        _plan_ok(server)
        if absent:
            return WriteResult(True, f"{address} was not on the suppression list of {server.name}.", write=write)
        return WriteResult(True, f"{address} was {verb} the suppression list of {server.name}.", write=write)
    except socketlabs.SocketLabsError as exc:
        message = remote.describe(server, exc)
        if remote.is_plan_refusal(exc):
            mark_plan(server, enabled=False, message=message)
            _finish_write(write, WriteStatus.DISCARDED, message)
            return WriteResult(False, message, plan_refused=True, write=write)
        if remote.is_transient(exc) and write.attempts < WRITE_MAX_ATTEMPTS:
            delay = min(WRITE_RETRY_BASE * (2 ** (write.attempts - 1)), WRITE_RETRY_CAP)
            if exc.retry_after:
                delay = max(delay, timedelta(seconds=exc.retry_after))
            _finish_write(write, WriteStatus.PENDING, message, next_attempt_at=timezone.now() + delay)
            return WriteResult(
                False,
                f"{message} The change to {address} is queued and will be retried automatically; "
                "until SocketLabs takes it, the list is unchanged.",
                queued=True,
                write=write,
            )
        _finish_write(write, WriteStatus.FAILED, message)
        return WriteResult(False, f"{address} was not {verb} the list: {message}", write=write)


def tell_contacts(server: Server, pairs: Sequence[tuple[str, str]]) -> None:
    """Contacts follow the suppression list: (address, reason) pairs go to the marketing app's public function.

    Contacts are secondary here: a failure on their side is logged and never undoes or hides a
    suppression that SocketLabs and the mirror already hold.
    """
    if not pairs:
        return
    try:
        from marketing.services import apply_suppressions
    except ImportError:  # the marketing app is not installed
        return
    try:
        apply_suppressions(server=server, entries=list(pairs))
    except Exception:
        log.exception("Could not update contacts for %d suppressions on server %s", len(pairs), server.pk)


def _finish_write(write: PendingWrite, status: str, error: str, *, next_attempt_at: datetime | None = None) -> None:
    write.status = status
    write.last_error = error
    write.claimed_at = None
    write.updated_at = timezone.now()
    fields = ["status", "last_error", "claimed_at", "updated_at"]
    if next_attempt_at is not None:
        write.next_attempt_at = next_attempt_at
        fields.append("next_attempt_at")
    write.save(update_fields=fields)


def _plan_ok(server: Server) -> None:
    MirrorState.objects.filter(server=server).exclude(plan_enabled=True).update(
        plan_enabled=True, plan_message="", plan_checked_at=timezone.now()
    )


def retry_write(*, write: PendingWrite, actor: Any = None, request: HttpRequest | None = None) -> WriteResult:
    """Try one outbox row again now (the page's "Retry" button, or the sweeper)."""
    claimed = PendingWrite.objects.filter(pk=write.pk, status__in=[WriteStatus.PENDING, WriteStatus.FAILED]).update(
        status=WriteStatus.RUNNING, claimed_at=timezone.now(), attempts=write.attempts + 1
    )
    if not claimed:
        return WriteResult(False, "This change is already being sent, or was settled meanwhile.")
    write.refresh_from_db()
    server = write.server
    result = _send(write, server=server, interactive=actor is not None)
    if actor is not None:
        audit.record(
            action="suppression.retry",
            request=request,
            actor=actor,
            server=server,
            target=write.address,
            after={"op": write.op, "result": write.status},
        )
    return result


def discard_write(*, write: PendingWrite, actor: Any, request: HttpRequest | None = None) -> bool:
    done = PendingWrite.objects.filter(pk=write.pk, status__in=[WriteStatus.PENDING, WriteStatus.FAILED]).update(
        status=WriteStatus.DISCARDED, updated_at=timezone.now()
    )
    if done:
        audit.record(
            action="suppression.discard",
            request=request,
            actor=actor,
            server=write.server,
            target=write.address,
            before={"op": write.op, "last_error": write.last_error},
        )
    return bool(done)


def retry_due_writes(*, limit: int = 100) -> int:
    """Beat: send outbox rows whose time has come; rows stuck "sending" after a crash are freed first."""
    now = timezone.now()
    PendingWrite.objects.filter(status=WriteStatus.RUNNING, claimed_at__lt=now - timedelta(minutes=5)).update(
        status=WriteStatus.PENDING, claimed_at=None
    )
    due = list(
        PendingWrite.objects.filter(status=WriteStatus.PENDING, next_attempt_at__lte=now)
        .select_related("server")
        .order_by("next_attempt_at")[:limit]
    )
    for write in due:
        retry_write(write=write)
    return len(due)


def open_writes(server: Server) -> QuerySet[PendingWrite]:
    return PendingWrite.objects.filter(
        server=server, status__in=[WriteStatus.PENDING, WriteStatus.RUNNING, WriteStatus.FAILED]
    ).order_by("created_at")


# --- checks --------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckRow:
    server: Server
    state: MirrorState
    entry: Suppression | None

    @property
    def suppressed(self) -> bool:
        return self.entry is not None


def check_one(*, servers: Sequence[Server], address: str) -> list[CheckRow]:
    """Where this address is suppressed, for each server given (one indexed query for all of them)."""
    normalised = normalise(address)
    found = {
        s.server_id: s
        for s in Suppression.objects.filter(server__in=[s.pk for s in servers], address=normalised).only(
            "server_id", "address", "reason", "source", "last_update", "first_seen_at"
        )
    }
    states = states_for(servers)
    return [CheckRow(server=s, state=states[s.pk], entry=found.get(s.pk)) for s in servers]


@dataclass(frozen=True)
class BulkCheck:
    """The answer for up to 10,000 addresses: one query whatever their number."""

    results: list[dict[str, Any]]
    invalid: list[dict[str, str]]

    @property
    def suppressed_count(self) -> int:
        return sum(1 for r in self.results if r["suppressed"])


def check_many(*, server: Server, addresses: Sequence[str]) -> BulkCheck:
    """Each address with its entry (or not): one query for all of them, results in the order given."""
    if len(addresses) > MAX_BULK_CHECK:
        raise ValueError(f"At most {MAX_BULK_CHECK:,} addresses per check; this had {len(addresses):,}.")
    lenient = lenient_email
    good: list[str] = []
    invalid: list[dict[str, str]] = []
    for raw in addresses:
        text = str(raw)
        address = lenient(text)
        if address is None:
            invalid.append({"address": text[:320], "error": "not an e-mail address"})
        else:
            good.append(address)
    # PostgreSQL sorts the array for the index scan itself; no need to sort here.
    hits = {
        address: (reason, source, last_update)
        for _, address, reason, source, last_update in mirror.lookup([server.pk], list(set(good)))
    }
    results = [
        {"address": a, "suppressed": True, "reason": hit[0], "source": hit[1], "last_update": hit[2]}
        if (hit := hits.get(a))
        else {"address": a, "suppressed": False, "reason": None, "source": None, "last_update": None}
        for a in good
    ]
    return BulkCheck(results=results, invalid=invalid)


def is_suppressed(*, server: Server, addresses: Sequence[str]) -> set[str]:
    """The subset of (normalised) `addresses` on the server's mirror: one query, for send-time filtering."""
    wanted = sorted({a.strip().lower() for a in addresses if a})
    return {address for _, address, *_ in mirror.lookup([server.pk], wanted)}


def verify_live(*, server: Server, address: str) -> WriteResult:
    """Ask SocketLabs (S1) about one address and correct the mirror if it differs."""
    normalised = normalise(address)
    try:
        entry = remote.client(server, interactive=True).suppressions.check(normalised)
    except socketlabs.SocketLabsError as exc:
        message = remote.describe(server, exc)
        if remote.is_plan_refusal(exc):
            mark_plan(server, enabled=False, message=message)
        return WriteResult(False, message, plan_refused=remote.is_plan_refusal(exc))
    _plan_ok(server)
    known = Suppression.objects.filter(server=server, address=normalised).first()
    if entry is None:
        if known is not None:
            Suppression.objects.filter(server=server, address=normalised).delete()
            return WriteResult(True, f"SocketLabs does not suppress {normalised}; the mirror was corrected.")
        return WriteResult(True, f"SocketLabs confirms {normalised} is not suppressed on {server.name}.")
    mirror.upsert_one(
        server.pk,
        address=normalised,
        reason=mirror.reason_value(entry.reason or Reason.FAILURE),
        source=(entry.source or "")[:40],
        last_update=entry.suppression_last_update,
    )
    if known is None:
        return WriteResult(True, f"SocketLabs suppresses {normalised} ({entry.reason}); the mirror was corrected.")
    return WriteResult(True, f"SocketLabs confirms {normalised} is suppressed on {server.name} ({entry.reason}).")


# --- search and export -----------------------------------------------------------------------
ORDERS = {"address": "Address (A→Z)", "newest": "Newest first"}


@dataclass(frozen=True)
class SearchFilters:
    address: str = ""
    match: str = "prefix"  # "exact" or "prefix"
    domain: str = ""
    reason: str = ""
    since: date | None = None
    until: date | None = None
    order: str = "address"

    def as_dict(self) -> dict[str, str]:
        data = {
            "address": self.address,
            "match": self.match,
            "domain": self.domain,
            "reason": self.reason,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "order": self.order,
        }
        return {k: v for k, v in data.items() if v}


@dataclass(frozen=True)
class SearchPage:
    rows: list[Suppression]
    next_cursor: str | None
    filters: SearchFilters


def _successor(prefix: str) -> str | None:
    """The smallest string greater than every string starting with `prefix`, in byte (C) order."""
    last = ord(prefix[-1])
    if last >= 0x10FFFF:
        return None  # nothing sorts after it: the range is open-ended
    return prefix[:-1] + chr(last + 1)


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.get_current_timezone())


def filtered(server: Server, filters: SearchFilters) -> QuerySet[Suppression]:
    """Rows matching the filters, unordered. Every filter is served by one of the mirror's btrees."""
    qs = Suppression.objects.filter(server=server)
    address = filters.address.strip().lower()
    if address:
        if filters.match == "exact":
            qs = qs.filter(address=address)
        else:
            # A range, not LIKE: it uses the primary key (address is C-collated) on every database.
            upper = _successor(address)
            qs = qs.filter(address__gte=address)
            qs = qs.filter(address__lt=upper) if upper is not None else qs.filter(address__startswith=address)
    domain = filters.domain.strip().lower().lstrip("@")
    if domain:
        qs = qs.filter(domain=domain)
    if filters.reason:
        qs = qs.filter(reason=filters.reason)
    if filters.since:
        qs = qs.filter(last_update__gte=_day_start(filters.since))
    if filters.until:
        qs = qs.filter(last_update__lt=_day_start(filters.until + timedelta(days=1)))
    return qs


def _encode_cursor(values: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> list[str] | None:
    if not cursor:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        return None
    if isinstance(data, list) and all(isinstance(v, str) for v in data):
        return data
    return None


def search(*, server: Server, filters: SearchFilters, cursor: str | None = None, limit: int = PAGE_SIZE) -> SearchPage:
    """One page of results in keyset order (no OFFSET, no COUNT): `next_cursor` continues after the last row."""
    qs = filtered(server, filters)
    after = _decode_cursor(cursor)
    if filters.order == "newest":
        if after and len(after) == 2:
            try:
                stamp = datetime.fromisoformat(after[0])
            except ValueError:
                stamp = None
            if stamp is not None:
                qs = qs.extra(where=["(last_update, address) < (%s, %s)"], params=[stamp, after[1]])
        qs = qs.order_by("-last_update", "-address")
    else:
        if after and len(after) == 1:
            qs = qs.filter(address__gt=after[0])
        qs = qs.order_by("address")
    rows = list(qs[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        values = [last.last_update.isoformat(), last.address] if filters.order == "newest" else [last.address]
        next_cursor = _encode_cursor(values)
    return SearchPage(rows=rows, next_cursor=next_cursor, filters=filters)


EXPORT_HEADER = ["emailAddress", "reason", "source", "suppressionLastUpdate", "firstSeenByMailroom"]


def export_rows(*, server: Server, filters: SearchFilters) -> Iterator[tuple[str, str, str, str, str]]:
    """Every row of the search, streamed from a server-side cursor in chunks (memory stays flat)."""
    qs = filtered(server, filters).order_by("address")
    if filters.order == "newest":
        qs = qs.order_by("-last_update", "-address")
    for address, reason, source, last_update, first_seen in qs.values_list(
        "address", "reason", "source", "last_update", "first_seen_at"
    ).iterator(chunk_size=5000):
        yield address, reason, source, last_update.isoformat(), first_seen.isoformat()


def record_export(*, server: Server, filters: SearchFilters, actor: Any, request: HttpRequest | None) -> None:
    audit.record(
        action="suppression.export", request=request, actor=actor, server=server, after={"filters": filters.as_dict()}
    )


# --- pulls from SocketLabs -------------------------------------------------------------------
@dataclass(frozen=True)
class SyncOutcome:
    ok: bool
    message: str
    result: mirror.LoadResult | None = None


def request_sync(*, server: Server, actor: Any = None, request: HttpRequest | None = None) -> bool:
    """Queue a full pull; False when one is already queued or running."""
    state_for(server)
    now = timezone.now()
    with transaction.atomic():
        queued = (
            MirrorState.objects.filter(server=server)
            .exclude(sync_status__in=[SyncStatus.QUEUED, SyncStatus.RUNNING])
            .update(sync_status=SyncStatus.QUEUED, sync_requested_at=now, sync_error="")
        )
        if queued and actor is not None:
            audit.record(action="suppression.sync", request=request, actor=actor, server=server, target=server.name)
    if queued:
        from suppression.tasks import sync_server

        transaction.on_commit(lambda: sync_server.delay(server.pk))
    return bool(queued)


def _claim_sync(server: Server) -> bool:
    now = timezone.now()
    state_for(server)
    claimed = (
        MirrorState.objects.filter(server=server)
        .filter(
            Q(sync_status__in=[SyncStatus.QUEUED, SyncStatus.IDLE, SyncStatus.FAILED])
            | Q(sync_status=SyncStatus.RUNNING, sync_started_at__lt=now - SYNC_STALE_AFTER)
        )
        .update(sync_status=SyncStatus.RUNNING, sync_started_at=now)
    )
    return bool(claimed)


def sync(*, server: Server) -> SyncOutcome:
    """A full pull: stream the S5 download to a temporary file, then load it into the mirror in one transaction.

    The network is never read inside the database transaction, and a crash at any point leaves
    the mirror as it was (the state row then looks stale and the next pull takes over).
    """
    if not _claim_sync(server):
        return SyncOutcome(False, "A pull of this list is already running.")
    started = timezone.now()
    tmp_dir = Path(settings.MEDIA_ROOT) / "suppression-tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"pull-{server.pk}-", suffix=".csv", dir=tmp_dir)
    os.close(fd)
    path = Path(name)
    try:
        try:
            rows = remote.client(server, interactive=False).suppressions.download()
            mirror.write_download_copy(rows, path)
        except socketlabs.SocketLabsError as exc:
            message = remote.describe(server, exc)
            if remote.is_plan_refusal(exc):
                mark_plan(server, enabled=False, message=message)
                _sync_ended(server, SyncStatus.IDLE, message)
                return SyncOutcome(False, message)
            _sync_ended(server, SyncStatus.FAILED, message)
            if remote.is_transient(exc):
                raise
            return SyncOutcome(False, message)
        stats = mirror.DownloadStats()
        try:
            result = mirror.load(server.pk, mirror.download_rows(path, stats), replace=True, started_at=started)
        except ValueError as exc:  # CsvFileError: the download itself was unreadable
            message = f"The suppression download of {server.name} could not be read: {exc}"
            _sync_ended(server, SyncStatus.FAILED, message)
            return SyncOutcome(False, message)
    finally:
        path.unlink(missing_ok=True)
    if result.added and result.at is not None:
        _tell_contacts_about_new_rows(server, result.at)
    MirrorState.objects.filter(server=server).update(
        sync_status=SyncStatus.IDLE,
        sync_error="; ".join(str(p) for p in stats.problems[:3]),
        last_synced_at=started,
        last_sync_rows=result.rows,
        last_sync_added=result.added,
        last_sync_updated=result.updated,
        last_sync_removed=result.removed,
        last_sync_skipped=stats.skipped,
        plan_enabled=True,
        plan_message="",
        plan_checked_at=timezone.now(),
    )
    return SyncOutcome(
        True,
        f"Pulled {result.rows:,} entries for {server.name}: {result.added:,} new, {result.updated:,} changed, "
        f"{result.removed:,} gone.",
        result,
    )


def resume_stale_syncs(*, now: datetime | None = None) -> int:
    """Beat: re-queue pulls whose task was lost (queued long ago) or whose worker died (running too long).

    A pull is one transaction, so a dead worker left nothing half-written; it only has to run again.
    """
    now = now or timezone.now()
    stale = list(
        MirrorState.objects.filter(
            Q(sync_status=SyncStatus.QUEUED, sync_requested_at__lt=now - SYNC_STALE_AFTER)
            | Q(sync_status=SyncStatus.RUNNING, sync_started_at__lt=now - SYNC_STALE_AFTER)
        ).values_list("server_id", flat=True)
    )
    if not stale:
        return 0
    from suppression.tasks import sync_server

    MirrorState.objects.filter(server_id__in=stale).update(sync_status=SyncStatus.QUEUED, sync_requested_at=now)
    for server_id in stale:
        sync_server.delay(server_id)
    return len(stale)


def _tell_contacts_about_new_rows(server: Server, at: datetime) -> None:
    """Addresses a pull found new (suppressed at SocketLabs directly) reach the contacts too, 5,000 at a time."""
    rows = (
        Suppression.objects.filter(server=server, first_seen_at=at)
        .values_list("address", "reason")
        .iterator(chunk_size=5000)
    )
    while chunk := list(itertools.islice(rows, 5000)):
        tell_contacts(server, chunk)


def _sync_ended(server: Server, status: str, error: str) -> None:
    MirrorState.objects.filter(server=server).update(sync_status=status, sync_error=error[:2000])


def due_for_nightly_sync(*, now: datetime | None = None) -> list[Server]:
    """Servers with an API key whose mirror was not pulled in their own "today", once it is past the sync hour."""
    now = now or timezone.now()
    hour = int(getattr(settings, "SUPPRESSION_SYNC_HOUR", 2))
    due = []
    states = {s.server_id: s for s in MirrorState.objects.all()}
    for server in Server.objects.exclude(api_key=""):
        state = states.get(server.pk)
        local_now = now.astimezone(server.zone)
        if local_now.hour < hour:
            continue
        if state is not None and state.sync_in_progress:
            continue
        last = state.last_synced_at if state else None
        if last is None or last.astimezone(server.zone).date() < local_now.date():
            due.append(server)
    return due


def dispatch_nightly_syncs(*, now: datetime | None = None) -> int:
    """Beat, every few minutes: queue the pulls that are due. Queuing twice is harmless (conditional update)."""
    count = 0
    for server in due_for_nightly_sync(now=now):
        if request_sync(server=server):
            count += 1
    return count


def prune(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    deleted, _ = RecentRemoval.objects.filter(removed_at__lt=now - REMOVALS_KEPT).delete()
    return deleted


# --- event effects (for the reporting app) ---------------------------------------------------
@dataclass(frozen=True)
class EffectEntry:
    """One event SocketLabs acted on: a hard bounce (Bounce), a complaint (Complaint) or an unsubscribe."""

    address: str
    reason: str
    occurred_at: datetime


def apply_event_effects(*, server: Server, entries: Iterable[EffectEntry]) -> int:
    """Mirror suppressions SocketLabs made itself because of events; returns the rows written.

    SocketLabs puts hard-bouncing, complaining and unsubscribing addresses on the server's list on
    its own, so this only updates the mirror (no API call). One statement per few hundred
    entries; an entry older than what the mirror already holds is ignored, so replays, duplicate
    deliveries and out-of-order events change nothing. Unusable addresses are skipped.
    """
    rows: list[tuple[str, str, str, datetime]] = []
    for entry in entries:
        address = lenient_email(entry.address)
        if address is None:
            continue
        reason = mirror.reason_value(entry.reason) or Reason.FAILURE.value
        occurred = entry.occurred_at if entry.occurred_at.tzinfo else entry.occurred_at.replace(tzinfo=UTC)
        rows.append((address, reason, "event", occurred))
    written = 0
    for start in range(0, len(rows), 500):
        written += mirror.upsert_many(server.pk, rows[start : start + 500], only_if_newer=True)
    return written
