"""Frozen result records for API v2 and the Marketing API (contract §0a, §3, §7).

Every record is parsed leniently by `socketlabs.parsing.build`: keys match in any case,
unknown keys land in `extra`, unreadable values fall back to the default. Secrets
(a new key's `secret`, DKIM private keys, webhook secret keys) are kept out of `repr()`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from socketlabs.parsing import (
    as_addresses,
    as_bool,
    as_date,
    as_datetime,
    as_float,
    as_int,
    as_str,
    extra_field,
    f,
    records,
    tuple_of,
)


@dataclass(frozen=True)
class Page[T]:
    """One page of a list answer: `{data: [...], total}` (v2) or `{collection, totalCount}` (marketing)."""

    items: tuple[T, ...]
    total: int | None
    page_number: int | None = None  # v2, 0-based
    page_size: int | None = None
    index: int | None = None  # marketing, 0-based record offset

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


# --- servers, keys, credentials -----------------------------------------------------------------
@dataclass(frozen=True)
class ServerInfo:
    server_id: int = f(0, conv=as_int)
    name: str = f("", conv=as_str)
    account_id: int | None = f(conv=as_int)
    status: str = f("", conv=as_str)
    extra: dict[str, Any] = extra_field()


class KeyPermission(enum.StrEnum):
    INJECTION = "injection"
    API = "api"


@dataclass(frozen=True)
class ApiKey:
    id: str = f("", conv=as_str)
    name: str = f("", conv=as_str)
    public_part: str = f("", conv=as_str)
    permissions: tuple[str, ...] = f((), conv=tuple_of(str))
    created_on: datetime | None = f(conv=as_datetime)
    last_used_on: datetime | None = f(conv=as_datetime)
    # Only in the answer to a create, and only that once: store it, it cannot be read again.
    secret: str | None = f(conv=as_str, secret=True)
    extra: dict[str, Any] = extra_field()


@dataclass(frozen=True)
class InjectionCredentials:
    api_key: str = f("", conv=as_str, secret=True)
    gateway: str = f("", conv=as_str)  # the Injection API URL to use with this key
    server_id: int | None = f(conv=as_int)
    extra: dict[str, Any] = extra_field()


# --- domains -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SendingDomain:
    domain: str = f("", conv=as_str)
    status: str = f("", conv=as_str)  # Pending | Verified | Failed (others kept as they come)
    verification_record: str | None = f(conv=as_str)
    created_on: datetime | None = f(conv=as_datetime)
    verified_on: datetime | None = f(conv=as_datetime)
    extra: dict[str, Any] = extra_field()


@dataclass(frozen=True)
class DkimRecord:
    domain: str = f("", conv=as_str)
    selector: str = f("", conv=as_str)
    dns_host_name: str | None = f(conv=as_str)
    dns_record: str | None = f(conv=as_str)
    public_key: str | None = f(conv=as_str)
    validation_status: str | None = f(conv=as_str)
    # Only from `generate`; SocketLabs never shows a stored private key again.
    private_key: str | None = f(conv=as_str, secret=True)
    extra: dict[str, Any] = extra_field()


@dataclass(frozen=True)
class BounceDomain:
    domain: str = f("", conv=as_str)
    is_default: bool = f(False, conv=as_bool)
    validation_status: str | None = f(conv=as_str)
    created_on: datetime | None = f(conv=as_datetime)
    updated_on: datetime | None = f(conv=as_datetime)
    extra: dict[str, Any] = extra_field()


@dataclass(frozen=True)
class TrackingDomain:
    domain: str = f("", conv=as_str)
    opens_enabled: bool | None = f(conv=as_bool)
    clicks_enabled: bool | None = f(conv=as_bool)
    unsubscribes_enabled: bool | None = f(conv=as_bool)
    automatic_tracking_enabled: bool | None = f(conv=as_bool)
    google_analytics_enabled: bool | None = f(conv=as_bool)
    https_enabled: bool | None = f(conv=as_bool)
    is_default: bool | None = f(conv=as_bool)
    validation_status: str | None = f(conv=as_str)
    extra: dict[str, Any] = extra_field()


# --- suppressions --------------------------------------------------------------------------------
class SuppressionReason(enum.StrEnum):
    FAILURE = "Failure"
    BOUNCE = "Bounce"
    UNSUBSCRIBE = "Unsubscribe"
    COMPLAINT = "Complaint"
    CUSTOMER_REQUEST = "CustomerRequest"


@dataclass(frozen=True)
class Suppression:
    email_address: str = f("", conv=as_str)
    reason: str = f("", conv=as_str)  # a SuppressionReason value, or whatever new reason SocketLabs sends
    suppression_last_update: datetime | None = f(conv=as_datetime)
    source: str | None = f(conv=as_str)
    extra: dict[str, Any] = extra_field()


# --- reports -------------------------------------------------------------------------------------
class ReportKind(enum.StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"
    COMPLAINTS = "complaints"
    TRACKING = "tracking"


class GroupBy(enum.StrEnum):
    DAY = "day"
    HOUR = "hour"
    DOMAIN = "domain"
    MAILING_ID = "mailingId"


@dataclass(frozen=True)
class ReportOverview:
    total: int = f(0, conv=as_int)
    unique: int | None = f(conv=as_int)
    rate: float | None = f(conv=as_float)
    extra: dict[str, Any] = extra_field()


@dataclass(frozen=True)
class AggregateRow:
    key: str = f("", conv=as_str)  # a day, an hour, a domain or a mailing id, as grouped
    count: int = f(0, conv=as_int)
    extra: dict[str, Any] = extra_field()


@dataclass(frozen=True)
class ReportEvent:
    """A row of a `…/list` report: the event-webhook fields (§5) in camelCase; the rest in `extra`."""

    type: str = f("", conv=as_str)
    date_time: datetime | None = f(conv=as_datetime)
    address: str = f("", conv=as_str)
    from_address: str | None = f(conv=as_str)
    mailing_id: str | None = f(conv=as_str)
    message_id: str | None = f(conv=as_str)
    failure_type: str | None = f(conv=as_str)
    failure_code: int | None = f(conv=as_int)
    reason: str | None = f(conv=as_str)
    tracking_type: str | None = f(conv=as_str)
    url: str | None = f(conv=as_str)
    extra: dict[str, Any] = extra_field()


@dataclass(frozen=True)
class MessageEvent:
    type: str = f("", conv=as_str)
    date_time: datetime | None = f(conv=as_datetime)
    extra: dict[str, Any] = extra_field()


@dataclass(frozen=True)
class MessageDetail:
    """R1: one message with its events. The real schema is unpublished; the rest is in `extra`."""

    message_id: str | None = f(conv=as_str)
    mailing_id: str | None = f(conv=as_str)
    from_address: str | None = f(key="from", conv=as_str)
    # The sandbox sends [{emailAddress, friendlyName}]; a plain comma-separated string is read too.
    to: tuple[str, ...] = f((), conv=as_addresses)
    subject: str | None = f(conv=as_str)
    status: str | None = f(conv=as_str)
    queued_time: datetime | None = f(conv=as_datetime)
    events: tuple[MessageEvent, ...] = f((), conv=records(MessageEvent))
    extra: dict[str, Any] = extra_field()


@dataclass(frozen=True)
class RecipientSearchRow:
    """R2: `{from, to, subject, status, statusDate, …}`."""

    from_address: str | None = f(key="from", conv=as_str)
    to: str = f("", conv=as_str)
    subject: str | None = f(conv=as_str)
    status: str = f("", conv=as_str)
    status_date: datetime | None = f(conv=as_datetime)
    message_id: str | None = f(conv=as_str)
    mailing_id: str | None = f(conv=as_str)
    extra: dict[str, Any] = extra_field()


@dataclass(frozen=True)
class StreamScorePoint:
    day: date | None = f(key="date", conv=as_date)
    score: int | None = f(conv=as_int)
    extra: dict[str, Any] = extra_field()


@dataclass(frozen=True)
class StreamScore:
    score: int | None = f(conv=as_int)
    rating: str | None = f(conv=as_str)  # Good | Fair | Poor
    history: tuple[StreamScorePoint, ...] = f((), conv=records(StreamScorePoint))
    extra: dict[str, Any] = extra_field()


# --- push endpoints ------------------------------------------------------------------------------
@dataclass(frozen=True)
class EventWebhook:
    id: str = f("", conv=as_str)
    url: str = f("", conv=as_str)
    events: tuple[str, ...] = f((), conv=tuple_of(str))
    format: str | None = f(conv=as_str)  # json | form
    status: str | None = f(conv=as_str)
    created_on: datetime | None = f(conv=as_datetime)
    secret_key: str | None = f(conv=as_str, secret=True)
    extra: dict[str, Any] = extra_field()


@dataclass(frozen=True)
class InboundParseEndpoint:
    id: str = f("", conv=as_str)
    domain_or_address: str = f("", conv=as_str)
    url: str = f("", conv=as_str)
    status: str | None = f(conv=as_str)
    created_on: datetime | None = f(conv=as_datetime)
    secret_key: str | None = f(conv=as_str, secret=True)
    validation_key: str | None = f(conv=as_str, secret=True)
    extra: dict[str, Any] = extra_field()


# --- marketing -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CustomFieldValue:
    name: str = f("", conv=as_str)
    value: str | None = f(conv=as_str)
    extra: dict[str, Any] = extra_field()


@dataclass(frozen=True)
class Contact:
    id: int | None = f(conv=as_int)
    email_address: str = f("", conv=as_str)
    first_name: str | None = f(conv=as_str)
    last_name: str | None = f(conv=as_str)
    custom_fields: tuple[CustomFieldValue, ...] = f((), conv=records(CustomFieldValue))
    extra: dict[str, Any] = extra_field()

    def custom_field(self, name: str) -> str | None:
        """A custom field's value by name (any case), or None."""
        folded = name.casefold()
        for item in self.custom_fields:
            if item.name.casefold() == folded:
                return item.value
        return None


@dataclass(frozen=True)
class ContactList:
    id: int | None = f(conv=as_int)
    name: str = f("", conv=as_str)
    extra: dict[str, Any] = extra_field()


@dataclass(frozen=True)
class CustomField:
    id: int | None = f(conv=as_int)
    name: str = f("", conv=as_str)
    # §7 is silent on the shape: the sandbox sends `dataType`; `type` is read as well.
    type: str | None = f(key=("dataType", "type"), conv=as_str)
    extra: dict[str, Any] = extra_field()
