"""State of the local SocketLabs (the sandbox).

These tables belong to the fake SocketLabs, not to Mailroom: nothing outside
`sandbox/` imports them. Names follow the contract (../shared/socketlabs-api.md).
"""

from __future__ import annotations

import hashlib
import secrets
import string
from typing import ClassVar

from django.db import models
from django.utils import timezone

ALNUM = string.ascii_letters + string.digits


def random_alnum(length: int) -> str:
    return "".join(secrets.choice(ALNUM) for _ in range(length))


def key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class SandboxAccount(models.Model):
    account_id = models.PositiveIntegerField(unique=True)
    name = models.CharField(max_length=100)
    disabled = models.BooleanField(default=False, help_text="Injection answers AccountDisabled.")
    created_on = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} ({self.account_id})"


class SandboxServer(models.Model):
    """One simulated SocketLabs server, with its plan flags and delivery-simulation knobs."""

    account = models.ForeignKey(SandboxAccount, on_delete=models.CASCADE, related_name="servers")
    server_id = models.PositiveIntegerField(unique=True)
    name = models.CharField(max_length=100)
    status = models.CharField(max_length=20, default="Active")
    # Plan: suppression management is a plan-level feature (403 when absent).
    suppression_enabled = models.BooleanField(default=True)
    # Injection: requests per minute before OverQuota; null = no limit.
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    # Emit codes the PyPI 1.4.4 SDK cannot parse (MetadataOrTagsAreTooLarge, ...).
    strict_codes = models.BooleanField(default=False)
    # Delivery simulation for addresses without a rule in their local part (§0a).
    bounce_rate = models.FloatField(default=0.02)
    deferral_rate = models.FloatField(default=0.01)
    complaint_rate = models.FloatField(default=0.001)
    open_rate = models.FloatField(default=0.25)
    click_rate = models.FloatField(default=0.05)
    unsubscribe_rate = models.FloatField(default=0.002)
    seed = models.PositiveIntegerField(default=42)
    # Seconds from injection to each event; zero in tests.
    delivery_delay_seconds = models.FloatField(default=2.0)
    tracking_delay_seconds = models.FloatField(default=30.0)
    created_on = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("server_id",)

    def __str__(self) -> str:
        return f"{self.name} ({self.server_id})"


class Permission(models.TextChoices):
    INJECTION = "injection", "Injection API"
    API = "api", "SocketLabs API (v2)"
    MARKETING = "marketing", "Marketing API"


class SandboxApiKey(models.Model):
    """An API key. 61-char keys are `public20.secret40`; legacy keys are short and opaque.

    Only a hash of the full key is kept; the secret is returned once at creation.
    """

    server = models.ForeignKey(SandboxServer, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    public_part = models.CharField(max_length=40, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    permissions = models.JSONField(default=list)
    legacy = models.BooleanField(default=False)
    created_on = models.DateTimeField(default=timezone.now)
    last_used_on = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("created_on", "id")

    def __str__(self) -> str:
        return f"{self.name} ({self.public_part})"

    @classmethod
    def issue(
        cls, *, server: SandboxServer, name: str, permissions: list[str], legacy: bool = False, raw: str | None = None
    ) -> tuple[SandboxApiKey, str]:
        """Create a key and return it with its full secret (shown once)."""
        if raw is None:
            raw = random_alnum(24) if legacy else f"{random_alnum(20)}.{random_alnum(40)}"
        public = raw[:8] if legacy else raw.split(".", 1)[0]
        key = cls.objects.create(
            server=server,
            name=name,
            public_part=public,
            key_hash=key_hash(raw),
            permissions=permissions,
            legacy=legacy,
        )
        return key, raw


class VerificationStatus(models.TextChoices):
    PENDING = "Pending"
    VERIFIED = "Verified"
    FAILED = "Failed"


class SandboxSendingDomain(models.Model):
    server = models.ForeignKey(SandboxServer, on_delete=models.CASCADE, related_name="sending_domains")
    domain = models.CharField(max_length=253)
    status = models.CharField(max_length=20, choices=VerificationStatus.choices, default=VerificationStatus.PENDING)
    verification_record = models.CharField(max_length=200)
    created_on = models.DateTimeField(default=timezone.now)
    verified_on = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["server", "domain"], name="sbx_sending_domain_unique")]
        ordering = ("domain",)

    def __str__(self) -> str:
        return self.domain


class SandboxDkim(models.Model):
    server = models.ForeignKey(SandboxServer, on_delete=models.CASCADE, related_name="dkim_keys")
    domain = models.CharField(max_length=253)
    selector = models.CharField(max_length=63)
    private_key = models.TextField()
    public_key = models.TextField()
    validation_status = models.CharField(
        max_length=20, choices=VerificationStatus.choices, default=VerificationStatus.PENDING
    )
    created_on = models.DateTimeField(default=timezone.now)
    updated_on = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["server", "domain", "selector"], name="sbx_dkim_unique")]
        ordering = ("domain", "selector")

    def __str__(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"


class SandboxBounceDomain(models.Model):
    server = models.ForeignKey(SandboxServer, on_delete=models.CASCADE, related_name="bounce_domains")
    domain = models.CharField(max_length=253)
    is_default = models.BooleanField(default=False)
    validation_status = models.CharField(
        max_length=20, choices=VerificationStatus.choices, default=VerificationStatus.PENDING
    )
    created_on = models.DateTimeField(default=timezone.now)
    updated_on = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["server", "domain"], name="sbx_bounce_unique")]
        ordering = ("domain",)

    def __str__(self) -> str:
        return self.domain


class SandboxTrackingDomain(models.Model):
    server = models.ForeignKey(SandboxServer, on_delete=models.CASCADE, related_name="tracking_domains")
    domain = models.CharField(max_length=253)
    opens_enabled = models.BooleanField(default=True)
    clicks_enabled = models.BooleanField(default=True)
    unsubscribes_enabled = models.BooleanField(default=True)
    automatic_tracking_enabled = models.BooleanField(default=False)
    google_analytics_enabled = models.BooleanField(default=False)
    https_enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False)
    validation_status = models.CharField(
        max_length=20, choices=VerificationStatus.choices, default=VerificationStatus.PENDING
    )
    created_on = models.DateTimeField(default=timezone.now)
    updated_on = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["server", "domain"], name="sbx_tracking_unique")]
        ordering = ("domain",)

    def __str__(self) -> str:
        return self.domain


class SuppressionReason(models.TextChoices):
    FAILURE = "Failure"
    BOUNCE = "Bounce"
    UNSUBSCRIBE = "Unsubscribe"
    COMPLAINT = "Complaint"
    CUSTOMER_REQUEST = "CustomerRequest"


class SandboxSuppression(models.Model):
    server = models.ForeignKey(SandboxServer, on_delete=models.CASCADE, related_name="suppressions")
    email_address = models.CharField(max_length=320, help_text="Stored lower-cased.")
    reason = models.CharField(max_length=20, choices=SuppressionReason.choices)
    source = models.CharField(max_length=40, default="api")
    last_update = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["server", "email_address"], name="sbx_suppression_unique"),
        ]
        indexes = [models.Index(fields=["server", "-last_update"], name="sbx_supp_server_time")]

    def __str__(self) -> str:
        return f"{self.email_address} ({self.reason})"


class SandboxMessage(models.Model):
    """One outbound message after merge expansion: one per PerMessage row (or one per basic message)."""

    server = models.ForeignKey(SandboxServer, on_delete=models.CASCADE, related_name="messages")
    transaction_receipt = models.CharField(max_length=40, db_index=True, help_text="The injection request's id.")
    message_index = models.PositiveIntegerField(help_text="Index of the message in the request's Messages.")
    row_index = models.PositiveIntegerField(default=0, help_text="Index of the merge row within the message.")
    message_id = models.CharField(max_length=255, blank=True, db_index=True)
    mailing_id = models.CharField(max_length=255, blank=True, db_index=True)
    from_address = models.CharField(max_length=320)
    from_name = models.CharField(max_length=255, blank=True)
    reply_to = models.CharField(max_length=320, blank=True)
    to = models.JSONField(default=list, help_text="[{emailAddress, friendlyName}] after merge.")
    cc = models.JSONField(default=list)
    bcc = models.JSONField(default=list)
    subject = models.TextField(blank=True)
    text_body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)
    amp_body = models.TextField(blank=True)
    api_template = models.CharField(max_length=40, blank=True)
    custom_headers = models.JSONField(default=list)
    metadata = models.JSONField(default=list)
    tags = models.JSONField(default=list)
    attachments = models.JSONField(default=list, help_text="[{name, contentType, contentId, size}] (content not kept).")
    size = models.PositiveIntegerField(default=0)
    client = models.CharField(max_length=120, blank=True, help_text="User-Agent of the injecting client.")
    created_on = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_on", "-id")
        indexes = [models.Index(fields=["server", "-created_on"], name="sbx_msg_server_time")]

    def __str__(self) -> str:
        return f"{self.subject} → {self.to}"


class EventType(models.TextChoices):
    QUEUED = "Queued"
    DEFERRED = "Deferred"
    DELIVERED = "Delivered"
    FAILED = "Failed"
    COMPLAINT = "Complaint"
    TRACKING = "Tracking"


class SandboxEvent(models.Model):
    """A delivery or engagement event for one recipient of one message.

    `due_at` is when the simulation makes it happen; `payload` holds the type-specific
    webhook fields (FailureCode, TrackingType, Url, ...). Reports and StreamScore are
    computed from these rows; webhook posting is tracked in SandboxWebhookDelivery.
    """

    server = models.ForeignKey(SandboxServer, on_delete=models.CASCADE, related_name="events")
    # Named `outbound` because `message_id` is the customer's MessageId string.
    outbound = models.ForeignKey(SandboxMessage, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=20, choices=EventType.choices)
    address = models.CharField(max_length=320)
    message_id = models.CharField(max_length=255, blank=True)
    mailing_id = models.CharField(max_length=255, blank=True)
    due_at = models.DateTimeField(default=timezone.now)
    happened = models.BooleanField(default=False, help_text="Set once due_at has passed and it was dispatched.")
    payload = models.JSONField(default=dict)

    class Meta:
        ordering = ("due_at", "id")
        indexes = [
            models.Index(fields=["server", "type", "due_at"], name="sbx_event_server_type_time"),
            models.Index(fields=["happened", "due_at"], name="sbx_event_pending"),
            models.Index(fields=["server", "address"], name="sbx_event_address"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.address}"


class WebhookFormat(models.TextChoices):
    JSON = "json"
    FORM = "form"


class SandboxEventWebhook(models.Model):
    server = models.ForeignKey(SandboxServer, on_delete=models.CASCADE, related_name="event_webhooks")
    url = models.URLField(max_length=500)
    secret_key = models.CharField(max_length=200)
    events: models.JSONField = models.JSONField(default=list, help_text="Event types to post; empty means all.")
    format = models.CharField(max_length=10, choices=WebhookFormat.choices, default=WebhookFormat.JSON)
    status = models.CharField(max_length=20, default="Active")
    created_on = models.DateTimeField(default=timezone.now)

    ALL_EVENTS: ClassVar[list[str]] = [t.value for t in EventType]

    class Meta:
        ordering = ("created_on", "id")

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return not self.events or event_type in self.events


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class SandboxWebhookDelivery(models.Model):
    """One event to one endpoint: attempts, backoff, outcome."""

    event = models.ForeignKey(SandboxEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(SandboxEventWebhook, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    updated_on = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="sbx_delivery_unique")]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="sbx_delivery_due")]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint} ({self.status})"


class SandboxInboundEndpoint(models.Model):
    server = models.ForeignKey(SandboxServer, on_delete=models.CASCADE, related_name="inbound_endpoints")
    domain_or_address = models.CharField(max_length=320)
    url = models.URLField(max_length=500)
    secret_key = models.CharField(max_length=200)
    validation_key = models.CharField(max_length=200)
    status = models.CharField(max_length=20, default="Active")
    created_on = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("created_on", "id")

    def __str__(self) -> str:
        return f"{self.domain_or_address} → {self.url}"


class SandboxInboundPost(models.Model):
    """A simulated received message and the outcome of posting it to the endpoint."""

    endpoint = models.ForeignKey(SandboxInboundEndpoint, on_delete=models.CASCADE, related_name="posts")
    payload = models.JSONField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    validated = models.BooleanField(default=False, help_text="The answer contained the validation key.")
    error = models.CharField(max_length=500, blank=True)
    created_on = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_on", "-id")

    def __str__(self) -> str:
        return f"inbound to {self.endpoint.url} ({self.status_code})"


class SandboxContactList(models.Model):
    server = models.ForeignKey(SandboxServer, on_delete=models.CASCADE, related_name="contact_lists")
    name = models.CharField(max_length=200)
    created_on = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return self.name


class SandboxCustomField(models.Model):
    server = models.ForeignKey(SandboxServer, on_delete=models.CASCADE, related_name="custom_fields")
    name = models.CharField(max_length=100)
    data_type = models.CharField(max_length=20, default="Text")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["server", "name"], name="sbx_custom_field_unique")]
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class SandboxContact(models.Model):
    server = models.ForeignKey(SandboxServer, on_delete=models.CASCADE, related_name="contacts")
    email_address = models.CharField(max_length=320, help_text="Stored lower-cased.")
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    custom_fields = models.JSONField(default=dict, help_text="{name: value}")
    unsubscribed = models.BooleanField(default=False)
    lists = models.ManyToManyField(SandboxContactList, related_name="contacts", blank=True)
    created_on = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["server", "email_address"], name="sbx_contact_unique")]
        ordering = ("id",)

    def __str__(self) -> str:
        return self.email_address


class SandboxRequestLog(models.Model):
    """Every API request the sandbox answered (for the sandbox page and rate limiting)."""

    server_id_value = models.PositiveIntegerField(null=True, blank=True, db_index=True)
    api = models.CharField(max_length=20)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    status_code = models.PositiveIntegerField()
    error_code = models.CharField(max_length=60, blank=True)
    created_on = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-created_on", "-id")

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.status_code}"
