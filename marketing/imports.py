"""The CSV import wizard's work: upload → mapping → preview → queue → run → report.

The database is the source of truth (shared/architecture.md): an `ImportJob` row holds the
stored file's path, the mapping and options; `queue` marks it queued in the same transaction
that enqueues `marketing.tasks.run_import`; `run` claims it with a conditional update, so a
duplicate message does nothing. The import itself is one transaction (`marketing.importer`): a
worker killed half-way leaves no contacts behind, and the sweeper puts the job back in the queue
(up to `MAX_ATTEMPTS`), where it runs again from the start — safe, because it is an upsert.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts import audit
from accounts.models import Server
from common.csvio import CsvFileError
from marketing import mapping
from marketing.csvfile import ContactCsv
from marketing.importer import KEEP_PROBLEMS, Plan, Problems, ProgressReporter, ReadState, RowSpec, apply_rows
from marketing.models import ContactList, CustomField, FieldType, ImportJob, JobStatus, Status
from marketing.values import display

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
HEARTBEAT_STALE = timedelta(minutes=2)
QUEUED_STALE = timedelta(minutes=2)
KEEP_FILES = timedelta(days=7)
PREVIEW_ROWS = 10
ANALYZE_AFTER = 10_000  # rows written by an import before the table's statistics are refreshed


class ImportRefused(Exception):
    """The file or the request cannot be used; the message says why in plain words."""


def max_upload_bytes() -> int:
    return int(getattr(settings, "MARKETING_IMPORT_MAX_BYTES", 500 * 1024 * 1024))


def imports_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "marketing-imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def job_path(job: ImportJob) -> Path:
    return Path(settings.MEDIA_ROOT) / job.file_path


def report_path(job: ImportJob) -> Path | None:
    return Path(settings.MEDIA_ROOT) / job.report_path if job.report_path else None


def server_fields(server: Server) -> list[CustomField]:
    return list(CustomField.objects.filter(server=server).order_by("label", "id"))


# --- 1. upload --------------------------------------------------------------------------------
def create_job(*, server: Server, actor: Any, upload: UploadedFile) -> ImportJob:
    """Store the upload on disk (in chunks, never whole in memory), check it can be read, suggest a mapping."""
    size = upload.size or 0
    if size > max_upload_bytes():
        raise ImportRefused(
            f"The file is {size / 1_048_576:,.0f} MB; the limit is {max_upload_bytes() / 1_048_576:,.0f} MB. "
            "Split it into smaller files."
        )
    relative = Path("marketing-imports") / f"{server.pk}-{uuid.uuid4().hex}.csv"
    path = Path(settings.MEDIA_ROOT) / relative
    imports_dir()
    with path.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    try:
        reader = ContactCsv(path)
        samples = [fields for _, fields in reader.sample_rows()]
        if not samples:
            raise ImportRefused("The file has a header row but no contacts under it: there is nothing to import.")
        fields = server_fields(server)
        suggestion = mapping.suggest(reader.header, samples, fields, has_header=reader.has_header)
        if "email" not in suggestion:
            raise ImportRefused(_no_email_column(reader))
    except CsvFileError as exc:
        path.unlink(missing_ok=True)
        raise ImportRefused(exc.message) from None
    except ImportRefused:
        path.unlink(missing_ok=True)
        raise
    return ImportJob.objects.create(
        server=server,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        file_name=(upload.name or "contacts.csv")[:255],
        file_path=str(relative),
        file_size=path.stat().st_size,
        delimiter=reader.delimiter,
        has_header=reader.has_header,
        header=reader.header or [f"Column {i + 1}" for i in range(reader.width)],
        mapping=suggestion,
    )


def _no_email_column(reader: ContactCsv) -> str:
    if reader.has_header:
        names = ", ".join(f"“{h}”" for h in reader.header if h) or "(empty names)"
        return (
            f"No e-mail column: the header row (line 1) has the columns {names}, read as {reader.describe()}, "
            "and none of them holds e-mail addresses. Name the column that holds the addresses “email” "
            "and upload the file again."
        )
    return "No e-mail column: line 1 holds no e-mail address and no column is named “email”."


def reader_for(job: ImportJob) -> ContactCsv:
    path = job_path(job)
    if not path.exists():
        raise ImportRefused("The uploaded file is gone (it was removed after a week). Upload it again.")
    try:
        return ContactCsv(path)
    except CsvFileError as exc:
        raise ImportRefused(exc.message) from None


# --- 2. mapping ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    index: int
    label: str
    samples: list[str]
    target: str


def columns(job: ImportJob, samples: list[list[str]]) -> list[Column]:
    width = len(job.header)
    return [
        Column(
            index=i,
            label=job.header[i] if i < len(job.header) else f"Column {i + 1}",
            samples=[row[i] for row in samples[:3] if i < len(row)],
            target=job.mapping[i] if i < len(job.mapping) else "",
        )
        for i in range(width)
    ]


def save_mapping(*, job: ImportJob, targets: list[str]) -> list[str]:
    """Store the mapping; returns problems (then nothing is stored)."""
    problems = mapping.check(targets, server_fields(job.server))
    if not problems:
        job.mapping = list(targets)
        job.save(update_fields=["mapping"])
    return problems


def new_fields(job: ImportJob) -> dict[int, dict[str, str]]:
    """The custom fields this mapping would create: {column: {key, label, type}}."""
    existing = {f.key for f in server_fields(job.server)}
    planned: dict[int, dict[str, str]] = {}
    for index, target in enumerate(job.mapping):
        if target.startswith("new:"):
            label = mapping.new_field_label(job.header, index)
            key = mapping.new_field_key(label, existing)
            existing.add(key)
            planned[index] = {"key": key, "label": label, "type": target.removeprefix("new:")}
    return planned


def _plan_fields(job: ImportJob, *, create: bool) -> tuple[list[str], dict[str, CustomField], list[CustomField]]:
    """Targets with new fields resolved (or ignored when not creating them), and the unsaved new fields."""
    targets = list(job.mapping)
    fields = {f"field:{f.key}": f for f in server_fields(job.server)}
    to_create: list[CustomField] = []
    planned = {int(k): v for k, v in (job.new_fields or {}).items()} if job.status != JobStatus.UPLOADED else {}
    if job.status == JobStatus.UPLOADED:
        planned = new_fields(job)
    for index, spec in planned.items():
        if not create:
            targets[index] = ""
            continue
        custom = CustomField(server=job.server, key=spec["key"], label=spec["label"], type=spec["type"])
        fields[f"field:{custom.key}"] = custom
        targets[index] = f"field:{custom.key}"
        to_create.append(custom)
    return targets, fields, to_create


# --- 3. preview -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PreviewRow:
    line: int
    email: str
    first_name: str
    last_name: str
    status: str
    values: list[str]
    problems: list[str]


@dataclass(frozen=True)
class Preview:
    fields: list[CustomField]
    rows: list[PreviewRow]
    maps_names: bool
    maps_status: bool


def preview(job: ImportJob, *, create_fields: bool = True) -> Preview:
    """The first rows as they will be stored (or why they will not be)."""
    reader = reader_for(job)
    targets, fields, _ = _plan_fields(job, create=create_fields)
    spec, plan_fields = RowSpec.from_mapping(targets, fields, _labels(job, reader), reader.width)
    records = reader.sample_rows(PREVIEW_ROWS)
    problems = Problems()
    good = {row[0]: row for row in spec.rows(records, problems, ReadState())}
    by_line: dict[int, list[str]] = {}
    for line, column, message in problems.all_in_memory():
        by_line.setdefault(line, []).append(f"{column}: {message}" if column else message)
    rows: list[PreviewRow] = []
    for line, cells in records:
        row = good.get(line)
        if row is None:
            email_cell = cells[spec.email] if spec.email < len(cells) else ""
            rows.append(PreviewRow(line, email_cell, "", "", "", [], by_line.get(line, ["cannot be read"])))
            continue
        _, email, first, last, status = row[:5]
        rows.append(
            PreviewRow(
                line=line,
                email=email,
                first_name=first or "",
                last_name=last or "",
                status=status or "",
                values=[display(v) for v in row[5:]],
                problems=[],
            )
        )
    return Preview(
        fields=plan_fields,
        rows=rows,
        maps_names=any(t in ("first_name", "last_name", "full_name") for t in targets),
        maps_status="status" in targets,
    )


def _labels(job: ImportJob, reader: ContactCsv) -> list[str]:
    return [reader.column_label(i) for i in range(max(reader.width, len(job.header)))]


# --- 4. queue -------------------------------------------------------------------------------------
def queue(
    *,
    job: ImportJob,
    actor: Any,
    update_existing: bool,
    skip_invalid: bool,
    new_status: str,
    list_ids: list[int],
    create_fields: bool,
) -> ImportJob:
    from marketing.tasks import run_import

    problems = mapping.check(job.mapping, server_fields(job.server))
    if problems:
        raise ImportRefused(" ".join(problems))
    if new_status not in Status.values:
        raise ImportRefused("Choose the status new contacts get.")
    lists = set(ContactList.objects.filter(server=job.server, pk__in=list_ids).values_list("pk", flat=True))
    if len(lists) != len(set(list_ids)):
        raise ImportRefused("One of the chosen lists does not exist any more.")
    planned = new_fields(job) if create_fields else {}
    with transaction.atomic():
        updated = ImportJob.objects.filter(pk=job.pk, status=JobStatus.UPLOADED).update(
            status=JobStatus.QUEUED,
            queued_at=timezone.now(),
            update_existing=update_existing,
            skip_invalid=skip_invalid,
            new_status=new_status,
            list_ids=sorted(lists),
            new_fields={str(k): v for k, v in planned.items()},
            mapping=[
                ("" if t.startswith("new:") and not create_fields else t) for t in job.mapping
            ],  # new-field columns are ignored when fields are not to be created
        )
        if not updated:
            raise ImportRefused("This import was already started.")
        # robust: a broker that is down must not turn a saved job into an error page; the sweeper sends it later.
        transaction.on_commit(lambda: run_import.delay(job.pk), robust=True)
    job.refresh_from_db()
    return job


# --- 5. run ---------------------------------------------------------------------------------------
def run(job_id: int, *, engine: str = "auto") -> ImportJob | None:
    """Claim and run one queued import. Returns None when another run has it (or it is not queued)."""
    now = timezone.now()
    claimed = ImportJob.objects.filter(pk=job_id, status__in=[JobStatus.QUEUED, JobStatus.RETRYING]).update(
        status=JobStatus.RUNNING,
        attempts=F("attempts") + 1,
        started_at=now,
        heartbeat_at=now,
        phase="reading",
        bytes_done=0,
        rows_read=0,
        error="",
    )
    if not claimed:
        return None
    job = ImportJob.objects.select_related("server", "created_by").get(pk=job_id)
    try:
        _run(job, engine=engine)
    except (ImportRefused, CsvFileError) as exc:
        _finish(job, status=JobStatus.FAILED, error=str(getattr(exc, "message", exc)))
    except DatabaseError:
        log.exception("import %s: database error", job_id)
        retry = job.attempts < MAX_ATTEMPTS
        _finish(
            job,
            status=JobStatus.QUEUED if retry else JobStatus.FAILED,
            error="The database refused the import; nothing was imported."
            + (" It will be tried again." if retry else " Try again later."),
        )
        if retry:
            from marketing.tasks import run_import

            run_import.apply_async((job_id,), countdown=30 * job.attempts)
    except Exception:
        log.exception("import %s failed", job_id)
        _finish(
            job,
            status=JobStatus.FAILED,
            error="An internal error stopped the import; nothing was imported. "
            "The error was logged for the administrator.",
        )
    job.refresh_from_db()
    return job


def _run(job: ImportJob, *, engine: str) -> None:
    from marketing import services

    reader = reader_for(job)
    targets, fields_by_target, to_create = _plan_fields(job, create=True)
    spec, plan_fields = RowSpec.from_mapping(targets, fields_by_target, _labels(job, reader), reader.width)
    report = imports_dir() / f"{Path(job.file_path).stem}-problems.csv"
    problems = Problems(report)
    state = ReadState()
    plan = Plan(
        server_id=job.server_id,
        fields=plan_fields,
        set_first=spec.first is not None or spec.full is not None,
        set_last=spec.last is not None or spec.full is not None,
        set_status=spec.status is not None,
        update_existing=job.update_existing,
        new_status=job.new_status,
        list_ids=list(job.list_ids),
        via="import",
        job_id=job.pk,
        actor_id=job.created_by_id,
        skip_invalid=job.skip_invalid,
        push_unsubscribes=bool(job.server.marketing_key),
        history_summary=f"Updated by import #{job.pk} ({job.file_name})",
    )

    def create_fields() -> None:
        for custom in to_create:
            clash = CustomField.objects.filter(server=job.server, key=custom.key).first()
            if clash is not None:
                raise ImportRefused(
                    f"A custom field “{clash.label}” ({custom.key}) was added while this import waited; "
                    "start the import again to map the column to it."
                )
            custom.save()

    started = time.monotonic()
    try:
        with ProgressReporter(job.pk, lambda: reader.bytes_read, state) as progress:
            outcome = apply_rows(
                plan,
                lambda skip: spec.rows(reader, problems, state, skip),
                problems,
                engine=engine,
                before=create_fields,
                on_apply=lambda: progress.set_phase("applying"),
            )
    finally:
        saved_report = problems.finish()
    written = time.monotonic()
    job.report_path = str(saved_report.relative_to(settings.MEDIA_ROOT)) if saved_report else ""
    job.created_count, job.updated_count = outcome.created, outcome.updated
    job.unchanged_count, job.skipped_count = outcome.unchanged, outcome.skipped
    job.invalid_count, job.list_added_count = outcome.invalid, outcome.list_added
    job.committed = outcome.committed
    job.problems = problems.first
    job.fields_created = [f.label for f in to_create] if outcome.committed else []
    job.bytes_done, job.rows_read = reader.size, state.line
    if outcome.committed:
        error = ""
        status = JobStatus.DONE
    elif outcome.invalid:
        status = JobStatus.FAILED
        error = (
            f"{outcome.invalid:,} row{'s have' if outcome.invalid != 1 else ' has'} problems, so nothing was imported "
            "(a strict import writes all rows or none). Fix the rows listed below, or import again and choose "
            "“Skip invalid rows”."
        )
    else:
        status, error = JobStatus.FAILED, "Nothing was imported."
    if outcome.committed and outcome.rows == 0 and outcome.invalid == 0:
        error = "The file has no contacts under its header: nothing was imported."
    _finish(job, status=status, error=error)
    audit.record(
        action="contacts.import",
        actor=job.created_by,
        server=job.server,
        target=f"{job.file_name} (import #{job.pk})",
        after={**outcome.as_dict(), "lists": plan.list_ids, "fields_created": job.fields_created},
    )
    if outcome.committed:
        before = services.stats_for(job.server).total
        services.refresh_counts(server=job.server, list_ids=plan.list_ids)
        if outcome.created + outcome.updated >= max(ANALYZE_AFTER, before // 10):
            # The planner's statistics would otherwise miss these rows until autovacuum's next visit,
            # and the contacts page (opened right after an import) would get a plan for an empty table.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE marketing_contact" if connection.vendor == "postgresql" else "ANALYZE")
        if plan.list_ids or plan.push_unsubscribes:
            services.schedule_push(server=job.server)
    log.info(
        "import %s: %s lines, %s new, %s updated, %s invalid; written in %.1f s, finished in %.1f s",
        job.pk,
        state.line,
        outcome.created,
        outcome.updated,
        outcome.invalid,
        written - started,
        time.monotonic() - started,
    )


def _finish(job: ImportJob, *, status: str, error: str) -> None:
    job.status = status
    job.error = error
    job.phase = ""
    job.finished_at = timezone.now() if status in (JobStatus.DONE, JobStatus.FAILED) else None
    job.save()


# --- 6. housekeeping --------------------------------------------------------------------------------
def sweep() -> dict[str, int]:
    """Re-queue imports whose worker died (or whose message was lost); remove old files."""
    from marketing.tasks import run_import

    now = timezone.now()
    # On SQLite the running import holds the only write lock, so there are no heartbeats: wait
    # until the task's hard time limit has certainly passed instead.
    stale = (
        HEARTBEAT_STALE
        if connection.vendor == "postgresql"
        else timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    )
    requeued = failed = 0
    for job in ImportJob.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=now - stale):
        if job.attempts < MAX_ATTEMPTS:
            if ImportJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING, heartbeat_at=job.heartbeat_at).update(
                status=JobStatus.QUEUED, phase="", queued_at=now, error="The worker stopped; the import starts again."
            ):
                requeued += 1
                transaction.on_commit(partial(run_import.delay, job.pk), robust=True)
        else:
            _finish(
                job,
                status=JobStatus.FAILED,
                error=f"The import was interrupted {job.attempts} times; nothing was imported. Upload the file again.",
            )
            failed += 1
    # Queued but never started: the broker lost the message (or no worker ran). Send it again.
    for pk in ImportJob.objects.filter(status=JobStatus.QUEUED, queued_at__lt=now - QUEUED_STALE).values_list(
        "pk", flat=True
    ):
        ImportJob.objects.filter(pk=pk).update(queued_at=now)
        transaction.on_commit(partial(run_import.delay, pk), robust=True)
        requeued += 1
    removed = 0
    for job in ImportJob.objects.filter(
        Q(created_at__lt=now - KEEP_FILES) & ~Q(file_path="") & ~Q(status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
    ):
        for path in (job_path(job), report_path(job)):
            if path is not None and path.exists():
                path.unlink()
                removed += 1
        ImportJob.objects.filter(pk=job.pk).update(file_path="", report_path="")
    return {"requeued": requeued, "failed": failed, "files_removed": removed}


def cancel(*, job: ImportJob, actor: Any) -> bool:
    """Cancel an import that has not started; its file is removed."""
    if not ImportJob.objects.filter(pk=job.pk, status__in=[JobStatus.UPLOADED, JobStatus.QUEUED]).update(
        status=JobStatus.CANCELLED, finished_at=timezone.now()
    ):
        return False
    job_path(job).unlink(missing_ok=True)
    return True


def retry_skipping_invalid(*, job: ImportJob, actor: Any) -> ImportJob:
    """A strict import that failed on bad rows, queued again as a new job that skips them."""
    if job.status != JobStatus.FAILED or job.committed or not job.invalid_count or not job_path(job).exists():
        raise ImportRefused("Only a strict import that stopped on bad rows can be run again skipping them.")
    relative = Path("marketing-imports") / f"{job.server_id}-{uuid.uuid4().hex}.csv"
    shutil.copyfile(job_path(job), Path(settings.MEDIA_ROOT) / relative)
    copy = ImportJob.objects.create(
        server=job.server,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        file_name=job.file_name,
        file_path=str(relative),
        file_size=job.file_size,
        delimiter=job.delimiter,
        has_header=job.has_header,
        header=job.header,
        mapping=job.mapping,
    )
    return queue(
        job=copy,
        actor=actor,
        update_existing=job.update_existing,
        skip_invalid=True,
        new_status=job.new_status,
        list_ids=list(job.list_ids),
        create_fields=bool(job.new_fields),
    )


def summary_problems(job: ImportJob) -> list[dict[str, Any]]:
    return [{"line": p[0], "column": p[1], "message": p[2]} for p in (job.problems or [])[:KEEP_PROBLEMS]]


def is_new_field_type(value: str) -> bool:
    return value in (FieldType.TEXT, FieldType.NUMBER, FieldType.DATE, FieldType.BOOLEAN)
