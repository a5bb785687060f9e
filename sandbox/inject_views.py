"""`POST /sandbox/inject/api/v1/email`: the sandbox's Injection API endpoint (contract §2).

The view only decodes and encodes: size check, JSON or XML in, JSON or XML out, a request log
row. Everything else is `sandbox.injection.inject`.
"""

from __future__ import annotations

import json
import logging

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from sandbox import injection, xmlcodec
from sandbox.gate import sandbox_api
from sandbox.tasks import enqueue_dispatch

logger = logging.getLogger(__name__)


def _wants_xml(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "").lower()
    return ("application/xml" in accept or "text/xml" in accept) and "json" not in accept


def _is_xml(request: HttpRequest) -> bool:
    return "xml" in request.headers.get("Content-Type", "").lower()


def _bearer(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _respond(request: HttpRequest, outcome: injection.InjectionOutcome) -> HttpResponse:
    if _wants_xml(request):
        return HttpResponse(
            xmlcodec.dumps(outcome.body()), status=outcome.status, content_type="application/xml; charset=utf-8"
        )
    return HttpResponse(
        json.dumps(outcome.body()), status=outcome.status, content_type="application/json; charset=utf-8"
    )


def _decode(request: HttpRequest, limits: injection.Limits) -> tuple[object, injection.InjectionOutcome | None]:
    """The request body as Python data, or the outcome to answer at once (too large, not parseable)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limits.max_request_bytes:
        return None, injection.top_level("MessageTooLarge")
    # Read the stream directly: `request.body` would stop at DATA_UPLOAD_MAX_MEMORY_SIZE (2 MB),
    # while the Injection API takes requests up to its own limit.
    raw = request.read(limits.max_request_bytes + 1)
    if len(raw) > limits.max_request_bytes:
        return None, injection.top_level("MessageTooLarge")
    try:
        if _is_xml(request):
            return xmlcodec.loads(raw), None
        return json.loads(raw), None
    except (ValueError, UnicodeDecodeError):
        return None, injection.top_level("InvalidData")


@sandbox_api
def inject_email(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    if request.method != "POST":
        response = _respond(request, injection.top_level("InvalidData", status=405))
        response["Allow"] = "POST"
        return response
    limits = injection.Limits.from_settings()
    data, early = _decode(request, limits)
    method = request.method or "POST"
    if early is not None:
        injection.log_request(outcome=early, method=method, path=request.path, now=now)
        return _respond(request, early)
    try:
        # One transaction for the messages, their events and the log row: one commit per request.
        with transaction.atomic():
            outcome = injection.inject(
                data,
                bearer=_bearer(request),
                client=request.headers.get("User-Agent", ""),
                now=now,
                on_commit=enqueue_dispatch,
            )
            injection.log_request(outcome=outcome, method=method, path=request.path, now=now)
    except Exception:  # an answer the SDKs can parse, with a receipt to find the log line
        outcome = injection.internal_error()
        logger.exception("sandbox injection failed (receipt %s)", outcome.transaction_receipt)
        injection.log_request(outcome=outcome, method=method, path=request.path, now=now)
    return _respond(request, outcome)
