"""Public receivers for SocketLabs pushes: event webhooks and inbound parse (contract §5, §6).

The event receiver is a hot path (limits.md §3): it answers from at most two queries — one
SELECT for the endpoint and one statement that INSERTs the raw event and its request-log row
together — and never enqueues a task per event. The processor is woken at most once per quiet
period (a cache flag), and beat drains whatever is left, so a lost wake-up only makes work late.

Answers: 200 (stored, duplicate, or validation ping; the body carries the validation key),
400 malformed, 401 bad/missing secret or unknown endpoint (same answer: no enumeration),
403 source network not allowed, 413 too large, 405 other methods.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from functools import lru_cache
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts.fields import decrypt
from reporting import conf, inbound
from reporting.models import EventEndpoint, InboundEndpoint, Outcome, RequestLog, networks_allow
from reporting.payloads import (
    PayloadError,
    canonical_json,
    decode_body,
    dedup_key,
    field,
    is_validation,
    without_secret,
)

log = logging.getLogger(__name__)

WAKE_KEY = "reporting:wake-processor"
# Compared against when the endpoint is unknown, so that answer takes as long as a wrong secret.
_DUMMY_SECRET = "x" * 43
_last_wake = 0.0


class Rejected(Exception):
    def __init__(self, status: int, outcome: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.outcome = outcome
        self.message = message


def _remote_ip(request: HttpRequest) -> str:
    return (request.META.get("REMOTE_ADDR") or "")[:45]


def read_body(request: HttpRequest, limit: int) -> bytes:
    """Read at most `limit` bytes, refusing larger bodies by their Content-Length before reading."""
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared:
        try:
            length = int(declared)
        except ValueError as exc:
            raise Rejected(400, Outcome.MALFORMED, "Content-Length is not a number.") from exc
        if length > limit:
            raise Rejected(413, Outcome.TOO_LARGE, f"Body of {length} bytes is over the {limit}-byte limit.")
    # Read from the stream, not request.body: DATA_UPLOAD_MAX_MEMORY_SIZE would turn a large body into 400.
    body = request.read(limit + 1)
    if len(body) > limit:
        raise Rejected(413, Outcome.TOO_LARGE, f"Body is over the {limit}-byte limit.")
    return body


def _too_many_unauthorized(ip: str) -> bool:
    """Count 401s per client IP per minute (ecosystem §3.4 item 5); past the limit we stop logging them."""
    key = f"reporting:401:{ip}:{int(time.time() // 60)}"
    try:
        if cache.add(key, 1, 70):
            return False
        return int(cache.incr(key)) > conf.get("REPORTING_UNAUTHORIZED_PER_MINUTE")
    except Exception:  # a cache outage must not turn rejections into 500s
        return False


def _log_rejection(
    request: HttpRequest, *, started: float, endpoint_id: int | None, inbound_id: int | None, error: Rejected, size: int
) -> HttpResponse:
    ip = _remote_ip(request)
    if error.status == 401 and _too_many_unauthorized(ip):
        return HttpResponse("Too many failed attempts.\n", status=429, content_type="text/plain")
    RequestLog.objects.create(
        endpoint_id=endpoint_id,
        inbound_endpoint_id=inbound_id,
        status=error.status,
        outcome=error.outcome,
        latency_ms=(time.perf_counter() - started) * 1000,
        body_size=size,
        remote_ip=ip,
        error=error.message[:300],
    )
    return HttpResponse(error.message + "\n", status=error.status, content_type="text/plain")


def _as_rejection(exc: Exception) -> Rejected:
    if isinstance(exc, Rejected):
        return exc
    if isinstance(exc, inbound.TooLarge):
        return Rejected(413, Outcome.TOO_LARGE, str(exc))
    return Rejected(400, Outcome.MALFORMED, str(exc))


def _check_secret(data: dict[str, Any], expected: str | None) -> None:
    given = field(data, "secretkey")
    if not isinstance(given, str) or not given:
        constant_time_compare(_DUMMY_SECRET, expected or _DUMMY_SECRET)
        raise Rejected(401, Outcome.UNAUTHORIZED, "Unauthorized.")
    if expected is None:
        constant_time_compare(given, _DUMMY_SECRET)
        raise Rejected(401, Outcome.UNAUTHORIZED, "Unauthorized.")
    if not constant_time_compare(given, expected):
        raise Rejected(401, Outcome.UNAUTHORIZED, "Unauthorized.")


_ENDPOINT_SQL = (
    "SELECT id, server_id, secret_key, validation_key, allowed_networks FROM reporting_eventendpoint WHERE uuid = %s"
)


@lru_cache(maxsize=1024)
def _decrypt(token: str) -> str:
    # Fernet costs tens of µs per call; a token always decrypts to the same secret, so remember it.
    return decrypt(token) if token else ""


EndpointRow = tuple[int | None, int, str | None, str, list[str]]
_endpoint_cache: dict[uuid.UUID, tuple[float, EndpointRow]] = {}


def _fetchone(sql: str, params: list[Any]) -> Any:
    """Run one hot-path statement and return its first row.

    On PostgreSQL this uses a server-side-binding psycopg cursor with a prepared statement instead of
    Django's client-side-binding cursor: measured here, that halves the client CPU of the store and
    spares the server from planning the CTE on every event. Queries are still recorded when Django
    records queries (tests, debug), so query counts stay honest.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    import psycopg

    connection.ensure_connection()
    started = time.monotonic()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        row = cursor.fetchone()
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})
    return row


def _query_event_endpoint(endpoint_uuid: uuid.UUID) -> EndpointRow:
    row = _fetchone(_ENDPOINT_SQL, [endpoint_uuid.hex if connection.vendor == "sqlite" else endpoint_uuid])
    if row is None:
        return None, 0, None, "", []
    networks = row[4]
    if isinstance(networks, str | bytes):
        networks = json.loads(networks)
    return int(row[0]), int(row[1]), _decrypt(row[2]), row[3], list(networks or [])


def lookup_event_endpoint(endpoint_uuid: uuid.UUID) -> EndpointRow:
    """(id, server id, secret, validation key, allowed networks) by URL uuid, for the hot path.

    Plain SQL (the ORM would spend more CPU compiling this query than PostgreSQL spends answering
    it), remembered per process for REPORTING_ENDPOINT_CACHE_SECONDS: a rotated secret or a deleted
    endpoint takes effect in other processes within that time, at once in the one that changed it.
    """
    ttl = conf.get("REPORTING_ENDPOINT_CACHE_SECONDS")
    now = time.monotonic()
    if ttl:
        cached = _endpoint_cache.get(endpoint_uuid)
        if cached is not None and cached[0] > now:
            return cached[1]
    value = _query_event_endpoint(endpoint_uuid)
    if ttl:
        if len(_endpoint_cache) > 10_000:  # random uuids must not grow this without bound
            _endpoint_cache.clear()
        _endpoint_cache[endpoint_uuid] = (now + ttl, value)
    return value


def forget_endpoint(endpoint_uuid: uuid.UUID) -> None:
    _endpoint_cache.pop(endpoint_uuid, None)


def wake_processor(*, force: bool = False) -> None:
    """Enqueue the drain task unless one was enqueued during the last quiet period."""
    global _last_wake
    now = time.monotonic()
    if not force and now - _last_wake < conf.get("REPORTING_WAKE_LOCAL_SECONDS"):
        return
    _last_wake = now
    try:
        if cache.add(WAKE_KEY, 1, conf.get("REPORTING_WAKE_SECONDS")) or force:
            from reporting.tasks import process_raw_events

            process_raw_events.delay_on_commit()  # type: ignore[attr-defined]
    except Exception:  # broker or cache down: the row is stored and beat will drain it
        log.warning("Could not wake the event processor; beat will pick the events up.", exc_info=True)


_PG_STORE = """
WITH ins AS (
    INSERT INTO reporting_rawevent
        (endpoint_id, server_id, dedup_key, payload, content_type, received_at, attempts, error)
    VALUES (%s, %s, %s, %s::jsonb, %s, %s, 0, '')
    ON CONFLICT (dedup_key) DO NOTHING
    RETURNING id
), logged AS (
    INSERT INTO reporting_requestlog (
        endpoint_id, inbound_endpoint_id, raw_id, received_at, status, outcome, latency_ms, body_size, remote_ip, error
    )
    SELECT %s, NULL,
           COALESCE((SELECT id FROM ins), (SELECT id FROM reporting_rawevent WHERE dedup_key = %s)),
           %s, 200,
           CASE WHEN EXISTS (SELECT 1 FROM ins) THEN 'accepted' ELSE 'duplicate' END,
           %s, %s, %s, ''
)
SELECT id FROM ins
"""


def store_raw_event(
    *,
    endpoint_id: int,
    server_id: int,
    key: str,
    canonical: str,
    kind: str,
    received_at: Any,
    latency_ms: float,
    body_size: int,
    remote_ip: str,
) -> int | None:
    """INSERT … ON CONFLICT (dedup_key) DO NOTHING plus the request-log row, atomically. None on a duplicate."""
    if connection.vendor == "postgresql":
        row = _fetchone(
            _PG_STORE,
            [
                endpoint_id,
                server_id,
                key,
                canonical,
                kind,
                received_at,
                endpoint_id,
                key,
                received_at,
                latency_ms,
                body_size,
                remote_ip,
            ],
        )
        return int(row[0]) if row else None
    # SQLite has no data-modifying CTEs: two statements in one transaction.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO reporting_rawevent"
            " (endpoint_id, server_id, dedup_key, payload, content_type, received_at, attempts, error)"
            " VALUES (%s, %s, %s, %s, %s, %s, 0, '') ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
            [endpoint_id, server_id, key, canonical, kind, received_at],
        )
        row = cursor.fetchone()
        raw_id = int(row[0]) if row else None
        logged_raw = raw_id
        if raw_id is None:
            cursor.execute("SELECT id FROM reporting_rawevent WHERE dedup_key = %s", [key])
            existing = cursor.fetchone()
            logged_raw = int(existing[0]) if existing else None
        RequestLog.objects.create(
            endpoint_id=endpoint_id,
            raw_id=logged_raw,
            received_at=received_at,
            status=200,
            outcome=Outcome.ACCEPTED if raw_id else Outcome.DUPLICATE,
            latency_ms=latency_ms,
            body_size=body_size,
            remote_ip=remote_ip,
        )
    return raw_id


def _preflight(request: HttpRequest) -> HttpResponse | None:
    if request.method == "HEAD":
        return HttpResponse(status=200)  # some senders probe the URL first
    if request.method == "OPTIONS":
        response = HttpResponse(status=200)
        response["Allow"] = "POST, HEAD, OPTIONS"
        return response
    return None


@csrf_exempt
@login_not_required
@require_http_methods(["POST", "HEAD", "OPTIONS"])
def event_hook(request: HttpRequest, endpoint_uuid: uuid.UUID) -> HttpResponse:
    started = time.perf_counter()
    if preflight := _preflight(request):
        return preflight
    endpoint_id: int | None = None
    size = 0
    try:
        body = read_body(request, conf.get("REPORTING_EVENT_MAX_BYTES"))
        size = len(body)
        # Parse before looking the endpoint up, so a malformed body says nothing about whether the URL exists.
        data, kind = decode_body(body, request.content_type or "")
        endpoint_id, server_id, secret, validation_key, networks = lookup_event_endpoint(endpoint_uuid)
        _check_secret(data, secret)
        ip = _remote_ip(request)
        if not networks_allow(networks, ip):
            raise Rejected(403, Outcome.FORBIDDEN, f"Source address {ip} is not in this endpoint's allowed networks.")
    except (PayloadError, Rejected) as exc:
        rejection = _as_rejection(exc)
        if endpoint_id is None and rejection.status in (400, 413):
            # The answer is the same either way; the log row goes to the endpoint's owner.
            endpoint_id = EventEndpoint.objects.filter(uuid=endpoint_uuid).values_list("id", flat=True).first()
        return _log_rejection(
            request, started=started, endpoint_id=endpoint_id, inbound_id=None, error=rejection, size=size
        )

    assert endpoint_id is not None
    now = timezone.now()
    if is_validation(data):
        RequestLog.objects.create(
            endpoint_id=endpoint_id,
            status=200,
            outcome=Outcome.VALIDATION,
            latency_ms=(time.perf_counter() - started) * 1000,
            body_size=size,
            remote_ip=_remote_ip(request),
        )
        return HttpResponse(validation_key, content_type="text/plain")

    canonical = canonical_json(without_secret(data))
    raw_id = store_raw_event(
        endpoint_id=endpoint_id,
        server_id=server_id,
        key=dedup_key(server_id, canonical),
        canonical=canonical,
        kind=kind,
        received_at=now,
        latency_ms=(time.perf_counter() - started) * 1000,
        body_size=size,
        remote_ip=_remote_ip(request),
    )
    if raw_id is not None:
        wake_processor()
    return HttpResponse(validation_key, content_type="text/plain")


@csrf_exempt
@login_not_required
@require_http_methods(["POST", "HEAD", "OPTIONS"])
def inbound_hook(request: HttpRequest, endpoint_uuid: uuid.UUID) -> HttpResponse:
    started = time.perf_counter()
    if preflight := _preflight(request):
        return preflight
    endpoint: InboundEndpoint | None = None
    size = 0
    try:
        body = read_body(request, conf.get("REPORTING_INBOUND_MAX_BYTES"))
        size = len(body)
        data, _kind = decode_body(body, request.content_type or "")
        del body  # a large message should not be held twice while it is stored
        endpoint = InboundEndpoint.objects.filter(uuid=endpoint_uuid).first()
        _check_secret(data, endpoint.secret_key if endpoint else None)
        assert endpoint is not None
        ip = _remote_ip(request)
        if not endpoint.allows_ip(ip):
            raise Rejected(403, Outcome.FORBIDDEN, f"Source address {ip} is not in this endpoint's allowed networks.")
        if is_validation(data):
            outcome = Outcome.VALIDATION
        else:
            stored = inbound.store_message(endpoint=endpoint, data=data, size=size)
            outcome = Outcome.ACCEPTED if stored else Outcome.DUPLICATE
    except (PayloadError, inbound.TooLarge, Rejected) as exc:
        error = _as_rejection(exc)
        inbound_id = endpoint.pk if endpoint else None
        if inbound_id is None and error.status in (400, 413):
            inbound_id = InboundEndpoint.objects.filter(uuid=endpoint_uuid).values_list("id", flat=True).first()
        return _log_rejection(request, started=started, endpoint_id=None, inbound_id=inbound_id, error=error, size=size)
    RequestLog.objects.create(
        inbound_endpoint=endpoint,
        status=200,
        outcome=outcome,
        latency_ms=(time.perf_counter() - started) * 1000,
        body_size=size,
        remote_ip=_remote_ip(request),
    )
    # The inbound API requires the validation key in every answer (contract §6).
    return HttpResponse(endpoint.validation_key, content_type="text/plain")
