"""The local mirror of each server's SocketLabs suppression list, and the work that changes it.

* `Suppression` — one row per (server, address): the mirror. Its primary key is the pair, so
  the btree that every check, prefix search, upsert and keyset page needs is the table's own
  key; the only other index is (server, domain). On PostgreSQL the address columns use the "C"
  collation, so prefix ranges and `ORDER BY address` use that btree whatever the database's
  collation is.
* `MirrorState` — per server: when the mirror was last pulled, and whether the server's plan
  includes suppression management at all (SocketLabs answers 403 when it does not).
* `PendingWrite` — an add or remove that SocketLabs did not take yet (outbox). The mirror
  changes only after SocketLabs accepted the write, so it never runs ahead of SocketLabs.
* `ImportJob` → `ImportTarget` (one per server) → `ImportEntry` (one per address and server)
  and `ImportBatch` (claimable slices of the entries): bulk add/remove from an uploaded file.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from accounts.models import Server


class AddressField(models.CharField):
    """A CharField compared byte-wise: the "C" collation on PostgreSQL (SQLite's default is already binary).

    Decided at column creation from the connection, so the migration is the same on every database.
    """

    def db_parameters(self, connection: BaseDatabaseWrapper) -> dict[str, Any]:
        params = super().db_parameters(connection)
        if connection.vendor == "postgresql":
            params["collation"] = "C"
        return params


class Reason(models.TextChoices):
    FAILURE = "Failure", "Failure"
    BOUNCE = "Bounce", "Bounce"
    UNSUBSCRIBE = "Unsubscribe", "Unsubscribe"
    COMPLAINT = "Complaint", "Complaint"
    CUSTOMER_REQUEST = "CustomerRequest", "Customer request"


REASON_LABELS = dict(Reason.choices)


class Suppression(models.Model):
    """One address on one server's suppression list, as last seen at SocketLabs."""

    pk = models.CompositePrimaryKey("server", "address")
    # No FK constraint and no extra index: the primary key starts with server_id, and a per-row
    # foreign-key trigger would cost more than the insert itself on a million-row pull.
    # Deleting a server still removes its rows (Django cascades in Python).
    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False)
    address = AddressField(max_length=320, help_text="Trimmed and lower-cased.")
    domain = AddressField(max_length=255)
    # Kept as SocketLabs sends it; usually a `Reason` value.
    reason = models.CharField(max_length=40)
    source = models.CharField(max_length=40, blank=True)
    first_seen_at = models.DateTimeField(help_text="When Mailroom first saw the address on this list.")
    last_update = models.DateTimeField(help_text="SocketLabs' suppressionLastUpdate.")
    mirrored_at = models.DateTimeField(help_text="When Mailroom last wrote this row.")

    class Meta:
        # Deliberately few btrees: each one costs as much as the row itself on a million-row pull
        # (bench_suppression). (server, domain) has few distinct keys per server, so PostgreSQL
        # deduplicates it into a small index that is cheap to maintain; a domain page then sorts
        # that domain's rows, or walks the primary key when the domain is common. Date filters
        # and "newest first" read the server's rows through the primary key (≈0.2 s for 1M rows).
        indexes = [models.Index(fields=["server", "domain"], name="supp_server_domain")]

    def __str__(self) -> str:
        return f"{self.address} ({self.reason})"

    @property
    def reason_label(self) -> str:
        return REASON_LABELS.get(self.reason, self.reason)


class RecentRemoval(models.Model):
    """An address Mailroom removed at SocketLabs, kept two days so a pull that started earlier does not put it back."""

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False)
    address = AddressField(max_length=320)
    removed_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["server", "address", "removed_at"], name="supp_removal")]

    def __str__(self) -> str:
        return f"{self.address} removed at {self.removed_at:%Y-%m-%d %H:%M}"


class SyncStatus(models.TextChoices):
    IDLE = "idle", "Idle"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    FAILED = "failed", "Failed"


class MirrorState(models.Model):
    """Per server: how fresh the mirror is, and whether its plan has suppression management."""

    server = models.OneToOneField(Server, on_delete=models.CASCADE, primary_key=True, related_name="suppression_state")
    sync_status = models.CharField(max_length=10, choices=SyncStatus.choices, default=SyncStatus.IDLE)
    sync_requested_at = models.DateTimeField(null=True, blank=True)
    sync_started_at = models.DateTimeField(null=True, blank=True)
    sync_error = models.TextField(blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_sync_rows = models.PositiveBigIntegerField(default=0)
    last_sync_added = models.PositiveBigIntegerField(default=0)
    last_sync_updated = models.PositiveBigIntegerField(default=0)
    last_sync_removed = models.PositiveBigIntegerField(default=0)
    last_sync_skipped = models.PositiveBigIntegerField(default=0)
    # None: not known yet; False: SocketLabs answered 403 to a suppression call.
    plan_enabled = models.BooleanField(null=True, blank=True)
    plan_message = models.CharField(max_length=500, blank=True)
    plan_checked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Suppression mirror of {self.server_id}"

    @property
    def plan_lacks_suppression(self) -> bool:
        return self.plan_enabled is False

    @property
    def sync_in_progress(self) -> bool:
        return self.sync_status in (SyncStatus.QUEUED, SyncStatus.RUNNING)


class WriteOp(models.TextChoices):
    ADD = "add", "Add"
    REMOVE = "remove", "Remove"


class WriteStatus(models.TextChoices):
    PENDING = "pending", "Waiting to retry"
    RUNNING = "running", "Sending"
    DONE = "done", "Done"
    FAILED = "failed", "Gave up"
    SUPERSEDED = "superseded", "Replaced by a newer change"
    DISCARDED = "discarded", "Discarded"


class PendingWrite(models.Model):
    """A change SocketLabs has not accepted yet; retried with backoff, shown on the page until it lands."""

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="+")
    op = models.CharField(max_length=10, choices=WriteOp.choices)
    address = models.CharField(max_length=320)
    reason = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=12, choices=WriteStatus.choices, default=WriteStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(
                fields=["next_attempt_at"], name="supp_write_due", condition=models.Q(status__in=["pending", "running"])
            ),
            models.Index(fields=["server", "status"], name="supp_write_server"),
        ]

    def __str__(self) -> str:
        return f"{self.op} {self.address} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in (WriteStatus.PENDING, WriteStatus.RUNNING, WriteStatus.FAILED)


class JobKind(models.TextChoices):
    ADD = "add", "Add to the suppression list"
    REMOVE = "remove", "Remove from the suppression list"


class JobStatus(models.TextChoices):
    VALIDATING = "validating", "Checking the file"
    REJECTED = "rejected", "File refused"
    READY = "ready", "Ready to apply"
    APPLYING = "applying", "Applying"
    DONE = "done", "Done"
    STOPPED = "stopped", "Stopped"
    CANCELLED = "cancelled", "Cancelled"


class ImportJob(models.Model):
    """One uploaded file applied to one or more servers: validated, diffed, then applied in batches."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=10, choices=JobKind.choices, default=JobKind.ADD)
    status = models.CharField(max_length=12, choices=JobStatus.choices, default=JobStatus.VALIDATING)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    file_path = models.CharField(max_length=500, blank=True)
    filename = models.CharField(max_length=255)
    size_bytes = models.PositiveBigIntegerField(default=0)
    bytes_read = models.PositiveBigIntegerField(default=0)
    layout = models.CharField(max_length=100, blank=True, help_text="How the file was read.")
    default_reason = models.CharField(max_length=40, choices=Reason.choices, default=Reason.CUSTOMER_REQUEST)
    rows_read = models.PositiveBigIntegerField(default=0)
    valid_rows = models.PositiveBigIntegerField(default=0)
    invalid_rows = models.PositiveBigIntegerField(default=0)
    duplicate_rows = models.PositiveBigIntegerField(default=0)
    unique_addresses = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True, help_text="Why the whole file was refused.")
    error_line = models.PositiveBigIntegerField(null=True, blank=True)
    skip_invalid = models.BooleanField(default=False)
    validated_at = models.DateTimeField(null=True, blank=True)
    apply_requested_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.filename}"

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.REJECTED, JobStatus.DONE, JobStatus.STOPPED, JobStatus.CANCELLED)


class TargetStatus(models.TextChoices):
    READY = "ready", "Ready"
    APPLYING = "applying", "Applying"
    DONE = "done", "Done"
    STOPPED = "stopped", "Stopped"


class ImportTarget(models.Model):
    """The job on one server: its dry-run diff and its progress."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="targets")
    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=TargetStatus.choices, default=TargetStatus.READY)
    stop_reason = models.TextField(blank=True)
    # The dry-run diff against the mirror.
    to_change = models.PositiveBigIntegerField(default=0, help_text="To add (or remove).")
    unchanged = models.PositiveBigIntegerField(default=0, help_text="Already present (or already absent).")
    mirror_synced_at = models.DateTimeField(null=True, blank=True)
    # Progress of the apply.
    changed = models.PositiveBigIntegerField(default=0)
    skipped = models.PositiveBigIntegerField(default=0)
    failed = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ("job", "server__name")
        constraints = [models.UniqueConstraint(fields=["job", "server"], name="supp_target_unique")]

    def __str__(self) -> str:
        return f"{self.job} on {self.server}"

    @property
    def processed(self) -> int:
        return self.changed + self.skipped + self.failed


class Action(models.TextChoices):
    CHANGE = "change", "Change"
    UNCHANGED = "unchanged", "Nothing to do"


class Outcome(models.TextChoices):
    PENDING = "pending", "Not applied yet"
    CHANGED = "changed", "Done"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


class ImportEntry(models.Model):
    """One valid address of the file on one target server, with what was (or will be) done."""

    # No FK trigger per row: entries are written a million at a time by INSERT … SELECT.
    target = models.ForeignKey(
        ImportTarget, on_delete=models.CASCADE, related_name="entries", db_index=False, db_constraint=False
    )
    line = models.PositiveBigIntegerField()
    address = models.CharField(max_length=320)
    reason = models.CharField(max_length=40, blank=True)
    action = models.CharField(max_length=10, choices=Action.choices)
    batch = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [models.Index(fields=["target", "batch"], name="supp_entry_batch")]

    def __str__(self) -> str:
        return f"{self.address} → {self.outcome}"


class BatchStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"


class ImportBatch(models.Model):
    """A slice of a target's entries, claimed by one worker at a time with a conditional update."""

    target = models.ForeignKey(ImportTarget, on_delete=models.CASCADE, related_name="batches")
    number = models.PositiveIntegerField()
    size = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=BatchStatus.choices, default=BatchStatus.PENDING)
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("target", "number")
        constraints = [models.UniqueConstraint(fields=["target", "number"], name="supp_batch_unique")]

    def __str__(self) -> str:
        return f"batch {self.number} of {self.target_id} ({self.status})"


class ImportProblem(models.Model):
    """One refused row of the file (the first `MAX_STORED_PROBLEMS` are kept; all are counted)."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="problems")
    line = models.PositiveBigIntegerField()
    column = models.CharField(max_length=100, blank=True)
    message = models.CharField(max_length=500)

    class Meta:
        ordering = ("job", "line", "id")

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"
