"""Marketing contacts: lists, contacts, typed custom fields, segments, imports and sync with SocketLabs.

* `Contact` — one row per (server, normalised address). Custom-field values live in one JSON
  column (`custom`), keyed by `CustomField.key`, typed by the field (numbers as JSON numbers,
  dates as "YYYY-MM-DD", booleans as true/false); an empty value is an absent key. On
  PostgreSQL the column has a GIN index (`jsonb_path_ops`, created by migration 0001 only there),
  so equality filters are `custom @> {...}` containment probes.
* `Membership` — contact on a list; its primary key is the pair, so the list's members are one
  btree range. Deleting a contact or a list removes memberships in the database (`DB_CASCADE`),
  so bulk deletes of a million contacts are one statement.
* `ContactHistory` — what happened to one contact (edits, status changes, list changes by hand,
  updates by imports). Creation is on the contact itself (`created_via`, `created_job`) and
  list additions by an import on the membership (`job_id`), so a million-row first import
  writes no history rows at all.
* `ContactStats`, `ContactList.member_count`, `Segment.cached_count` — counts kept on rows and
  refreshed by background work: pages never run a COUNT over a server's contacts.
* `ImportJob` — one CSV import from upload to report; `SyncJob` — one pull or push with the
  SocketLabs Marketing API; `RemoteChange` — the outbox of changes waiting to be pushed.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from accounts.models import Server


class AddressField(models.CharField):
    """An address compared byte-wise ("C" collation on PostgreSQL): `LIKE 'prefix%'` and keyset
    pages in address order then use the (server_id, email) btree whatever the database's collation."""

    def db_parameters(self, connection: BaseDatabaseWrapper) -> dict[str, Any]:
        params = super().db_parameters(connection)
        if connection.vendor == "postgresql":
            params["collation"] = "C"
        return params


class Status(models.TextChoices):
    SUBSCRIBED = "subscribed", "Subscribed"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    BOUNCED = "bounced", "Bounced"
    COMPLAINED = "complained", "Complained"


# A status only moves "up" through automatic paths (events, imports, sync): a complaint is never
# turned back into a bounce, and nothing but a person editing the contact re-subscribes anyone.
STATUS_RANK: dict[str, int] = {
    Status.SUBSCRIBED: 0,
    Status.UNSUBSCRIBED: 1,
    Status.BOUNCED: 2,
    Status.COMPLAINED: 3,
}


class FieldType(models.TextChoices):
    TEXT = "text", "Text"
    NUMBER = "number", "Number"
    DATE = "date", "Date"
    BOOLEAN = "boolean", "Yes/no"
    CHOICE = "choice", "Choice"


class Via(models.TextChoices):
    FORM = "form", "added by hand"
    IMPORT = "import", "CSV import"
    API = "api", "REST API"
    SYNC = "sync", "SocketLabs sync"
    EVENT = "event", "SocketLabs event"
    BULK = "bulk", "bulk action"


class CustomField(models.Model):
    """A typed field every contact of the server may have a value for."""

    server = models.ForeignKey(Server, on_delete=models.DB_CASCADE, related_name="+")
    key = models.SlugField(
        max_length=50, help_text="Lower-case letters, digits and underscores; the name in exports and the API."
    )
    label = models.CharField(max_length=100)
    type = models.CharField(max_length=10, choices=FieldType.choices, default=FieldType.TEXT)
    choices = models.JSONField(default=list, blank=True, help_text="Allowed values of a choice field.")
    remote_name = models.CharField(max_length=100, blank=True, help_text="The field's name at SocketLabs, if any.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("label", "id")
        constraints = [models.UniqueConstraint(fields=["server", "key"], name="mk_field_unique_key")]

    def __str__(self) -> str:
        return self.label


class ContactList(models.Model):
    server = models.ForeignKey(Server, on_delete=models.DB_CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    description = models.CharField(max_length=500, blank=True)
    remote_id = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="The list's id in the SocketLabs Marketing API, when linked."
    )
    member_count = models.PositiveIntegerField(default=0)
    counted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("name", "id")
        constraints = [
            models.UniqueConstraint(fields=["server", "name"], name="mk_list_unique_name"),
            models.UniqueConstraint(
                fields=["server", "remote_id"],
                name="mk_list_unique_remote",
                condition=models.Q(remote_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    # No separate index on server: the unique (server, email) btree starts with it. No foreign-key
    # constraint either: its per-row check costs a fifth of a million-row import (measured); a
    # deleted server's contacts are deleted by `marketing.signals.delete_server_contacts` instead.
    server = models.ForeignKey(
        Server, on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )
    email = AddressField("e-mail address", max_length=254, help_text="Trimmed and lower-cased.")
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SUBSCRIBED)
    custom = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    created_via = models.CharField(max_length=10, choices=Via.choices, default=Via.FORM)
    created_job = models.PositiveIntegerField(null=True, blank=True, help_text="The import that created it.")
    remote_id = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ("email",)
        constraints = [models.UniqueConstraint(fields=["server", "email"], name="mk_contact_unique_email")]

    def __str__(self) -> str:
        return self.email

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Membership(models.Model):
    pk = models.CompositePrimaryKey("contact_list", "contact")
    contact_list = models.ForeignKey(ContactList, on_delete=models.DB_CASCADE, related_name="+", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.DB_CASCADE, related_name="memberships")
    added_at = models.DateTimeField(default=timezone.now)
    added_via = models.CharField(max_length=10, choices=Via.choices, default=Via.FORM)
    job_id = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.contact_id} on {self.contact_list_id}"


class HistoryKind(models.TextChoices):
    CREATED = "created", "Created"
    EDITED = "edited", "Edited"
    STATUS = "status", "Status changed"
    LIST_ADDED = "list_added", "Added to list"
    LIST_REMOVED = "list_removed", "Removed from list"
    IMPORTED = "imported", "Updated by import"
    BULK = "bulk", "Updated in bulk"


class ContactHistory(models.Model):
    contact = models.ForeignKey(Contact, on_delete=models.DB_CASCADE, related_name="+", db_index=False)
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=12, choices=HistoryKind.choices)
    via = models.CharField(max_length=10, choices=Via.choices, default=Via.FORM)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DB_SET_NULL, related_name="+"
    )
    job_id = models.PositiveIntegerField(null=True, blank=True)
    summary = models.CharField(max_length=300)
    changes = models.JSONField(null=True, blank=True, help_text="{field: [before, after]}")

    class Meta:
        ordering = ("-at", "-id")
        indexes = [models.Index(fields=["contact", "-at"], name="mk_history_contact")]

    def __str__(self) -> str:
        return self.summary


class Segment(models.Model):
    """A saved filter: `definition` is `{"match": "all"|"any", "conditions": [...]}` (see marketing.segments)."""

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    definition = models.JSONField()
    cached_count = models.PositiveIntegerField(null=True, blank=True)
    counted_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("name", "id")
        constraints = [models.UniqueConstraint(fields=["server", "name"], name="mk_segment_unique_name")]

    def __str__(self) -> str:
        return self.name


class ContactStats(models.Model):
    """Per server: how many contacts in each status, as last counted."""

    server = models.OneToOneField(Server, on_delete=models.DB_CASCADE, primary_key=True, related_name="+")
    total = models.PositiveIntegerField(default=0)
    subscribed = models.PositiveIntegerField(default=0)
    unsubscribed = models.PositiveIntegerField(default=0)
    bounced = models.PositiveIntegerField(default=0)
    complained = models.PositiveIntegerField(default=0)
    counted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.total} contacts"

    def by_status(self) -> dict[str, int]:
        return {s: getattr(self, s) for s in Status.values}


class JobStatus(models.TextChoices):
    UPLOADED = "uploaded", "Waiting for column mapping"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    RETRYING = "retrying", "Waiting to retry"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.RETRYING)


class ImportJob(models.Model):
    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # The upload, on disk under MEDIA_ROOT.
    file_name = models.CharField(max_length=255)
    file_path = models.CharField(max_length=500)
    file_size = models.PositiveBigIntegerField(default=0)
    delimiter = models.CharField(max_length=1, default=",")
    has_header = models.BooleanField(default=True)
    header = models.JSONField(default=list)
    # What to do: one target per column ("" = ignore; see marketing.mapping) and the options.
    mapping = models.JSONField(default=list)
    new_fields = models.JSONField(default=dict, help_text="{column index: {label, type}} for fields to create.")
    update_existing = models.BooleanField(default=True)
    skip_invalid = models.BooleanField(default=False)
    new_status = models.CharField(max_length=12, choices=Status.choices, default=Status.SUBSCRIBED)
    list_ids = models.JSONField(default=list)
    # Where it is.
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.UPLOADED)
    phase = models.CharField(max_length=20, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    bytes_done = models.PositiveBigIntegerField(default=0)
    rows_read = models.PositiveIntegerField(default=0)
    # What came of it.
    committed = models.BooleanField(default=False, help_text="Whether contacts were written.")
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    invalid_count = models.PositiveIntegerField(default=0)
    list_added_count = models.PositiveIntegerField(default=0)
    fields_created = models.JSONField(default=list)
    error = models.TextField(blank=True)
    problems = models.JSONField(default=list, help_text="The first problems, for the page: [line, column, message].")
    report_path = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=["server", "-created_at"], name="mk_import_server")]

    def __str__(self) -> str:
        return f"import {self.pk} of {self.file_name}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_JOB_STATUSES

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


class SyncKind(models.TextChoices):
    PULL_LISTS = "pull_lists", "Pull lists"
    PULL_CONTACTS = "pull_contacts", "Pull contacts"
    PUSH = "push", "Push changes"


class SyncJob(models.Model):
    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=15, choices=SyncKind.choices)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(null=True, blank=True)
    failed = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=1000, blank=True, help_text="The outcome, in plain words.")

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=["server", "-created_at"], name="mk_sync_server")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_JOB_STATUSES


class RemoteAction(models.TextChoices):
    ADD = "add", "Add to list"
    REMOVE = "remove", "Remove from list"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribe"


class RemoteChange(models.Model):
    """A change SocketLabs has not been told about yet (the push outbox), oldest first."""

    server = models.ForeignKey(Server, on_delete=models.DB_CASCADE, related_name="+", db_index=False)
    action = models.CharField(max_length=12, choices=RemoteAction.choices)
    list_remote_id = models.PositiveBigIntegerField(null=True, blank=True)
    email = models.CharField(max_length=254)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(
        max_length=500, blank=True, help_text="Why SocketLabs refused it (then it is not retried)."
    )

    class Meta:
        ordering = ("id",)
        indexes = [models.Index(fields=["server", "id"], name="mk_outbox_server")]

    def __str__(self) -> str:
        return f"{self.action} {self.email}"
