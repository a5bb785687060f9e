"""What every API v2 endpoint of the sandbox shares: key auth, envelopes, errors, paging, the request log.

Contract: ../shared/socketlabs-api.md §0a (v2 errors), §3.1 (conventions), §8.2 (case-insensitive keys).

Decisions where the contract is silent (documented in the sandbox report):
* errorType values: Unauthorized (401), Forbidden (403), FeatureNotEnabled (403, plan),
  NotFound (404), MethodNotAllowed (405), Conflict (409), ValidationError (422, one per field),
  BadRequest (400, body not JSON), TooManyRequests (429), InternalError (500).
* Keys belong to one server: a key opens only `/servers/{its server}`; any other server id is 403
  (whether it exists or not, so a key cannot probe for other servers).
* Every success is HTTP 200, creates included; DELETE answers the removed object in `data`.
* `SandboxServer.rate_limit_per_minute`, when set, also limits API v2 calls per server (429 + Retry-After).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Any, cast

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.utils import timezone

from sandbox.casefold import CIMap, query_get, wrap
from sandbox.gate import sandbox_api
from sandbox.models import ALNUM, Permission, SandboxApiKey, SandboxRequestLog, SandboxServer, key_hash

log = logging.getLogger(__name__)

EMAIL_RE = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50


# --- errors -----------------------------------------------------------------
@dataclass
class ApiError(Exception):
    """Raised anywhere inside an endpoint; becomes the §0a error body."""

    status: int
    errors: list[tuple[str, str]]
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return "; ".join(message for _, message in self.errors)


def unauthorized(message: str = "A valid API key is required.") -> ApiError:
    return ApiError(401, [("Unauthorized", message)])


def forbidden(message: str) -> ApiError:
    return ApiError(403, [("Forbidden", message)])


def not_found(message: str) -> ApiError:
    return ApiError(404, [("NotFound", message)])


def conflict(message: str) -> ApiError:
    return ApiError(409, [("Conflict", message)])


def bad_request(message: str) -> ApiError:
    return ApiError(400, [("BadRequest", message)])


class Invalid:
    """Collects one message per bad field, then raises a single 422."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []

    def add(self, field_name: str, message: str) -> None:
        self.errors.append(("ValidationError", f"{field_name}: {message}"))

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ApiError(422, self.errors)


def error_body(errors: list[tuple[str, str]]) -> dict[str, Any]:
    return {"data": None, "errors": [{"errorType": kind, "message": message} for kind, message in errors]}


def error_response(exc: ApiError) -> JsonResponse:
    response = JsonResponse(error_body(exc.errors), status=exc.status)
    for name, value in exc.headers.items():
        response[name] = value
    return response


# --- envelopes ----------------------------------------------------------------
def ok(data: Any) -> JsonResponse:
    return JsonResponse({"data": data})


def ok_list(items: list[Any], total: int) -> JsonResponse:
    return JsonResponse({"data": items, "total": total})


def iso(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with a `Z`, as the v2 API writes timestamps."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def camel(name: str) -> str:
    """`FailureCode` → `failureCode` (webhook PascalCase to v2 camelCase)."""
    return name[:1].lower() + name[1:] if name else name


def camel_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {camel(str(k)): camel_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel_keys(v) for v in value]
    return value


# --- request parsing ----------------------------------------------------------
def json_body(request: HttpRequest) -> CIMap:
    """The JSON object sent, with case-insensitive keys; an empty body is an empty object.

    A form-encoded body is read as flat fields: clients that put everything in the query string
    (S2) sometimes still send an empty form, which must not be a 400.
    """
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return CIMap(request.POST.dict())
    if not request.body.strip():
        return CIMap()
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request("The request body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.")
    return CIMap(data)


def json_array_body(request: HttpRequest) -> list[Any]:
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request("The request body is not valid JSON.") from exc
    if not isinstance(data, list):
        raise bad_request("The request body must be a JSON array.")
    return list(wrap(data))


def valid_email(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 320 and bool(EMAIL_RE.match(value))


def valid_domain(value: Any) -> bool:
    return isinstance(value, str) and bool(DOMAIN_RE.match(value.lower()))


@dataclass(frozen=True)
class Paging:
    size: int
    number: int  # 0-based, as SocketLabs v2 counts pages

    @property
    def offset(self) -> int:
        return self.size * self.number

    def slice(self) -> slice:
        return slice(self.offset, self.offset + self.size)


def _int_param(request: HttpRequest, name: str, default: int, invalid: Invalid, *, minimum: int) -> int:
    raw = query_get(request.GET, name)
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw))
    except ValueError:
        invalid.add(name, f"must be a whole number, got {raw!r}.")
        return default
    if value < minimum:
        invalid.add(name, f"must be at least {minimum}.")
        return default
    return value


def paging(request: HttpRequest, invalid: Invalid, *, default_size: int = DEFAULT_PAGE_SIZE) -> Paging:
    size = _int_param(request, "pageSize", default_size, invalid, minimum=1)
    if size > MAX_PAGE_SIZE:
        invalid.add("pageSize", f"must be at most {MAX_PAGE_SIZE}.")
        size = MAX_PAGE_SIZE
    number = _int_param(request, "pageNumber", 0, invalid, minimum=0)
    return Paging(size=size, number=number)


def sort_direction(request: HttpRequest, invalid: Invalid, *, default: str = "dsc") -> str:
    raw = (query_get(request.GET, "sortDirection") or default).lower()
    if raw not in ("asc", "dsc", "desc"):
        invalid.add("sortDirection", "must be asc or dsc.")
        return default
    return "asc" if raw == "asc" else "dsc"


def sort_order(request: HttpRequest, invalid: Invalid, fields: dict[str, str], *, default: str) -> list[str]:
    """ORDER BY for `sortField`/`sortDirection`; `fields` maps API names (any case) to model fields."""
    raw = query_get(request.GET, "sortField") or default
    lookup = {k.casefold(): v for k, v in fields.items()}
    column = lookup.get(raw.casefold())
    if column is None:
        invalid.add("sortField", f"must be one of {', '.join(fields)}.")
        column = fields[default]
    prefix = "" if sort_direction(request, invalid) == "asc" else "-"
    return [f"{prefix}{column}", f"{prefix}id"]


def parse_day(raw: str) -> date | None:
    """`YYYY-MM-DD` (the v2 query format); a full ISO timestamp is accepted and cut to its day."""
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        return None


def date_range(
    request: HttpRequest, invalid: Invalid, *, default_days: int | None
) -> tuple[datetime | None, datetime | None]:
    """[start of startDate, end of endDate) in UTC; both days are inclusive.

    With `default_days`, a missing range means the last that many days up to today.
    """
    bounds: dict[str, date | None] = {}
    for name in ("startDate", "endDate"):
        raw = query_get(request.GET, name)
        if raw in (None, ""):
            bounds[name] = None
            continue
        parsed = parse_day(str(raw))
        if parsed is None:
            invalid.add(name, f"must be a date as YYYY-MM-DD, got {raw!r}.")
        bounds[name] = parsed
    start, end = bounds["startDate"], bounds["endDate"]
    if default_days is not None:
        today = timezone.now().astimezone(UTC).date()
        end = end or today
        start = start or (end - timedelta(days=default_days - 1))
    if start and end and start > end:
        invalid.add("startDate", "must not be after endDate.")
    start_dt = datetime.combine(start, time.min, tzinfo=UTC) if start else None
    end_dt = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC) if end else None
    return start_dt, end_dt


# --- authentication -------------------------------------------------------------
def raw_key_from(request: HttpRequest) -> str | None:
    """The key from `Authorization: Bearer <key>` or `Basic` (base64 `user:key`, or the raw key as in the docs)."""
    header = request.headers.get("Authorization", "").strip()
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if not value:
        return None
    if scheme.lower() == "bearer":
        return value
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return value
        if ":" in decoded:
            return decoded.split(":", 1)[1]
        return value
    return None


def find_key(raw: str | None) -> SandboxApiKey | None:
    if not raw:
        return None
    return SandboxApiKey.objects.select_related("server", "server__account").filter(key_hash=key_hash(raw)).first()


def touch(key: SandboxApiKey) -> None:
    SandboxApiKey.objects.filter(pk=key.pk).update(last_used_on=timezone.now())


def log_request(request: HttpRequest, *, api: str, server_id: int | None, status: int, error: str = "") -> None:
    SandboxRequestLog.objects.create(
        server_id_value=server_id,
        api=api,
        method=request.method or "",
        path=request.path[:500],
        status_code=status,
        error_code=error[:60],
    )


def over_rate_limit(server: SandboxServer, *, api: str) -> bool:
    if not server.rate_limit_per_minute:
        return False
    since = timezone.now() - timedelta(minutes=1)
    recent = SandboxRequestLog.objects.filter(server_id_value=server.server_id, api=api, created_on__gte=since)
    return recent.count() >= server.rate_limit_per_minute


def gateway_url(request: HttpRequest) -> str:
    """This sandbox's injection URL, on the host the caller used to reach it."""
    from django.urls import reverse

    prefix = reverse("sandbox:v2-servers").removesuffix("api/v2/servers")
    return request.build_absolute_uri(f"{prefix}inject/api/v1/email")


# --- the endpoint wrapper ---------------------------------------------------------
@dataclass
class Call:
    """One authenticated API v2 call: the key used and the server in the path (if any)."""

    request: HttpRequest
    key: SandboxApiKey
    server: SandboxServer | None
    kwargs: dict[str, Any]

    @cached_property
    def body(self) -> CIMap:
        return json_body(self.request)

    def q(self, name: str, default: str | None = None) -> str | None:
        return query_get(self.request.GET, name, default)

    @property
    def srv(self) -> SandboxServer:
        assert self.server is not None, "endpoint declared without a server"
        return self.server


Handler = Callable[[Call], HttpResponseBase]


def _authorize(request: HttpRequest, server_id: int | None) -> tuple[SandboxApiKey, SandboxServer | None]:
    key = find_key(raw_key_from(request))
    if key is None:
        raise unauthorized()
    if "api" not in key.permissions:
        raise forbidden("This API key does not have the SocketLabs API permission.")
    if server_id is None:
        return key, None
    if key.server.server_id != server_id:
        raise forbidden(f"This API key may not access server {server_id}.")
    return key, key.server


def v2_endpoint(*, server: bool = True, **handlers: Handler) -> Callable[..., HttpResponseBase]:
    """A view for one API v2 path: method dispatch, auth, plan/rate checks, errors, logging.

    `handlers` are keyed by HTTP method (GET=..., POST=...).
    """
    allowed = {method.upper(): handler for method, handler in handlers.items()}

    @sandbox_api
    def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        server_id: int | None = kwargs.pop("server_id", None)
        if server_id is not None:
            server_id = int(server_id)
        status, error = 500, ""
        try:
            key, srv = _authorize(request, server_id if server else None)
            handler = allowed.get(request.method or "")
            if handler is None:
                raise ApiError(405, [("MethodNotAllowed", f"{request.method} is not allowed on this path.")])
            if srv is not None and over_rate_limit(srv, api="v2"):
                raise ApiError(429, [("TooManyRequests", "Rate limit reached; retry later.")], {"Retry-After": "60"})
            touch(key)
            result = handler(Call(request=request, key=key, server=srv, kwargs=kwargs))
            status = result.status_code
            # The gate types views as returning HttpResponse; the CSV download streams instead.
            return cast(HttpResponse, result)
        except ApiError as exc:
            status, error = exc.status, exc.errors[0][0] if exc.errors else ""
            response = error_response(exc)
            if exc.status == 405:
                response["Allow"] = ", ".join(sorted(allowed))
            return response
        except Exception:
            receipt = str(uuid.uuid4())
            log.exception("sandbox v2 internal error %s", receipt)
            status, error = 500, "InternalError"
            body = error_body([("InternalError", "The sandbox had an internal error.")])
            body["transactionReceipt"] = receipt
            return JsonResponse(body, status=500)
        finally:
            log_request(request, api="v2", server_id=server_id, status=status, error=error)

    return view


@sandbox_api
def v2_not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Unknown paths under /api/v2 still answer JSON (clients parse every body)."""
    log_request(request, api="v2", server_id=None, status=404, error="NotFound")
    return error_response(not_found(f"No API v2 endpoint at {request.path}."))


def suppression_plan_required(call: Call) -> None:
    if not call.srv.suppression_enabled:
        raise ApiError(
            403,
            [("FeatureNotEnabled", f"Suppression management is not part of server {call.srv.server_id}'s plan.")],
        )


# --- injection credentials --------------------------------------------------------
def injection_credential(server: SandboxServer) -> str:
    """The server's injection key for `credentials/injection-api`, the same on every call.

    The sandbox keeps only key hashes, so this key is derived from SECRET_KEY and the server id
    (HMAC), and its hash row is created on first use. Deleting it through `api-keys` and asking
    again brings the same key back.
    """
    digest = hmac.new(settings.SECRET_KEY.encode(), f"sandbox-injection:{server.server_id}".encode(), hashlib.sha512)
    chars = "".join(ALNUM[b % len(ALNUM)] for b in digest.digest())
    raw = f"{chars[:20]}.{chars[20:60]}"
    if not SandboxApiKey.objects.filter(key_hash=key_hash(raw)).exists():
        try:
            with transaction.atomic():
                SandboxApiKey.issue(
                    server=server, name="Injection API credentials", permissions=[Permission.INJECTION], raw=raw
                )
        except IntegrityError:
            pass  # a concurrent call created it first
    return raw
