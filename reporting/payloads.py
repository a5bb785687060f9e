"""Pure functions over SocketLabs push bodies: decode, canonicalise, and type events (contract §5, §6).

No Django models here, so the receiver's hot path and the property tests use the same code.
Field names are matched case-insensitively (contract §8.2); unknown fields are kept.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl

SECRET_FIELD = "secretkey"
MAX_FORM_FIELDS = 1000


class PayloadError(ValueError):
    """The body or one of its fields cannot be understood; the message says which and why."""


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON and PostgreSQL's jsonb refuses them.
    raise PayloadError(f"{name} is not a valid JSON value.")


def _strip_nul(value: Any) -> Any:
    """PostgreSQL cannot store U+0000 nor unpaired surrogates (JSON "\\ud800"): replace them, don't fail."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_strip_nul(k): _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    return value


def decode_body(body: bytes, content_type: str) -> tuple[dict[str, Any], str]:
    """Return (fields, "json" | "form"). Legacy endpoints post application/x-www-form-urlencoded."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    is_form = media_type == "application/x-www-form-urlencoded" or (
        media_type != "application/json" and body.lstrip()[:1] != b"{"
    )
    if is_form:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadError("The form body is not valid UTF-8.") from exc
        try:
            pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
        except ValueError as exc:
            raise PayloadError(f"The form body cannot be read: {exc}.") from exc
        if not pairs:
            raise PayloadError("The body is empty: expected a JSON object or form fields.")
        fields: dict[str, Any] = dict(pairs)
        if "\x00" in text or "%00" in text:
            fields = _strip_nul(fields)
        return fields, "form"
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except PayloadError:
        raise
    except (ValueError, RecursionError) as exc:
        raise PayloadError(f"The body is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise PayloadError("The body must be one JSON object (one event per request).")
    if b"\\u0000" in body or b"\\ud" in body or b"\\uD" in body:
        data = _strip_nul(data)
    return data, "json"


def field(data: dict[str, Any], name: str, default: Any = None) -> Any:
    """Case-insensitive lookup of a top-level field; `name` is given in lower case."""
    if name in data:
        return data[name]
    for key, value in data.items():
        if key.lower() == name:
            return value
    return default


def without_secret(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k.lower() != SECRET_FIELD}


def canonical_json(data: dict[str, Any]) -> str:
    """Key order and whitespace do not matter: sorted keys, no spaces."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def dedup_key(server_id: int, canonical: str, extra: str = "") -> str:
    """sha256 over the Mailroom server, an optional discriminator and the canonical body minus SecretKey."""
    digest = hashlib.sha256()
    digest.update(f"{server_id}\n{extra}\n".encode())
    digest.update(canonical.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def is_validation(data: dict[str, Any]) -> bool:
    value = field(data, "type")
    return isinstance(value, str) and value.strip().lower() == "validation"


# --- Typed events -------------------------------------------------------------------------

TYPE_MAP = {
    "queued": "queued",
    "deferred": "deferred",
    "delivered": "delivered",
    "failed": "failed",
    "complaint": "complaint",
}
# Strings in JSON, integers in legacy form posts (contract §5.3).
TRACKING_MAP = {
    "click": "click",
    "0": "click",
    "open": "open",
    "1": "open",
    "unsubscribe": "unsubscribe",
    "2": "unsubscribe",
}
FAILURE_TYPE_MAP = {
    "temporary": "temporary",
    "0": "temporary",
    "permanent": "permanent",
    "1": "permanent",
    "suppressed": "suppressed",
    "2": "suppressed",
}
# Fields that become columns; everything else (ServerId, Data, Response, RemoteMta, new fields…) goes to `extra`.
COLUMN_FIELDS = frozenset(
    {SECRET_FIELD, "type", "datetime", "address", "messageid", "mailingid", "reason", "url", "useragent", "clientip"}
)
_LEGACY_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    type: str
    occurred_at: datetime
    address: str
    message_id: str
    mailing_id: str
    failure_type: str
    failure_code: int | None
    reason: str
    url: str
    user_agent: str
    client_ip: str
    extra: dict[str, Any]

    @property
    def recipient_domain(self) -> str:
        return self.address.rpartition("@")[2]

    def day(self, tz: tzinfo) -> date:
        return self.occurred_at.astimezone(tz).date()


def parse_datetime_field(value: Any) -> datetime:
    """ISO-8601 (JSON; up to 7 fractional digits), RFC-1123 (legacy form) or `yyyy-mm-dd hh:mm:ss`; UTC if naive."""
    if not isinstance(value, str) or not value.strip():
        raise PayloadError(f"DateTime {value!r} is not a date and time.")
    text = value.strip()
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        if _LEGACY_TIME.match(text):
            try:
                parsed = datetime.fromisoformat(text.replace(" ", "T"))
            except ValueError:
                parsed = None
        if parsed is None:
            try:
                parsed = parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError) as exc:
                raise PayloadError(f"DateTime {value!r} is not ISO-8601 or RFC-1123.") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _text(data: dict[str, Any], name: str, label: str, max_length: int | None = None) -> str:
    value = field(data, name)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        raise PayloadError(f"{label} must be text, not {type(value).__name__}.")
    text = str(value).strip()
    if max_length is not None and len(text) > max_length:
        raise PayloadError(f"{label} is {len(text)} characters long; at most {max_length} are stored.")
    return text


def _code(value: Any) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 2**31 else None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
        return number if number < 2**31 else None
    return None


def parse_event(data: dict[str, Any], *, received_at: datetime) -> ParsedEvent | None:
    """Type one raw event. None for a Validation ping (nothing to record); PayloadError if not understood."""
    raw_type = field(data, "type")
    if not isinstance(raw_type, str) or not raw_type.strip():
        raise PayloadError("The event has no Type.")
    type_key = raw_type.strip().lower()
    if type_key == "validation":
        return None
    if type_key == "tracking":
        tracking = field(data, "trackingtype")
        event_type = TRACKING_MAP.get(str(tracking).strip().lower()) if tracking is not None else None
        if event_type is None:
            raise PayloadError(
                f"Tracking event with unknown TrackingType {tracking!r} (expected Click, Open or Unsubscribe)."
            )
    else:
        mapped = TYPE_MAP.get(type_key)
        if mapped is None:
            raise PayloadError(f"Unknown event Type {raw_type!r}.")
        event_type = mapped

    when = field(data, "datetime")
    occurred_at = received_at if when in (None, "") else parse_datetime_field(when)

    failure_type = ""
    failure_code: int | None = None
    consumed = set(COLUMN_FIELDS)
    if type_key == "tracking":
        consumed.add("trackingtype")
    if event_type == "failed":
        raw_failure_type = field(data, "failuretype")
        if raw_failure_type not in (None, ""):
            failure_type = FAILURE_TYPE_MAP.get(str(raw_failure_type).strip().lower(), "")
        if failure_type or raw_failure_type in (None, ""):
            consumed.add("failuretype")
        raw_code = field(data, "failurecode")
        failure_code = _code(raw_code)
        if failure_code is not None or raw_code in (None, ""):
            consumed.add("failurecode")
    # Whatever was not turned into a column is kept verbatim, so nothing SocketLabs adds is lost.
    extra = {k: v for k, v in data.items() if k.lower() not in consumed}

    return ParsedEvent(
        type=event_type,
        occurred_at=occurred_at,
        address=_text(data, "address", "Address", 320).lower(),
        message_id=_text(data, "messageid", "MessageId", 255),
        mailing_id=_text(data, "mailingid", "MailingId", 255),
        failure_type=failure_type,
        failure_code=failure_code,
        reason=_text(data, "reason", "Reason"),
        url=_text(data, "url", "Url"),
        user_agent=_text(data, "useragent", "UserAgent"),
        client_ip=_text(data, "clientip", "ClientIp", 45),
        extra=extra,
    )
