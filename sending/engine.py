"""The bulk send engine: audience expansion, batches, the dispatcher, pause/resume/cancel, the sweep.

The rule that shapes everything here: **no recipient is ever sent twice**. Every Injection API
request is a `SendBatch` row claimed atomically (pending → in_flight) before the HTTP call. A batch
goes back to pending only when the client proved the request was not taken (a connect error, 429
or 503: `socketlabs.TransientError`); when the request may have arrived (`OutcomeUnknownError`) or
a worker died while it was in flight, the batch becomes `unknown` and is never re-sent
automatically. Its recipients carry our own MessageId (`<prefix>-<recipient id>`) and MailingId,
so their fate can be reconciled from event webhooks or reports.

Nothing here runs a task per recipient (shared/limits.md §4): a task dispatches batches in a loop.

A send is a mail merge (bulk messages of 50 merge rows, 10 per request) unless it has Cc or Bcc:
then it is a basic send, one message to all its recipients (To) plus Cc and Bcc, at most 50
addresses in all and no per-recipient merge fields (global ones are filled in here).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.http import HttpRequest
from django.utils import timezone

import socketlabs
from accounts import audit
from accounts.access import user_can
from accounts.models import Server
from accounts.roles import Capability
from accounts.services import client_for
from common.emails import InvalidAddress, normalise_email
from sending.models import (
    AudienceState,
    BatchState,
    RecipientState,
    Send,
    SendAttachment,
    SendBatch,
    SendRecipient,
    SendSettings,
    SendStatus,
    Template,
)
from socketlabs import errors as sl_errors
from socketlabs.injection import Attachment, BasicMessage, BulkMessage, BulkRecipient, InjectionResult, Message

RECIPIENTS_PER_MESSAGE = 50  # the SDK's limit and the sandbox's (contract §2, limits table)
MESSAGES_PER_REQUEST = 10
RECIPIENTS_PER_BATCH = RECIPIENTS_PER_MESSAGE * MESSAGES_PER_REQUEST
EXPAND_CHUNK = 5000
ANALYZE_AFTER_BATCHES = 20  # plan_batches refreshes the statistics when it plans this many batches at once
RECIPIENT_ID_FIELD = "MailroomRecipientId"
TOKEN = re.compile(r"%%([A-Za-z0-9_.-]+)%%")
BUILTIN_FIELDS = {"deliveryaddress", "recipientname", RECIPIENT_ID_FIELD.casefold()}
ACTIVE = (SendStatus.QUEUED, SendStatus.SENDING)


def max_in_flight() -> int:
    """Batches in flight at once per server: bounded concurrency towards one SocketLabs server."""
    return int(getattr(settings, "SENDING_MAX_IN_FLIGHT_PER_SERVER", 4))


def stale_after() -> timedelta:
    """An in_flight batch older than this was abandoned by a dead worker (longer than the task time limit)."""
    return timedelta(seconds=int(getattr(settings, "SENDING_STALE_SECONDS", 900)))


class SendError(ValueError):
    """A send cannot be created or changed as asked; the message says why in plain words."""


def merge_fields_in(*texts: str) -> list[str]:
    """The `%%Field%%` names used in these texts, first use first, without the built-in ones."""
    seen: dict[str, str] = {}
    for text in texts:
        for name in TOKEN.findall(text or ""):
            if name.casefold() not in BUILTIN_FIELDS:
                seen.setdefault(name.casefold(), name)
    return list(seen.values())


# --- creating a send -----------------------------------------------------------------------------
@dataclass(frozen=True)
class AudienceRow:
    address: str
    name: str = ""
    fields: dict[str, str] | None = None
    line: int | None = None  # where it came from, for messages


def create_send(
    *,
    server: Server,
    actor: Any,
    template: Template | None = None,
    name: str = "",
    subject: str = "",
    html_body: str = "",
    text_body: str = "",
    from_address: str,
    from_name: str = "",
    reply_to: str = "",
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
    mailing_id: str = "",
    message_id_prefix: str = "",
    tags: Sequence[str] = (),
    metadata: dict[str, str] | None = None,
    custom_headers: dict[str, str] | None = None,
    global_fields: dict[str, str] | None = None,
    audience: str = "",
    request: HttpRequest | None = None,
) -> Send:
    """A draft send with a snapshot of the template (later template edits do not change it)."""
    if template is not None:
        subject = subject or template.subject
        html_body = html_body or template.html_body
        text_body = text_body or template.text_body
    if not subject.strip():
        raise SendError("A subject is required.")
    if not (html_body.strip() or text_body.strip()):
        raise SendError("An HTML or a text body is required.")
    try:
        from_address = normalise_email(from_address)
    except InvalidAddress as exc:
        raise SendError(f"From address: {exc}.") from None
    if reply_to:
        try:
            reply_to = normalise_email(reply_to)
        except InvalidAddress as exc:
            raise SendError(f"Reply-To address: {exc}.") from None
    cc_list, bcc_list = basic_copies(server, cc, bcc, subject, html_body, text_body, global_fields or {})
    send = Send.objects.create(
        server=server,
        name=(name or (template.name if template else subject))[:200],
        template=template,
        subject=subject,
        html_body=html_body,
        text_body=text_body,
        from_address=from_address,
        from_name=from_name,
        reply_to=reply_to,
        cc=cc_list,
        bcc=bcc_list,
        mailing_id=mailing_id,
        message_id_prefix=message_id_prefix,
        tags=[str(t) for t in tags],
        metadata={str(k): str(v) for k, v in (metadata or {}).items()},
        custom_headers={str(k): str(v) for k, v in (custom_headers or {}).items()},
        global_fields={str(k): str(v) for k, v in (global_fields or {}).items()},
        audience=audience[:200],
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    audit.record(action="send.create", request=request, actor=actor, server=server, target=f"send {send.pk}")
    return send


BASIC_MAX_ADDRESSES = 50  # To + Cc + Bcc of one basic message (contract §2.8)


def basic_copies(
    server: Server,
    cc: Sequence[str],
    bcc: Sequence[str],
    subject: str,
    html_body: str,
    text_body: str,
    global_fields: dict[str, str],
) -> tuple[list[str], list[str]]:
    """Checked Cc and Bcc lists. With either, the send is basic: one message to everyone, no mail merge.

    Raises SendError for a bad or suppressed address, too many addresses, or a merge field that
    would differ per recipient (only global fields can fill a basic message).
    """
    from suppression.services import is_suppressed

    seen: set[str] = set()
    lists: list[list[str]] = []
    for label, values in (("Cc", cc), ("Bcc", bcc)):
        found: list[str] = []
        for value in values:
            if not str(value).strip():
                continue
            try:
                address = normalise_email(str(value))
            except InvalidAddress as exc:
                raise SendError(f"{label} address “{str(value).strip()[:320]}”: {exc}.") from None
            if address not in seen:
                seen.add(address)
                found.append(address)
        lists.append(found)
    if not seen:
        return [], []
    if len(seen) >= BASIC_MAX_ADDRESSES:
        raise SendError(
            f"Cc and Bcc: {len(seen)} addresses; a message has at most {BASIC_MAX_ADDRESSES} addresses "
            f"in To, Cc and Bcc together, and at least one goes in To."
        )
    globals_folded = {k.casefold() for k in global_fields}
    per_recipient = [f for f in merge_fields_in(subject, html_body, text_body) if f.casefold() not in globals_folded]
    if per_recipient:
        raise SendError(
            "Cc/Bcc only apply to a basic send (one message, no mail merge), but the template uses "
            f"{', '.join(f'%%{f}%%' for f in per_recipient)}, which would differ per recipient. "
            "Remove Cc/Bcc to send a mail merge, or give these fields a global value."
        )
    suppressed = is_suppressed(server=server, addresses=sorted(seen))
    if suppressed:
        raise SendError(f"Cc/Bcc: {', '.join(sorted(suppressed))} is on this server's suppression list.")
    return lists[0], lists[1]


MAX_ATTACHMENT_BYTES = 2 * 1024 * 1024  # all files together: they travel in each of a request's 10 messages


def attach(send: Send, *, name: str, content: bytes, content_type: str = "application/octet-stream") -> SendAttachment:
    """Attach a file to every message of a draft; all files together stay under 2 MB."""
    if send.status != SendStatus.DRAFT:
        raise SendError("Files can only be attached to a draft.")
    used = sum(SendAttachment.objects.filter(send=send).values_list("size", flat=True))
    if used + len(content) > MAX_ATTACHMENT_BYTES:
        raise SendError(
            f"Attachments: “{name}” would bring the files to {(used + len(content)) / 1048576:.1f} MB; "
            f"at most {MAX_ATTACHMENT_BYTES // 1048576} MB in all, since every message carries them."
        )
    return SendAttachment.objects.create(
        send=send,
        name=name[:255],
        content=content,
        content_type=content_type[:100] or "application/octet-stream",
        size=len(content),
    )


@dataclass(frozen=True)
class Expansion:
    added: int
    skipped: int
    duplicates: int


def add_recipients(send: Send, rows: Iterable[AudienceRow], *, skip: Iterable[tuple[str, str]] = ()) -> Expansion:
    """Expand the audience into recipient rows, set-based: a chunk at a time, one suppression query per chunk.

    Invalid and suppressed addresses are stored as `skipped` with the reason, so the summary can
    show them; duplicates (within the send) are dropped. `skip` adds (address, reason) rows that
    the audience itself excluded (e.g. unsubscribed contacts). Only a draft takes recipients.
    """
    from suppression.services import is_suppressed

    if send.status != SendStatus.DRAFT:
        raise SendError("Recipients can only be added to a draft.")
    added = skipped = duplicates = 0
    pending, skip_state = str(RecipientState.PENDING), str(RecipientState.SKIPPED)
    for chunk in _chunks(rows, EXPAND_CHUNK):
        # Plain tuples (address, name, fields, state, reason): model instances cost a third of the time.
        good: dict[str, Staged] = {}
        invalid: list[Staged] = []
        for row in chunk:
            try:
                address = normalise_email(row.address)
            except InvalidAddress as exc:
                where = f"line {row.line}: " if row.line else ""
                shown = row.address.strip()[:320] or f"(empty, line {row.line})"
                invalid.append((shown, "", {}, skip_state, f"{where}{exc}"[:200]))
                continue
            if address in good:
                duplicates += 1
                continue
            fields = {str(k): str(v) for k, v in (row.fields or {}).items()}
            good[address] = (address, row.name[:200], fields, pending, "")
        suppressed = is_suppressed(server=send.server, addresses=list(good)) if good else set()
        for address in suppressed:
            good[address] = (*good[address][:3], skip_state, "suppressed")
        _insert_recipients(send, [*good.values(), *invalid])
        added += len(good) - len(suppressed)
        skipped += len(suppressed) + len(invalid)
    for extra in _chunks(skip, EXPAND_CHUNK):
        _insert_recipients(send, [(a, "", {}, skip_state, why[:200]) for a, why in extra])
        skipped += len(extra)
    _refresh_totals(send)
    return Expansion(added=added, skipped=skipped, duplicates=duplicates)


Staged = tuple[str, str, dict[str, str], str, str]


def _insert_recipients(send: Send, rows: Sequence[Staged]) -> None:
    """Insert a chunk; an address already in this send (an earlier chunk or call) is dropped.

    On PostgreSQL: COPY into a temporary stage, then one INSERT … ON CONFLICT DO NOTHING —
    several times faster than `bulk_create` for these JSON rows (measured for bench_send).
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        objs = [
            SendRecipient(send=send, address=a, name=n, fields=f, state=st, reason=why) for a, n, f, st, why in rows
        ]
        SendRecipient.objects.bulk_create(objs, ignore_conflicts=True)
        return
    with transaction.atomic():
        connection.ensure_connection()
        raw = connection.connection
        assert raw is not None
        with raw.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS sending_recipient_stage "
                "(address text, name text, fields jsonb, state text, reason text) ON COMMIT DELETE ROWS"
            )
            with cursor.copy("COPY sending_recipient_stage (address, name, fields, state, reason) FROM STDIN") as copy:
                for address, name, fields, state, reason in rows:
                    copy.write_row((address, name, json.dumps(fields), state, reason))
            cursor.execute(
                "INSERT INTO sending_sendrecipient (send_id, address, name, fields, state, code, reason) "
                "SELECT %s, address, name, fields, state, '', reason FROM sending_recipient_stage "
                "ON CONFLICT (send_id, address) DO NOTHING",
                [send.pk],
            )
            # Inside a caller's longer transaction ON COMMIT comes late; empty the stage for the next chunk now.
            cursor.execute("DELETE FROM sending_recipient_stage")


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _refresh_totals(send: Send) -> None:
    counts = counts_for(send)
    send.skipped = counts[RecipientState.SKIPPED]
    send.total = sum(v for k, v in counts.items() if k != RecipientState.SKIPPED)
    Send.objects.filter(pk=send.pk).update(total=send.total, skipped=send.skipped)


def counts_for(send: Send) -> dict[str, int]:
    """Recipients per state: one grouped query."""
    counts = dict.fromkeys(RecipientState.values, 0)
    for row in SendRecipient.objects.filter(send=send).values("state").annotate(n=Count("pk")).order_by():
        counts[row["state"]] = row["n"]
    return counts


def plan_batches(send: Send) -> int:
    """Put every pending recipient without a batch into new batches of up to 500, set-based.

    One query finds where each batch starts (every 500th pending id); each batch then takes its id
    range through the primary key. (A single UPDATE joined to a numbered copy of the table was
    planned as a nested loop while the table's statistics still described it empty: 11 s at 100k.)
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT id FROM (
                SELECT id, row_number() OVER (ORDER BY id) AS n FROM sending_sendrecipient
                WHERE send_id = %s AND state = 'pending' AND batch_id IS NULL
            ) numbered WHERE (n - 1) %% {RECIPIENTS_PER_BATCH} = 0 ORDER BY id
            """,
            [send.pk],
        )
        starts = [row[0] for row in cursor.fetchall()]
    if not starts:
        return 0
    if len(starts) >= ANALYZE_AFTER_BATCHES:
        # Freshly expanded rows are not in the table's statistics yet; without them the range updates
        # below (and each batch's result) are planned as scans of the whole send.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE sending_sendrecipient")
    last = SendBatch.objects.filter(send=send).order_by("-seq").values_list("seq", flat=True).first()
    first_seq = (last or 0) + 1
    batches = SendBatch.objects.bulk_create([SendBatch(send=send, seq=first_seq + i) for i in range(len(starts))])
    ends = [*(start - 1 for start in starts[1:]), None]
    with connection.cursor() as cursor:
        cursor.executemany(
            "UPDATE sending_sendrecipient SET batch_id = %s WHERE send_id = %s AND state = 'pending' "
            "AND batch_id IS NULL AND id >= %s AND (%s::bigint IS NULL OR id <= %s)",
            [(batch.pk, send.pk, start, end, end) for batch, start, end in zip(batches, starts, ends, strict=True)],
        )
    return len(starts)


# --- state changes -------------------------------------------------------------------------------
def _enqueue(send_id: int, copies: int = 1) -> None:
    """Queue dispatcher tasks after the transaction commits (tests replace this to run them inline)."""
    from sending.send_tasks import dispatch_send

    def go() -> None:
        for _ in range(copies):
            dispatch_send.delay(send_id)

    transaction.on_commit(go)


def enqueue_audience(send_id: int) -> None:
    """Queue the audience job after the transaction commits (tests replace this to run it themselves)."""
    from sending.send_tasks import expand_send_audience

    transaction.on_commit(lambda: expand_send_audience.delay(send_id))


def audience_stale_after() -> timedelta:
    """An audience job without a heartbeat for this long lost its worker (it beats every 5,000 rows)."""
    return timedelta(seconds=int(getattr(settings, "SENDING_AUDIENCE_STALE_SECONDS", 120)))


def _transition(send: Send, sources: Sequence[str], target: str, **extra: Any) -> bool:
    changed = Send.objects.filter(pk=send.pk, status__in=list(sources)).update(status=target, **extra)
    if changed:
        send.status = target
        for key, value in extra.items():
            setattr(send, key, value)
    return bool(changed)


def start(send: Send, *, actor: Any, request: HttpRequest | None = None) -> None:
    """Draft → queued: plan the batches and queue the dispatcher. Raises SendError if it cannot start."""
    with transaction.atomic():
        locked = Send.objects.select_for_update().get(pk=send.pk)
        if locked.status != SendStatus.DRAFT:
            raise SendError(f"This send is {locked.get_status_display().lower()}; only a draft can be started.")
        if locked.audience_state == AudienceState.EXPANDING:
            raise SendError("The audience is still being prepared; start the send once the summary is ready.")
        if locked.audience_state == AudienceState.FAILED:
            raise SendError(f"The audience could not be prepared: {locked.audience_error}")
        _refresh_totals(locked)
        if not locked.total:
            raise SendError("There is nobody to send to: every recipient was skipped.")
        if locked.is_basic and locked.total + len(locked.cc) + len(locked.bcc) > BASIC_MAX_ADDRESSES:
            raise SendError(
                f"With Cc/Bcc this is one message to everyone, at most {BASIC_MAX_ADDRESSES} addresses in To, Cc "
                f"and Bcc together; it has {locked.total} recipients, {len(locked.cc)} Cc and {len(locked.bcc)} Bcc. "
                "Remove Cc/Bcc to send a mail merge to a larger audience."
            )
        plan_batches(locked)
        threshold = approval_threshold(send.server)
        if threshold is not None and locked.total > threshold:
            # Above the server's limit a second Admin approves before anything goes out.
            _transition(locked, [SendStatus.DRAFT], SendStatus.AWAITING_APPROVAL)
            audit.record(
                action="send.approval_requested",
                request=request,
                actor=actor,
                server=send.server,
                target=f"send {send.pk}",
                after={"recipients": locked.total, "threshold": threshold},
            )
        else:
            _transition(locked, [SendStatus.DRAFT], SendStatus.QUEUED)
            audit.record(
                action="send.start",
                request=request,
                actor=actor,
                server=send.server,
                target=f"send {send.pk}",
                after={"recipients": locked.total, "skipped": locked.skipped},
            )
            _enqueue(send.pk, max_in_flight())
    send.refresh_from_db()


def approval_threshold(server: Server) -> int | None:
    return SendSettings.objects.filter(server=server).values_list("approval_threshold", flat=True).first()


def set_approval_threshold(
    server: Server, threshold: int | None, *, actor: Any, request: HttpRequest | None = None
) -> None:
    before = approval_threshold(server)
    SendSettings.objects.update_or_create(
        server=server, defaults={"approval_threshold": threshold, "updated_at": timezone.now()}
    )
    audit.record(
        action="send.settings",
        request=request,
        actor=actor,
        server=server,
        target="approval threshold",
        before={"approval_threshold": before},
        after={"approval_threshold": threshold},
    )


def can_approve(send: Send, user: Any) -> bool:
    """An Admin of the server other than the person who created the send."""
    return bool(
        getattr(user, "is_authenticated", False)
        and user_can(user, send.server, Capability.MANAGE_SERVER)
        and user.pk != send.created_by_id
    )


def approve(send: Send, *, actor: Any, request: HttpRequest | None = None) -> None:
    """awaiting approval → queued, by a second Admin. Raises SendError otherwise."""
    if not can_approve(send, actor):
        raise SendError("A send needs the approval of an Admin of this server other than the person who created it.")
    with transaction.atomic():
        done = _transition(
            send,
            [SendStatus.AWAITING_APPROVAL],
            SendStatus.QUEUED,
            approved_by=actor,
            approved_at=timezone.now(),
        )
        if not done:
            raise SendError("This send is not waiting for approval.")
        audit.record(
            action="send.approve",
            request=request,
            actor=actor,
            server=send.server,
            target=f"send {send.pk}",
            after={"recipients": send.total},
        )
        _enqueue(send.pk, max_in_flight())
    send.refresh_from_db()


def pause(send: Send, *, actor: Any, request: HttpRequest | None = None) -> bool:
    """Batches already in flight finish; no new one is claimed."""
    done = _transition(send, ACTIVE, SendStatus.PAUSED)
    if done:
        audit.record(action="send.pause", request=request, actor=actor, server=send.server, target=f"send {send.pk}")
    return done


def resume(send: Send, *, actor: Any, request: HttpRequest | None = None) -> bool:
    done = _transition(send, [SendStatus.PAUSED], SendStatus.SENDING)
    if done:
        audit.record(action="send.resume", request=request, actor=actor, server=send.server, target=f"send {send.pk}")
        _enqueue(send.pk, max_in_flight())
    return done


def cancel(send: Send, *, actor: Any, request: HttpRequest | None = None) -> bool:
    """Stop for good: pending batches are cancelled and their recipients skipped; in-flight ones finish."""
    with transaction.atomic():
        done = _transition(
            send,
            [SendStatus.DRAFT, SendStatus.AWAITING_APPROVAL, *ACTIVE, SendStatus.PAUSED],
            SendStatus.CANCELLED,
            finished_at=timezone.now(),
        )
        if not done:
            return False
        SendBatch.objects.filter(send=send, state=BatchState.PENDING).update(state=BatchState.CANCELLED)
        SendRecipient.objects.filter(send=send, state=RecipientState.PENDING).exclude(
            batch__state=BatchState.IN_FLIGHT
        ).update(state=RecipientState.SKIPPED, reason="cancelled")
        audit.record(action="send.cancel", request=request, actor=actor, server=send.server, target=f"send {send.pk}")
    return True


def retry_failed(send: Send, *, actor: Any, include_unknown: bool = False, request: HttpRequest | None = None) -> int:
    """New batches for rejected recipients only (and, with an explicit confirmation, unknown ones).

    Recipients whose outcome is unknown may already have received the message, so they are
    re-sent only when a person confirmed it (`include_unknown`).
    """
    states = [RecipientState.REJECTED, *([RecipientState.UNKNOWN] if include_unknown else [])]
    with transaction.atomic():
        locked = Send.objects.select_for_update().get(pk=send.pk)
        if locked.status not in (SendStatus.DONE, SendStatus.PAUSED):
            raise SendError("Only a finished or paused send can retry its failed recipients.")
        count = SendRecipient.objects.filter(send=locked, state__in=states).update(
            state=RecipientState.PENDING, code="", batch=None
        )
        if not count:
            return 0
        plan_batches(locked)
        _transition(locked, [SendStatus.DONE, SendStatus.PAUSED], SendStatus.SENDING, finished_at=None)
        audit.record(
            action="send.retry",
            request=request,
            actor=actor,
            server=send.server,
            target=f"send {send.pk}",
            after={"recipients": count, "include_unknown": include_unknown},
        )
        _enqueue(send.pk, max_in_flight())
    send.refresh_from_db()
    return count


# --- the dispatcher ------------------------------------------------------------------------------
def claim_batch(send: Send) -> SendBatch | None:
    """Claim the next pending batch (pending → in_flight), or None when there is none or the server is busy.

    A transaction-scoped advisory lock per server makes "count in flight, then claim" atomic
    across workers, which is what bounds concurrency per server. The check and the claim are one
    statement, so the lock is held for one round trip.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7007, send.server_id])
        cursor.execute(
            """
            UPDATE sending_sendbatch SET state = 'in_flight', attempts = attempts + 1, claimed_at = now()
            WHERE id = (
                SELECT b.id FROM sending_sendbatch b
                WHERE b.send_id = %(send)s AND b.state = 'pending'
                  AND EXISTS (SELECT 1 FROM sending_send s WHERE s.id = %(send)s AND s.status IN ('queued', 'sending'))
                  AND (
                    SELECT count(*) FROM sending_sendbatch f JOIN sending_send o ON o.id = f.send_id
                    WHERE o.server_id = %(server)s AND f.state = 'in_flight'
                  ) < %(limit)s
                ORDER BY b.seq LIMIT 1
                FOR UPDATE OF b SKIP LOCKED
            )
            RETURNING id, seq, attempts, claimed_at
            """,
            {"send": send.pk, "server": send.server_id, "limit": max_in_flight()},
        )
        row = cursor.fetchone()
        if row is None:
            return None
        cursor.execute(
            "UPDATE sending_send SET status = 'sending', started_at = now() WHERE id = %s AND status = 'queued'",
            [send.pk],
        )
    batch_id, seq, attempts, claimed_at = row
    return SendBatch(
        id=batch_id, send=send, seq=seq, state=BatchState.IN_FLIGHT, attempts=attempts, claimed_at=claimed_at
    )


def build_basic_message(send: Send, recipients: Sequence[SendRecipient]) -> BasicMessage:
    """A basic send: one message, the recipients in To plus the send's Cc and Bcc; global fields
    are filled in here (plain replacement, as SocketLabs would), so no merge data travels."""
    folded = {k.casefold(): v for k, v in send.global_fields.items()}

    def fill(text: str) -> str:
        return TOKEN.sub(lambda m: folded.get(m.group(1).casefold(), ""), text) if text else text

    return BasicMessage(
        from_address=(send.from_address, send.from_name),
        reply_to=send.reply_to or None,
        to=[(r.address, r.name) for r in recipients],
        cc=list(send.cc),
        bcc=list(send.bcc),
        subject=fill(send.subject),
        html_body=fill(send.html_body) or None,
        text_body=fill(send.text_body) or None,
        mailing_id=send.effective_mailing_id,
        message_id=f"{send.effective_message_id_prefix}-{recipients[0].pk}",
        custom_headers=send.custom_headers,
        metadata=send.metadata,
        tags=send.tags,
        attachments=[
            Attachment(a.name, bytes(a.content), a.content_type) for a in SendAttachment.objects.filter(send=send)
        ],
    )


def build_messages(send: Send, recipients: Sequence[SendRecipient]) -> list[Message]:
    """One bulk message per 50 recipients. Every template field gets a value in every row: the
    recipient's own, else the global one (left to SocketLabs' Global merge data), else empty.
    A basic send (Cc/Bcc) is one basic message instead."""
    if send.is_basic:
        return [build_basic_message(send, recipients)]
    used = merge_fields_in(send.subject, send.html_body, send.text_body)
    global_keys = {k.casefold() for k in send.global_fields}
    prefix = send.effective_message_id_prefix
    attachments = [
        Attachment(a.name, bytes(a.content), a.content_type) for a in SendAttachment.objects.filter(send=send)
    ]
    messages: list[Message] = []
    for start_at in range(0, len(recipients), RECIPIENTS_PER_MESSAGE):
        rows = []
        for r in recipients[start_at : start_at + RECIPIENTS_PER_MESSAGE]:
            own = {k.casefold(): (k, v) for k, v in r.fields.items()}
            fields: dict[str, str] = {}
            for name in used:
                key = name.casefold()
                if key in own:
                    fields[own[key][0]] = own[key][1]
                elif key not in global_keys:
                    fields[name] = ""
            fields[RECIPIENT_ID_FIELD] = str(r.pk)
            rows.append(BulkRecipient(r.address, r.name or None, fields))
        messages.append(
            BulkMessage(
                from_address=(send.from_address, send.from_name),
                reply_to=send.reply_to or None,
                subject=send.subject,
                html_body=send.html_body or None,
                text_body=send.text_body or None,
                mailing_id=send.effective_mailing_id,
                message_id=f"{prefix}-%%{RECIPIENT_ID_FIELD}%%",
                custom_headers=send.custom_headers,
                metadata=send.metadata,
                tags=send.tags,
                attachments=attachments,
                recipients=rows,
                global_merge_fields=send.global_fields,
            )
        )
    return messages


class NotTaken(Exception):
    """The client proved the request was not taken (connect error, 429, 503): the batch is pending again."""

    def __init__(self, error: sl_errors.SocketLabsError) -> None:
        super().__init__(error.message)
        self.error = error


def send_batch(send: Send, batch: SendBatch, *, client: socketlabs.SocketLabsClient | None = None) -> str:
    """Inject one claimed batch and record every recipient's result; returns the batch's new state."""
    recipients = list(
        SendRecipient.objects.filter(batch=batch, state=RecipientState.PENDING)
        .only("pk", "address", "name", "fields")
        .order_by("pk")
    )
    if not recipients:
        _finish_batch(batch, BatchState.ACCEPTED, "")
        return BatchState.ACCEPTED
    client = client or client_for(send.server)
    try:
        result = client.inject(build_messages(send, recipients))
    except sl_errors.OutcomeUnknownError as exc:
        _record_unknown(batch, str(exc.message))
        return BatchState.UNKNOWN
    except sl_errors.TransientError as exc:
        # Not taken (the client only lets these through for an injection when it never arrived).
        SendBatch.objects.filter(pk=batch.pk, state=BatchState.IN_FLIGHT).update(
            state=BatchState.PENDING, last_error=str(exc.message)[:500], claimed_at=None
        )
        raise NotTaken(exc) from exc
    except sl_errors.SocketLabsError as exc:
        # Permanent (bad key, validation, configuration): these recipients are rejected, the send is paused
        # so a person can fix the server before every other batch fails the same way.
        code = exc.error_type or type(exc).__name__
        with transaction.atomic():
            SendRecipient.objects.filter(pk__in=[r.pk for r in recipients]).update(
                state=RecipientState.REJECTED, code=code[:60]
            )
            _finish_batch(batch, BatchState.FAILED, str(exc.message))
            if isinstance(
                exc, (sl_errors.AuthenticationError, sl_errors.PermissionDeniedError, sl_errors.ConfigurationError)
            ):
                Send.objects.filter(pk=send.pk, status__in=ACTIVE).update(
                    status=SendStatus.PAUSED, last_error=f"Paused: {exc.message}"[:500]
                )
        return BatchState.FAILED
    return record_result(batch, recipients, result)


def record_result(batch: SendBatch, recipients: Sequence[SendRecipient], result: InjectionResult) -> str:
    """Each recipient accepted or rejected (with its code) from the injection result, in three statements."""
    rejected: dict[str, str] = {
        a.email_address.strip().lower(): a.raw_error_code or str(a.error_code) for a in result.rejected_addresses()
    }
    # A message rejected as a whole (no per-address results) rejects all its recipients.
    for message in result.message_results:
        if (
            message.index is None
            or message.address_results
            or message.error_code
            in (
                socketlabs.SendResult.SUCCESS,
                socketlabs.SendResult.WARNING,
            )
        ):
            continue
        start_at = message.index * RECIPIENTS_PER_MESSAGE
        for r in recipients[start_at : start_at + RECIPIENTS_PER_MESSAGE]:
            rejected.setdefault(r.address, message.raw_error_code or str(message.error_code))
    if not result.accepted_any:
        code = result.raw_error_code or str(result.error_code)
        for r in recipients:
            rejected.setdefault(r.address, code)
    by_code: dict[str, list[int]] = {}
    accepted_ids = []
    for r in recipients:
        if r.address in rejected:
            by_code.setdefault(rejected[r.address][:60], []).append(r.pk)
        else:
            accepted_ids.append(r.pk)
    state = BatchState.ACCEPTED if accepted_ids else BatchState.FAILED
    with transaction.atomic():
        if accepted_ids:
            # Everyone of this batch still pending, except the rejected: one statement without an id list.
            rejected_ids = [pk for ids in by_code.values() for pk in ids]
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE sending_sendrecipient SET state = 'accepted' "
                    "WHERE batch_id = %s AND state = 'pending' AND NOT (id = ANY(%s))",
                    [batch.pk, rejected_ids],
                )
        for code, ids in by_code.items():
            SendRecipient.objects.filter(pk__in=ids).update(state=RecipientState.REJECTED, code=code)
        _finish_batch(
            batch,
            state,
            "" if not by_code else f"{sum(map(len, by_code.values()))} rejected",
            receipt=result.transaction_receipt or "",
        )
    return state


def _finish_batch(batch: SendBatch, state: str, error: str, *, receipt: str = "") -> None:
    SendBatch.objects.filter(pk=batch.pk).update(
        state=state, last_error=error[:500], transaction_receipt=receipt[:100], finished_at=timezone.now()
    )


def _record_unknown(batch: SendBatch, error: str) -> None:
    with transaction.atomic():
        changed = SendBatch.objects.filter(pk=batch.pk, state=BatchState.IN_FLIGHT).update(
            state=BatchState.UNKNOWN, last_error=error[:500], finished_at=timezone.now()
        )
        if changed:
            SendRecipient.objects.filter(batch_id=batch.pk, state=RecipientState.PENDING).update(
                state=RecipientState.UNKNOWN
            )


def maybe_finish(send: Send) -> bool:
    """sending → done once no batch is pending or in flight."""
    open_batches = SendBatch.objects.filter(send=send, state__in=[BatchState.PENDING, BatchState.IN_FLIGHT])
    if open_batches.exists():
        return False
    return bool(
        Send.objects.filter(pk=send.pk, status__in=ACTIVE).update(status=SendStatus.DONE, finished_at=timezone.now())
    )


def run_dispatcher(
    send_id: int,
    *,
    time_budget: float = 300.0,
    client: socketlabs.SocketLabsClient | None = None,
    clock: Callable[[], float] | None = None,
) -> str:
    """Send batches until none is left, the send stops, the server is at its concurrency limit,
    or the time budget is spent (then the caller re-queues). Raises NotTaken for Celery to retry.

    Returns "done", "stopped", "busy" or "budget".
    """
    import time

    now = clock or time.monotonic
    deadline = now() + time_budget
    send = Send.objects.select_related("server").filter(pk=send_id).first()
    if send is None:
        return "stopped"
    client = client or client_for(send.server)
    while True:
        batch = claim_batch(send)
        if batch is None:
            status = Send.objects.filter(pk=send_id).values_list("status", flat=True).first()
            if status not in ACTIVE:
                return "stopped"
            if maybe_finish(send):
                return "done"
            if SendBatch.objects.filter(send=send, state=BatchState.PENDING).exists():
                return "busy"
            return "stopped"  # the rest is in flight with other workers, who finish the send
        send_batch(send, batch, client=client)
        if now() > deadline:
            return "budget"


# --- the sweep -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepResult:
    marked_unknown: int
    requeued: int
    finished: int
    audiences_requeued: int = 0


def sweep(*, older_than: timedelta | None = None) -> SweepResult:
    """Beat, every minute: a batch in flight for too long was abandoned by a dead worker. It may have
    reached SocketLabs, so it becomes `unknown` and is never re-sent. Sends with pending batches get
    their dispatcher queued again; sends with nothing left are finished."""
    cutoff = timezone.now() - (older_than if older_than is not None else stale_after())
    marked = 0
    for batch in SendBatch.objects.filter(state=BatchState.IN_FLIGHT, claimed_at__lte=cutoff).only("pk"):
        _record_unknown(batch, "The worker stopped while this batch was in flight; it was not re-sent.")
        marked += 1
    requeued = finished = 0
    for send in Send.objects.filter(status__in=ACTIVE):
        if SendBatch.objects.filter(send=send, state=BatchState.PENDING).exists():
            _enqueue(send.pk, 1)
            requeued += 1
        elif maybe_finish(send):
            finished += 1
    # Audience jobs whose worker stopped: expansion is idempotent, so the job simply runs again.
    audiences = 0
    stale = timezone.now() - audience_stale_after()
    for send_id in Send.objects.filter(
        audience_state=AudienceState.EXPANDING, status=SendStatus.DRAFT, audience_heartbeat__lte=stale
    ).values_list("pk", flat=True):
        Send.objects.filter(pk=send_id).update(audience_heartbeat=timezone.now())
        enqueue_audience(send_id)
        audiences += 1
    return SweepResult(marked_unknown=marked, requeued=requeued, finished=finished, audiences_requeued=audiences)


# --- reading -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Progress:
    total: int
    skipped: int
    pending: int
    accepted: int
    rejected: int
    unknown: int
    percent: int
    status: str


def progress(send: Send) -> Progress:
    counts = counts_for(send)
    total = sum(v for k, v in counts.items() if k != RecipientState.SKIPPED)
    finished = total - counts[RecipientState.PENDING]
    percent = 100 if send.status == SendStatus.DONE else (int(100 * finished / total) if total else 0)
    return Progress(
        total=total,
        skipped=counts[RecipientState.SKIPPED],
        pending=counts[RecipientState.PENDING],
        accepted=counts[RecipientState.ACCEPTED],
        rejected=counts[RecipientState.REJECTED],
        unknown=counts[RecipientState.UNKNOWN],
        percent=percent,
        status=send.status,
    )


def history_counts(sends: Sequence[Send]) -> dict[int, dict[str, int]]:
    """Per-send recipient counts by state for a page of sends: one grouped query."""
    out: dict[int, dict[str, int]] = {s.pk: dict.fromkeys(RecipientState.values, 0) for s in sends}
    rows = (
        SendRecipient.objects.filter(send_id__in=list(out))
        .values("send_id", "state")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in rows:
        out[row["send_id"]][row["state"]] = row["n"]
    return out


EVENT_COLUMNS = ("delivered", "failed", "open", "click", "complaint")


def event_counts(server: Server, sends: Sequence[Send]) -> dict[int, dict[str, int]]:
    """Delivered / failed / opened / clicked / complained per send, from the webhook rollups by mailing id.

    One grouped query over `reporting`'s daily rollups. Sends sharing a mailing id share its counts.
    """
    from django.db.models import Sum

    from reporting.models import DailyRollup

    by_mailing: dict[str, dict[str, int]] = {}
    mailing_ids = {send.effective_mailing_id for send in sends}
    rows = (
        DailyRollup.objects.filter(server=server, mailing_id__in=mailing_ids, type__in=EVENT_COLUMNS)
        .values("mailing_id", "type")
        .annotate(n=Sum("count"))
        .order_by()
    )
    for row in rows:
        by_mailing.setdefault(row["mailing_id"], {})[row["type"]] = int(row["n"] or 0)
    return {
        send.pk: {kind: by_mailing.get(send.effective_mailing_id, {}).get(kind, 0) for kind in EVENT_COLUMNS}
        for send in sends
    }


def estimated_seconds(recipients: int) -> int:
    """A rough estimate for the summary page, from the per-server concurrency and a request's usual time."""
    per_request = float(getattr(settings, "SENDING_SECONDS_PER_REQUEST", 0.5))
    requests_needed = -(-recipients // RECIPIENTS_PER_BATCH)
    return int(requests_needed * per_request / max(1, max_in_flight())) + 1
