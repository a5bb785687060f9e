"""Inbound Parse simulation (contract §6): turn a message into SocketLabs' parsed JSON and post it.

A message comes either from fields (from, to, subject, bodies, attachments) or from an .eml file
parsed with the standard `email` package. The post goes to the server's inbound endpoint with its
`SecretKey`; the outcome (status, whether the answer contained the Validation Key) is recorded.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr
from typing import Any

import requests
from django.conf import settings
from django.utils import timezone

from sandbox.models import SandboxInboundEndpoint, SandboxInboundPost, SandboxServer

INBOUND_IP = "198.51.100.7"
MAX_EML_BYTES = 50 * 1024 * 1024  # SocketLabs' inbound limit (§6)
USER_AGENT = "SocketLabs-Sandbox/1.0 (Mailroom inbound)"


class InboundError(Exception):
    """The message cannot be received as asked (no endpoint for the address, unreadable file, ...)."""


@dataclass(frozen=True)
class InboundAttachment:
    name: str
    content: bytes
    content_type: str = "application/octet-stream"
    content_id: str = ""
    headers: Sequence[tuple[str, str]] = ()


@dataclass
class Parsed:
    """The parts of a message SocketLabs reports."""

    subject: str = ""
    text: str = ""
    html: str = ""
    text_charset: str = "utf-8"
    html_charset: str = "utf-8"
    from_: tuple[str, str] = ("", "")
    reply_to: tuple[str, str] | None = None
    to: list[tuple[str, str]] = field(default_factory=list)
    cc: list[tuple[str, str]] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)
    attachments: list[InboundAttachment] = field(default_factory=list)
    embedded: list[InboundAttachment] = field(default_factory=list)


# --- building -----------------------------------------------------------------------------


def _address(pair: tuple[str, str] | None) -> dict[str, Any] | None:
    if pair is None or not pair[1]:
        return None
    name, address = pair
    return {"EmailAddress": address, "FriendlyName": name or None}


def _addresses(pairs: list[tuple[str, str]]) -> list[dict[str, Any]] | None:
    found = [a for a in (_address(p) for p in pairs) if a]
    return found or None


def _attachment(item: InboundAttachment) -> dict[str, Any]:
    return {
        "Name": item.name,
        "ContentType": item.content_type,
        "Content": base64.b64encode(item.content).decode("ascii"),
        "ContentId": item.content_id or None,
        "CustomHeaders": [{"Name": n, "Value": v} for n, v in item.headers],
    }


def parse_eml(raw: bytes) -> Parsed:
    """Read an .eml: every header into CustomHeaders, text/html bodies, attachments and inline media."""
    if len(raw) > MAX_EML_BYTES:
        raise InboundError("The message is larger than 50 MB, the Inbound Parse limit.")
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception as exc:  # the email package raises many types on broken input
        raise InboundError(f"The .eml file could not be read: {exc}") from exc
    if not isinstance(message, EmailMessage) or not message.keys():
        raise InboundError("The .eml file has no headers; is it an e-mail message?")
    parsed = Parsed(subject=str(message.get("Subject", "")))
    parsed.headers = [(name, str(value)) for name, value in message.items()]
    name, address = parseaddr(str(message.get("From", "")))
    parsed.from_ = (name, address)
    if message.get("Reply-To"):
        parsed.reply_to = parseaddr(str(message["Reply-To"]))
    parsed.to = getaddresses([str(v) for v in message.get_all("To", [])])
    parsed.cc = getaddresses([str(v) for v in message.get_all("Cc", [])])
    for kind in ("plain", "html"):
        part = message.get_body(preferencelist=(kind,))
        if part is None:
            continue
        try:
            content = part.get_content()
        except (LookupError, UnicodeDecodeError, AssertionError):
            payload = part.get_payload(decode=True)
            content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        charset = part.get_content_charset() or "us-ascii"
        if kind == "plain":
            parsed.text, parsed.text_charset = str(content), charset
        else:
            parsed.html, parsed.html_charset = str(content), charset
    bodies = {id(message.get_body(preferencelist=("plain",))), id(message.get_body(preferencelist=("html",)))}
    for part in message.walk():
        if part.is_multipart() or id(part) in bodies or part is message:
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        content_id = str(part.get("Content-ID", "")).strip().strip("<>")
        item = InboundAttachment(
            name=part.get_filename() or content_id or "attachment",
            content=payload,
            content_type=part.get_content_type(),
            content_id=content_id,
            headers=[(n, str(v)) for n, v in part.items()],
        )
        inline = part.get_content_disposition() == "inline" or (content_id and not part.get_filename())
        (parsed.embedded if inline and content_id else parsed.attachments).append(item)
    return parsed


def from_fields(
    *,
    from_: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    attachments: Sequence[InboundAttachment] = (),
    cc: str = "",
) -> Parsed:
    sender = parseaddr(from_)
    recipients = getaddresses([to])
    now = timezone.now()
    headers = [
        ("Date", format_datetime(now)),
        ("Message-ID", f"<{uuid.uuid4().hex}@sandbox.mailroom>"),
        ("From", from_),
        ("To", to),
        ("Subject", subject),
        ("MIME-Version", "1.0"),
    ]
    if cc:
        headers.insert(4, ("Cc", cc))
    return Parsed(
        subject=subject,
        text=text,
        html=html,
        from_=sender,
        to=recipients,
        cc=getaddresses([cc]) if cc else [],
        headers=headers,
        attachments=list(attachments),
    )


def build_payload(
    parsed: Parsed, *, endpoint: SandboxInboundEndpoint, rcpt_to: str, mail_from: str = ""
) -> dict[str, Any]:
    """The JSON SocketLabs posts to an inbound endpoint (§6), PascalCase."""
    return {
        "SecretKey": endpoint.secret_key,
        "ServerId": endpoint.server.server_id,
        "SubaccountId": None,
        "IpPoolId": None,
        "InboundMailFrom": mail_from or parsed.from_[1],
        "InboundRcptTo": rcpt_to,
        "InboundIpAddress": INBOUND_IP,
        "SpamScore": 0.0,
        "SpamDetails": None,
        "ErrorLog": None,
        "Message": {
            "Subject": parsed.subject,
            "TextBody": parsed.text,
            "HtmlBody": parsed.html,
            "TextCharSet": parsed.text_charset,
            "HtmlCharSet": parsed.html_charset,
            "MailingId": None,
            "MessageId": None,
            "From": _address(parsed.from_),
            "ReplyTo": _address(parsed.reply_to),
            "To": _addresses(parsed.to),
            "Cc": _addresses(parsed.cc),
            "Bcc": None,
            "CustomHeaders": [{"Name": n, "Value": v} for n, v in parsed.headers],
            "Attachments": [_attachment(a) for a in parsed.attachments] or None,
            "EmbeddedMedia": [_attachment(a) for a in parsed.embedded] or None,
        },
    }


def _stored_copy(payload: dict[str, Any]) -> dict[str, Any]:
    """What we keep: the secret masked, attachment contents replaced by their size."""
    stored = json.loads(json.dumps(payload))
    secret = str(stored.get("SecretKey") or "")
    stored["SecretKey"] = f"••••{secret[-4:]}" if len(secret) > 8 else "••••"
    for key in ("Attachments", "EmbeddedMedia"):
        for item in (stored.get("Message") or {}).get(key) or []:
            item["Content"] = f"<{len(base64.b64decode(item['Content']))} bytes>"
    return stored


# --- choosing the endpoint ----------------------------------------------------------------


def endpoint_for(server: SandboxServer, address: str) -> SandboxInboundEndpoint:
    """The server's endpoint whose domain or address matches `address` (an exact address wins)."""
    folded = address.strip().casefold()
    domain = folded.rsplit("@", 1)[-1]
    endpoints = list(server.inbound_endpoints.select_related("server"))
    for wanted in (folded, domain):
        for endpoint in endpoints:
            if endpoint.domain_or_address.strip().casefold().lstrip("@") == wanted:
                return endpoint
    configured = ", ".join(sorted(e.domain_or_address for e in endpoints)) or "none"
    raise InboundError(
        f"No inbound parse endpoint of server {server.server_id} handles {address or '(no recipient)'} "
        f"(configured: {configured})."
    )


# --- posting ------------------------------------------------------------------------------


def post(endpoint: SandboxInboundEndpoint, payload: dict[str, Any]) -> SandboxInboundPost:
    timeout = getattr(settings, "SANDBOX_WEBHOOK_TIMEOUT", (3.05, 10.0))
    status: int | None = None
    error = ""
    validated = False
    try:
        response = requests.post(
            endpoint.url,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT},
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.Timeout:
        error = "Timed out waiting for the endpoint."
    except requests.ConnectionError as exc:
        error = f"Could not connect: {type(exc).__name__}."
    except requests.RequestException as exc:
        error = f"Request failed: {type(exc).__name__}."
    else:
        status = response.status_code
        validated = bool(endpoint.validation_key) and endpoint.validation_key in response.text
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    return SandboxInboundPost.objects.create(
        endpoint=endpoint, payload=_stored_copy(payload), status_code=status, validated=validated, error=error[:500]
    )


def validate_endpoint(endpoint: SandboxInboundEndpoint) -> bool:
    """Post the JSON `Validation` request to a newly registered inbound endpoint (§6).

    It passes when the endpoint answers 200 with its validation key in the body; the outcome is
    kept in `endpoint.status` ("Active" or "Failed") and as a `SandboxInboundPost`.
    """
    payload = {"Type": "Validation", "ServerId": endpoint.server.server_id, "SecretKey": endpoint.secret_key}
    record = post(endpoint, payload)
    passed = record.status_code == 200 and record.validated
    endpoint.status = "Active" if passed else "Failed"
    SandboxInboundEndpoint.objects.filter(pk=endpoint.pk).update(status=endpoint.status)
    return passed


def receive(
    endpoint_or_server: SandboxInboundEndpoint | SandboxServer,
    *,
    from_: str = "",
    to: str = "",
    subject: str = "",
    text: str = "",
    html: str = "",
    attachments: Sequence[InboundAttachment] = (),
    eml_bytes: bytes | None = None,
    cc: str = "",
) -> SandboxInboundPost:
    """Receive one message for a server (or straight at an endpoint) and post it to the endpoint.

    With `eml_bytes`, the message comes from the file; `to` then only overrides the envelope
    recipient (which otherwise is the file's first To address), and `from_` the envelope sender.
    """
    if eml_bytes is not None:
        parsed = parse_eml(eml_bytes)
        rcpt_to = to or (parsed.to[0][1] if parsed.to else "")
        mail_from = parseaddr(from_)[1] if from_ else ""
    else:
        if not parseaddr(to)[1] or "@" not in parseaddr(to)[1]:
            raise InboundError("A recipient address (To) is required.")
        if not parseaddr(from_)[1] or "@" not in parseaddr(from_)[1]:
            raise InboundError("A sender address (From) is required.")
        parsed = from_fields(from_=from_, to=to, subject=subject, text=text, html=html, attachments=attachments, cc=cc)
        rcpt_to = parsed.to[0][1]
        mail_from = ""
    if isinstance(endpoint_or_server, SandboxServer):
        endpoint = endpoint_for(endpoint_or_server, rcpt_to)
    else:
        endpoint = endpoint_or_server
    payload = build_payload(parsed, endpoint=endpoint, rcpt_to=rcpt_to, mail_from=mail_from)
    return post(endpoint, payload)
