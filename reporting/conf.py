"""Reporting settings with their defaults; each may be overridden in settings (REPORTING_*)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

MiB = 1024 * 1024

DEFAULTS: dict[str, Any] = {
    # One event is ~1 KB; anything near this is not an event.
    "REPORTING_EVENT_MAX_BYTES": 2 * MiB,
    # A 50 MB message arrives base64-encoded inside JSON: 4/3 of it plus headroom.
    "REPORTING_INBOUND_MAX_BYTES": 70 * MiB,
    "REPORTING_INBOUND_MAX_MESSAGE_BYTES": 50 * MiB,
    "REPORTING_BATCH_SIZE": 1000,
    # The receiver wakes the processor at most once per this many seconds (cache flag TTL) ...
    "REPORTING_WAKE_SECONDS": 2,
    # ... and each web process asks the cache at most this often.
    "REPORTING_WAKE_LOCAL_SECONDS": 0.5,
    "REPORTING_REQUEST_LOG_DAYS": 7,
    # Raw rows are the dedup memory: a retry later than this would be stored again.
    "REPORTING_RAW_RETENTION_DAYS": 30,
    # Per client IP per minute; more 401s than this are answered 429 and not logged.
    "REPORTING_UNAUTHORIZED_PER_MINUTE": 60,
    # How long a web process remembers an event endpoint (saves a query per event; bounds how long a
    # rotated secret or deleted endpoint stays accepted by *other* processes).
    "REPORTING_ENDPOINT_CACHE_SECONDS": 1.0,
    # How long one drain task may run before it hands over to a fresh task.
    "REPORTING_DRAIN_SECONDS": 20,
    # Inbound forwarding: seconds to connect / to wait for the answer, attempts in all, first retry delay
    # (doubled per attempt, capped), and how long past due a pending forward waits before the sweep re-enqueues it.
    "REPORTING_FORWARD_CONNECT_TIMEOUT": 5.0,
    "REPORTING_FORWARD_READ_TIMEOUT": 30.0,
    "REPORTING_FORWARD_MAX_ATTEMPTS": 8,
    "REPORTING_FORWARD_BACKOFF_SECONDS": 30.0,
    "REPORTING_FORWARD_BACKOFF_MAX_SECONDS": 3600.0,
    "REPORTING_FORWARD_STALE_SECONDS": 300,
}


def get(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])
