"""Forward each parsed inbound message to its route's URL, with retries (issue 8, inbound item 6).

The message row holds the whole delivery state, so the work survives a lost task or a dead worker:

* `store_message` matches the message to its route (`route_for`) and, when the route forwards, stores
  it as `pending` with `forward_next_at` = now; after commit it enqueues the forwarding task with the id.
* `attempt(id)` claims the message with a conditional UPDATE (pending, no live lease) and POSTs it as
  JSON with the route's shared secret in `X-Mailroom-Forward-Secret`, through one `requests` session
  with a mandatory (connect, read) timeout and no redirects followed.
* 2xx: delivered. 4xx (and anything that is not an HTTP answer worth repeating): failed at once, never
  retried: the receiver said no, and asking again would only repeat it. 5xx, timeouts and connection
  errors: retried with exponential backoff (30 s doubling, capped, ±20 % jitter) up to
  REPORTING_FORWARD_MAX_ATTEMPTS attempts in all, then failed with the last reason.
* `sweep()` (beat) re-enqueues pending messages whose next attempt is long overdue: a task lost with
  the broker, or a worker killed mid-attempt (its lease runs out).

Receivers see at-least-once delivery: `Idempotency-Key` is the same on every attempt for one message.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from django.db import transaction
from django.db.models import F, Q
from django.http import HttpRequest
from django.utils import timezone

from accounts import audit
from common.netguard import BlockedTarget, check_public_url
from reporting import conf
from reporting.models import ForwardStatus, InboundMessage, InboundRoute

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Mailroom-Forward-Secret"
USER_AGENT = "Mailroom-Inbound-Forwarder/1"

_session: requests.Session | None = None


def session() -> requests.Session:
    global _session
    if _session is None:
        _session = requests.Session()
        _session.headers["User-Agent"] = USER_AGENT
    return _session


# --- Matching and enqueuing -------------------------------------------------------------------


def route_for(*, server_id: int, rcpt_to: str) -> InboundRoute | None:
    """The route a message was parsed for: an address route first, then its domain's route."""
    addresses = [a.strip().lower() for a in rcpt_to.replace(";", ",").split(",") if a.strip()]
    if not addresses:
        return None
    wanted = {*addresses, *(a.rpartition("@")[2] for a in addresses)}
    found = {
        r.domain_or_address: r for r in InboundRoute.objects.filter(server_id=server_id, domain_or_address__in=wanted)
    }
    for address in addresses:
        route = found.get(address) or found.get(address.rpartition("@")[2])
        if route is not None:
            return route
    return None


def enqueue(message_ids: Iterable[int]) -> None:
    """Hand ids to the forwarding task after commit; if the broker is down, the sweep picks them up."""
    ids = list(message_ids)
    if not ids:
        return

    def send() -> None:
        from reporting.tasks import forward_inbound_message

        for pk in ids:
            try:
                forward_inbound_message.delay(pk)
            except Exception:
                log.warning("Could not enqueue forwarding of inbound message %s; the sweep will.", pk, exc_info=True)
                return

    transaction.on_commit(send, robust=True)


# --- One attempt ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    outcome: str  # "delivered", "retry", "failed", "skipped"
    retry_in: float | None = None
    detail: str = ""


def backoff(attempt: int, *, jitter: float | None = None) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): base × 2^(attempt-1), capped, ±20 %."""
    base = float(conf.get("REPORTING_FORWARD_BACKOFF_SECONDS"))
    cap = float(conf.get("REPORTING_FORWARD_BACKOFF_MAX_SECONDS"))
    delay = min(base * 2 ** max(attempt - 1, 0), cap)
    factor = random.uniform(0.8, 1.2) if jitter is None else jitter  # noqa: S311 (spreading retries, not a secret)
    return round(delay * factor, 3)


def _lease_seconds() -> float:
    # Longer than one attempt can take, so a live attempt is never taken over; short enough for the sweep.
    return float(conf.get("REPORTING_FORWARD_CONNECT_TIMEOUT")) + float(conf.get("REPORTING_FORWARD_READ_TIMEOUT")) + 60


def _claim(message_id: int, now: datetime) -> bool:
    return bool(
        InboundMessage.objects.filter(pk=message_id, forward_status=ForwardStatus.PENDING)
        .filter(Q(forward_lease_until__isnull=True) | Q(forward_lease_until__lt=now))
        .update(
            forward_lease_until=now + timedelta(seconds=_lease_seconds()),
            forward_attempts=F("forward_attempts") + 1,
        )
    )


def message_json(message: InboundMessage) -> dict[str, Any]:
    """The stored message as posted to the forwarding URL; attachments carry their content in base64."""
    from reporting.inbound import attachment_path

    attachments = []
    for part in message.attachments.all():
        try:
            content: str | None = base64.b64encode(attachment_path(part).read_bytes()).decode()
        except OSError:
            content = None  # the file is gone; say so rather than hold the message back forever
        attachments.append(
            {
                "name": part.name,
                "content_type": part.content_type,
                "content_id": part.content_id,
                "embedded": part.embedded,
                "size": part.size,
                "sha256": part.sha256,
                "content": content,
            }
        )
    return {
        "id": message.pk,
        "server_id": message.server_id,
        "route": message.route.domain_or_address if message.route else "",
        "received_at": message.received_at.isoformat(),
        "envelope": {"mail_from": message.mail_from, "rcpt_to": message.rcpt_to, "remote_ip": message.remote_ip},
        "from": {"address": message.from_address, "name": message.from_name},
        "subject": message.subject,
        "text_body": message.text_body,
        "html_body": message.html_body,
        "message_id": message.message_id,
        "spam_score": message.spam_score,
        "attachments": attachments,
        # The post as SocketLabs sent it, minus SecretKey and attachment contents (To, Cc, headers…).
        "payload": message.payload,
    }


def _finish(message_id: int, **fields: Any) -> None:
    InboundMessage.objects.filter(pk=message_id).update(forward_lease_until=None, **fields)


def attempt(message_id: int) -> Result:
    """Try to deliver one pending message once; the caller schedules the retry it asks for."""
    now = timezone.now()
    if not _claim(message_id, now):
        return Result("skipped", detail="Not pending, or an attempt is in flight.")
    message = InboundMessage.objects.select_related("route").get(pk=message_id)
    route = message.route
    if route is None or not route.forward_url or not route.forward_secret:
        detail = "Forwarding was switched off for this route before the message could be delivered."
        _finish(message_id, forward_status=ForwardStatus.FAILED, forward_error=detail)
        return Result("failed", detail=detail)
    body = json.dumps(message_json(message), ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        SECRET_HEADER: route.forward_secret,
        "Idempotency-Key": f"mailroom-inbound-{message.dedup_key}",
        "X-Mailroom-Message": str(message.pk),
    }
    timeout = (float(conf.get("REPORTING_FORWARD_CONNECT_TIMEOUT")), float(conf.get("REPORTING_FORWARD_READ_TIMEOUT")))
    status: int | None = None
    try:
        # Checked again at send time: the name may resolve elsewhere than when it was saved.
        check_public_url(route.forward_url)
    except BlockedTarget as exc:
        _finish(message_id, forward_status=ForwardStatus.FAILED, forward_error=str(exc), forward_next_at=None)
        return Result("failed", detail=str(exc))
    try:
        response = session().post(route.forward_url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
    except requests.Timeout:
        transient, detail = True, f"No answer within {timeout[1]:g} s."
    except requests.ConnectionError as exc:
        transient, detail = True, f"Could not connect: {_reason(exc)}"
    except requests.RequestException as exc:  # an invalid URL and the like: asking again changes nothing
        transient, detail = False, f"Could not send: {_reason(exc)}"
    else:
        status = response.status_code
        if 200 <= status < 300:
            _finish(
                message_id,
                forward_status=ForwardStatus.DELIVERED,
                forwarded_at=timezone.now(),
                forward_response_status=status,
                forward_error="",
                forward_next_at=None,
            )
            return Result("delivered")
        snippet = " ".join(response.text[:200].split())
        transient = status >= 500
        if 300 <= status < 400:
            detail = f"HTTP {status}: redirected to {response.headers.get('Location', '?')}; set the final URL."
        else:
            detail = f"HTTP {status}{': ' + snippet if snippet else ''}"
    attempts = message.forward_attempts
    if transient and attempts < int(conf.get("REPORTING_FORWARD_MAX_ATTEMPTS")):
        delay = backoff(attempts)
        _finish(
            message_id,
            forward_next_at=timezone.now() + timedelta(seconds=delay),
            forward_response_status=status,
            forward_error=f"Attempt {attempts}: {detail}"[:500],
        )
        return Result("retry", retry_in=delay, detail=detail)
    if transient:
        detail = f"Gave up after {attempts} attempts. Last: {detail}"
    _finish(
        message_id,
        forward_status=ForwardStatus.FAILED,
        forward_response_status=status,
        forward_error=detail[:500],
        forward_next_at=None,
    )
    return Result("failed", detail=detail)


def _reason(exc: Exception) -> str:
    # requests wraps urllib3's error, whose `reason` says what happened; drop the "<object at 0x…>: " noise.
    inner = exc.args[0] if exc.args and isinstance(exc.args[0], Exception) else exc
    reason = str(getattr(inner, "reason", None) or inner)
    return re.sub(r"<[^>]*>: ", "", reason)[:300] or type(exc).__name__


# --- Sweep and manual retry ---------------------------------------------------------------------


def sweep(*, limit: int = 500) -> int:
    """Re-enqueue pending forwards that are long past due (lost task, killed worker); returns how many."""
    now = timezone.now()
    stale = now - timedelta(seconds=float(conf.get("REPORTING_FORWARD_STALE_SECONDS")))
    with transaction.atomic():
        ids = list(
            InboundMessage.objects.filter(forward_status=ForwardStatus.PENDING, forward_next_at__lt=stale)
            .filter(Q(forward_lease_until__isnull=True) | Q(forward_lease_until__lt=now))
            .order_by("forward_next_at")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            # Due "now" again, so the next sweep waits a full stale period before it asks once more.
            InboundMessage.objects.filter(pk__in=ids).update(forward_next_at=now)
            enqueue(ids)
    return len(ids)


def retry(*, message: InboundMessage, request: HttpRequest | None = None, actor: Any = None) -> bool:
    """Forward a failed message again, with a fresh set of attempts. False when it cannot be forwarded."""
    route = message.route
    if route is None or not route.forward_url:
        return False
    with transaction.atomic():
        changed = (
            InboundMessage.objects.filter(pk=message.pk)
            .exclude(forward_status=ForwardStatus.PENDING)
            .update(
                forward_status=ForwardStatus.PENDING,
                forward_attempts=0,
                forward_next_at=timezone.now(),
                forward_lease_until=None,
            )
        )
        if not changed:
            return False
        audit.record(
            action="reporting.inbound_forward.retry",
            request=request,
            actor=actor,
            server=message.server,
            target=f"inbound message {message.pk}",
            after={"url": route.forward_url},
        )
        enqueue([message.pk])
    return True
