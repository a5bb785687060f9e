"""Expanding a send's audience (a list, segment or CSV) into recipient rows, inline or in the background.

Small audiences expand inside the request, so the summary shows at once. Large ones (more
contacts than `SENDING_INLINE_AUDIENCE_ROWS`, or a CSV over `SENDING_INLINE_AUDIENCE_BYTES`) are
a background job: the draft records what to expand (`Send.audience_spec`, with the CSV kept under
MEDIA_ROOT) and its progress, the summary page polls, and the minute sweep re-queues a job whose
worker stopped. Expansion is idempotent (recipient rows are unique per send and inserted with
ON CONFLICT DO NOTHING), so a restarted job simply reads the audience again from the start.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from accounts.models import Server
from sending import composer, engine
from sending.models import AudienceState, Send, SendStatus

logger = logging.getLogger(__name__)

PROGRESS_EVERY = engine.EXPAND_CHUNK


def inline_rows() -> int:
    return int(getattr(settings, "SENDING_INLINE_AUDIENCE_ROWS", 5000))


def inline_bytes() -> int:
    return int(getattr(settings, "SENDING_INLINE_AUDIENCE_BYTES", 256 * 1024))


def audiences_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "send-audiences"
    path.mkdir(parents=True, exist_ok=True)
    return path


def contact_count(server: Server, spec: dict[str, Any]) -> int:
    """Contacts a list/segment audience reads (subscribed or not: the others are reported as skipped)."""
    from marketing import services as marketing
    from marketing.models import Segment

    if spec["kind"] == "segment":
        segment = Segment.objects.filter(server=server, pk=spec["segment_id"]).first()
        if segment is None:
            raise composer.AudienceError("That segment does not exist on this server.")
        return marketing.contacts_matching(server, segment.definition).count()
    return marketing.contacts_for_lists(server, list(spec["list_ids"])).count()


def _expand_now(send: Send, spec: dict[str, Any], *, rows_seen: Any = None) -> engine.Expansion:
    """Read the audience described by `spec` into the send's recipients."""
    if spec["kind"] == "csv":
        path = Path(settings.MEDIA_ROOT) / spec["path"]
        if not path.exists():
            raise composer.AudienceError("The uploaded file is gone; create the send again.")
        rows: Iterable[engine.AudienceRow] = composer.csv_rows(path)
        skip: Iterable[tuple[str, str]] = ()
    else:
        if spec["kind"] == "segment":
            audience = composer.contact_rows(send.server, segment_id=int(spec["segment_id"]))
        else:
            audience = composer.contact_rows(send.server, list_ids=[int(i) for i in spec["list_ids"]])
        rows, skip = audience.rows, audience.skipped
    if rows_seen is not None:
        rows, skip = rows_seen(rows), rows_seen(skip)
    return engine.add_recipients(send, rows, skip=skip)


def prepare(
    send: Send,
    *,
    kind: str,
    list_ids: Iterable[int] = (),
    segment_id: int | None = None,
    upload: UploadedFile | None = None,
) -> bool:
    """Expand a list, segment or CSV audience now when it is small, else queue the background job.

    Returns True when the job was queued (the summary will show once it is done). Call it inside
    the transaction that created the draft: the job is queued after the commit.
    """
    spec: dict[str, Any] = {"kind": kind}
    expected: int | None = None
    if kind == "csv":
        assert upload is not None
        relative = Path("send-audiences") / f"{send.server_id}-{send.pk}-{uuid.uuid4().hex}.csv"
        target = audiences_dir() / relative.name
        with target.open("wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        spec["path"] = str(relative)
        background = target.stat().st_size > inline_bytes()
        if not background:
            try:
                _expand_now(send, spec)
            finally:
                target.unlink(missing_ok=True)
            return False
    else:
        if kind == "segment":
            spec["segment_id"] = int(segment_id or 0)
        else:
            spec["list_ids"] = [int(i) for i in list_ids]
        expected = contact_count(send.server, spec)
        if expected <= inline_rows():
            _expand_now(send, spec)
            return False
    Send.objects.filter(pk=send.pk).update(
        audience_state=AudienceState.EXPANDING,
        audience_spec=spec,
        audience_expected=expected,
        audience_done=0,
        audience_error="",
        audience_heartbeat=timezone.now(),
    )
    send.audience_state = AudienceState.EXPANDING
    engine.enqueue_audience(send.pk)
    return True


def expand(send_id: int) -> str:
    """The background job: expand the audience, then mark it ready (or failed, with the reason in words).

    Returns "ready", "failed" or "skipped" (nothing to do: already expanded, or the send is gone).
    """
    send = Send.objects.select_related("server").filter(pk=send_id).first()
    if send is None or send.audience_state != AudienceState.EXPANDING:
        return "skipped"
    if send.status != SendStatus.DRAFT:  # discarded while it was being prepared
        _forget_file(send.audience_spec)
        return "skipped"
    spec = dict(send.audience_spec)
    Send.objects.filter(pk=send.pk).update(audience_heartbeat=timezone.now(), audience_done=0)
    seen = [0]

    def rows_seen(items: Iterable[Any]) -> Iterator[Any]:
        for item in items:
            seen[0] += 1
            if seen[0] % PROGRESS_EVERY == 0:
                Send.objects.filter(pk=send_id).update(audience_done=seen[0], audience_heartbeat=timezone.now())
            yield item

    try:
        _expand_now(send, spec, rows_seen=rows_seen)
    except (composer.AudienceError, engine.SendError) as exc:
        Send.objects.filter(pk=send_id, audience_state=AudienceState.EXPANDING).update(
            audience_state=AudienceState.FAILED, audience_error=str(exc)[:500], audience_heartbeat=timezone.now()
        )
        _forget_file(spec)
        return "failed"
    with transaction.atomic():
        Send.objects.filter(pk=send_id, audience_state=AudienceState.EXPANDING).update(
            audience_state=AudienceState.READY, audience_done=seen[0], audience_heartbeat=timezone.now()
        )
    _forget_file(spec)
    return "ready"


def _forget_file(spec: dict[str, Any]) -> None:
    if spec.get("kind") == "csv" and spec.get("path"):
        (Path(settings.MEDIA_ROOT) / spec["path"]).unlink(missing_ok=True)
