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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any, NamedTuple

from django.db import connection, models, transaction
from django.utils import timezone

from sandbox.models import (
    EventType,
    SandboxEvent,
    SandboxMessage,
    SandboxServer,
    SandboxSuppression,
    SandboxWebhookDelivery,
)

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
        "ClientIp": f"203.0.113.{1 + int(rng.random() * 254)}",
        "UserAgent": _pick(rng.random, USER_AGENTS),
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


class PlannedEvent(NamedTuple):
    """An event row to insert, fields in `EVENT_COLUMNS` order (payload still a dict)."""

    server_id: int
    outbound_id: int | None
    type: str
    address: str
    message_id: str
    mailing_id: str
    due_at: datetime
    happened: bool
    payload: dict[str, Any]


def plan_events(
    *, server: SandboxServer, messages: Iterable[Any], now: datetime, suppressed: set[str]
) -> list[PlannedEvent]:
    """The events of freshly stored messages (`Outbound` or `SandboxMessage`; the id seeds the outcome)."""
    delivery = timedelta(seconds=server.delivery_delay_seconds)
    tracking = timedelta(seconds=server.tracking_delay_seconds)
    planned: list[PlannedEvent] = []
    server_pk = server.pk
    rng = random.Random()
    delivered: dict[str, dict[str, Any]] = {}
    for message in messages:
        rng.seed(server.seed + (message.pk or 0))  # as `random.Random(seed)`, without a new generator each time
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
                if event_type == EventType.DELIVERED:
                    # Equal for every address of a domain: share one dict, so storing encodes it once.
                    payload = delivered.setdefault(payload["RemoteMta"], payload)
                planned.append(
                    PlannedEvent(
                        server_pk, message.pk, event_type, address, message.message_id, message.mailing_id,
                        due_at, False, payload,
                    )
                )  # fmt: skip
    return planned


@dataclass(slots=True)
class Outbound:
    """One outbound message before it is stored.

    A plain object rather than a `SandboxMessage`: building model instances cost more than the
    COPY that stores them. Fields are in `SandboxMessage` column order (`OUTBOUND_COLUMNS`).
    """

    server_id: int
    transaction_receipt: str
    message_index: int
    row_index: int
    message_id: str
    mailing_id: str
    from_address: str
    from_name: str
    reply_to: str
    to: list[dict[str, str]]
    cc: list[dict[str, str]]
    bcc: list[dict[str, str]]
    subject: str
    text_body: str
    html_body: str
    amp_body: str
    api_template: str
    custom_headers: list[dict[str, str]]
    metadata: list[dict[str, str]]
    tags: list[str]
    attachments: list[dict[str, Any]]
    size: int
    client: str
    created_on: datetime
    pk: int | None = None


OUTBOUND_COLUMNS = [f.name for f in fields(Outbound) if f.name != "pk"]
OUTBOUND_JSON = {"to", "cc", "bcc", "custom_headers", "metadata", "tags", "attachments"}


class _JsonMemo:
    """`json.dumps` for values stored by many rows: an empty list, or one object shared by every
    merge row of a message (metadata, tags, attachments), is encoded once.

    Keyed by identity, so it must not outlive the values it has seen (one `store_*` call).
    """

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen: dict[int, tuple[Any, str]] = {}

    def __call__(self, value: Any) -> str:
        if not value and type(value) is list:
            return "[]"
        if not value and type(value) is dict:
            return "{}"
        hit = self.seen.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        text = json.dumps(value)
        self.seen[id(value)] = (value, text)
        return text


def store_outbound(messages: list[Outbound], *, ids: list[int] | None = None) -> None:
    """Give the messages ids (reserved here unless given) and insert them (call inside a transaction)."""
    if ids is None:
        ids = reserve_ids(SandboxMessage, len(messages))
    for message, pk in zip(messages, ids, strict=True):
        message.pk = pk
    dumps = _JsonMemo()
    getters = [
        (lambda m, n=name: dumps(getattr(m, n))) if name in OUTBOUND_JSON else attrgetter(name)
        for name in OUTBOUND_COLUMNS
    ]
    copy_rows(SandboxMessage, ["id", *OUTBOUND_COLUMNS], ([m.pk, *[g(m) for g in getters]] for m in messages))


def store_events(events: list[PlannedEvent]) -> None:
    dumps = _JsonMemo()  # `Queued` payloads are empty; `plan_events` shares one `Delivered` payload per domain
    copy_rows(SandboxEvent, EVENT_COLUMNS, ([*e[:8], dumps(e.payload)] for e in events))


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


def reserve_ids(model: type[models.Model], count: int) -> list[int]:
    """Ids for rows about to be inserted with explicit keys (call inside a transaction)."""
    if count <= 0:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count]
            )
            return [row[0] for row in cursor.fetchall()]
        # Elsewhere (SQLite) writers are serialised, so the next ids after the current maximum are ours.
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {connection.ops.quote_name(table)}")
        start = int(cursor.fetchone()[0]) + 1
    return list(range(start, start + count))


def _copy_text(value: Any) -> str:
    text = value if type(value) is str else str(value)
    # Most text needs no escaping; `in` scans are far cheaper than a translate table.
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _copy_bool(value: Any) -> str:
    return "t" if value else "f"


def _copy_formatter(field: Any) -> Callable[[Any], str]:
    """How one column's values are written in COPY's text format (chosen once per column, not per value)."""
    if isinstance(field, models.BooleanField):
        fmt: Callable[[Any], str] = _copy_bool
    elif isinstance(field, models.DateTimeField):
        fmt = datetime.isoformat
    elif isinstance(field, models.IntegerField | models.ForeignKey | models.FloatField):
        fmt = str
    else:
        fmt = _copy_text
    if not getattr(field, "null", False):
        return fmt

    def nullable(value: Any) -> str:
        return "\\N" if value is None else fmt(value)

    return nullable


def copy_rows(model: type[models.Model], attnames: list[str], rows: Iterable[Sequence[Any]]) -> None:
    """Insert ready rows (JSON values already dumped to text): COPY on PostgreSQL, executemany elsewhere.

    The COPY text is built here in chunks rather than row by row through psycopg's `write_row`,
    which costs several times more per row; the database then indexes while Python formats.
    """
    quote = connection.ops.quote_name
    meta = model._meta
    columns = ", ".join(quote(str(getattr(meta.get_field(name), "column", name))) for name in attnames)
    table = quote(meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            formatters = [_copy_formatter(meta.get_field(name)) for name in attnames]
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                chunk: list[str] = []
                for row in rows:
                    chunk.append("\t".join([fmt(v) for fmt, v in zip(formatters, row, strict=True)]))
                    if len(chunk) >= 2000:
                        copy.write("\n".join(chunk) + "\n")
                        chunk.clear()
                if chunk:
                    copy.write("\n".join(chunk) + "\n")
            return
        placeholders = ", ".join(["%s"] * len(attnames))
        adapt = connection.ops.adapt_datetimefield_value
        cursor.executemany(
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders})",
            [[adapt(v) if isinstance(v, datetime) else v for v in row] for row in rows],
        )


# --- past traffic (sandbox_simulate) ----------------------------------------------------------

HISTORY_CLIENT = "sandbox_simulate"
FIRST_NAMES = (
    "ann", "bo", "carla", "dev", "emma", "finn", "grace", "hugo", "ines", "jon",
    "kim", "lars", "maya", "noah", "olga", "pia", "quinn", "raj", "sara", "tom",
)  # fmt: skip
LAST_NAMES = (
    "adams", "baker", "chen", "diaz", "evans", "fischer", "garcia", "hansen", "ito", "jones",
    "kovacs", "lopez", "meyer", "nguyen", "olsen", "patel", "rossi", "smith", "tanaka", "weber",
)  # fmt: skip
MAILBOX_DOMAINS = (
    ("gmail.com", 34), ("outlook.com", 14), ("yahoo.com", 12), ("hotmail.com", 8), ("icloud.com", 8),
    ("aol.com", 3), ("gmx.de", 3), ("example.net", 9), ("example.org", 9),
)  # fmt: skip
# Share of a day's mail sent in each UTC hour: quiet nights, busy office hours.
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 4, 7, 9, 10, 10, 9, 8, 8, 9, 9, 8, 7, 6, 5, 4, 3, 2, 1)
TRANSACTIONAL_SUBJECTS = (
    "Your order #{n} has shipped",
    "Receipt for order #{n}",
    "Reset your password",
    "Your sign-in code is {code}",
    "Welcome to Acme, {first}",
)
NEWSLETTER_SUBJECTS = (
    "Acme weekly for {date}",
    "New this week at Acme",
    "The spring sale starts now",
    "{first}, picks for you",
)
MESSAGE_COLUMNS = [
    "id", "server_id", "transaction_receipt", "message_index", "row_index", "message_id", "mailing_id",
    "from_address", "from_name", "reply_to", "to", "cc", "bcc", "subject", "text_body", "html_body", "amp_body",
    "api_template", "custom_headers", "metadata", "tags", "attachments", "size", "client", "created_on",
]  # fmt: skip
EVENT_COLUMNS = [
    "server_id",
    "outbound_id",
    "type",
    "address",
    "message_id",
    "mailing_id",
    "due_at",
    "happened",
    "payload",
]


@dataclass(frozen=True)
class HistoryStats:
    messages: int
    events: int
    suppressions: int


def clear_history(servers: Sequence[SandboxServer]) -> None:
    """Remove earlier `sandbox_simulate` traffic of these servers (deliveries, events, messages) in bulk."""
    if not servers:
        return
    quote = connection.ops.quote_name
    message_table = quote(SandboxMessage._meta.db_table)
    event_table = quote(SandboxEvent._meta.db_table)
    delivery_table = quote(SandboxWebhookDelivery._meta.db_table)
    in_servers = ", ".join(["%s"] * len(servers))
    params: list[Any] = [s.pk for s in servers] + [HISTORY_CLIENT]
    history = f"SELECT id FROM {message_table} WHERE server_id IN ({in_servers}) AND client = %s"
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {delivery_table} WHERE event_id IN "
            f"(SELECT id FROM {event_table} WHERE outbound_id IN ({history}))",
            params,
        )
        cursor.execute(f"DELETE FROM {event_table} WHERE outbound_id IN ({history})", params)
        cursor.execute(f"DELETE FROM {message_table} WHERE id IN ({history})", params)


def _pick(rand: Callable[[], float], items: Sequence[Any]) -> Any:
    # random.choice costs several times more; this runs for every simulated message.
    return items[int(rand() * len(items))]


def _recipient_pool(rng: random.Random, size: int) -> list[tuple[str, str]]:
    rand = rng.random
    # Domains repeated by weight so a uniform pick follows the mailbox-provider mix.
    domains = [d for d, w in MAILBOX_DOMAINS for _ in range(w)]
    pool: list[tuple[str, str]] = []
    seen: set[str] = set()
    while len(pool) < size:
        first, last = _pick(rand, FIRST_NAMES), _pick(rand, LAST_NAMES)
        style = int(rand() * 4)
        if style == 0:
            local = f"{first}.{last}"
        elif style == 1:
            local = f"{first[0]}{last}"
        elif style == 2:
            local = f"{first}_{last}"
        else:
            local = f"{first}.{last}{1 + int(rand() * 999)}"
        address = f"{local}@{_pick(rand, domains)}"
        if address not in seen:
            seen.add(address)
            pool.append((address, f"{first.title()} {last.title()}"))
    return pool


def _day_times(rng: random.Random, day_start: datetime, count: int) -> list[datetime]:
    hours = rng.choices(range(24), HOUR_WEIGHTS, k=count)
    return sorted(day_start + timedelta(hours=h, seconds=rng.uniform(0, 3600)) for h in hours)


def generate_history(
    *,
    servers: Sequence[SandboxServer],
    days: int,
    per_day: int,
    seed: int,
    post_webhooks: bool = False,
    now: datetime | None = None,
) -> HistoryStats:
    """Past traffic for `servers`: `per_day` messages a day on the `days` days before today, with their events.

    Deterministic for a given seed and day (one random stream per server, never the database ids)
    and idempotent: earlier simulated traffic of these servers is replaced. The window ends at
    today's midnight (UTC) and later events are left out, so a re-run the same day gives the same
    rows and nothing lies in the future. Events are marked happened, so nothing is posted, unless
    `post_webhooks` leaves them for the dispatcher.
    """
    now = now or timezone.now()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    messages = events = 0
    for server in servers:
        with transaction.atomic():
            clear_history([server])
            rng = random.Random(f"{seed}:{server.server_id}")
            pool = _recipient_pool(rng, max(200, per_day * 2))
            suppressed = set(
                SandboxSuppression.objects.filter(server=server)
                .exclude(source="simulation")
                .values_list("email_address", flat=True)
            )
            for day in range(days, 0, -1):
                day_start = today - timedelta(days=day)
                counts = _simulate_day(
                    server=server,
                    rng=rng,
                    pool=pool,
                    suppressed=suppressed,
                    day_start=day_start,
                    per_day=per_day,
                    until=today,
                    happened=not post_webhooks,
                )
                messages += counts[0]
                events += counts[1]
    total_suppressions = SandboxSuppression.objects.filter(server__in=servers, source="simulation").count()
    return HistoryStats(messages=messages, events=events, suppressions=total_suppressions)


def _simulate_day(
    *,
    server: SandboxServer,
    rng: random.Random,
    pool: list[tuple[str, str]],
    suppressed: set[str],
    day_start: datetime,
    per_day: int,
    until: datetime,
    happened: bool,
) -> tuple[int, int]:
    times = _day_times(rng, day_start, per_day)
    ids = reserve_ids(SandboxMessage, len(times))
    date = day_start.strftime("%Y-%m-%d")
    receipt = f"sim-{server.server_id}-{day_start:%Y%m%d}"
    newsletter_id = f"newsletter-{date}"
    message_rows: list[list[Any]] = []
    event_rows: list[list[Any]] = []
    additions: dict[str, tuple[str, datetime]] = {}
    empty = "[]"
    rand = rng.random
    spk = server.pk
    # Most payloads repeat (Queued is empty, Delivered depends only on the domain): encode each once.
    encoded: dict[tuple[str, str], str] = {}
    for index, (pk, sent_at) in enumerate(zip(ids, times, strict=True)):
        address, name = _pick(rand, pool)
        first = name.split()[0]
        if rand() < 0.3:
            sender, mailing_id, message_id, tags = "news@acme.example", newsletter_id, "", '["newsletter"]'
            subject = _pick(rand, NEWSLETTER_SUBJECTS).format(date=date, first=first)
        else:
            n = 10_000 + pk % 900_000
            sender, mailing_id, message_id, tags = "orders@acme.example", "", f"ord-{n}", '["transactional"]'
            code = 100_000 + int(rand() * 900_000)
            subject = _pick(rand, TRANSACTIONAL_SUBJECTS).format(n=n, code=code, first=first)
        html = f'<p>Hi {first},</p><p><a href="https://acme.example/r/{pk}">Open in your browser</a></p>'
        size = 4_000 + int(rand() * 56_000)
        message_rows.append(
            [
                pk, spk, receipt, 0, index, message_id, mailing_id, sender, "Acme", "",
                json.dumps([{"emailAddress": address, "friendlyName": name}]), empty, empty, subject,
                f"Hi {first}, see https://acme.example/r/{pk}", html, "", "", empty, empty, tags, empty,
                size, HISTORY_CLIENT, sent_at,
            ]
        )  # fmt: skip
        kind = SUPPRESSED if address in suppressed else rated_outcome(server=server, rng=rng)
        for event_type, due_at, payload in timeline(
            kind,
            address=address,
            from_address=sender,
            size=size,
            start=sent_at,
            delivery=timedelta(seconds=0.5 + rand() * 19.5),
            tracking=timedelta(seconds=rng.expovariate(1 / 5400)),
            rng=rng,
            url=f"https://acme.example/r/{pk}",
        ):
            if due_at >= until:
                break  # the rest of this timeline falls after the window
            if event_type == EventType.QUEUED or event_type == EventType.DELIVERED:
                key = (event_type, payload.get("RemoteMta", ""))
                text = encoded.get(key)
                if text is None:
                    text = encoded[key] = json.dumps(payload)
            else:
                text = json.dumps(payload)
            event_rows.append([spk, pk, event_type, address, message_id, mailing_id, due_at, happened, text])
            reason = suppression_reason(event_type, payload)
            if reason and address not in suppressed:
                suppressed.add(address)
                additions[address] = (reason, due_at)
    copy_rows(SandboxMessage, MESSAGE_COLUMNS, message_rows)
    copy_rows(SandboxEvent, EVENT_COLUMNS, event_rows)
    SandboxSuppression.objects.bulk_create(
        [
            SandboxSuppression(server=server, email_address=a, reason=r, source="simulation", last_update=t)
            for a, (r, t) in additions.items()
        ],
        ignore_conflicts=True,
    )
    return len(message_rows), len(event_rows)
