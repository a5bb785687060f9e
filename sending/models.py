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
