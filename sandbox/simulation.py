"""Delivery simulation (contract §0a): what happens to each recipient of each outbound message.

The outcome is decided by the recipient's local part so tests are deterministic
(`bounce`, `softbounce`, `complain`, `open`, `click`, `unsub`), by the server's suppression
list, and otherwise by the server's rates drawn from `random.Random(seed + message id)`.
Every recipient gets a `Queued` event first; the rest are due after the server's delays.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, models

from sandbox.models import EventType, SandboxEvent, SandboxMessage, SandboxServer

# Outcome kinds.
DELIVERED = "delivered"
BOUNCE = "bounce"
SOFTBOUNCE = "softbounce"
DEFERRED = "deferred"  # deferred once, then delivered (rate-driven only)
COMPLAINT = "complaint"
OPEN = "open"
CLICK = "click"
OPEN_CLICK = "open_click"  # rate-driven: an open, then a click
UNSUBSCRIBE = "unsubscribe"
SUPPRESSED = "suppressed"

# Local-part rules, most specific first (`softbounce` also contains `bounce`).
LOCAL_PART_RULES: tuple[tuple[str, str], ...] = (
    ("softbounce", SOFTBOUNCE),
    ("bounce", BOUNCE),
    ("complain", COMPLAINT),
    ("unsub", UNSUBSCRIBE),
    ("click", CLICK),
    ("open", OPEN),
)

LOCAL_IP = "192.0.2.10"
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
)
FBL_AGENTS = ("Yahoo!-Mail-Feedback/1.0", "Microsoft JMRP/1.0", "AOL SComp")
HREF = re.compile(r"""href\s*=\s*["'](https?://[^"'\s>]+)""", re.IGNORECASE)


def outcome_for(address: str, *, server: SandboxServer, suppressed: set[str], rng: random.Random) -> str:
    """The fate of one recipient: suppression list, then local-part rules, then the server's rates."""
    folded = address.casefold()
    if folded in suppressed:
        return SUPPRESSED
    local = folded.split("@", 1)[0]
    for word, kind in LOCAL_PART_RULES:
        if word in local:
            return kind
    return rated_outcome(server=server, rng=rng)


def rated_outcome(*, server: SandboxServer, rng: random.Random) -> str:
    roll = rng.random()
    if roll < server.bounce_rate:
        return BOUNCE
    if roll < server.bounce_rate + server.deferral_rate:
        return DEFERRED
    if rng.random() < server.complaint_rate:
        return COMPLAINT
    engagement = rng.random()
    if engagement < server.unsubscribe_rate:
        return UNSUBSCRIBE
    if engagement < server.click_rate:
        return OPEN_CLICK
    if engagement < server.open_rate:
        return OPEN
    return DELIVERED


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower()


def _failed(kind: str, address: str) -> dict[str, Any]:
    mta = f"mx.{_domain(address)}"
    if kind == BOUNCE:
        return {
            "FailureType": "Permanent",
            "FailureCode": 2001,
            "Reason": f"550 5.1.1 <{address}>: Recipient address rejected: User unknown",
            "RemoteMta": mta,
            "BounceStatus": "5.1.1",
            "DiagnosticCode": "smtp; 550 5.1.1 User unknown",
        }
    if kind == SOFTBOUNCE:
        return {
            "FailureType": "Temporary",
            "FailureCode": 3001,
            "Reason": "452 4.2.2 Mailbox full",
            "RemoteMta": mta,
            "BounceStatus": "4.2.2",
            "DiagnosticCode": "smtp; 452 4.2.2 Mailbox full",
        }
    # Suppressed: never attempted; legacy data carries Reason "NA" (§5.5).
    return {
        "FailureType": "Suppressed",
        "FailureCode": 9999,
        "Reason": "NA",
        "RemoteMta": "",
        "BounceStatus": "",
        "DiagnosticCode": "",
    }


def _delivered(address: str) -> dict[str, Any]:
    return {"Response": "250 2.0.0 OK: queued", "LocalIp": LOCAL_IP, "RemoteMta": f"mx.{_domain(address)}"}


def _tracking(kind: str, *, rng: random.Random, url: str) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "TrackingType": kind,
        "ClientIp": f"203.0.113.{rng.randint(1, 254)}",
        "UserAgent": rng.choice(USER_AGENTS),
    }
    if kind == "Click":
        payload["Url"] = url
    return payload


def first_link(html: str) -> str:
    match = HREF.search(html or "")
    return match.group(1) if match else "https://example.com/"


def timeline(
    kind: str,
    *,
    address: str,
    from_address: str,
    size: int,
    start: datetime,
    delivery: timedelta,
    tracking: timedelta,
    rng: random.Random,
    url: str = "https://example.com/",
) -> list[tuple[str, datetime, dict[str, Any]]]:
    """The events of one recipient as (type, due_at, payload), `Queued` first."""
    events: list[tuple[str, datetime, dict[str, Any]]] = [(EventType.QUEUED, start, {})]
    delivered_at = start + delivery
    if kind in (BOUNCE, SUPPRESSED):
        events.append((EventType.FAILED, delivered_at, _failed(kind, address)))
        return events
    if kind == SOFTBOUNCE:
        events.append((EventType.DEFERRED, delivered_at, {"DeferralCode": 4001, "Reason": "421 4.7.0 Try again later"}))
        events.append((EventType.FAILED, delivered_at + delivery, _failed(kind, address)))
        return events
    if kind == DEFERRED:
        events.append((EventType.DEFERRED, delivered_at, {"DeferralCode": 4001, "Reason": "421 4.7.0 Try again later"}))
        delivered_at = delivered_at + delivery
    events.append((EventType.DELIVERED, delivered_at, _delivered(address)))
    engaged_at = delivered_at + tracking
    if kind == COMPLAINT:
        events.append(
            (
                EventType.COMPLAINT,
                engaged_at,
                {
                    "FblType": "abuse",
                    "UserAgent": rng.choice(FBL_AGENTS),
                    "From": from_address,
                    "To": address,
                    "Length": size,
                },
            )
        )
    elif kind == OPEN:
        events.append((EventType.TRACKING, engaged_at, _tracking("Open", rng=rng, url=url)))
    elif kind == CLICK:
        events.append((EventType.TRACKING, engaged_at, _tracking("Click", rng=rng, url=url)))
    elif kind == OPEN_CLICK:
        events.append((EventType.TRACKING, engaged_at, _tracking("Open", rng=rng, url=url)))
        events.append((EventType.TRACKING, engaged_at + tracking, _tracking("Click", rng=rng, url=url)))
    elif kind == UNSUBSCRIBE:
        events.append((EventType.TRACKING, engaged_at, _tracking("Unsubscribe", rng=rng, url=url)))
    return events


def recipients(message: SandboxMessage) -> Iterable[str]:
    for group in (message.to, message.cc, message.bcc):
        for recipient in group:
            yield recipient["emailAddress"]


def plan_events(
    *, server: SandboxServer, messages: Iterable[SandboxMessage], now: datetime, suppressed: set[str]
) -> list[SandboxEvent]:
    """Unsaved events for freshly inserted messages (they must have ids: the id seeds the outcome)."""
    delivery = timedelta(seconds=server.delivery_delay_seconds)
    tracking = timedelta(seconds=server.tracking_delay_seconds)
    planned: list[SandboxEvent] = []
    for message in messages:
        rng = random.Random(server.seed + (message.pk or 0))
        url = ""
        for address in recipients(message):
            kind = outcome_for(address, server=server, suppressed=suppressed, rng=rng)
            if kind in (CLICK, OPEN_CLICK) and not url:
                url = first_link(message.html_body)
            for event_type, due_at, payload in timeline(
                kind,
                address=address,
                from_address=message.from_address,
                size=message.size,
                start=now,
                delivery=delivery,
                tracking=tracking,
                rng=rng,
                url=url or "https://example.com/",
            ):
                planned.append(
                    SandboxEvent(
                        server=server,
                        outbound=message,
                        type=event_type,
                        address=address,
                        message_id=message.message_id,
                        mailing_id=message.mailing_id,
                        due_at=due_at,
                        payload=payload,
                    )
                )
    return planned


def suppression_reason(event_type: str, payload: dict[str, Any]) -> str | None:
    """The suppression an event adds when it happens (hard bounce, complaint, unsubscribe), if any."""
    if event_type == EventType.FAILED and payload.get("FailureType") == "Permanent":
        return "Bounce"
    if event_type == EventType.COMPLAINT:
        return "Complaint"
    if event_type == EventType.TRACKING and payload.get("TrackingType") == "Unsubscribe":
        return "Unsubscribe"
    return None


# --- fast inserts ---------------------------------------------------------------------------


def fast_insert(model: type[models.Model], objs: list[Any], *, with_ids: bool = False) -> None:
    """Insert unsaved rows: COPY on PostgreSQL, `bulk_create` elsewhere.

    COPY is several times cheaper than the ORM's INSERT for thousands of rows (limits.md §1), which
    is what a 10,000-recipient merge needs. With `with_ids`, ids are drawn from the table's identity
    sequence first so the objects can be referenced (events point at their message).
    """
    if not objs:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs, batch_size=1000)
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    table = model._meta.db_table
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if with_ids:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, len(objs)]
            )
            for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
                obj.pk = pk
        columns = ([quote("id")] if with_ids else []) + [quote(str(f.column)) for f in fields]
        json_columns = [isinstance(f, models.JSONField) for f in fields]
        attnames = [f.attname for f in fields]
        sql = f"COPY {quote(table)} ({', '.join(columns)}) FROM STDIN"
        with cursor.cursor.copy(sql) as copy:
            for obj in objs:
                values = [
                    json.dumps(getattr(obj, name)) if is_json else getattr(obj, name)
                    for name, is_json in zip(attnames, json_columns, strict=True)
                ]
                copy.write_row([obj.pk, *values] if with_ids else values)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
