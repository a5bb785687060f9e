"""The sandbox's Injection API service: validate, expand merge data, store, plan delivery (contract §2).

The view (`inject_views.py`) decodes the body and encodes the answer; everything between
happens here. The order of checks is the contract's §2.9. Only codes of the PyPI 1.4.4
`SendResult` enum are emitted unless the server asks for strict codes (§9 item 4).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from sandbox import simulation
from sandbox.models import (
    Permission,
    SandboxAccount,
    SandboxApiKey,
    SandboxMessage,
    SandboxRequestLog,
    SandboxServer,
    SandboxSuppression,
    key_hash,
)
from sandbox.simulation import Outbound

logger = logging.getLogger(__name__)

API_NAME = "injection"
METADATA_LIMIT_BYTES = 12_800  # 12.5 KB for metadata + tags (§2.8)
TOKEN = re.compile(r"%%([A-Za-z0-9_.\-]{1,128})%%")


# --- limits -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Injection limits of §0a; each is a setting so a test or a demo can tighten it."""

    max_recipients: int = 50
    max_merge_rows: int = 1000
    max_messages: int = 10
    max_request_bytes: int = 30 * 1024 * 1024

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            max_recipients=int(getattr(settings, "SANDBOX_INJECTION_MAX_RECIPIENTS", cls.max_recipients)),
            max_merge_rows=int(getattr(settings, "SANDBOX_INJECTION_MAX_MERGE_ROWS", cls.max_merge_rows)),
            max_messages=int(getattr(settings, "SANDBOX_INJECTION_MAX_MESSAGES", cls.max_messages)),
            max_request_bytes=int(getattr(settings, "SANDBOX_INJECTION_MAX_REQUEST_BYTES", cls.max_request_bytes)),
        )


# --- result -------------------------------------------------------------------------------


@dataclass
class InjectionOutcome:
    """What the endpoint answers, plus what the view needs to log the request."""

    status: int
    error_code: str
    message_results: list[dict[str, Any]] | None = None
    transaction_receipt: str | None = None
    server_id_value: int | None = None
    messages_created: int = 0
    events_created: int = 0

    def body(self) -> dict[str, Any]:
        # All three keys, PascalCase, on every status (§2.9 item 8; the SDK parses the body first).
        return {
            "ErrorCode": self.error_code,
            "MessageResults": self.message_results,
            "TransactionReceipt": self.transaction_receipt,
        }


def top_level(code: str, *, status: int = 200, server_id_value: int | None = None) -> InjectionOutcome:
    return InjectionOutcome(status=status, error_code=code, message_results=None, server_id_value=server_id_value)


def internal_error(server_id_value: int | None = None) -> InjectionOutcome:
    return InjectionOutcome(
        status=500,
        error_code="InternalError",
        message_results=None,
        transaction_receipt=uuid.uuid4().hex,
        server_id_value=server_id_value,
    )


# --- case folding -------------------------------------------------------------------------


def fold_keys(value: Any) -> Any:
    """Lower-case every object key at every depth (§8.2), in one pass.

    One pass over the tree is cheaper than case-insensitive lookups for a 10,000-row merge; values
    (addresses, merge field names, header names) keep their spelling.
    """
    # Most values of a merge request are strings: the type is tested here rather than in a call for each.
    if isinstance(value, dict):
        return {
            (k if type(k) is str else str(k)).casefold(): fold_keys(v) if isinstance(v, _CONTAINERS) else v
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [fold_keys(item) if isinstance(item, _CONTAINERS) else item for item in value]
    return value


_CONTAINERS = (dict, list)  # a tuple: `isinstance` with `dict | list` costs more per value


# --- addresses ----------------------------------------------------------------------------


def is_valid_address(address: str) -> bool:
    """The SDK's client-side rule (§2.7) plus no whitespace or angle brackets."""
    if not address or len(address) > 320 or address.count("@") != 1:
        return False
    local, domain = address.split("@")
    if not local or not domain:
        return False
    return not any(ch in address for ch in ",; <>\t\r\n")


@dataclass(frozen=True)
class Address:
    email: str
    name: str

    def has_tokens(self) -> bool:
        return "%%" in self.email or "%%" in self.name


class MessageError(Exception):
    """A message-level problem: the message is not sent and its code goes into MessageResults."""

    def __init__(self, code: str, address_results: list[dict[str, Any]] | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.address_results = address_results or []


def _text(value: Any, *, code: str = "InvalidData") -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise MessageError(code)


def _address(value: Any, *, code: str) -> Address | None:
    if value is None:
        return None
    if isinstance(value, str):  # lenient: a bare address string
        return Address(value.strip(), "")
    if not isinstance(value, dict):
        raise MessageError(code)
    email = _text(value.get("emailaddress", value.get("email")), code=code).strip()
    name = _text(value.get("friendlyname", value.get("name")), code=code).strip()
    return Address(email, name)


def _address_list(value: Any) -> list[Address]:
    if value is None:
        return []
    if isinstance(value, dict | str):
        value = [value]
    if not isinstance(value, list):
        raise MessageError("InvalidData")
    found = []
    for item in value:
        address = _address(item, code="InvalidData")
        if address is not None:
            found.append(address)
    return found


def _pairs(value: Any, first: str, second: str, *, code: str = "InvalidData") -> list[tuple[str, str]]:
    """A list of two-field objects ({Name, Value}, {Key, Value}, {Field, Value})."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise MessageError(code)
    pairs = []
    for item in value:
        if not isinstance(item, dict):
            raise MessageError(code)
        a, b = item.get(first), item.get(second)
        if not isinstance(a, str) or not isinstance(b, str | None):
            raise MessageError(code)
        pairs.append((a, b or ""))
    return pairs


# --- merge --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MergeData:
    global_values: dict[str, str]
    rows: list[dict[str, str]]  # empty for a basic message


def _merge_fields(value: Any) -> dict[str, str]:
    """`[{Field, Value}]` as {folded name: value}; the rules of `_pairs`, inlined (it runs for every row)."""
    if value is None:
        return {}
    if not isinstance(value, list):
        raise MessageError("InvalidMergeData")
    fields: dict[str, str] = {}
    for item in value:
        if not isinstance(item, dict):
            raise MessageError("InvalidMergeData")
        name, val = item.get("field"), item.get("value")
        if not isinstance(name, str) or not isinstance(val, str | None):
            raise MessageError("InvalidMergeData")
        name = name.strip()
        if not name:
            raise MessageError("InvalidMergeData")
        fields[name.casefold()] = val or ""
    return fields


def _merge_data(value: Any, limits: Limits) -> MergeData:
    if value is None:
        return MergeData({}, [])
    if not isinstance(value, dict):
        raise MessageError("InvalidMergeData")
    global_values = _merge_fields(value.get("global"))
    per_message = value.get("permessage")
    if per_message is None:
        return MergeData(global_values, [])
    if not isinstance(per_message, list):
        raise MessageError("InvalidMergeData")
    if len(per_message) > limits.max_merge_rows:
        raise MessageError("TooManyRecipients")
    rows = []
    for row in per_message:
        if not isinstance(row, list):
            raise MessageError("InvalidMergeData")
        rows.append(_merge_fields(row))
    return MergeData(global_values, rows)


def substitute(text: str, values: dict[str, str]) -> str:
    """Replace `%%Field%%` tokens; names match without case; unknown fields become empty (§2.4)."""
    if "%%" not in text:
        return text
    return TOKEN.sub(lambda m: values.get(m.group(1).casefold(), ""), text)


class Template:
    """A text split once at its `%%Field%%` tokens, so each merge row only fills the gaps.

    `render(values)` equals `substitute(text, values)`: the same matches (`TOKEN.split` finds
    what `TOKEN.sub` replaces), names folded once here instead of once per row.
    """

    __slots__ = ("text", "literals", "names", "constant")

    def __init__(self, text: str) -> None:
        self.text = text
        parts = TOKEN.split(text) if "%%" in text else [text]
        self.literals = parts[0::2]
        self.names = [name.casefold() for name in parts[1::2]]
        self.constant = not self.names

    def render(self, values: dict[str, str]) -> str:
        if self.constant:
            return self.text
        literals, get = self.literals, values.get
        if len(literals) == 2:  # the usual single token
            return literals[0] + get(self.names[0], "") + literals[1]
        out = [literals[0]]
        for name, literal in zip(self.names, literals[1:], strict=True):
            out.append(get(name, ""))
            out.append(literal)
        return "".join(out)


# --- one message --------------------------------------------------------------------------


@dataclass
class MessagePlan:
    index: int
    error_code: str | None = None
    address_results: list[dict[str, Any]] = field(default_factory=list)
    outbound: list[Outbound] = field(default_factory=list)

    def result(self) -> dict[str, Any]:
        return {"Index": self.index, "ErrorCode": self.error_code, "AddressResults": self.address_results}


def _failed(email: str, code: str) -> dict[str, Any]:
    return {"EmailAddress": email, "Accepted": False, "ErrorCode": code}


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str
    content_id: str
    size: int


def _attachments(value: Any) -> list[Attachment]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MessageError("InvalidAttachment")
    found = []
    for item in value:
        if not isinstance(item, dict):
            raise MessageError("InvalidAttachment")
        name = item.get("name")
        content = item.get("content")
        if not isinstance(name, str) or not name.strip() or not isinstance(content, str):
            raise MessageError("InvalidAttachment")
        try:
            decoded = base64.b64decode("".join(content.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MessageError("InvalidAttachment") from exc
        content_type = item.get("contenttype") or "application/octet-stream"
        content_id = item.get("contentid") or ""
        if not isinstance(content_type, str) or not isinstance(content_id, str):
            raise MessageError("InvalidAttachment")
        try:
            _pairs(item.get("customheaders"), "name", "value")
        except MessageError as exc:
            raise MessageError("InvalidAttachment") from exc
        found.append(Attachment(name.strip(), content_type, content_id, len(decoded)))
    return found


def _api_template(value: Any) -> str:
    if value in (None, ""):
        return ""
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise MessageError("InvalidTemplateId")
    known = getattr(settings, "SANDBOX_INJECTION_TEMPLATE_IDS", None)
    # The sandbox keeps no templates: any positive id exists unless a setting lists the ids.
    if known is not None and int(text) not in {int(t) for t in known}:
        raise MessageError("InvalidTemplateId")
    return text


@dataclass(frozen=True)
class RequestContext:
    server: SandboxServer
    receipt: str
    client: str
    now: datetime
    limits: Limits


def plan_message(index: int, raw: Any, ctx: RequestContext) -> MessagePlan:
    plan = MessagePlan(index=index)
    try:
        _expand(raw, ctx, plan)
    except MessageError as exc:
        plan.error_code = exc.code
        plan.address_results = exc.address_results
        plan.outbound = []
    return plan


def _expand(raw: Any, ctx: RequestContext, plan: MessagePlan) -> None:  # noqa: C901 - the §2.9 checklist, in order
    if not isinstance(raw, dict):
        raise MessageError("InvalidData")

    sender = _address(raw.get("from"), code="InvalidFrom")
    if sender is None or not sender.email:
        raise MessageError("InvalidFrom")
    if not sender.has_tokens() and not is_valid_address(sender.email):
        raise MessageError("InvalidFrom")

    subject = _text(raw.get("subject"))
    if not subject.strip():
        raise MessageError("EmptySubject")

    text_body = _text(raw.get("textbody"))
    html_body = _text(raw.get("htmlbody"))
    amp_body = _text(raw.get("ampbody"))
    api_template = _api_template(raw.get("apitemplate"))
    if not (text_body.strip() or html_body.strip() or api_template):
        raise MessageError("NoValidBodyParts" if amp_body.strip() else "EmptyMessage")

    attachments = _attachments(raw.get("attachments"))
    headers = _pairs(raw.get("customheaders"), "name", "value")
    if any(not name.strip() for name, _ in headers):
        raise MessageError("InvalidData")
    merge = _merge_data(raw.get("mergedata"), ctx.limits)

    # The 1.4.4 SDK copies custom headers into metadata (§2.6 item 9): any {Key, Value} list is fine.
    metadata = _pairs(raw.get("metadata"), "key", "value")
    tags_raw = raw.get("tags") or []
    if not isinstance(tags_raw, list) or not all(isinstance(t, str) for t in tags_raw):
        raise MessageError("InvalidData")
    tags: list[str] = list(tags_raw)
    if ctx.server.strict_codes:
        meta_size = len(json.dumps([{"Key": k, "Value": v} for k, v in metadata]).encode()) + len(
            json.dumps(tags).encode()
        )
        if meta_size > METADATA_LIMIT_BYTES:
            raise MessageError("MetadataOrTagsAreTooLarge")

    to = _address_list(raw.get("to"))
    cc = _address_list(raw.get("cc"))
    bcc = _address_list(raw.get("bcc"))
    if len(to) + len(cc) + len(bcc) > ctx.limits.max_recipients:
        raise MessageError("TooManyRecipients")
    if not to:
        raise MessageError("EmptyToAddress")

    reply_to = _address(raw.get("replyto"), code="InvalidData")
    if reply_to and reply_to.email and not reply_to.has_tokens() and not is_valid_address(reply_to.email):
        raise MessageError("InvalidAddress", [_failed(reply_to.email, "InvalidAddress")])

    mailing_id = _text(raw.get("mailingid"))
    message_id = _text(raw.get("messageid"))
    charset = _text(raw.get("charset"))  # accepted, not needed by the simulation
    del charset
    attachment_bytes = sum(a.size for a in attachments)
    stored_attachments = [
        {"name": a.name, "contentType": a.content_type, "contentId": a.content_id, "size": a.size} for a in attachments
    ]
    stored_metadata = [{"key": k, "value": v} for k, v in metadata]

    # Every text is split at its tokens once per message; each row then only fills the gaps.
    from_email, from_name = Template(sender.email), Template(sender.name)
    recipient_templates: list[tuple[str, Template, Template, str]] = [
        (kind, Template(address.email), Template(address.name), address.email)
        for kind, addresses in (("to", to), ("cc", cc), ("bcc", bcc))
        for address in addresses
    ]
    reply_template = Template(reply_to.email) if reply_to and reply_to.email else None
    subject_t, text_t, html_t, amp_t = Template(subject), Template(text_body), Template(html_body), Template(amp_body)
    header_templates = [(Template(n), Template(v)) for n, v in headers]
    message_id_t, mailing_id_t = Template(message_id), Template(mailing_id)
    global_values = merge.global_values
    server_pk, client, created_on = ctx.server.pk, ctx.client[:120], ctx.now

    rows = merge.rows or [{}]
    for row_index, row in enumerate(rows):
        # Only read below, so a row (or the globals) serves as is when the other side is empty.
        values = ({**global_values, **row} if global_values else row) if row else global_values
        row_from_email = from_email.render(values).strip()
        recipients: dict[str, list[dict[str, str]]] = {"to": [], "cc": [], "bcc": []}
        row_failures: list[dict[str, Any]] = []
        for kind, email_t, name_t, original in recipient_templates:
            email = email_t.render(values).strip()
            if is_valid_address(email):
                recipients[kind].append({"emailAddress": email, "friendlyName": name_t.render(values).strip()})
            else:
                row_failures.append(_failed(email or original, "InvalidAddress"))
        if not is_valid_address(row_from_email):
            # A merged From that does not resolve fails the whole row, reported per recipient.
            row_failures.extend(
                _failed(r["emailAddress"], "InvalidFrom") for kind in recipients for r in recipients[kind]
            )
            recipients = {"to": [], "cc": [], "bcc": []}
        plan.address_results.extend(row_failures)
        if not (recipients["to"] or recipients["cc"] or recipients["bcc"]):
            continue
        row_reply = ""
        if reply_template is not None:
            candidate = reply_template.render(values).strip()
            row_reply = candidate if is_valid_address(candidate) else ""
        row_subject = subject_t.render(values)
        row_text, row_html, row_amp = text_t.render(values), html_t.render(values), amp_t.render(values)
        row_headers = [{"name": n.render(values), "value": v.render(values)} for n, v in header_templates]
        size = (
            len(row_subject.encode())
            + len(row_text.encode())
            + len(row_html.encode())
            + len(row_amp.encode())
            + sum(len(h["name"]) + len(h["value"]) + 4 for h in row_headers)
            + attachment_bytes
        )
        plan.outbound.append(
            Outbound(
                server_id=server_pk,
                transaction_receipt=ctx.receipt,
                message_index=plan.index,
                row_index=row_index,
                message_id=message_id_t.render(values)[:255],
                mailing_id=mailing_id_t.render(values)[:255],
                from_address=row_from_email,
                from_name=from_name.render(values).strip()[:255],
                reply_to=row_reply,
                to=recipients["to"],
                cc=recipients["cc"],
                bcc=recipients["bcc"],
                subject=row_subject,
                text_body=row_text,
                html_body=row_html,
                amp_body=row_amp,
                api_template=api_template,
                custom_headers=row_headers,
                metadata=stored_metadata,
                tags=tags,
                attachments=stored_attachments,
                size=size,
                client=client,
                created_on=created_on,
            )
        )

    if not plan.outbound:
        raise MessageError("NoValidRecipients", plan.address_results)
    if plan.address_results:
        failed_codes = {r["ErrorCode"] for r in plan.address_results}
        plan.error_code = "InvalidFrom" if failed_codes == {"InvalidFrom"} else "InvalidAddress"


# --- authentication -----------------------------------------------------------------------


def parse_server_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
        return number if number > 0 else None
    return None


def authenticate(server_id: int, *, bearer: str, body_key: str) -> tuple[SandboxServer | None, SandboxApiKey | None]:
    """The key (Bearer or body ApiKey, §2.2) that opens `server_id` for injection, with its server."""
    candidates = [k for k in (bearer.strip(), body_key.strip()) if k]
    if not candidates:
        return None, None
    for key in keys_with_server(server_id, [key_hash(k) for k in candidates]):
        if Permission.INJECTION in (key.permissions or []):
            return key.server, key
    return None, None


_KEY_MODELS: tuple[type[models.Model], ...] = (SandboxApiKey, SandboxServer, SandboxAccount)


def keys_with_server(server_id: int, hashes: list[str]) -> list[SandboxApiKey]:
    """The keys of `server_id` with one of `hashes`, oldest first, each with its server and account loaded.

    On PostgreSQL this is `select_related("server__account")` written out once: for a one-row answer
    the ORM spent longer compiling the query on every request than the database took to run it.
    """
    if connection.vendor != "postgresql":
        return list(
            SandboxApiKey.objects.select_related("server__account").filter(
                server__server_id=server_id, key_hash__in=hashes
            )
        )
    with connection.cursor() as cursor:
        cursor.execute(_keys_sql(len(hashes)), [server_id, *hashes])
        rows = cursor.fetchall()
    server_field = SandboxApiKey._meta.get_field("server")
    account_field = SandboxServer._meta.get_field("account")
    found = []
    for row in rows:
        key, server, account = _instances(row)
        account_field.set_cached_value(server, account)
        server_field.set_cached_value(key, server)
        found.append(cast(SandboxApiKey, key))
    return found


@functools.cache
def _keys_sql(count: int) -> str:
    quote = connection.ops.quote_name
    key_meta, server_meta, account_meta = (m._meta for m in _KEY_MODELS)
    k, s, a = (quote(meta.db_table) for meta in (key_meta, server_meta, account_meta))
    columns = ", ".join(
        f"{table}.{quote(str(f.column))}"
        for table, meta in ((k, key_meta), (s, server_meta), (a, account_meta))
        for f in meta.concrete_fields
    )

    def column(meta: Any, name: str) -> str:
        return quote(meta.get_field(name).column)

    return (
        f"SELECT {columns} FROM {k} "
        f"INNER JOIN {s} ON ({k}.{column(key_meta, 'server')} = {s}.{column(server_meta, 'id')}) "
        f"INNER JOIN {a} ON ({s}.{column(server_meta, 'account')} = {a}.{column(account_meta, 'id')}) "
        f"WHERE {s}.{column(server_meta, 'server_id')} = %s "
        f"AND {k}.{column(key_meta, 'key_hash')} IN ({', '.join(['%s'] * count)}) "
        f"ORDER BY {k}.{column(key_meta, 'created_on')} ASC, {k}.{column(key_meta, 'id')} ASC"
    )


def _instances(row: tuple[Any, ...]) -> list[models.Model]:
    """One instance per model of `_KEY_MODELS` from a row of `_keys_sql`, built as the ORM builds them."""
    instances = []
    start = 0
    for model in _KEY_MODELS:
        fields = model._meta.concrete_fields
        values = list(row[start : start + len(fields)])
        start += len(fields)
        for i, f in enumerate(fields):
            for convert in f.get_db_converters(connection):
                values[i] = convert(values[i], f.cached_col, connection)
        instances.append(model.from_db(connection.alias, [f.attname for f in fields], values))
    return instances


def _touch_key(key: SandboxApiKey, now: datetime) -> None:
    # At most one write a minute per key: the bulk path must not pay an UPDATE per request.
    if key.last_used_on is None or now - key.last_used_on > timedelta(minutes=1):
        SandboxApiKey.objects.filter(pk=key.pk).update(last_used_on=now)


# Requests refused before any work was done do not count against the rate limit.
NOT_COUNTED = ("OverQuota", "InvalidAuthentication", "AccountDisabled")


def over_quota(server: SandboxServer, now: datetime) -> bool:
    limit = server.rate_limit_per_minute
    if not limit:
        return False
    recent = (
        SandboxRequestLog.objects.filter(
            server_id_value=server.server_id, api=API_NAME, created_on__gte=now - timedelta(minutes=1)
        )
        .exclude(error_code__in=NOT_COUNTED)
        .count()
    )
    return recent >= limit


# --- the whole request --------------------------------------------------------------------


def inject(
    data: Any,
    *,
    bearer: str = "",
    client: str = "",
    now: datetime | None = None,
    on_commit: Callable[[], None] | None = None,
) -> InjectionOutcome:
    """Handle one decoded request body (steps 2-8 of §2.9; the view did step 1 and the size check)."""
    now = now or timezone.now()
    limits = Limits.from_settings()
    if not isinstance(data, dict):
        return top_level("InvalidData")
    body = fold_keys(data)

    server_id = parse_server_id(body.get("serverid"))
    body_key = body.get("apikey")
    body_key = body_key if isinstance(body_key, str) else ""
    if server_id is None:
        return top_level("InvalidAuthentication", status=401)
    server, key = authenticate(server_id, bearer=bearer, body_key=body_key)
    if server is None or key is None:
        return top_level("InvalidAuthentication", status=401, server_id_value=server_id)
    _touch_key(key, now)

    if server.account.disabled or server.status.casefold() in {"disabled", "suspended"}:
        return top_level("AccountDisabled", server_id_value=server_id)
    if over_quota(server, now):
        return top_level("OverQuota", server_id_value=server_id)

    messages = body.get("messages")
    if messages is None or messages == []:
        return top_level("NoMessages", server_id_value=server_id)
    if not isinstance(messages, list):
        return top_level("InvalidData", server_id_value=server_id)
    if len(messages) > limits.max_messages:
        return top_level("TooManyMessages", server_id_value=server_id)

    ctx = RequestContext(server=server, receipt=uuid.uuid4().hex, client=client, now=now, limits=limits)
    plans = [plan_message(i, raw, ctx) for i, raw in enumerate(messages)]
    outbound = [m for p in plans for m in p.outbound]
    events_created = store(server=server, outbound=outbound, now=now, on_commit=on_commit)

    problems = [p.result() for p in plans if p.error_code]
    return InjectionOutcome(
        status=200,
        error_code="Warning" if problems else "Success",
        message_results=problems,
        transaction_receipt=None,
        server_id_value=server_id,
        messages_created=len(outbound),
        events_created=events_created,
    )


def recipients_of(message: Outbound) -> Iterable[str]:
    for kind in (message.to, message.cc, message.bcc):
        for recipient in kind:
            yield recipient["emailAddress"]


def store(
    *,
    server: SandboxServer,
    outbound: list[Outbound],
    now: datetime,
    on_commit: Callable[[], None] | None = None,
) -> int:
    """Insert the outbound messages and their planned events in one transaction; returns the event count."""
    if not outbound:
        return 0
    addresses = {a.casefold() for m in outbound for a in recipients_of(m)}
    # No savepoint: inside the view's transaction a failure here fails the whole request anyway.
    with transaction.atomic(savepoint=False):
        ids, suppressed = reserve_and_check(server, len(outbound), addresses)
        simulation.store_outbound(outbound, ids=ids)
        events = simulation.plan_events(server=server, messages=outbound, now=now, suppressed=suppressed)
        simulation.store_events(events)
        if on_commit is not None:
            transaction.on_commit(on_commit)
    return len(events)


def reserve_and_check(server: SandboxServer, count: int, addresses: set[str]) -> tuple[list[int], set[str]]:
    """Ids for `count` new messages and which of `addresses` the server suppresses, in one round trip.

    The suppression test is exact, as `email_address__in`; the ids come from the table's sequence in
    the order `simulation.reserve_ids` draws them. Call inside a transaction.
    """
    if connection.vendor != "postgresql":
        ids = simulation.reserve_ids(SandboxMessage, count)
        suppressed = SandboxSuppression.objects.filter(server=server, email_address__in=addresses)
        return ids, set(suppressed.values_list("email_address", flat=True))
    quote, meta = connection.ops.quote_name, SandboxSuppression._meta
    table, server_column = quote(meta.db_table), quote(meta.get_field("server").column)
    # The addresses go as one array parameter, not an `IN` list the driver would have to bind one by one.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ARRAY(SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)), "
            f"ARRAY(SELECT email_address FROM {table} WHERE {server_column} = %s AND email_address = ANY(%s))",
            [SandboxMessage._meta.db_table, count, server.pk, list(addresses)],
        )
        ids, suppressed = cursor.fetchone()
    return list(ids), set(suppressed)


def log_request(*, outcome: InjectionOutcome, method: str, path: str, now: datetime | None = None) -> None:
    SandboxRequestLog.objects.create(
        server_id_value=outcome.server_id_value,
        api=API_NAME,
        method=method[:10],
        path=path[:500],
        status_code=outcome.status,
        error_code=outcome.error_code[:60],
        created_on=now or timezone.now(),
    )
