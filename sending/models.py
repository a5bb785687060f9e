"""Mailroom's own records for sending setup.

SocketLabs is the source of truth for keys and domains; Mailroom keeps only what SocketLabs
cannot: the results of our DNS checks, DNS-check jobs with their progress, and DKIM keys on
their way in (generated or pasted, waiting for the DNS record) including rotations.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from accounts.fields import EncryptedTextField
from accounts.models import Server


class RecordKind(models.TextChoices):
    SENDING_DOMAIN = "sending_domain", "Sending domain"
    DKIM = "dkim", "DKIM"
    BOUNCE = "bounce", "Bounce domain"
    TRACKING = "tracking", "Tracking domain"


class DnsState(models.TextChoices):
    """What our own DNS lookup found. Only OK means "published as expected"."""

    OK = "ok", "Matches"
    MISSING = "missing", "Missing"
    WRONG = "wrong", "Wrong value"
    MULTIPLE = "multiple", "Several records"
    NXDOMAIN = "nxdomain", "No such name"
    TIMEOUT = "timeout", "Unknown, retry later"
    ERROR = "error", "Unknown, DNS error"
    UNCHECKED = "unchecked", "Not checked"

    @classmethod
    def badge(cls, state: str) -> str:
        """The CSS status class: green only for a match; timeouts and errors stay grey, never green."""
        if state == cls.OK:
            return "status-ok"
        if state in (cls.TIMEOUT, cls.ERROR, cls.UNCHECKED):
            return "status-unknown"
        return "status-error"


class DnsCheckResult(models.Model):
    """The latest DNS check of one record Mailroom expects for a server (one row per server, kind and host)."""

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="dns_results")
    kind = models.CharField(max_length=20, choices=RecordKind.choices)
    domain = models.CharField(max_length=253)
    selector = models.CharField(max_length=63, blank=True)
    host = models.CharField(max_length=253)
    rtype = models.CharField("record type", max_length=10)
    expected = models.TextField()
    published = models.JSONField(default=list, blank=True)
    state = models.CharField(max_length=20, choices=DnsState.choices, default=DnsState.UNCHECKED)
    detail = models.CharField(max_length=500, blank=True)
    checked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("server", "domain", "kind", "host")
        constraints = [
            models.UniqueConstraint(fields=["server", "kind", "host"], name="sending_dns_result_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.host} {self.rtype}: {self.state}"

    @property
    def badge(self) -> str:
        return DnsState.badge(self.state)


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class DnsCheckJob(models.Model):
    """A batch of DNS checks over one or more servers, run by a Celery task, with progress for the page."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    server = models.ForeignKey(
        Server,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Set for one server's page.",
    )
    server_ids = models.JSONField(default=list)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trigger = models.CharField(max_length=20, default="manual")  # manual | nightly | api
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    problems = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)  # plain sentences: servers whose domains could not be listed
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"DNS check {self.pk} ({self.status}, {self.done}/{self.total})"

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.DONE, JobStatus.FAILED)

    @property
    def percent(self) -> int:
        if self.finished:
            return 100
        return int(100 * self.done / self.total) if self.total else 0

    @property
    def eta_seconds(self) -> int | None:
        """Seconds left, from the pace so far; None until there is a pace to go by."""
        if self.finished or not self.started_at or not self.done or not self.total:
            return None
        elapsed = (timezone.now() - self.started_at).total_seconds()
        return max(0, round(elapsed / self.done * (self.total - self.done)))

    def advance(self, *, problems: int = 0) -> None:
        DnsCheckJob.objects.filter(pk=self.pk).update(done=F("done") + 1, problems=F("problems") + problems)


class SetupStep(models.TextChoices):
    PUBLISH = "publish", "Publish the record"
    VERIFIED = "verified", "Verified; ready to switch"
    SWITCHED = "switched", "Switched; remove the old record"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


OPEN_STEPS = (SetupStep.PUBLISH, SetupStep.VERIFIED, SetupStep.SWITCHED)


class DkimSetupQuerySet(models.QuerySet["DkimSetup"]):
    def open(self) -> DkimSetupQuerySet:
        return self.filter(step__in=OPEN_STEPS)


class DkimSetup(models.Model):
    """A DKIM key on its way into SocketLabs, or a rotation from `old_selector` to `selector`.

    SocketLabs validates a key against DNS when it is added, and never shows a private key
    again, so Mailroom holds the new private key (encrypted) until SocketLabs has accepted it,
    then forgets it. Steps: publish → verified (our DNS check matched and SocketLabs accepted
    the key) → for a rotation: switched (the old key removed at SocketLabs) → done (the old TXT
    record is gone from DNS). A new key without a rotation is done once SocketLabs accepts it.
    """

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="dkim_setups")
    domain = models.CharField(max_length=253)
    selector = models.CharField(max_length=63)
    old_selector = models.CharField(max_length=63, blank=True, help_text="Set for a rotation: the selector replaced.")
    old_public_key = models.TextField(blank=True)
    private_key = EncryptedTextField(blank=True)
    public_key = models.TextField()
    source = models.CharField(max_length=20, default="generated")  # generated (by SocketLabs) | pasted
    step = models.CharField(max_length=20, choices=SetupStep.choices, default=SetupStep.PUBLISH)
    added_at_socketlabs = models.BooleanField(default=False)
    socketlabs_status = models.CharField(max_length=40, blank=True)
    last_message = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = DkimSetupQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(
                fields=["server", "domain", "selector"],
                condition=Q(step__in=["publish", "verified", "switched"]),
                name="sending_dkim_setup_one_open_per_selector",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.host} ({self.step})"

    @property
    def is_rotation(self) -> bool:
        return bool(self.old_selector)

    @property
    def is_open(self) -> bool:
        return self.step in OPEN_STEPS

    @property
    def host(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def old_host(self) -> str:
        return f"{self.old_selector}._domainkey.{self.domain}" if self.old_selector else ""

    @property
    def txt_value(self) -> str:
        return f"v=DKIM1; k=rsa; p={self.public_key}"

    def move_to(self, step: str, **fields: Any) -> None:
        self.step = step
        self.updated_at = timezone.now()
        for name, value in fields.items():
            setattr(self, name, value)
        self.save()


# --- Compose and send (issue 7) ------------------------------------------------------------------
class Template(models.Model):
    """A message with `%%Field%%` merge fields. Merge content is only ever substituted by SocketLabs
    (or, for the preview, by plain string replacement with escaping), never by Django's template engine."""

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="send_templates")
    name = models.CharField(max_length=200)
    subject = models.CharField(max_length=998)
    html_body = models.TextField(blank=True)
    text_body = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("name", "pk")

    def __str__(self) -> str:
        return self.name


class SendStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    PAUSED = "paused", "Paused"
    CANCELLED = "cancelled", "Cancelled"
    DONE = "done", "Done"


class AudienceState(models.TextChoices):
    """Expanding the audience into recipient rows: inline for small audiences, a background job for large ones."""

    READY = "ready", "Ready"
    EXPANDING = "expanding", "Preparing the audience"
    FAILED = "failed", "Audience failed"


class Send(models.Model):
    """One bulk send: a snapshot of the template and settings, its recipients and their batches."""

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="sends")
    name = models.CharField(max_length=200)
    template = models.ForeignKey(Template, null=True, blank=True, on_delete=models.SET_NULL, related_name="sends")
    subject = models.CharField(max_length=998)
    html_body = models.TextField(blank=True)
    text_body = models.TextField(blank=True)
    from_address = models.CharField(max_length=254)
    from_name = models.CharField(max_length=200, blank=True)
    reply_to = models.CharField(max_length=254, blank=True)
    # Cc/Bcc make a basic send: one message (no per-recipient merge) to every recipient, Cc and Bcc listed.
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)
    mailing_id = models.CharField(max_length=100, blank=True, help_text="Blank: mailroom-<send id>.")
    message_id_prefix = models.CharField(
        max_length=100, blank=True, help_text="Each message's id is <prefix>-<recipient id>; blank: mailroom-<send id>."
    )
    tags = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    custom_headers = models.JSONField(default=dict, blank=True)
    global_fields = models.JSONField(default=dict, blank=True)
    audience = models.CharField(max_length=200, blank=True, help_text="How the recipients were chosen, in words.")
    # A large audience is expanded by a background job; the database holds its state so a restart resumes it.
    audience_state = models.CharField(max_length=12, choices=AudienceState.choices, default=AudienceState.READY)
    audience_spec = models.JSONField(default=dict, blank=True)
    audience_done = models.PositiveIntegerField(default=0, help_text="Audience rows read so far.")
    audience_expected = models.PositiveIntegerField(null=True, blank=True, help_text="Audience rows, when known.")
    audience_error = models.CharField(max_length=500, blank=True)
    audience_heartbeat = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=SendStatus.choices, default=SendStatus.DRAFT)
    total = models.PositiveIntegerField(default=0, help_text="Recipients to send to (skipped ones excluded).")
    skipped = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-pk")
        indexes = [models.Index(fields=["status"], name="sending_send_status")]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @property
    def is_basic(self) -> bool:
        """One message to all its recipients with Cc/Bcc, instead of a mail merge."""
        return bool(self.cc or self.bcc)

    @property
    def effective_mailing_id(self) -> str:
        return self.mailing_id or f"mailroom-{self.pk}"

    @property
    def effective_message_id_prefix(self) -> str:
        return self.message_id_prefix or f"mailroom-{self.pk}"


class BatchState(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_FLIGHT = "in_flight", "In flight"
    ACCEPTED = "accepted", "Accepted"
    FAILED = "failed", "Failed"
    UNKNOWN = "unknown", "Outcome unknown"
    CANCELLED = "cancelled", "Cancelled"


class SendBatch(models.Model):
    """One Injection API request: up to 10 messages of up to 50 merge rows each.

    Claimed atomically (pending → in_flight) before the HTTP call; an in_flight batch is never
    put back to pending unless the client proved the request was not taken.
    """

    send = models.ForeignKey(Send, on_delete=models.CASCADE, related_name="batches")
    seq = models.PositiveIntegerField()
    state = models.CharField(max_length=12, choices=BatchState.choices, default=BatchState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    transaction_receipt = models.CharField(max_length=100, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("send", "seq")
        constraints = [models.UniqueConstraint(fields=["send", "seq"], name="sending_batch_unique_seq")]
        indexes = [models.Index(fields=["send", "state", "seq"], name="sending_batch_claim")]

    def __str__(self) -> str:
        return f"batch {self.seq} of send {self.send_id} ({self.state})"


class RecipientState(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    SKIPPED = "skipped", "Skipped"
    UNKNOWN = "unknown", "Outcome unknown"


class SendRecipient(models.Model):
    send = models.ForeignKey(Send, on_delete=models.CASCADE, related_name="recipients", db_index=False)
    address = models.CharField(max_length=320, help_text="Trimmed and lower-cased.")
    name = models.CharField(max_length=200, blank=True)
    fields = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=10, choices=RecipientState.choices, default=RecipientState.PENDING)
    code = models.CharField(max_length=60, blank=True, help_text="SocketLabs' ErrorCode for a rejection.")
    reason = models.CharField(max_length=200, blank=True, help_text="Why it was skipped.")
    batch = models.ForeignKey(SendBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="recipients")

    class Meta:
        ordering = ("send", "pk")
        constraints = [models.UniqueConstraint(fields=["send", "address"], name="sending_recipient_unique")]
        indexes = [models.Index(fields=["send", "state"], name="sending_recipient_state")]

    def __str__(self) -> str:
        return f"{self.address} ({self.state})"


class SendSettings(models.Model):
    """Per-server rules for bulk sends."""

    server = models.OneToOneField(Server, on_delete=models.CASCADE, primary_key=True, related_name="send_settings")
    approval_threshold = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Sends to more recipients than this need a second Admin's approval; empty: never.",
    )
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"send settings of {self.server_id}"


class SendAttachment(models.Model):
    """A file attached to every message of a send (kept small: it travels in every request)."""

    send = models.ForeignKey(Send, on_delete=models.CASCADE, related_name="attachments")
    name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100, default="application/octet-stream")
    content = models.BinaryField()
    size = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("send", "pk")

    def __str__(self) -> str:
        return f"{self.name} ({self.size} bytes)"
