"""Event webhooks and inbound parse: endpoints, the raw inbox, typed events, rollups.

Flow (architecture.md "Work that must not be lost"): the receiver INSERTs a `RawEvent` with a unique
`dedup_key` before it answers 200; `reporting.processing` turns unprocessed raw rows into `Event`s
and `DailyRollup` counts in one transaction per batch, so a crash loses nothing and a re-run adds
nothing. Payloads that cannot be understood become `DeadLetter`s that can be replayed.
"""

from __future__ import annotations

import ipaddress
import secrets
import uuid
from datetime import date, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from accounts.fields import EncryptedTextField, mask
from accounts.models import Server


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_validation_key() -> str:
    return secrets.token_urlsafe(18)


def validate_networks(value: object) -> None:
    if not isinstance(value, list):
        raise ValidationError("Allowed networks must be a list of CIDR ranges.")
    for item in value:
        try:
            ipaddress.ip_network(str(item), strict=False)
        except ValueError as exc:
            raise ValidationError(f"{item!r} is not a network such as 142.0.176.0/20.") from exc


def networks_allow(networks: list[str] | None, ip: str | None) -> bool:
    """True when no networks are configured or `ip` is inside one of them."""
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    for net in networks:
        try:
            if address in ipaddress.ip_network(str(net), strict=False):
                return True
        except ValueError:
            continue
    return False


class EndpointBase(models.Model):
    """What event and inbound receivers share: a secret URL, a shared secret, a validation key."""

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="+")
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100, blank=True)
    secret_key = EncryptedTextField(default=new_secret)
    validation_key = models.CharField(
        max_length=100, default=new_validation_key, help_text="Returned in every answer; SocketLabs checks it."
    )
    allowed_networks = models.JSONField(
        default=list, blank=True, validators=[validate_networks], help_text="Source networks (CIDR); empty means any."
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_event_at = models.DateTimeField(null=True, blank=True)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return self.name or str(self.uuid)

    @property
    def path(self) -> str:
        raise NotImplementedError

    @property
    def masked_secret(self) -> str:
        return mask(self.secret_key)

    def allows_ip(self, ip: str | None) -> bool:
        return networks_allow(self.allowed_networks, ip)


class WebhookFormat(models.TextChoices):
    JSON = "json", "JSON (recommended)"
    FORM = "form", "Form-encoded (legacy)"


class EventEndpoint(EndpointBase):
    """One receiver URL for a server's event webhooks: /hooks/socketlabs/events/<uuid>/."""

    # Counters kept by the processor in batches (never per request: that row would become a hot lock).
    events_processed = models.PositiveBigIntegerField(default=0)
    socketlabs_webhook_id = models.CharField(max_length=100, blank=True, help_text="Id at SocketLabs, if registered.")
    # The body format SocketLabs was asked to post in; kept so a re-registration (secret rotation) asks again.
    webhook_format = models.CharField(max_length=10, choices=WebhookFormat.choices, default=WebhookFormat.JSON)

    class Meta(EndpointBase.Meta):
        abstract = False

    @property
    def path(self) -> str:
        return f"/hooks/socketlabs/events/{self.uuid}/"


class EventType(models.TextChoices):
    QUEUED = "queued", "Queued"
    DEFERRED = "deferred", "Deferred"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    COMPLAINT = "complaint", "Complaint"
    OPEN = "open", "Open"
    CLICK = "click", "Click"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribe"


class FailureType(models.TextChoices):
    TEMPORARY = "temporary", "Temporary"
    PERMANENT = "permanent", "Permanent"
    SUPPRESSED = "suppressed", "Suppressed"


class RawEventQuerySet(models.QuerySet["RawEvent"]):
    def pending(self) -> RawEventQuerySet:
        return self.filter(processed_at__isnull=True)


class RawEvent(models.Model):
    """The durable inbox: one row per distinct post, written before the receiver answers 200."""

    # Few indexes on purpose: every btree costs time on the receiver's INSERT (limits.md §1, §3).
    # No database FK constraints on the two hot tables: each one is a trigger and a row lock on the
    # parent per INSERT, paid by every webhook request. Django still cascades deletes itself.
    endpoint = models.ForeignKey(
        EventEndpoint,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    dedup_key = models.CharField(max_length=64)
    payload = models.JSONField()
    content_type = models.CharField(max_length=10, default="json")  # "json" or "form"
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    objects = RawEventQuerySet.as_manager()

    class Meta:
        ordering = ("-id",)
        # A constraint rather than unique=True: PostgreSQL then skips the extra varchar_pattern_ops index.
        constraints = [models.UniqueConstraint(fields=["dedup_key"], name="rawevent_unique_dedup_key")]
        indexes = [
            # The processor's claim: unprocessed rows in id order, a small partial index.
            models.Index(fields=["id"], name="rawevent_pending", condition=models.Q(processed_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"raw event {self.pk} ({self.payload_type})"

    @property
    def payload_type(self) -> str:
        if isinstance(self.payload, dict):
            for key, value in self.payload.items():
                if key.lower() == "type":
                    return str(value)
        return "?"


class Event(models.Model):
    """A typed event. One per raw row (unique `raw`), so reprocessing never duplicates."""

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="+", db_index=False)
    raw = models.OneToOneField(RawEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="event")
    type = models.CharField(max_length=20, choices=EventType.choices)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    address = models.CharField(max_length=320, blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    mailing_id = models.CharField(max_length=255, blank=True)
    failure_type = models.CharField(max_length=20, choices=FailureType.choices, blank=True)
    failure_code = models.PositiveIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True)
    url = models.TextField(blank=True)
    user_agent = models.TextField(blank=True)
    client_ip = models.CharField(max_length=45, blank=True)
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("-id",)
        indexes = [
            models.Index(fields=["server", "-id"], name="event_server_recent"),
            models.Index(fields=["server", "address", "occurred_at"], name="event_server_address"),
            models.Index(fields=["server", "message_id"], name="event_server_message"),
            models.Index(fields=["server", "mailing_id"], name="event_server_mailing"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.address} at {self.occurred_at:%Y-%m-%d %H:%M:%S}"

    @property
    def recipient_domain(self) -> str:
        return self.address.rpartition("@")[2]


class DailyRollup(models.Model):
    """Event counts per server / day (server's time zone) / type / recipient domain / mailing id."""

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    type = models.CharField(max_length=20, choices=EventType.choices)
    recipient_domain = models.CharField(max_length=255, blank=True)
    mailing_id = models.CharField(max_length=255, blank=True)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ("-day", "type")
        constraints = [
            models.UniqueConstraint(
                fields=["server", "day", "type", "recipient_domain", "mailing_id"], name="rollup_unique_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.type} {self.recipient_domain or '-'} {self.mailing_id or '-'}: {self.count}"


class DeadLetter(models.Model):
    """A raw event the processor could not understand, kept with the reason until replayed."""

    raw = models.ForeignKey(RawEvent, on_delete=models.CASCADE, related_name="dead_letters")
    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="+", db_index=False)
    error = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=["server", "replayed_at"], name="deadletter_server_open")]

    def __str__(self) -> str:
        return f"dead letter {self.pk}: {self.error[:60]}"


class Outcome(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    DUPLICATE = "duplicate", "Duplicate"
    VALIDATION = "validation", "Validation"
    UNAUTHORIZED = "unauthorized", "Bad secret"
    FORBIDDEN = "forbidden", "Network not allowed"
    MALFORMED = "malformed", "Malformed"
    TOO_LARGE = "too_large", "Too large"
    ERROR = "error", "Error"


class RequestLog(models.Model):
    """One row per receiver request, kept 7 days (beat prunes): status, latency, size."""

    endpoint = models.ForeignKey(
        EventEndpoint,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    inbound_endpoint = models.ForeignKey(
        "InboundEndpoint", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # No constraint and no index: raw rows outlive their log rows (30 vs 7 days), and every index
    # here is paid on each webhook request.
    raw = models.ForeignKey(
        RawEvent,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    received_at = models.DateTimeField(default=timezone.now)
    status = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    latency_ms = models.FloatField(default=0)
    body_size = models.PositiveIntegerField(default=0)
    remote_ip = models.CharField(max_length=45, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ("-received_at", "-id")
        indexes = [
            models.Index(fields=["endpoint", "-received_at"], name="reqlog_endpoint_time"),
            models.Index(fields=["received_at"], name="reqlog_time"),
        ]

    def __str__(self) -> str:
        return f"{self.received_at:%H:%M:%S} {self.status} {self.outcome}"

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class EffectKind(models.TextChoices):
    SUPPRESS_BOUNCE = "suppress_bounce", "Suppress (permanent failure)"
    SUPPRESS_COMPLAINT = "suppress_complaint", "Suppress (complaint)"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribe"


class Effect(models.Model):
    """A side effect an event calls for (suppression mirror, contact status), recorded for its owner app.

    `reporting.effects.apply()` writes these in the processing transaction; the suppression and
    marketing apps consume pending rows and set `applied_at`. Unique per event: replays add none.
    """

    event = models.OneToOneField(Event, on_delete=models.CASCADE, related_name="effect")
    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=30, choices=EffectKind.choices)
    address = models.CharField(max_length=320)
    created_at = models.DateTimeField(default=timezone.now)
    # Applied to the suppression mirror (suppression app).
    applied_at = models.DateTimeField(null=True, blank=True)
    # Applied to the contact's status (marketing app); separate, so either app can be late without the other.
    contacts_applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-id",)
        indexes = [
            models.Index(fields=["server", "id"], name="effect_pending", condition=models.Q(applied_at__isnull=True)),
            models.Index(
                fields=["server", "id"],
                name="effect_contacts_pending",
                condition=models.Q(contacts_applied_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.address}"


# --- Inbound parse ---------------------------------------------------------------------------


class InboundEndpoint(EndpointBase):
    """One receiver URL for parsed inbound mail: /hooks/socketlabs/inbound/<uuid>/."""

    messages_received = models.PositiveBigIntegerField(default=0)

    class Meta(EndpointBase.Meta):
        abstract = False

    @property
    def path(self) -> str:
        return f"/hooks/socketlabs/inbound/{self.uuid}/"


class MxStatus(models.TextChoices):
    UNKNOWN = "unknown", "Not checked"
    OK = "ok", "MX points at SocketLabs"
    WRONG = "wrong", "MX points elsewhere"
    MISSING = "missing", "No MX record"
    ERROR = "error", "Check failed, retry later"


class InboundRoute(models.Model):
    """A domain or single address whose mail SocketLabs parses and posts to an inbound endpoint."""

    MX_TARGET = "mx.socketlabs.com"

    endpoint = models.ForeignKey(InboundEndpoint, on_delete=models.CASCADE, related_name="routes")
    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="+")
    domain_or_address = models.CharField(max_length=320)
    socketlabs_id = models.CharField(
        max_length=100, blank=True, help_text="Id of the inbound-parse entry at SocketLabs."
    )
    mx_status = models.CharField(max_length=20, choices=MxStatus.choices, default=MxStatus.UNKNOWN)
    mx_detail = models.CharField(max_length=500, blank=True)
    mx_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Optional forwarding of each parsed message (reporting.forwarding); the secret is sent in a header.
    forward_url = models.URLField(
        max_length=2000, blank=True, help_text="Each parsed message is POSTed here as JSON; empty means no forwarding."
    )
    forward_secret = EncryptedTextField(blank=True, default="")
    forward_secret_created_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("domain_or_address",)
        constraints = [
            models.UniqueConstraint(fields=["server", "domain_or_address"], name="inbound_route_unique_per_server")
        ]

    def __str__(self) -> str:
        return self.domain_or_address

    @property
    def domain(self) -> str:
        return self.domain_or_address.rpartition("@")[2]

    @property
    def masked_forward_secret(self) -> str:
        return mask(self.forward_secret)


class ForwardStatus(models.TextChoices):
    NONE = "", "Not forwarded"
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class InboundMessage(models.Model):
    endpoint = models.ForeignKey(InboundEndpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    route = models.ForeignKey(InboundRoute, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages")
    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="+")
    dedup_key = models.CharField(max_length=64)
    received_at = models.DateTimeField(default=timezone.now)
    mail_from = models.CharField(max_length=320, blank=True)
    rcpt_to = models.CharField(max_length=320, blank=True)
    remote_ip = models.CharField(max_length=45, blank=True)
    from_address = models.CharField(max_length=320, blank=True)
    from_name = models.CharField(max_length=320, blank=True)
    subject = models.TextField(blank=True)
    text_body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)
    message_id = models.CharField(max_length=998, blank=True)
    spam_score = models.FloatField(null=True, blank=True)
    size = models.PositiveBigIntegerField(default=0, help_text="Bytes of the posted body.")
    # The post minus SecretKey and attachment contents (those are files, see InboundAttachment).
    payload = models.JSONField()
    # Forwarding to the route's URL (reporting.forwarding): one row is the whole state of the delivery.
    forward_status = models.CharField(max_length=10, choices=ForwardStatus.choices, blank=True, default="")
    forward_attempts = models.PositiveSmallIntegerField(default=0)
    # When the next attempt is due; the sweep re-enqueues pending rows well past it (a lost task).
    forward_next_at = models.DateTimeField(null=True, blank=True)
    # Held by the attempt in flight, so a duplicate task never posts the same message twice at once.
    forward_lease_until = models.DateTimeField(null=True, blank=True)
    forwarded_at = models.DateTimeField(null=True, blank=True)
    forward_response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    forward_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ("-received_at", "-id")
        constraints = [models.UniqueConstraint(fields=["dedup_key"], name="inbound_unique_dedup_key")]
        indexes = [
            models.Index(fields=["server", "-received_at"], name="inbound_server_time"),
            models.Index(
                fields=["forward_next_at"],
                name="inbound_forward_pending",
                condition=models.Q(forward_status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.from_address} → {self.rcpt_to}: {self.subject[:40]}"


def inbound_storage_root() -> str:
    return str(getattr(settings, "REPORTING_INBOUND_ROOT", "") or (settings.MEDIA_ROOT / "inbound"))


class InboundAttachment(models.Model):
    """An attachment or embedded part, stored as an inert file (no extension, never served inline)."""

    message = models.ForeignKey(InboundMessage, on_delete=models.CASCADE, related_name="attachments")
    name = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=255, blank=True)
    content_id = models.CharField(max_length=255, blank=True)
    embedded = models.BooleanField(default=False)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    # Path relative to the inbound storage root.
    path = models.CharField(max_length=300)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return self.name or self.path


# --- Reports pulled from SocketLabs (issue 9) --------------------------------------------------------
# SocketLabs report days are UTC days (the contract is silent; the sandbox counts UTC days). Pulled
# figures are kept for good, so history outlives SocketLabs' 90 days; each row is keyed by server,
# day and kind so a re-pull overwrites instead of adding.


class ReportKind(models.TextChoices):
    """What a pulled figure counts. Tracking reports are pulled once per tracking type."""

    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    COMPLAINTS = "complaints", "Complaints"
    OPENS = "opens", "Opens"
    CLICKS = "clicks", "Clicks"
    UNSUBSCRIBES = "unsubscribes", "Unsubscribes"


class ReportDimension(models.TextChoices):
    DOMAIN = "domain", "Recipient domain"
    MAILING = "mailing", "Mailing id"
    FAILURE_CODE = "failure_code", "Failure code"
    REASON = "reason", "Failure reason"
    URL = "url", "Clicked URL"


class ReportDay(models.Model):
    """The overview of one report kind for one server and one (UTC) day, as SocketLabs reported it."""

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    kind = models.CharField(max_length=20, choices=ReportKind.choices)
    total = models.PositiveBigIntegerField(default=0)
    unique = models.PositiveBigIntegerField(null=True, blank=True)
    pulled_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-day", "kind")
        constraints = [models.UniqueConstraint(fields=["server", "day", "kind"], name="reportday_unique_key")]

    def __str__(self) -> str:
        return f"{self.day} {self.kind}: {self.total}"


class ReportBreakdown(models.Model):
    """One kind's count for a server and day, split by a dimension (aggregate and list reports)."""

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    kind = models.CharField(max_length=20, choices=ReportKind.choices)
    dimension = models.CharField(max_length=20, choices=ReportDimension.choices)
    key = models.CharField(max_length=255)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ("-day", "kind", "dimension", "-count")
        constraints = [
            # Column order serves "top keys of this kind and dimension over a date range for these servers".
            models.UniqueConstraint(
                fields=["server", "kind", "dimension", "day", "key"], name="reportbreakdown_unique_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.kind} {self.dimension}={self.key}: {self.count}"


def week_start(day: date) -> date:
    """The Monday of the (UTC) week that `day` falls in: weeks run Monday to Sunday."""
    return day - timedelta(days=day.weekday())


class ReportBreakdownWeek(models.Model):
    """`ReportBreakdown` summed over one week (Monday to Sunday) per server, kind, dimension and key.

    Derived data: never written on its own. The pull that stores a day recomputes that server's week
    from the day rows in the same transaction (`reporting.pulls.roll_up_weeks`), so a week row is
    always the sum of the week's day rows. Long ranges read whole weeks here and only the partial
    weeks at their edges from `ReportBreakdown` (about seven times fewer rows to sum).
    """

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="+", db_index=False)
    week_start = models.DateField()  # a Monday
    kind = models.CharField(max_length=20, choices=ReportKind.choices)
    dimension = models.CharField(max_length=20, choices=ReportDimension.choices)
    key = models.CharField(max_length=255)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ("-week_start", "kind", "dimension", "-count")
        constraints = [
            models.UniqueConstraint(
                fields=["server", "kind", "dimension", "week_start", "key"], name="reportbreakdownweek_unique_key"
            )
        ]

    def __str__(self) -> str:
        return f"week of {self.week_start} {self.kind} {self.dimension}={self.key}: {self.count}"


class StreamScoreDay(models.Model):
    """StreamScore for one server and day, from the StreamScore history."""

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    score = models.PositiveSmallIntegerField()
    rating = models.CharField(max_length=10, blank=True)  # Good | Fair | Poor
    pulled_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-day",)
        constraints = [models.UniqueConstraint(fields=["server", "day"], name="streamscoreday_unique_key")]

    def __str__(self) -> str:
        return f"{self.day}: {self.score} ({self.rating or '?'})"


class EventDayTotal(models.Model):
    """Webhook-ingested events per server, UTC day and type: the webhook side of reconciliation.

    `DailyRollup` counts in the server's own time zone; SocketLabs reports count UTC days, so the
    processor keeps this small UTC tally beside it in the same transaction.
    """

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    type = models.CharField(max_length=20, choices=EventType.choices)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ("-day", "type")
        constraints = [models.UniqueConstraint(fields=["server", "day", "type"], name="eventdaytotal_unique_key")]

    def __str__(self) -> str:
        return f"{self.day} {self.type}: {self.count}"


class PullTrigger(models.TextChoices):
    NIGHTLY = "nightly", "Nightly"
    MANUAL = "manual", "On demand"
    BACKFILL = "backfill", "Backfill"
    COMMAND = "command", "Command line"


class PullStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    RETRYING = "retrying", "Waiting to retry"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ReportPull(models.Model):
    """A job that pulls every report kind and StreamScore for a server over a range of days.

    A nightly run carries `nightly_for` (the server's local date it ran for): unique per server, so
    beat firing twice, or two beats, still make one run per server per day (R22).
    """

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="report_pulls")
    first_day = models.DateField()
    last_day = models.DateField()
    trigger = models.CharField(max_length=10, choices=PullTrigger.choices)
    nightly_for = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=PullStatus.choices, default=PullStatus.QUEUED)
    days_total = models.PositiveIntegerField(default=0)
    days_done = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)  # plain words for the jobs page, never a traceback
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["server", "nightly_for"],
                condition=models.Q(nightly_for__isnull=False),
                name="reportpull_one_nightly_per_day",
            )
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="reportpull_due")]

    def __str__(self) -> str:
        return f"{self.get_trigger_display()} pull {self.first_day}…{self.last_day} ({self.status})"


class ReportSettings(models.Model):
    """Per-server schedule and alert thresholds; Admins edit them."""

    server = models.OneToOneField(Server, on_delete=models.CASCADE, related_name="report_settings")
    nightly_enabled = models.BooleanField(default=True)
    # Local time (server's time zone) after which last night's pull runs.
    pull_hour = models.PositiveSmallIntegerField(default=2)
    streamscore_threshold = models.PositiveSmallIntegerField(default=70)
    failure_rate_threshold = models.DecimalField(max_digits=6, decimal_places=3, default=5)  # percent
    complaint_rate_threshold = models.DecimalField(max_digits=6, decimal_places=3, default="0.1")  # percent
    alerts_enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"report settings of {self.server}"


class AlertKind(models.TextChoices):
    STREAMSCORE = "streamscore", "StreamScore below threshold"
    FAILURE_RATE = "failure_rate", "Failure rate above threshold"
    COMPLAINT_RATE = "complaint_rate", "Complaint rate above threshold"


class Alert(models.Model):
    """A threshold crossed on a server's day; one per server, day and kind, so it is mailed once."""

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="report_alerts")
    day = models.DateField()
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    value = models.FloatField()
    threshold = models.FloatField()
    created_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-day", "kind")
        constraints = [models.UniqueConstraint(fields=["server", "day", "kind"], name="alert_unique_key")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.day}: {self.value} (threshold {self.threshold})"


class DigestFrequency(models.TextChoices):
    NONE = "none", "No digest"
    NIGHTLY = "nightly", "Nightly"
    WEEKLY = "weekly", "Weekly (Mondays)"


class ReportSubscription(models.Model):
    """A user's e-mail subscriptions for one server: the digest and/or alerts."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="report_subscriptions")
    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="report_subscriptions")
    digest = models.CharField(max_length=10, choices=DigestFrequency.choices, default=DigestFrequency.NONE)
    alerts = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "server"], name="reportsubscription_unique_key")]

    def __str__(self) -> str:
        return f"{self.user} on {self.server}: digest {self.digest}, alerts {self.alerts}"


class DigestDelivery(models.Model):
    """One digest sent (or being sent) for a period; unique, so beat never mails a period twice."""

    subscription = models.ForeignKey(ReportSubscription, on_delete=models.CASCADE, related_name="deliveries")
    period_start = models.DateField()
    period_end = models.DateField()
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ("-period_end",)
        constraints = [models.UniqueConstraint(fields=["subscription", "period_end"], name="digestdelivery_unique_key")]

    def __str__(self) -> str:
        return f"digest {self.period_start}…{self.period_end} for {self.subscription}"
