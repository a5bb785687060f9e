"""Bulk add/remove from an uploaded file: upload → validation → dry-run diff → apply in paced batches.

The database is the source of truth for the work (shared/architecture.md):

1. `create_job` stores the upload on disk (streamed, never read whole) and one `ImportTarget`
   per server, in the same transaction that enqueues the validation.
2. `validate` streams the file through `common.csvio` into a temporary staging table (COPY on
   PostgreSQL), then in **one transaction** writes the diff: one `ImportEntry` per distinct valid
   address and server ("change" or "unchanged" against the mirror), the `ImportBatch` slices and
   the refused rows. A file-level problem (not UTF-8, no e-mail column, empty, unclosed quote)
   rejects the job and writes nothing but the reason.
3. `request_apply` moves the job to "applying"; `run` claims one batch at a time with a
   conditional update, sends each address to SocketLabs at a paced rate, and records each
   outcome together with the mirror change in one small transaction. A killed worker leaves at
   most one batch "running": the sweeper frees it after `BATCH_STALE_AFTER` and the next run
   carries on with the entries still pending, so nothing is applied twice and nothing is skipped
   silently. The report lists every address with what happened to it.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet, Sum
from django.http import Http404, HttpRequest
from django.utils import timezone

import socketlabs
from accounts import audit
from accounts.access import user_can
from accounts.models import Server
from accounts.roles import Capability
from common.csvio import EMAIL_COLUMN_NAMES, CsvFileError, CsvProblem, CsvReader, find_column, unescape_cell
from common.emails import InvalidAddress, normalise_email
from suppression import mirror, remote
from suppression.models import (
    Action,
    BatchStatus,
    ImportBatch,
    ImportEntry,
    ImportJob,
    ImportProblem,
    ImportTarget,
    JobKind,
    JobStatus,
    MirrorState,
    Outcome,
    Reason,
    Suppression,
    TargetStatus,
)

log = logging.getLogger(__name__)

BATCH_SIZE = 100
MAX_STORED_PROBLEMS = 10_000
CHUNK_ROWS = 50_000  # rows per COPY chunk; progress is saved between chunks
BATCH_STALE_AFTER = timedelta(minutes=5)
JOB_STALE_AFTER = timedelta(minutes=2)
VALIDATION_STALE_AFTER = timedelta(minutes=5)

ENTRY = ImportEntry._meta.db_table
BATCH = ImportBatch._meta.db_table
MIRROR = Suppression._meta.db_table


class ImportRefused(Exception):
    """The request cannot go ahead; the message says why in plain words."""


def max_upload_bytes() -> int:
    return int(getattr(settings, "SUPPRESSION_IMPORT_MAX_BYTES", 250 * 1024 * 1024))


def inline_validate_bytes() -> int:
    return int(getattr(settings, "SUPPRESSION_INLINE_VALIDATE_BYTES", 2 * 1024 * 1024))


def api_rate() -> float:
    """SocketLabs calls per second per worker while applying (pacing, so a big import never floods the API)."""
    return float(getattr(settings, "SUPPRESSION_API_RATE", 10.0))


def imports_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "suppression-imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- access ----------------------------------------------------------------------------------
def get_job_for_user(user: Any, job_id: Any, capability: str = Capability.READ) -> ImportJob:
    """404 unless the user may see every server of the job; 403 without `capability` on all of them."""
    try:
        job = ImportJob.objects.get(pk=job_id)
    except (ImportJob.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such import.") from exc
    servers = [t.server for t in job.targets.select_related("server")]
    visible = set(Server.objects.for_user(user).values_list("pk", flat=True))
    if not servers or any(s.pk not in visible for s in servers):
        raise Http404("No such import.")
    if not all(user_can(user, s, capability) for s in servers):
        raise PermissionDenied(
            "Your role does not allow changing the suppression lists of every server in this import."
        )
    return job


def jobs_for_user(user: Any) -> QuerySet[ImportJob]:
    """Jobs whose every server the user can see."""
    visible = Server.objects.for_user(user).values("pk")
    hidden = ImportTarget.objects.exclude(server__in=visible).values("job_id")
    return ImportJob.objects.filter(targets__server__in=visible).exclude(pk__in=hidden).distinct()


# --- 1. upload --------------------------------------------------------------------------------
def create_job(
    *,
    actor: Any,
    kind: str,
    upload: UploadedFile,
    servers: Sequence[Server],
    default_reason: str = Reason.CUSTOMER_REQUEST,
    request: HttpRequest | None = None,
) -> ImportJob:
    """Store the upload and queue its validation (small files are validated at once)."""
    if not servers:
        raise ImportRefused("Choose at least one server.")
    size = upload.size or 0
    if size > max_upload_bytes():
        raise ImportRefused(
            f"The file is {size / 1_048_576:,.0f} MB; the limit is {max_upload_bytes() / 1_048_576:,.0f} MB. "
            "Split it into smaller files."
        )
    job = ImportJob(
        kind=kind,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        filename=(upload.name or "upload.csv")[:255],
        size_bytes=size,
        default_reason=default_reason,
    )
    path = imports_dir() / f"{job.id}.csv"
    with path.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    job.size_bytes = path.stat().st_size
    job.file_path = str(path)
    with transaction.atomic():
        job.save()
        ImportTarget.objects.bulk_create([ImportTarget(job=job, server=s) for s in servers])
        for server in servers:
            audit.record(
                action="suppression.import.upload",
                request=request,
                actor=actor,
                server=server,
                target=job.filename,
                after={"job": str(job.id), "kind": kind, "bytes": job.size_bytes, "servers": len(servers)},
            )
        if job.size_bytes > inline_validate_bytes():
            from suppression.tasks import validate_import

            job_id = str(job.id)
            transaction.on_commit(lambda: validate_import.delay(job_id))
    if job.size_bytes <= inline_validate_bytes():
        validate(job.pk)
        job.refresh_from_db()
    return job


# --- 2. validation and dry-run diff ----------------------------------------------------------
@dataclass
class _Validation:
    rows_read: int = 0
    valid: int = 0
    invalid: int = 0
    problems: list[CsvProblem] = field(default_factory=list)

    def refuse(self, line: int, column: str | None, message: str) -> None:
        self.invalid += 1
        if len(self.problems) < MAX_STORED_PROBLEMS:
            self.problems.append(CsvProblem(line, column, message[:500]))


def _reject(job: ImportJob, message: str, *, line: int | None = None) -> None:
    with transaction.atomic():
        ImportEntry.objects.filter(target__job=job).delete()
        ImportBatch.objects.filter(target__job=job).delete()
        ImportJob.objects.filter(pk=job.pk).update(
            status=JobStatus.REJECTED, error=message, error_line=line, finished_at=timezone.now()
        )
    _delete_upload(job)


def _delete_upload(job: ImportJob) -> None:
    if job.file_path:
        Path(job.file_path).unlink(missing_ok=True)


def validate(job_id: Any) -> ImportJob | None:
    """Read the file, refuse bad rows with line numbers, and write the dry-run diff. Safe to run twice."""
    now = timezone.now()
    if not ImportJob.objects.filter(pk=job_id, status=JobStatus.VALIDATING).update(heartbeat_at=now):
        return None
    job = ImportJob.objects.get(pk=job_id)
    path = Path(job.file_path)
    if not path.exists():
        _reject(job, "The uploaded file is gone (it was removed before it could be checked). Upload it again.")
        return job
    try:
        reader = CsvReader(path)
        email_at = reader.column_index(EMAIL_COLUMN_NAMES)
        if email_at is None:
            _reject(job, _no_email_column(reader), line=1)
            return job
        job.layout = reader.describe()
        ImportJob.objects.filter(pk=job.pk).update(layout=job.layout)
        check = _Validation()
        _stage(job, reader, email_at, check)
    except CsvFileError as exc:
        _drop_stage()
        _reject(job, exc.message, line=exc.line)
        return job
    except BaseException:
        _drop_stage()
        raise
    try:
        if check.valid == 0:
            _drop_stage()
            with transaction.atomic():
                _save_problems(job, check)
                ImportJob.objects.filter(pk=job.pk).update(rows_read=check.rows_read, invalid_rows=check.invalid)
            if check.rows_read == 0:
                _reject(job, "The file has a header row but no addresses under it: there is nothing to import.", line=2)
            else:
                _reject(
                    job,
                    f"None of the {check.rows_read:,} rows holds a usable e-mail address, so nothing can be imported. "
                    "The first problems are listed below.",
                )
            return job
        _write_diff(job, check)
    finally:
        _drop_stage()
    _delete_upload(job)
    job.refresh_from_db()
    return job


def _no_email_column(reader: CsvReader) -> str:
    if reader.has_header:
        names = ", ".join(f"“{h}”" for h in reader.header if h) or "(empty names)"
        return (
            f"No e-mail column: the header row (line 1) has the columns {names}, read as "
            f"{reader.describe()}. Name the column that holds the addresses “email” and upload the file again."
        )
    return "No e-mail column: line 1 holds no e-mail address and no column is named “email”."


def _stage_sql() -> tuple[str, str]:
    if connection.vendor == "postgresql":
        return (
            'CREATE TEMPORARY TABLE imp_stage (line bigint, address text COLLATE "C", reason text)',
            "COPY imp_stage (line, address, reason) FROM STDIN",
        )
    return ("CREATE TEMPORARY TABLE imp_stage (line INTEGER, address TEXT, reason TEXT)", "")


def _drop_stage() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS imp_stage")
        cursor.execute("DROP TABLE IF EXISTS imp_unique")


def _parsed_rows(
    job: ImportJob, reader: CsvReader, email_at: int, check: _Validation
) -> Iterator[tuple[int, str, str]]:
    header_width = len(reader.header) if reader.has_header else len(reader.first_record)
    column = reader.column_label(email_at)
    reason_at = find_column(reader.header, ("reason",)) if reader.has_header and job.kind == JobKind.ADD else None
    reasons = {r.value.lower(): r.value for r in Reason} | {"customer request": Reason.CUSTOMER_REQUEST.value}
    default_reason = job.default_reason if job.kind == JobKind.ADD else ""
    normalise = normalise_email
    for line, fields in reader:
        check.rows_read += 1
        if len(fields) != header_width and len(fields) <= email_at:
            check.refuse(line, None, f"has {len(fields)} fields where line 1 has {header_width}")
            continue
        try:
            address = normalise(unescape_cell(fields[email_at]))
        except InvalidAddress as exc:
            check.refuse(line, column, str(exc))
            continue
        reason = default_reason
        if reason_at is not None and reason_at < len(fields) and fields[reason_at].strip():
            found = reasons.get(fields[reason_at].strip().lower())
            if found is None:
                check.refuse(
                    line,
                    reader.column_label(reason_at),
                    f"“{fields[reason_at][:40]}” is not a reason; use one of {', '.join(Reason.values)}",
                )
                continue
            reason = found
        check.valid += 1
        yield line, address, reason


def _stage(job: ImportJob, reader: CsvReader, email_at: int, check: _Validation) -> None:
    """Stream valid rows into `imp_stage` in chunks, saving progress between chunks (outside any transaction)."""
    create, copy_sql = _stage_sql()
    _drop_stage()
    with connection.cursor() as cursor:
        cursor.execute(create)
    rows = _parsed_rows(job, reader, email_at, check)
    while True:
        chunk = list(itertools.islice(rows, CHUNK_ROWS))
        if not chunk:
            break
        with connection.cursor() as cursor:
            if copy_sql:
                with cursor.copy(copy_sql) as copy:
                    for row in chunk:
                        copy.write_row(row)
            else:
                cursor.executemany("INSERT INTO imp_stage VALUES (%s, %s, %s)", chunk)
        ImportJob.objects.filter(pk=job.pk).update(
            bytes_read=reader.bytes_read, rows_read=check.rows_read, heartbeat_at=timezone.now()
        )


def _save_problems(job: ImportJob, check: _Validation) -> None:
    ImportProblem.objects.filter(job=job).delete()
    ImportProblem.objects.bulk_create(
        [ImportProblem(job=job, line=p.line, column=p.column or "", message=p.message) for p in check.problems],
        batch_size=2000,
    )


def _write_diff(job: ImportJob, check: _Validation) -> None:
    postgres = connection.vendor == "postgresql"
    want_present = 1 if job.kind == JobKind.REMOVE else 0
    with transaction.atomic(), connection.cursor() as cursor:
        if postgres:
            cursor.execute("SET LOCAL work_mem = '128MB'")
            cursor.execute(
                "CREATE TEMPORARY TABLE imp_unique AS "
                "SELECT DISTINCT ON (address) line, address, reason FROM imp_stage ORDER BY address, line"
            )
        else:
            # SQLite takes the bare columns of a MIN() aggregate from the row holding the minimum.
            cursor.execute(
                "CREATE TEMPORARY TABLE imp_unique AS "
                "SELECT MIN(line) AS line, address, reason FROM imp_stage GROUP BY address"
            )
        cursor.execute("SELECT COUNT(*) FROM imp_unique")
        unique = int(cursor.fetchone()[0])
        ImportEntry.objects.filter(target__job=job).delete()
        ImportBatch.objects.filter(target__job=job).delete()
        _save_problems(job, check)
        for target in job.targets.select_related("server"):
            state = getattr(target.server, "suppression_state", None)
            cursor.execute(
                f"""
                INSERT INTO {ENTRY} (target_id, line, address, reason, action, batch, outcome, detail)
                SELECT %s, d.line, d.address, d.reason,
                       CASE WHEN d.present = %s THEN 'change' ELSE 'unchanged' END,
                       CASE WHEN d.present = %s
                            THEN (ROW_NUMBER() OVER (PARTITION BY d.present ORDER BY d.line) - 1) / %s END,
                       'pending', ''
                FROM (
                  SELECT u.line, u.address, u.reason,
                         CASE WHEN EXISTS (SELECT 1 FROM {MIRROR} m WHERE m.server_id = %s AND m.address = u.address)
                              THEN 1 ELSE 0 END AS present
                  FROM imp_unique u
                ) d
                ORDER BY d.line
                """,
                [target.pk, want_present, want_present, BATCH_SIZE, target.server_id],
            )
            cursor.execute(f"SELECT action, COUNT(*) FROM {ENTRY} WHERE target_id = %s GROUP BY action", [target.pk])
            counts = dict(cursor.fetchall())
            cursor.execute(
                f"""
                INSERT INTO {BATCH} (target_id, number, size, status, claimed_at, attempts)
                SELECT target_id, batch, COUNT(*), 'pending', NULL, 0 FROM {ENTRY}
                WHERE target_id = %s AND batch IS NOT NULL GROUP BY target_id, batch
                """,
                [target.pk],
            )
            ImportTarget.objects.filter(pk=target.pk).update(
                to_change=counts.get(Action.CHANGE, 0),
                unchanged=counts.get(Action.UNCHANGED, 0),
                mirror_synced_at=state.last_synced_at if state else None,
                status=TargetStatus.READY,
                changed=0,
                skipped=0,
                failed=0,
                stop_reason="",
            )
        ImportJob.objects.filter(pk=job.pk, status=JobStatus.VALIDATING).update(
            status=JobStatus.READY,
            rows_read=check.rows_read,
            valid_rows=check.valid,
            invalid_rows=check.invalid,
            unique_addresses=unique,
            duplicate_rows=check.valid - unique,
            bytes_read=job.size_bytes,
            validated_at=timezone.now(),
            heartbeat_at=timezone.now(),
        )


# --- 3. apply --------------------------------------------------------------------------------
def request_apply(*, job: ImportJob, actor: Any, skip_invalid: bool, request: HttpRequest | None = None) -> None:
    if job.status != JobStatus.READY:
        raise ImportRefused(f"This import is {job.get_status_display().lower()}; it cannot be applied now.")
    if job.invalid_rows and not skip_invalid:
        raise ImportRefused(
            f"{job.invalid_rows:,} rows of the file are invalid. Tick “skip the invalid rows” to apply the "
            f"{job.unique_addresses:,} valid addresses without them, or fix the file and upload it again."
        )
    targets = list(job.targets.select_related("server"))
    states = {s.server_id: s for s in MirrorState.objects.filter(server__in=[t.server_id for t in targets])}
    refused = [t.server.name for t in targets if t.server_id in states and states[t.server_id].plan_lacks_suppression]
    if refused:
        raise ImportRefused(
            f"Suppression management is not part of the SocketLabs plan of {', '.join(refused)}; "
            "remove those servers from the import."
        )
    now = timezone.now()
    with transaction.atomic():
        claimed = ImportJob.objects.filter(pk=job.pk, status=JobStatus.READY).update(
            status=JobStatus.APPLYING,
            skip_invalid=skip_invalid,
            apply_requested_at=now,
            started_at=now,
            heartbeat_at=now,
            applied_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        if not claimed:
            raise ImportRefused("This import was applied or cancelled meanwhile.")
        # "Unchanged" entries stay as they are: the report labels them by their action, so applying
        # a million-row file never rewrites a million rows in this request.
        for target in targets:
            ImportTarget.objects.filter(pk=target.pk).update(status=TargetStatus.APPLYING)
            audit.record(
                action=f"suppression.import.{job.kind}",
                request=request,
                actor=actor,
                server=target.server,
                target=job.filename,
                after={
                    "job": str(job.id),
                    "to_change": target.to_change,
                    "unchanged": target.unchanged,
                    "invalid_rows_skipped": job.invalid_rows,
                },
            )
        from suppression.tasks import run_import

        job_id = str(job.id)
        transaction.on_commit(lambda: run_import.delay(job_id))


def cancel(*, job: ImportJob, actor: Any, request: HttpRequest | None = None) -> bool:
    now = timezone.now()
    with transaction.atomic():
        done = ImportJob.objects.filter(
            pk=job.pk, status__in=[JobStatus.VALIDATING, JobStatus.READY, JobStatus.APPLYING]
        ).update(status=JobStatus.CANCELLED, finished_at=now)
        if not done:
            return False
        ImportTarget.objects.filter(job=job, status__in=[TargetStatus.READY, TargetStatus.APPLYING]).update(
            status=TargetStatus.STOPPED, stop_reason=f"Cancelled by {actor}."
        )
        for target in job.targets.select_related("server"):
            audit.record(
                action="suppression.import.cancel",
                request=request,
                actor=actor,
                server=target.server,
                target=job.filename,
                after={"job": str(job.id), "changed": target.changed, "failed": target.failed},
            )
    _delete_upload(job)
    return True


@dataclass(frozen=True)
class RunOutcome:
    state: str  # "done" | "more" | "idle" | "retry" | "gone"
    retry_after: float = 0.0


class _Pacer:
    """Spaces SocketLabs calls at `rate` per second."""

    def __init__(self, rate: float, sleep: Callable[[float], None], clock: Callable[[], float]) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.sleep = sleep
        self.clock = clock
        self.next_at = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        now = self.clock()
        if now < self.next_at:
            self.sleep(self.next_at - now)
            now = self.next_at
        self.next_at = now + self.interval


class _Pause(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


def run(
    job_id: Any,
    *,
    budget_seconds: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RunOutcome:
    """Apply batches until the job is done or the time budget is used; the task re-queues itself on "more"."""
    budget = budget_seconds if budget_seconds is not None else float(getattr(settings, "SUPPRESSION_RUN_BUDGET", 50))
    deadline = clock() + budget
    pacer = _Pacer(api_rate(), sleep, clock)
    while True:
        job = ImportJob.objects.filter(pk=job_id).first()
        if job is None or job.status != JobStatus.APPLYING:
            return RunOutcome("gone")
        batch = _claim_batch(job)
        if batch is None:
            if _finish_if_complete(job):
                return RunOutcome("done")
            return RunOutcome("idle")
        try:
            _process_batch(job, batch, pacer)
        except _Pause as pause:
            return RunOutcome("retry", pause.retry_after)
        if clock() >= deadline:
            return RunOutcome("more")


def _claim_batch(job: ImportJob) -> ImportBatch | None:
    for _ in range(5):
        candidate = (
            ImportBatch.objects.filter(
                target__job=job, target__status=TargetStatus.APPLYING, status=BatchStatus.PENDING
            )
            .order_by("target_id", "number")
            .values_list("pk", flat=True)
            .first()
        )
        if candidate is None:
            return None
        now = timezone.now()
        if ImportBatch.objects.filter(pk=candidate, status=BatchStatus.PENDING).update(
            status=BatchStatus.RUNNING, claimed_at=now, attempts=F("attempts") + 1
        ):
            ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=now)
            return ImportBatch.objects.select_related("target__server").get(pk=candidate)
    return None


def _release(batch: ImportBatch) -> None:
    ImportBatch.objects.filter(pk=batch.pk, status=BatchStatus.RUNNING).update(
        status=BatchStatus.PENDING, claimed_at=None
    )


def _stop_target(target: ImportTarget, reason: str) -> None:
    ImportTarget.objects.filter(pk=target.pk, status=TargetStatus.APPLYING).update(
        status=TargetStatus.STOPPED, stop_reason=reason[:2000]
    )


def _process_batch(job: ImportJob, batch: ImportBatch, pacer: _Pacer) -> None:
    target = batch.target
    server = target.server
    client = remote.client(server, interactive=False)
    resumed = batch.attempts > 1
    entries = list(
        ImportEntry.objects.filter(target=target, batch=batch.number, outcome=Outcome.PENDING).order_by("id")
    )
    suppressed: list[tuple[str, str]] = []  # for the contacts, once per batch
    try:
        _send_batch(job, batch, target, server, client, entries, pacer, resumed, suppressed)
    finally:
        if job.kind == JobKind.ADD:
            from suppression.services import tell_contacts

            tell_contacts(server, suppressed)


def _send_batch(
    job: ImportJob,
    batch: ImportBatch,
    target: ImportTarget,
    server: Server,
    client: socketlabs.SocketLabsClient,
    entries: list[ImportEntry],
    pacer: _Pacer,
    resumed: bool,
    suppressed: list[tuple[str, str]],
) -> None:
    for position, entry in enumerate(entries):
        if position % 20 == 0 and not ImportJob.objects.filter(pk=job.pk, status=JobStatus.APPLYING).exists():
            _release(batch)
            return
        pacer.wait()
        try:
            outcome, detail, entry_data = _send_entry(client, job.kind, entry, resumed=resumed)
        except socketlabs.SocketLabsError as exc:
            message = remote.describe(server, exc)
            if remote.is_plan_refusal(exc):
                from suppression.services import mark_plan

                mark_plan(server, enabled=False, message=message)
                _stop_target(target, message)
                _release(batch)
                return
            if isinstance(exc, socketlabs.AuthenticationError):
                _stop_target(target, message)
                _release(batch)
                return
            if remote.is_transient(exc):
                _release(batch)
                raise _Pause(max(exc.retry_after or 0.0, 30.0)) from exc
            outcome, detail, entry_data = Outcome.FAILED, message, None
        _record(job, target, entry, outcome, detail, entry_data)
        if outcome != Outcome.FAILED:
            suppressed.append((entry.address, (entry_data.reason if entry_data else "") or entry.reason))
    ImportBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.DONE)


def _send_entry(
    client: socketlabs.SocketLabsClient, kind: str, entry: ImportEntry, *, resumed: bool
) -> tuple[str, str, socketlabs.models.Suppression | None]:
    """One API call; returns (outcome, detail, the entry SocketLabs holds after an add)."""
    if kind == JobKind.ADD:
        try:
            return Outcome.CHANGED, "", client.suppressions.add(entry.address, reason=entry.reason or None)
        except socketlabs.ConflictError:
            held = client.suppressions.check(entry.address)
            if resumed:
                # The batch was interrupted: this address may well be ours from before the interruption.
                return Outcome.CHANGED, "on the list (confirmed after an interrupted run)", held
            return Outcome.SKIPPED, "already on the SocketLabs list (the mirror did not show it yet)", held
    try:
        client.suppressions.remove(entry.address)
        return Outcome.CHANGED, "", None
    except socketlabs.NotFoundError:
        if resumed:
            return Outcome.CHANGED, "off the list (confirmed after an interrupted run)", None
        return Outcome.SKIPPED, "was not on the SocketLabs list (the mirror still showed it)", None


def _record(
    job: ImportJob,
    target: ImportTarget,
    entry: ImportEntry,
    outcome: str,
    detail: str,
    held: socketlabs.models.Suppression | None,
) -> None:
    """The outcome and the mirror change, together: a crash never separates them."""
    counter = {"changed": "changed", "skipped": "skipped", "failed": "failed"}[str(outcome)]
    with transaction.atomic():
        if outcome != Outcome.FAILED:
            if job.kind == JobKind.ADD:
                mirror.upsert_one(
                    target.server_id,
                    address=entry.address,
                    reason=mirror.reason_value((held.reason if held else "") or entry.reason) or entry.reason,
                    source=((held.source if held else "") or "mailroom")[:40],
                    last_update=held.suppression_last_update if held else None,
                )
            else:
                mirror.delete_one(target.server_id, entry.address)
        ImportEntry.objects.filter(pk=entry.pk).update(outcome=outcome, detail=detail[:500])
        ImportTarget.objects.filter(pk=target.pk).update(**{counter: F(counter) + 1})


def _finish_if_complete(job: ImportJob) -> bool:
    open_batches = ImportBatch.objects.filter(
        target__job=job, target__status=TargetStatus.APPLYING, status__in=[BatchStatus.PENDING, BatchStatus.RUNNING]
    ).exists()
    if open_batches:
        return False
    now = timezone.now()
    with transaction.atomic():
        ImportTarget.objects.filter(job=job, status=TargetStatus.APPLYING).update(status=TargetStatus.DONE)
        stopped = ImportTarget.objects.filter(job=job, status=TargetStatus.STOPPED).exists()
        finished = ImportJob.objects.filter(pk=job.pk, status=JobStatus.APPLYING).update(
            status=JobStatus.STOPPED if stopped else JobStatus.DONE, finished_at=now
        )
        if finished:
            for target in job.targets.select_related("server"):
                audit.record(
                    action="suppression.import.finish",
                    actor=job.applied_by,
                    server=target.server,
                    target=job.filename,
                    after={
                        "job": str(job.id),
                        "changed": target.changed,
                        "skipped": target.skipped + target.unchanged,
                        "failed": target.failed,
                        "stopped": target.stop_reason,
                    },
                )
    return True


# --- the sweeper -------------------------------------------------------------------------------
def sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Beat: free batches of killed workers, and wake jobs nobody is working on. Safe to run any time."""
    now = now or timezone.now()
    freed = ImportBatch.objects.filter(status=BatchStatus.RUNNING, claimed_at__lt=now - BATCH_STALE_AFTER).update(
        status=BatchStatus.PENDING, claimed_at=None
    )
    from suppression.tasks import run_import, validate_import

    stalled = list(
        ImportJob.objects.filter(status=JobStatus.APPLYING)
        .filter(Q(heartbeat_at__lt=now - JOB_STALE_AFTER) | Q(heartbeat_at__isnull=True))
        .values_list("pk", flat=True)
    )
    for job_id in stalled:
        run_import.delay(str(job_id))
    unchecked = list(
        ImportJob.objects.filter(status=JobStatus.VALIDATING)
        .filter(
            Q(heartbeat_at__lt=now - VALIDATION_STALE_AFTER)
            | Q(heartbeat_at__isnull=True, created_at__lt=now - VALIDATION_STALE_AFTER)
        )
        .values_list("pk", flat=True)
    )
    for job_id in unchecked:
        ImportJob.objects.filter(pk=job_id).update(heartbeat_at=now)
        validate_import.delay(str(job_id))
    return {"freed_batches": freed, "resumed_jobs": len(stalled), "revalidated": len(unchecked)}


# --- progress and the report -----------------------------------------------------------------
@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    changed: int
    skipped: int
    failed: int
    percent: float
    eta_seconds: float | None


def progress(job: ImportJob) -> Progress:
    if job.status == JobStatus.VALIDATING:
        size = max(job.size_bytes, 1)
        percent = min(job.bytes_read / size * 100, 100.0)
        return Progress(job.size_bytes, job.bytes_read, 0, 0, 0, percent, _eta(job.created_at, percent))
    totals = job.targets.aggregate(
        total=Sum("to_change"), changed=Sum("changed"), skipped=Sum("skipped"), failed=Sum("failed")
    )
    total = totals["total"] or 0
    changed, skipped, failed = totals["changed"] or 0, totals["skipped"] or 0, totals["failed"] or 0
    done = changed + skipped + failed
    percent = 100.0 if total == 0 else min(done / total * 100, 100.0)
    eta = _eta(job.started_at, percent) if job.status == JobStatus.APPLYING else None
    return Progress(total, done, changed, skipped, failed, percent, eta)


def _eta(started: datetime | None, percent: float) -> float | None:
    if started is None or percent <= 0 or percent >= 100:
        return None
    elapsed = (timezone.now() - started).total_seconds()
    return elapsed / percent * (100 - percent)


REPORT_HEADER = ["server", "server_id", "line", "address", "result", "detail"]


def result_label(kind: str, action: str, outcome: str, job_status: str) -> str:
    add = kind == JobKind.ADD
    if action == Action.UNCHANGED:
        return "already present" if add else "not on the list"
    if outcome == Outcome.CHANGED:
        return "added" if add else "removed"
    if outcome == Outcome.SKIPPED:
        return "skipped"
    if outcome == Outcome.FAILED:
        return "failed"
    if job_status == JobStatus.READY:
        return "to add" if add else "to remove"
    return "not applied"


def report_rows(job: ImportJob) -> Iterator[list[object]]:
    """Every address on every server with what happened (or, before applying, what would), then the refused rows."""
    for target in job.targets.select_related("server"):
        stop = f"not applied: {target.stop_reason}" if target.stop_reason else ""
        rows = (
            ImportEntry.objects.filter(target=target)
            .order_by("id")
            .values_list("line", "address", "action", "outcome", "detail")
        )
        for line, address, action, outcome, detail in rows.iterator(chunk_size=5000):
            label = result_label(job.kind, action, outcome, job.status)
            yield [
                target.server.name,
                target.server.socketlabs_id,
                line,
                address,
                label,
                detail or (stop if label == "not applied" else ""),
            ]
    for problem in job.problems.all().iterator(chunk_size=5000):
        where = f"{problem.column}: " if problem.column else ""
        yield ["", "", problem.line, "", "invalid", f"{where}{problem.message}"]


def sample_entries(target: ImportTarget, action: str, limit: int = 10) -> list[ImportEntry]:
    return list(ImportEntry.objects.filter(target=target, action=action).order_by("id")[:limit])


def problem_count_shown(job: ImportJob) -> int:
    return min(job.invalid_rows, MAX_STORED_PROBLEMS)
