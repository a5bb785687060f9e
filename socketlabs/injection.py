"""Injection API messages and results (contract §2, §9b).

Requests are written with PascalCase keys and `ServerId` as an integer. A 61-character
`<20 chars>.<40 chars>` key goes in `Authorization: Bearer` and not in the body; any other
key goes in the body as `ApiKey`.

Results are parsed leniently: keys in any case, `MessageResults: null` accepted, an
`ErrorCode` this client does not know becomes `SendResult.UNKNOWN` with the raw string kept,
and the per-address results (which the official Python SDK drops) are surfaced.
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from socketlabs import errors
from socketlabs.parsing import as_bool, as_int, ci_get

BULK_ADDRESS_TOKEN = "%%DeliveryAddress%%"
BULK_NAME_TOKEN = "%%RecipientName%%"


class SendResult(enum.StrEnum):
    """Every `ErrorCode` the Injection API is known to send (§2.7), plus UNKNOWN for anything new."""

    SUCCESS = "Success"
    WARNING = "Warning"
    UNKNOWN_ERROR = "UnknownError"
    TIMEOUT = "Timeout"
    INTERNAL_ERROR = "InternalError"
    INVALID_AUTHENTICATION = "InvalidAuthentication"
    ACCOUNT_DISABLED = "AccountDisabled"
    OVER_QUOTA = "OverQuota"
    TOO_MANY_MESSAGES = "TooManyMessages"
    NO_MESSAGES = "NoMessages"
    INVALID_DATA = "InvalidData"
    TOO_MANY_ERRORS = "TooManyErrors"
    MESSAGE_TOO_LARGE = "MessageTooLarge"
    TOO_MANY_RECIPIENTS = "TooManyRecipients"
    NO_VALID_RECIPIENTS = "NoValidRecipients"
    INVALID_ADDRESS = "InvalidAddress"
    INVALID_ATTACHMENT = "InvalidAttachment"
    EMPTY_MESSAGE = "EmptyMessage"
    EMPTY_SUBJECT = "EmptySubject"
    INVALID_FROM = "InvalidFrom"
    EMPTY_TO_ADDRESS = "EmptyToAddress"
    NO_VALID_BODY_PARTS = "NoValidBodyParts"
    INVALID_TEMPLATE_ID = "InvalidTemplateId"
    TEMPLATE_HAS_NO_CONTENT = "TemplateHasNoContent"
    MESSAGE_BODY_CONFLICT = "MessageBodyConflict"
    INVALID_MERGE_DATA = "InvalidMergeData"
    METADATA_OR_TAGS_ARE_TOO_LARGE = "MetadataOrTagsAreTooLarge"
    INVALID_FROM_ADDRESS = "InvalidFromAddress"  # seen in the wild, in no SDK enum
    UNKNOWN = "Unknown"  # a code this client does not know: see the result's `raw_error_code`

    @classmethod
    def parse(cls, raw: object) -> SendResult:
        if raw is None:
            return cls.UNKNOWN
        return _CODES.get(str(raw).strip().casefold(), cls.UNKNOWN)


_CODES = {member.value.casefold(): member for member in SendResult if member is not SendResult.UNKNOWN}


# --- request side --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Address:
    email_address: str
    friendly_name: str | None = None

    def to_json(self) -> dict[str, str]:
        data = {"EmailAddress": self.email_address}
        if self.friendly_name:
            data["FriendlyName"] = self.friendly_name
        return data


AddressLike = Address | str | tuple[str, str]
Pairs = Mapping[str, str] | Sequence[tuple[str, str]]


def as_address(value: AddressLike) -> Address:
    """`Address`, a bare e-mail address, or an `(email, name)` pair."""
    if isinstance(value, Address):
        return value
    if isinstance(value, str):
        return Address(value)
    email, name = value
    return Address(email, name or None)


def _pairs(value: Pairs | None) -> list[tuple[str, str]]:
    if not value:
        return []
    items = value.items() if isinstance(value, Mapping) else value
    return [(str(k), str(v)) for k, v in items]


@dataclass(frozen=True)
class Attachment:
    """`content` is the raw bytes; the client base64-encodes them."""

    name: str
    content: bytes
    content_type: str = "application/octet-stream"
    content_id: str | None = None  # set for inline images referenced as cid:<content_id>
    custom_headers: Pairs = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "Name": self.name,
            "Content": base64.b64encode(self.content).decode("ascii"),
            "ContentType": self.content_type,
        }
        if self.content_id:
            data["ContentId"] = self.content_id
        headers = _pairs(self.custom_headers)
        if headers:
            data["CustomHeaders"] = [{"Name": k, "Value": v} for k, v in headers]
        return data


@dataclass(frozen=True, kw_only=True)
class _MessageParts:
    from_address: AddressLike
    subject: str
    reply_to: AddressLike | None = None
    text_body: str | None = None
    html_body: str | None = None
    amp_body: str | None = None
    api_template: int | None = None
    mailing_id: str | None = None
    message_id: str | None = None
    charset: str | None = None
    custom_headers: Pairs = ()
    attachments: Sequence[Attachment] = ()
    metadata: Pairs = ()
    tags: Sequence[str] = ()

    def _common_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"From": as_address(self.from_address).to_json()}
        if self.reply_to:
            data["ReplyTo"] = as_address(self.reply_to).to_json()
        data["Subject"] = self.subject
        for key, value in (
            ("TextBody", self.text_body),
            ("HtmlBody", self.html_body),
            ("AmpBody", self.amp_body),
            ("MailingId", self.mailing_id),
            ("MessageId", self.message_id),
            ("CharSet", self.charset),
        ):
            if value:
                data[key] = value
        if self.api_template is not None:
            data["ApiTemplate"] = str(int(self.api_template))
        headers = _pairs(self.custom_headers)
        if headers:
            data["CustomHeaders"] = [{"Name": k, "Value": v} for k, v in headers]
        if self.attachments:
            data["Attachments"] = [a.to_json() for a in self.attachments]
        metadata = _pairs(self.metadata)
        if metadata:
            data["Metadata"] = [{"Key": k, "Value": v} for k, v in metadata]
        if self.tags:
            data["Tags"] = [str(t) for t in self.tags]
        return data

    def _problems(self, index: int) -> list[errors.ErrorDetail]:
        where = f"Messages[{index}]"
        problems = []
        if not as_address(self.from_address).email_address.strip():
            problems.append(errors.ErrorDetail("InvalidFrom", "A From address is required.", f"{where}.From"))
        if not self.subject or not self.subject.strip():
            problems.append(errors.ErrorDetail("EmptySubject", "A subject is required.", f"{where}.Subject"))
        if not (self.text_body or self.html_body or self.api_template is not None):
            problems.append(
                errors.ErrorDetail("EmptyMessage", "A text body, an HTML body or a template is required.", where)
            )
        return problems


@dataclass(frozen=True, kw_only=True)
class BasicMessage(_MessageParts):
    """One message delivered as is to every listed recipient."""

    to: Sequence[AddressLike] = ()
    cc: Sequence[AddressLike] = ()
    bcc: Sequence[AddressLike] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"To": [as_address(a).to_json() for a in self.to]}
        if self.cc:
            data["Cc"] = [as_address(a).to_json() for a in self.cc]
        if self.bcc:
            data["Bcc"] = [as_address(a).to_json() for a in self.bcc]
        data.update(self._common_json())
        return data

    def _problems(self, index: int) -> list[errors.ErrorDetail]:
        problems = super()._problems(index)
        if not self.to:
            problems.append(
                errors.ErrorDetail("EmptyToAddress", "At least one To address is required.", f"Messages[{index}].To")
            )
        return problems


@dataclass(frozen=True)
class BulkRecipient:
    email_address: str
    friendly_name: str | None = None
    merge_fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class BulkMessage(_MessageParts):
    """One message expanded per recipient: `%%Field%%` tokens filled from merge data (§2.4).

    `To` is `%%DeliveryAddress%%`; each recipient becomes a `MergeData.PerMessage` row with its
    own fields plus `DeliveryAddress` (and `RecipientName` when it has a name). Per-recipient
    values override `global_merge_fields` of the same name.
    """

    recipients: Sequence[BulkRecipient | str] = ()
    global_merge_fields: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        rows = []
        for recipient in self.recipients:
            r = BulkRecipient(recipient) if isinstance(recipient, str) else recipient
            row = [{"Field": str(k), "Value": str(v)} for k, v in r.merge_fields.items()]
            row.append({"Field": "DeliveryAddress", "Value": r.email_address})
            if r.friendly_name:
                row.append({"Field": "RecipientName", "Value": r.friendly_name})
            rows.append(row)
        data: dict[str, Any] = {"To": [{"EmailAddress": BULK_ADDRESS_TOKEN, "FriendlyName": BULK_NAME_TOKEN}]}
        data.update(self._common_json())
        merge: dict[str, Any] = {"PerMessage": rows}
        if self.global_merge_fields:
            merge["Global"] = [{"Field": str(k), "Value": str(v)} for k, v in self.global_merge_fields.items()]
        data["MergeData"] = merge
        return data

    def _problems(self, index: int) -> list[errors.ErrorDetail]:
        problems = super()._problems(index)
        if not self.recipients:
            problems.append(
                errors.ErrorDetail(
                    "NoValidRecipients", "At least one recipient is required.", f"Messages[{index}].MergeData"
                )
            )
        return problems


Message = BasicMessage | BulkMessage


def is_bearer_key(key: str) -> bool:
    """The new key shape: 20 characters, a dot, 40 characters (61 in all)."""
    return len(key) == 61 and key[20] == "." and key.count(".") == 1


def build_request(
    *, server_id: int, api_key: str, messages: Sequence[Message]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The request body and auth headers; raises ValidationError (no HTTP call) on a bad message."""
    if not messages:
        raise errors.ValidationError(
            "An injection needs at least one message.",
            error_type="NoMessages",
            errors=[errors.ErrorDetail("NoMessages", "An injection needs at least one message.", "Messages")],
        )
    problems = [p for i, m in enumerate(messages) for p in m._problems(i)]
    if problems:
        raise errors.ValidationError(
            "; ".join(f"{p.field}: {p.message}" for p in problems), error_type=problems[0].error_type, errors=problems
        )
    body: dict[str, Any] = {"ServerId": int(server_id)}
    headers: dict[str, str] = {}
    if is_bearer_key(api_key):
        headers["Authorization"] = f"Bearer {api_key}"
    else:
        body["ApiKey"] = api_key
    body["Messages"] = [m.to_json() for m in messages]
    return body, headers


# --- result side ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class AddressResult:
    email_address: str
    accepted: bool
    error_code: SendResult
    raw_error_code: str
    extra: dict[str, Any] = field(default_factory=dict, hash=False, repr=False)


@dataclass(frozen=True)
class MessageResult:
    index: int | None  # position in the request's Messages
    error_code: SendResult
    raw_error_code: str
    address_results: tuple[AddressResult, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, hash=False, repr=False)


@dataclass(frozen=True)
class InjectionResult:
    error_code: SendResult
    raw_error_code: str
    transaction_receipt: str | None = None
    message_results: tuple[MessageResult, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, hash=False, repr=False)

    @property
    def ok(self) -> bool:
        """Everything was accepted."""
        return self.error_code is SendResult.SUCCESS

    @property
    def accepted_any(self) -> bool:
        """At least some of it was accepted (Success, or Warning with problems listed)."""
        return self.error_code in (SendResult.SUCCESS, SendResult.WARNING)

    def for_message(self, index: int) -> MessageResult | None:
        return next((m for m in self.message_results if m.index == index), None)

    def rejected_addresses(self) -> tuple[AddressResult, ...]:
        return tuple(a for m in self.message_results for a in m.address_results if not a.accepted)


def _split_known(data: Mapping[str, Any], known: set[str]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if not (isinstance(k, str) and k.casefold() in known)}


def _code(data: Mapping[str, Any]) -> tuple[SendResult, str]:
    raw = ci_get(data, "ErrorCode")
    return SendResult.parse(raw), "" if raw is None else str(raw)


def _address_result(data: Any) -> AddressResult | None:
    if not isinstance(data, Mapping):
        return None
    code, raw = _code(data)
    try:
        accepted = bool(as_bool(ci_get(data, "Accepted")))
    except (TypeError, ValueError):
        accepted = False
    return AddressResult(
        email_address=str(ci_get(data, "EmailAddress") or ""),
        accepted=accepted,
        error_code=code,
        raw_error_code=raw,
        extra=_split_known(data, {"emailaddress", "accepted", "errorcode"}),
    )


def _message_result(data: Any) -> MessageResult | None:
    if not isinstance(data, Mapping):
        return None
    code, raw = _code(data)
    try:
        index = as_int(ci_get(data, "Index"))
    except (TypeError, ValueError):
        index = None
    addresses = ci_get(data, "AddressResults")
    parsed = [_address_result(a) for a in addresses] if isinstance(addresses, list) else []
    return MessageResult(
        index=index,
        error_code=code,
        raw_error_code=raw,
        address_results=tuple(a for a in parsed if a is not None),
        extra=_split_known(data, {"index", "errorcode", "addressresults"}),
    )


def parse_result(data: Any) -> InjectionResult:
    """Never raises on odd input: an answer without ErrorCode is UNKNOWN with raw ""."""
    if not isinstance(data, Mapping):
        return InjectionResult(error_code=SendResult.UNKNOWN, raw_error_code="", extra={"body": data})
    code, raw = _code(data)
    results = ci_get(data, "MessageResults")
    parsed = [_message_result(m) for m in results] if isinstance(results, list) else []
    receipt = ci_get(data, "TransactionReceipt")
    return InjectionResult(
        error_code=code,
        raw_error_code=raw,
        transaction_receipt=str(receipt) if receipt else None,
        message_results=tuple(m for m in parsed if m is not None),
        extra=_split_known(data, {"errorcode", "messageresults", "transactionreceipt"}),
    )
