"""Event webhooks of the sandbox (contract §5): claim due events, post them one per request, retry.

Work lives in the database: an event is claimed once (`happened`), each (event, endpoint) pair is a
`SandboxWebhookDelivery` row, and a delivery is leased before posting so two workers never post the
same row at once. A crash makes a post late (the lease expires), never lost.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sandbox import simulation
from sandbox.models import (
    DeliveryStatus,
    EventType,
    SandboxEvent,
    SandboxEventWebhook,
    SandboxMessage,
    SandboxSuppression,
    SandboxWebhookDelivery,
    WebhookFormat,
)

logger = logging.getLogger(__name__)

USER_AGENT = "SocketLabs-Sandbox/1.0 (Mailroom)"
LEASE = timedelta(seconds=60)
FAILURE_TYPES = {"Temporary": 0, "Permanent": 1, "Suppressed": 2}
TRACKING_TYPES = {"Click": 0, "Open": 1, "Unsubscribe": 2}
# Which common fields each type carries (§5.2).
NO_SUBACCOUNT = {EventType.COMPLAINT}
WITH_IP_POOL = {EventType.DEFERRED, EventType.DELIVERED, EventType.FAILED}
NO_DATA = {EventType.COMPLAINT}
ACTIVE = "active"


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def max_attempts() -> int:
    return int(_setting("SANDBOX_WEBHOOK_MAX_ATTEMPTS", 5))


def backoff(attempts: int) -> timedelta:
    """Delay before the next try after `attempts` failed ones: base × 2^(attempts-1), capped at an hour."""
    base = float(_setting("SANDBOX_WEBHOOK_RETRY_BASE_SECONDS", 2.0))
    return timedelta(seconds=min(base * (2 ** max(attempts - 1, 0)), 3600.0))


def timeout() -> tuple[float, float]:
    value = _setting("SANDBOX_WEBHOOK_TIMEOUT", (3.05, 10.0))
    return (float(value[0]), float(value[1])) if isinstance(value, list | tuple) else (float(value), float(value))


# --- payloads -----------------------------------------------------------------------------


def iso_datetime(moment: datetime) -> str:
    """ISO-8601 UTC with 7 fractional digits, as SocketLabs writes it (`…56.3694682Z`)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + f".{utc.microsecond:06d}0Z"


def event_payload(
    event: SandboxEvent, *, server_id: int, secret_key: str, outbound: SandboxMessage | None
) -> dict[str, Any]:
    """The JSON object SocketLabs would post for this event (§5.2, §5.3), PascalCase."""
    kind = event.type
    body: dict[str, Any] = {"Type": kind, "DateTime": iso_datetime(event.due_at), "ServerId": server_id}
    if kind not in NO_SUBACCOUNT:
        body["SubaccountId"] = None
    if kind in WITH_IP_POOL:
        body["IpPoolId"] = None
    body["SecretKey"] = secret_key
    body["Address"] = event.address
    body["MailingId"] = event.mailing_id
    body["MessageId"] = event.message_id
    from_address = outbound.from_address if outbound else ""
    extra = dict(event.payload or {})
    if kind == EventType.QUEUED:
        body["FromAddress"] = from_address
        body["Subject"] = outbound.subject if outbound else ""
        body["MessageSize"] = outbound.size if outbound else 0
    elif kind in (EventType.DEFERRED, EventType.FAILED):
        body["FromAddress"] = from_address
    body.update(extra)
    if kind not in NO_DATA:
        meta = outbound.metadata if outbound else []
        body["Data"] = {
            "Meta": [{"Key": m.get("key", ""), "Value": m.get("value", "")} for m in meta],
            "Tags": list(outbound.tags) if outbound else [],
        }
    return body


def validation_payload(*, server_id: int, secret_key: str, now: datetime | None = None) -> dict[str, Any]:
    return {
        "Type": "Validation",
        "DateTime": iso_datetime(now or timezone.now()),
        "ServerId": server_id,
        "SecretKey": secret_key,
    }


def form_fields(payload: dict[str, Any]) -> dict[str, str]:
    """The legacy form-encoded shape: flat, strings, enum ints, RFC-1123 dates, no Data (§5.3)."""
    fields: dict[str, str] = {}
    for key, value in payload.items():
        if key == "Data":
            continue
        if key == "DateTime":
            moment = datetime.fromisoformat(value.replace("Z", "").split(".")[0]).replace(tzinfo=UTC)
            fields[key] = format_datetime(moment, usegmt=True)
        elif key == "FailureType":
            fields[key] = str(FAILURE_TYPES.get(value, value))
        elif key == "TrackingType":
            fields[key] = str(TRACKING_TYPES.get(value, value))
        elif value is None:
            fields[key] = ""
        else:
            fields[key] = str(value)
    return fields


# --- posting ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostResult:
    status_code: int | None
    error: str
    body: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        # Retry on 5xx, timeouts and connection errors; never on 4xx (or a redirect).
        return self.status_code is None or self.status_code >= 500


def post(url: str, payload: dict[str, Any], *, form: bool, session: requests.Session | None = None) -> PostResult:
    """One POST; never raises. No redirects: a webhook answer is the answer."""
    sender = session or requests
    try:
        if form:
            response = sender.post(
                url,
                data=form_fields(payload),
                headers={"User-Agent": USER_AGENT},
                timeout=timeout(),
                allow_redirects=False,
            )
        else:
            response = sender.post(
                url,
                data=json.dumps(payload).encode(),
                headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT},
                timeout=timeout(),
                allow_redirects=False,
            )
    except requests.Timeout:
        return PostResult(None, "Timed out waiting for the endpoint.")
    except requests.ConnectionError as exc:
        return PostResult(None, f"Could not connect: {type(exc).__name__}.")
    except requests.RequestException as exc:
        return PostResult(None, f"Request failed: {type(exc).__name__}.")
    error = "" if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    return PostResult(response.status_code, error, response.text[:2000])


def validate_endpoint(endpoint: SandboxEventWebhook) -> bool:
    """Post the `Validation` event to a newly registered endpoint; lenient: a 200 validates it.

    The outcome is recorded in `endpoint.status` ("Active" or "Failed"); only active endpoints get events.
    """
    payload = validation_payload(server_id=endpoint.server.server_id, secret_key=endpoint.secret_key)
    result = post(endpoint.url, payload, form=endpoint.format == WebhookFormat.FORM)
    endpoint.status = "Active" if result.status_code == 200 else "Failed"
    SandboxEventWebhook.objects.filter(pk=endpoint.pk).update(status=endpoint.status)
    if result.status_code != 200:
        logger.info("sandbox webhook validation failed for endpoint %s: %s", endpoint.pk, result.error)
    return result.status_code == 200


# --- claiming events ----------------------------------------------------------------------


def claim_due_events(*, limit: int = 1000, now: datetime | None = None) -> int:
    """Mark up to `limit` due events as happened, apply their side effects, create their deliveries."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            SandboxEvent.objects.select_for_update(skip_locked=True)
            .filter(happened=False, due_at__lte=now)
            .order_by("due_at", "id")
            .values_list("id", flat=True)[:limit]
        )
        if not ids:
            return 0
        SandboxEvent.objects.filter(id__in=ids, happened=False).update(happened=True)
        rows: list[dict[str, Any]] = [
            dict(row)
            for row in SandboxEvent.objects.filter(id__in=ids).values("id", "server_id", "type", "address", "payload")
        ]
        _apply_side_effects(rows, now)
        server_ids = {row["server_id"] for row in rows}
        endpoints = [
            e for e in SandboxEventWebhook.objects.filter(server_id__in=server_ids) if e.status.casefold() == ACTIVE
        ]
        deliveries = [
            SandboxWebhookDelivery(event_id=row["id"], endpoint=endpoint, next_attempt_at=now, updated_on=now)
            for row in sorted(rows, key=lambda r: r["id"])
            for endpoint in endpoints
            if endpoint.server_id == row["server_id"] and endpoint.wants(row["type"])
        ]
        SandboxWebhookDelivery.objects.bulk_create(deliveries, batch_size=2000, ignore_conflicts=True)
    return len(ids)


def _apply_side_effects(rows: list[dict[str, Any]], now: datetime) -> None:
    """Hard bounces, complaints and unsubscribes join the server's suppression list (source "simulation")."""
    additions: dict[tuple[int, str], str] = {}
    for row in rows:
        reason = simulation.suppression_reason(row["type"], row["payload"] or {})
        if reason:
            address = row["address"].casefold()
            additions.setdefault((row["server_id"], address), reason)
    if additions:
        SandboxSuppression.objects.bulk_create(
            [
                SandboxSuppression(
                    server_id=server_id, email_address=address, reason=reason, source="simulation", last_update=now
                )
                for (server_id, address), reason in additions.items()
            ],
            ignore_conflicts=True,
        )


# --- posting deliveries -------------------------------------------------------------------


def post_due_deliveries(*, limit: int = 200, now: datetime | None = None) -> int:
    """Post up to `limit` due deliveries, one event per request; returns how many were attempted."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            SandboxWebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")
            .values_list("id", flat=True)[:limit]
        )
        if not ids:
            return 0
        # The lease: another worker skips these until it runs out (a crash mid-post retries later).
        SandboxWebhookDelivery.objects.filter(id__in=ids).update(next_attempt_at=now + LEASE)
    deliveries = list(
        SandboxWebhookDelivery.objects.filter(id__in=ids)
        .select_related("event", "event__outbound", "event__server", "endpoint")
        .defer("event__outbound__text_body", "event__outbound__html_body", "event__outbound__amp_body")
        .order_by("event__due_at", "event_id", "id")
    )
    sessions: dict[int, requests.Session] = {}
    try:
        for delivery in deliveries:
            session = sessions.setdefault(delivery.endpoint_id, requests.Session())
            _attempt(delivery, session)
    finally:
        for session in sessions.values():
            session.close()
    SandboxWebhookDelivery.objects.bulk_update(
        deliveries, ["status", "attempts", "next_attempt_at", "last_status_code", "last_error", "updated_on"]
    )
    return len(deliveries)


def _attempt(delivery: SandboxWebhookDelivery, session: requests.Session) -> None:
    endpoint = delivery.endpoint
    event = delivery.event
    payload = event_payload(
        event, server_id=event.server.server_id, secret_key=endpoint.secret_key, outbound=event.outbound
    )
    result = post(endpoint.url, payload, form=endpoint.format == WebhookFormat.FORM, session=session)
    now = timezone.now()
    delivery.attempts += 1
    delivery.last_status_code = result.status_code
    delivery.last_error = result.error[:500]
    delivery.updated_on = now
    if result.ok:
        delivery.status = DeliveryStatus.DELIVERED
    elif result.retryable and delivery.attempts < max_attempts():
        delivery.status = DeliveryStatus.PENDING
        delivery.next_attempt_at = now + backoff(delivery.attempts)
    else:
        delivery.status = DeliveryStatus.FAILED


@dataclass(frozen=True)
class DispatchStats:
    events: int
    posts: int


def dispatch_due(*, batch: int = 1000, budget_seconds: float = 50.0) -> DispatchStats:
    """Claim due events and post due deliveries until nothing is due or the time budget is spent."""
    started = time.monotonic()
    events = posts = 0
    while True:
        claimed = claim_due_events(limit=batch)
        posted = post_due_deliveries(limit=min(batch, 200))
        events += claimed
        posts += posted
        if not claimed and not posted:
            break
        if time.monotonic() - started > budget_seconds:
            break
    return DispatchStats(events=events, posts=posts)
