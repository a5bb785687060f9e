"""Reports, message detail, recipient search and StreamScore, computed from SandboxEvent rows.

Only events that have happened (`happened=True`) count, dated by `due_at`. Counting is done by
the database (aggregate / GROUP BY queries); Python only shapes the rows of one page.

Definitions (the contract leaves them open; these are the sandbox's):
* overview `rate`: delivered and failed are shares of processed (delivered + failed) events;
  complaints are a share of delivered; tracking is unique engaged recipients over delivered.
  Rates are fractions 0..1 rounded to 4 places; 0 when the denominator is 0.
* StreamScore per period: failure rate f = failed (not Suppressed) / (delivered + failed),
  complaint rate c = complaints / delivered;
  score = clamp(round(100 - 200·f - 5000·c), 0, 100); Good ≥ 80, Fair ≥ 50, else Poor.
  (2% failures and 0.1% complaints → 91.) A period without traffic scores 100; the history
  lists only days with traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from django.db.models import Count, F, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Lower, StrIndex, Substr, TruncDate, TruncHour

from sandbox.api_common import camel_keys, iso
from sandbox.models import EventType, SandboxEvent, SandboxMessage, SandboxServer

REPORT_KINDS: dict[str, str] = {
    "delivered": EventType.DELIVERED,
    "failed": EventType.FAILED,
    "complaints": EventType.COMPLAINT,
    "tracking": EventType.TRACKING,
}
GROUP_BY = ("day", "hour", "domain", "mailingId")
TRACKING_TYPES = {"click": ("Click", 0), "open": ("Open", 1), "unsubscribe": ("Unsubscribe", 2)}
# Webhook payload fields the sandbox must never hand back in a report.
HIDDEN_PAYLOAD_KEYS = {"secretkey"}
# The delivery states a recipient can be in (Complaint/Tracking come after Delivered).
STATUS_TYPES = (EventType.QUEUED, EventType.DEFERRED, EventType.DELIVERED, EventType.FAILED)


def happened(server: SandboxServer, start: datetime | None, end: datetime | None) -> QuerySet[SandboxEvent]:
    qs = SandboxEvent.objects.filter(server=server, happened=True)
    if start is not None:
        qs = qs.filter(due_at__gte=start)
    if end is not None:
        qs = qs.filter(due_at__lt=end)
    return qs


def _suppressed_q(prefix: str = "") -> Q:
    # JSON webhooks carry the enum as a string, legacy ones as an int (§5.3); accept both.
    return Q(**{f"{prefix}payload__FailureType": "Suppressed"}) | Q(**{f"{prefix}payload__FailureType": 2})


def events_of(
    server: SandboxServer,
    kind: str,
    start: datetime | None,
    end: datetime | None,
    *,
    tracking_type: str | None = None,
) -> QuerySet[SandboxEvent]:
    qs = happened(server, start, end).filter(type=REPORT_KINDS[kind])
    if kind == "tracking" and tracking_type:
        name, number = TRACKING_TYPES[tracking_type.lower()]
        qs = qs.filter(Q(payload__TrackingType=name) | Q(payload__TrackingType=number))
    return qs


def _rate(numerator: int, denominator: int) -> float:
    return round(numerator / denominator, 4) if denominator else 0.0


def overview(
    server: SandboxServer, kind: str, start: datetime | None, end: datetime | None, *, tracking_type: str | None = None
) -> dict[str, Any]:
    event_type = REPORT_KINDS[kind]
    of_kind = events_of(server, kind, start, end, tracking_type=tracking_type)
    counts = of_kind.aggregate(total=Count("id"), unique=Count("address", distinct=True))
    base = happened(server, start, end).aggregate(
        delivered=Count("id", filter=Q(type=EventType.DELIVERED)),
        failed=Count("id", filter=Q(type=EventType.FAILED)),
    )
    total, unique = counts["total"], counts["unique"]
    processed = base["delivered"] + base["failed"]
    if event_type in (EventType.DELIVERED, EventType.FAILED):
        rate = _rate(total, processed)
    elif event_type == EventType.COMPLAINT:
        rate = _rate(total, base["delivered"])
    else:
        rate = _rate(unique, base["delivered"])
    return {"total": total, "unique": unique, "rate": rate}


def aggregate(
    server: SandboxServer,
    kind: str,
    start: datetime | None,
    end: datetime | None,
    group_by: str,
    *,
    tracking_type: str | None = None,
) -> list[dict[str, Any]]:
    qs = events_of(server, kind, start, end, tracking_type=tracking_type)
    if group_by == "day":
        key_expr: Any = TruncDate("due_at", tzinfo=UTC)
    elif group_by == "hour":
        key_expr = TruncHour("due_at", tzinfo=UTC)
    elif group_by == "domain":
        key_expr = Lower(Substr("address", StrIndex("address", Value("@")) + Value(1, output_field=IntegerField())))
    else:
        key_expr = F("mailing_id")
    rows = qs.order_by().values(key=key_expr).annotate(count=Count("id")).order_by("key")
    return [{"key": _format_key(row["key"]), "count": row["count"]} for row in rows]


def _format_key(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def event_row(event: SandboxEvent, server_id: int) -> dict[str, Any]:
    """An event shaped like its §5 webhook, in camelCase, without the secret."""
    payload = camel_keys(event.payload or {})
    row: dict[str, Any] = {k: v for k, v in payload.items() if k.lower() not in HIDDEN_PAYLOAD_KEYS}
    row.update(
        {
            "type": event.type,
            "dateTime": iso(event.due_at),
            "serverId": server_id,
            "address": event.address,
            "mailingId": event.mailing_id,
            "messageId": event.message_id,
        }
    )
    return row


# --- StreamScore ----------------------------------------------------------------
def score_for(delivered: int, failed: int, complaints: int) -> int:
    failure_rate = failed / (delivered + failed) if delivered + failed else 0.0
    complaint_rate = complaints / delivered if delivered else 0.0
    return max(0, min(100, round(100 - 200 * failure_rate - 5000 * complaint_rate)))


def rating_for(score: int) -> str:
    if score >= 80:
        return "Good"
    if score >= 50:
        return "Fair"
    return "Poor"


_SCORE_COUNTS = {
    "delivered": Count("id", filter=Q(type=EventType.DELIVERED)),
    "failed": Count("id", filter=Q(type=EventType.FAILED)),
    "suppressed": Count("id", filter=Q(type=EventType.FAILED) & _suppressed_q()),
    "complaints": Count("id", filter=Q(type=EventType.COMPLAINT)),
}


def streamscore(server: SandboxServer, start: datetime | None, end: datetime | None) -> dict[str, Any]:
    qs = happened(server, start, end)
    totals = qs.aggregate(**_SCORE_COUNTS)
    score = score_for(totals["delivered"], totals["failed"] - totals["suppressed"], totals["complaints"])
    per_day: Any = qs.order_by().values(day=TruncDate("due_at", tzinfo=UTC)).annotate(**_SCORE_COUNTS).order_by("day")
    history = [
        {
            "date": row["day"].isoformat(),
            "score": score_for(row["delivered"], row["failed"] - row["suppressed"], row["complaints"]),
        }
        for row in per_day
        if row["delivered"] or row["failed"] or row["complaints"]
    ]
    return {"score": score, "rating": rating_for(score), "history": history}


# --- message detail (R1) and recipient search (R2) --------------------------------
@dataclass(frozen=True)
class MessageFilters:
    mailing_id: str | None = None
    message_id: str | None = None
    to: str | None = None
    sender: str | None = None
    subject: str | None = None


def messages(
    server: SandboxServer, start: datetime | None, end: datetime | None, filters: MessageFilters
) -> QuerySet[SandboxMessage]:
    qs = SandboxMessage.objects.filter(server=server)
    if start is not None:
        qs = qs.filter(created_on__gte=start)
    if end is not None:
        qs = qs.filter(created_on__lt=end)
    if filters.mailing_id:
        qs = qs.filter(mailing_id=filters.mailing_id)
    if filters.message_id:
        qs = qs.filter(message_id=filters.message_id)
    if filters.sender:
        qs = qs.filter(from_address__iexact=filters.sender)
    if filters.subject:
        qs = qs.filter(subject__icontains=filters.subject)
    if filters.to:
        recipients = SandboxEvent.objects.filter(server=server, address__iexact=filters.to).values("outbound_id")
        qs = qs.filter(pk__in=Subquery(recipients))
    return qs


def with_events(qs: QuerySet[SandboxMessage]) -> QuerySet[SandboxMessage]:
    shown = SandboxEvent.objects.filter(happened=True).order_by("due_at", "id")
    return qs.prefetch_related(Prefetch("events", queryset=shown, to_attr="shown_events"))


def message_row(message: SandboxMessage, server_id: int) -> dict[str, Any]:
    return {
        "id": message.pk,
        "messageId": message.message_id,
        "mailingId": message.mailing_id,
        "transactionReceipt": message.transaction_receipt,
        "from": message.from_address,
        "fromName": message.from_name,
        "replyTo": message.reply_to,
        "to": camel_keys(message.to),
        "cc": camel_keys(message.cc),
        "bcc": camel_keys(message.bcc),
        "subject": message.subject,
        "size": message.size,
        "tags": message.tags,
        "metadata": camel_keys(message.metadata),
        "queuedTime": iso(message.created_on),
        "events": [event_row(e, server_id) for e in getattr(message, "shown_events", [])],
    }


def recipient_search(
    server: SandboxServer, address: str, start: datetime | None, end: datetime | None
) -> QuerySet[SandboxMessage]:
    """Messages sent to `address`, each annotated with that recipient's latest delivery state."""
    latest = SandboxEvent.objects.filter(
        outbound=OuterRef("pk"), address__iexact=address, happened=True, type__in=STATUS_TYPES
    ).order_by("-due_at", "-id")
    return messages(server, start, end, MessageFilters(to=address)).annotate(
        status_type=Subquery(latest.values("type")[:1]),
        status_date=Subquery(latest.values("due_at")[:1]),
        status_payload=Subquery(latest.values("payload")[:1]),
    )


def recipient_row(message: Any, address: str) -> dict[str, Any]:
    status = message.status_type or EventType.QUEUED
    payload = message.status_payload or {}
    if isinstance(payload, dict) and status == EventType.FAILED and payload.get("FailureType") in ("Suppressed", 2):
        status = "Suppressed"
    return {
        "from": message.from_address,
        "to": address,
        "subject": message.subject,
        "status": status,
        "statusDate": iso(message.status_date or message.created_on),
        "queuedTime": iso(message.created_on),
        "messageId": message.message_id,
        "mailingId": message.mailing_id,
    }
