"""Sync with the SocketLabs Marketing API: pull lists, pull contacts, push changes.

What the Marketing API allows (shared/socketlabs-api.md §7, §0a) shapes this:

* Lists cannot be created through the API, only read. **Pull lists** links each SocketLabs list to
  a local list (by id, else by name, else a new local list), so only linked lists sync.
* **Pull contacts** reads every contact page by page (500 at a time) and upserts them in chunks
  with the import engine: SocketLabs' names and custom fields fill in ours (empty values never
  erase), and "unsubscribed" there becomes unsubscribed here (never the other way round). The API
  has no list-membership read, so memberships are not pulled.
* **Push** drains the outbox (`RemoteChange`): additions to and removals from linked lists, and
  unsubscribes, oldest first, deleting each row once SocketLabs took it. A change SocketLabs
  refuses (bad address, list gone, contact limit) is kept with the reason, shown on the page and
  not retried; a key SocketLabs refuses stops the job.

Every job is a `SyncJob` row claimed with a conditional update. The client retries transient
failures (timeouts, 429, 5xx) itself with backoff; when it gives up, the job waits and tries again
(`RETRY_DELAYS`), then fails with the reason in plain words.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

import socketlabs
from accounts import audit
from accounts.models import Server
from accounts.services import client_for
from common.csvio import normalise_name
from common.emails import InvalidAddress, normalise_email
from marketing.importer import Plan, Problems, Row, apply_rows
from marketing.models import (
    ACTIVE_JOB_STATUSES,
    ContactList,
    CustomField,
    FieldType,
    JobStatus,
    RemoteAction,
    RemoteChange,
    Status,
    SyncJob,
    SyncKind,
    Via,
)
from marketing.values import InvalidValue, converter_for, key_for

log = logging.getLogger(__name__)

RETRY_DELAYS = (60, 300, 900)  # seconds before the 2nd, 3rd and 4th attempt
PULL_CHUNK = 5000
STALE_AFTER = timedelta(minutes=5)
PUSH_DEBOUNCE_SECONDS = 5

REMOTE_TYPES = {
    "number": FieldType.NUMBER,
    "numeric": FieldType.NUMBER,
    "integer": FieldType.NUMBER,
    "int": FieldType.NUMBER,
    "decimal": FieldType.NUMBER,
    "date": FieldType.DATE,
    "datetime": FieldType.DATE,
    "boolean": FieldType.BOOLEAN,
    "bool": FieldType.BOOLEAN,
    "bit": FieldType.BOOLEAN,
}

ClientFactory = Callable[[Server], socketlabs.SocketLabsClient]


class SyncRefused(Exception):
    """The sync cannot start; the message says why."""


# --- starting jobs -----------------------------------------------------------------------------------
def request_sync(*, server: Server, kind: str, actor: Any = None, request: HttpRequest | None = None) -> SyncJob:
    """Queue a sync job (or return the one of that kind already waiting or running)."""
    from marketing.tasks import run_sync

    if kind not in SyncKind.values:
        raise SyncRefused("Unknown kind of sync.")
    if not server.marketing_key:
        raise SyncRefused(
            f"No Marketing API key is stored for server {server.socketlabs_id}. Add one under Admin → Servers first."
        )
    with transaction.atomic():
        active = SyncJob.objects.filter(server=server, kind=kind, status__in=ACTIVE_JOB_STATUSES).first()
        if active is not None:
            return active
        job = SyncJob.objects.create(
            server=server,
            kind=kind,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
            next_attempt_at=timezone.now(),
        )
        if actor is not None:
            audit.record(
                action="contacts.sync.request",
                request=request,
                actor=actor,
                server=server,
                target=job.get_kind_display(),
            )
        # robust: a broker that is down must not turn a saved job into an error page; the sweeper sends it later.
        transaction.on_commit(lambda: run_sync.delay(job.pk), robust=True)
    return job


def request_push(*, server: Server, automatic: bool = True) -> SyncJob | None:
    """After a change: queue a push when there is something to push (at most every few seconds)."""
    if not server.marketing_key or not pending_changes(server).exists():
        return None
    if automatic and not cache.add(f"marketing:push:{server.pk}", 1, PUSH_DEBOUNCE_SECONDS):
        return None
    return request_sync(server=server, kind=SyncKind.PUSH)


def pending_changes(server: Server) -> Any:
    return RemoteChange.objects.filter(server=server, error="")


def refused_changes(server: Server) -> Any:
    return RemoteChange.objects.filter(server=server).exclude(error="")


def last_jobs(server: Server) -> dict[str, SyncJob | None]:
    return {
        kind: SyncJob.objects.filter(server=server, kind=kind).order_by("-created_at", "-id").first()
        for kind in SyncKind.values
    }


# --- running jobs ---------------------------------------------------------------------------------
def run(job_id: int, *, client_factory: ClientFactory | None = None) -> SyncJob | None:
    """Claim and run one sync job."""
    now = timezone.now()
    claimed = SyncJob.objects.filter(pk=job_id, status__in=[JobStatus.QUEUED, JobStatus.RETRYING]).update(
        status=JobStatus.RUNNING, attempts=F("attempts") + 1, started_at=now, heartbeat_at=now, next_attempt_at=None
    )
    if not claimed:
        return None
    job = SyncJob.objects.select_related("server", "created_by").get(pk=job_id)
    server = job.server
    factory = client_factory or (lambda s: client_for(s))
    try:
        client = factory(server)
        if job.kind == SyncKind.PULL_LISTS:
            message = _pull_lists(job, client)
        elif job.kind == SyncKind.PULL_CONTACTS:
            message = _pull_contacts(job, client)
        else:
            message = _push(job, client)
    except socketlabs.SocketLabsError as exc:
        _failed(job, exc)
    except Exception:
        log.exception("sync job %s failed", job_id)
        _finish(
            job, JobStatus.FAILED, "An internal error stopped the sync. The error was logged for the administrator."
        )
    else:
        _finish(job, JobStatus.DONE, message)
    job.refresh_from_db()
    audit.record(
        action=f"contacts.sync.{job.kind}",
        actor=job.created_by,
        server=server,
        target=job.get_kind_display(),
        after={"status": job.status, "done": job.done, "failed": job.failed, "message": job.message[:300]},
    )
    return job


def _finish(job: SyncJob, status: str, message: str) -> None:
    SyncJob.objects.filter(pk=job.pk).update(
        status=status,
        message=message[:1000],
        finished_at=timezone.now() if status in (JobStatus.DONE, JobStatus.FAILED) else None,
        done=job.done,
        total=job.total,
        failed=job.failed,
    )


def _failed(job: SyncJob, exc: socketlabs.SocketLabsError) -> None:
    from marketing.tasks import run_sync

    reason = explain(exc, job.server)
    if not exc.permanent and job.attempts <= len(RETRY_DELAYS):
        delay = RETRY_DELAYS[job.attempts - 1]
        at = timezone.now() + timedelta(seconds=delay)
        _finish(job, JobStatus.RETRYING, f"{reason} Mailroom tries again at {at:%H:%M} UTC.")
        SyncJob.objects.filter(pk=job.pk).update(next_attempt_at=at)
        run_sync.apply_async((job.pk,), countdown=delay)
        return
    tries = f" (after {job.attempts} attempts)" if job.attempts > 1 else ""
    _finish(job, JobStatus.FAILED, f"{reason}{tries}")


def _beat(job: SyncJob) -> None:
    SyncJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now(), done=job.done, total=job.total, failed=job.failed
    )


def explain(exc: socketlabs.SocketLabsError, server: Server) -> str:
    """A SocketLabs error in plain words, with no secret in it."""
    where = f"server {server.socketlabs_id}"
    detail = _without_secrets(exc.message, server)
    if isinstance(exc, socketlabs.ConfigurationError):
        return f"No Marketing API key is stored for {where}. Add one under Admin → Servers."
    if isinstance(exc, socketlabs.AuthenticationError):
        return f"SocketLabs refused the Marketing API key for {where} (401). Check the key under Admin → Servers."
    if isinstance(exc, socketlabs.PermissionDeniedError):
        return f"SocketLabs did not allow this for {where} (403): {detail}"
    if isinstance(exc, socketlabs.NotFoundError):
        return f"SocketLabs has no such list or contact (404): {detail}"
    if isinstance(exc, socketlabs.ValidationError):
        return f"SocketLabs refused the request as invalid ({exc.status or 400}): {detail}"
    if isinstance(exc, socketlabs.RateLimitedError):
        return "SocketLabs asked Mailroom to slow down (429) and kept refusing after several tries."
    if isinstance(exc, socketlabs.ConnectError):
        return f"Mailroom could not reach SocketLabs at {server.effective_marketing_url}."
    if isinstance(exc, socketlabs.TimeoutError):
        return "SocketLabs did not answer in time."
    if isinstance(exc, socketlabs.ServerError):
        return f"SocketLabs had an internal error (HTTP {exc.status})."
    return f"SocketLabs answered with an error: {detail}"


def _without_secrets(text: str, server: Server) -> str:
    for secret in (server.marketing_key, server.api_key, server.injection_key):
        if secret and secret in text:
            text = text.replace(secret, "••••" + secret[-4:])
    return text


# --- pull lists ---------------------------------------------------------------------------------
def _pull_lists(job: SyncJob, client: socketlabs.SocketLabsClient) -> str:
    server = job.server
    remote = list(client.marketing.lists.iter_all())
    job.total = len(remote)
    created = linked = renamed = 0
    seen: set[int] = set()
    with transaction.atomic():
        for item in remote:
            if item.id is None:
                continue
            seen.add(item.id)
            name = (item.name or f"SocketLabs list {item.id}").strip()[:200]
            local = ContactList.objects.filter(server=server, remote_id=item.id).first()
            if local is None:
                local = ContactList.objects.filter(server=server, name__iexact=name, remote_id__isnull=True).first()
                if local is not None:
                    local.remote_id = item.id
                    local.save(update_fields=["remote_id"])
                    linked += 1
                else:
                    taken = ContactList.objects.filter(server=server, name__iexact=name).exists()
                    ContactList.objects.create(
                        server=server, name=f"{name[:180]} ({item.id})" if taken else name, remote_id=item.id
                    )
                    created += 1
            elif (
                local.name != name
                and not ContactList.objects.filter(server=server, name__iexact=name).exclude(pk=local.pk).exists()
            ):
                local.name = name
                local.save(update_fields=["name"])
                renamed += 1
            job.done += 1
        gone = ContactList.objects.filter(server=server, remote_id__isnull=False).exclude(remote_id__in=seen)
        unlinked = gone.update(remote_id=None)
    parts = [f"{len(seen):,} list{'s' if len(seen) != 1 else ''} at SocketLabs"]
    parts.append(f"{created} new here, {linked} linked by name, {renamed} renamed")
    if unlinked:
        parts.append(f"{unlinked} local list{'s' if unlinked != 1 else ''} no longer at SocketLabs (unlinked)")
    return "Pulled lists: " + "; ".join(parts) + "."


# --- pull contacts ----------------------------------------------------------------------------------
def _pull_contacts(job: SyncJob, client: socketlabs.SocketLabsClient) -> str:
    from marketing import services

    server = job.server
    fields = _remote_fields(server, client)
    plan = Plan(
        server_id=server.pk,
        fields=list(dict.fromkeys(fields.values())),
        set_first=True,
        set_last=True,
        set_status=True,
        update_existing=True,
        new_status=Status.SUBSCRIBED,
        via=Via.SYNC,
        skip_invalid=True,
        history_summary="Updated from SocketLabs (pull)",
    )
    first_page = client.marketing.contacts.list(index=0)
    job.total = first_page.total
    created = updated = refused = 0
    chunk: list[Any] = []
    for contact in _iter_from(first_page, client):
        chunk.append(contact)
        if len(chunk) >= PULL_CHUNK:
            c, u, r = _apply_pulled(plan, chunk, fields)
            created, updated, refused = created + c, updated + u, refused + r
            job.done += len(chunk)
            job.failed = refused
            chunk = []
            _beat(job)
    if chunk:
        c, u, r = _apply_pulled(plan, chunk, fields)
        created, updated, refused = created + c, updated + u, refused + r
        job.done += len(chunk)
        job.failed = refused
    services.refresh_counts(server=server, list_ids=[])
    unchanged = job.done - created - updated - refused
    return (
        f"Pulled {job.done:,} contacts from SocketLabs: {created:,} new, {updated:,} updated, "
        f"{unchanged:,} unchanged, {refused:,} refused (not a usable address or value)."
    )


def _iter_from(first_page: Any, client: socketlabs.SocketLabsClient) -> Iterator[Any]:
    yield from first_page.items
    index = len(first_page.items)
    total = first_page.total
    count = first_page.page_size or 500
    while first_page.items and (total is None or index < total):
        page = client.marketing.contacts.list(index=index, count=count)
        if not page.items:
            return
        yield from page.items
        index += len(page.items)
        if total is None and len(page.items) < count:
            return


def _remote_fields(server: Server, client: socketlabs.SocketLabsClient) -> dict[str, CustomField]:
    """SocketLabs field name (normalised) → our field, creating text/number/date/yes-no fields we lack."""
    ours = list(CustomField.objects.filter(server=server))
    found: dict[str, CustomField] = {}
    for remote in client.marketing.custom_fields.list():
        if not remote.name:
            continue
        name = normalise_name(remote.name)
        match = next(
            (
                f
                for f in ours
                if name in {normalise_name(f.remote_name), normalise_name(f.key), normalise_name(f.label)}
            ),
            None,
        )
        if match is None:
            data_type = str(remote.type or remote.extra.get("dataType") or "text").lower()
            key = key_for(remote.name)
            existing = {f.key for f in ours}
            suffix = 2
            while key in existing:
                key = f"{key_for(remote.name)[:46]}_{suffix}"
                suffix += 1
            match = CustomField.objects.create(
                server=server,
                key=key,
                label=remote.name[:100],
                type=REMOTE_TYPES.get(data_type, FieldType.TEXT),
                remote_name=remote.name[:100],
            )
            ours.append(match)
        elif not match.remote_name:
            CustomField.objects.filter(pk=match.pk).update(remote_name=remote.name[:100])
        found[name] = match
    return found


def _apply_pulled(plan: Plan, contacts: list[Any], fields: dict[str, CustomField]) -> tuple[int, int, int]:
    problems = Problems()
    converters = {f.key: converter_for(f.type, f.choices) for f in plan.fields}
    positions = {f.key: i for i, f in enumerate(plan.fields)}

    def rows(skip: frozenset[int]) -> Iterator[Row]:
        for line, contact in enumerate(contacts, start=1):
            if line in skip:
                continue
            try:
                email = normalise_email(contact.email_address or "")
            except InvalidAddress as exc:
                problems.add(line, "emailAddress", str(exc))
                continue
            values: list[Any] = [None] * len(plan.fields)
            for item in contact.custom_fields:
                custom = fields.get(normalise_name(item.name))
                if custom is None or item.value in (None, ""):
                    continue
                try:
                    values[positions[custom.key]] = converters[custom.key](str(item.value))
                except InvalidValue:
                    continue  # one odd value does not refuse the contact; it is just not taken
            unsubscribed = contact.extra.get("unsubscribed") in (True, "true", "True", 1)
            yield (
                line,
                email,
                (contact.first_name or "").strip()[:100] or None,
                (contact.last_name or "").strip()[:100] or None,
                Status.UNSUBSCRIBED if unsubscribed else None,
                *values,
            )

    outcome = apply_rows(plan, rows, problems)
    return outcome.created, outcome.updated, outcome.invalid


# --- push -----------------------------------------------------------------------------------------
def _push(job: SyncJob, client: socketlabs.SocketLabsClient) -> str:
    server = job.server
    job.total = pending_changes(server).count()
    done = {RemoteAction.ADD: 0, RemoteAction.REMOVE: 0, RemoteAction.UNSUBSCRIBE: 0}
    while True:
        batch = list(pending_changes(server).order_by("id")[:200])
        if not batch:
            break
        for change in batch:
            try:
                _push_one(client, change)
            except (socketlabs.AuthenticationError, socketlabs.ConfigurationError, socketlabs.TransientError):
                _beat(job)
                raise  # the whole push stops (key refused) or waits and tries again (SocketLabs away)
            except socketlabs.SocketLabsError as exc:
                RemoteChange.objects.filter(pk=change.pk).update(
                    error=explain(exc, server)[:500], attempts=F("attempts") + 1
                )
                job.failed += 1
            else:
                RemoteChange.objects.filter(pk=change.pk).delete()
                done[RemoteAction(change.action)] += 1
            job.done += 1
        _beat(job)
    pushed = sum(done.values())
    message = (
        f"Pushed {pushed:,} change{'s' if pushed != 1 else ''} to SocketLabs "
        f"({done[RemoteAction.ADD]:,} list additions, {done[RemoteAction.REMOVE]:,} removals, "
        f"{done[RemoteAction.UNSUBSCRIBE]:,} unsubscribes)."
    )
    if job.failed:
        message += f" SocketLabs refused {job.failed:,}; they are listed below with the reason."
    return message


def _push_one(client: socketlabs.SocketLabsClient, change: RemoteChange) -> None:
    lists = client.marketing.lists
    if change.action == RemoteAction.ADD:
        lists.add_contact(
            int(change.list_remote_id or 0),
            email_address=change.email,
            first_name=change.first_name or None,
            last_name=change.last_name or None,
        )
    elif change.action == RemoteAction.REMOVE:
        try:
            lists.remove_contact(int(change.list_remote_id or 0), email_address=change.email)
        except socketlabs.NotFoundError:
            pass  # not on the list there: what we wanted
    else:
        client.marketing.contacts.unsubscribe(change.email)


def retry_refused(*, server: Server, actor: Any, request: HttpRequest | None = None) -> int:
    count = refused_changes(server).update(error="")
    if count:
        audit.record(
            action="contacts.sync.retry_refused", request=request, actor=actor, server=server, after={"changes": count}
        )
        request_push(server=server, automatic=False)
    return count


def discard_refused(*, server: Server, actor: Any, request: HttpRequest | None = None) -> int:
    count, _ = refused_changes(server).delete()
    if count:
        audit.record(
            action="contacts.sync.discard_refused",
            request=request,
            actor=actor,
            server=server,
            after={"changes": count},
        )
    return count


# --- housekeeping ---------------------------------------------------------------------------------
def sweep() -> int:
    """Re-queue sync jobs whose worker died, and retries whose message was lost."""
    from marketing.tasks import run_sync

    now = timezone.now()
    again = 0
    for job in SyncJob.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=now - STALE_AFTER):
        if SyncJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING, heartbeat_at=job.heartbeat_at).update(
            status=JobStatus.QUEUED, message="The worker stopped; the sync starts again."
        ):
            transaction.on_commit(partial(run_sync.delay, job.pk), robust=True)
            again += 1
    # Due (queued, or waiting to retry) for a while but never started: the message was lost. Send it again.
    late = SyncJob.objects.filter(
        status__in=[JobStatus.QUEUED, JobStatus.RETRYING], next_attempt_at__lt=now - timedelta(minutes=2)
    )
    for pk in late.values_list("pk", flat=True):
        SyncJob.objects.filter(pk=pk).update(next_attempt_at=now)
        transaction.on_commit(partial(run_sync.delay, pk), robust=True)
        again += 1
    return again
