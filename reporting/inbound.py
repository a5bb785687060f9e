"""Inbound parse: store a posted message with its attachments, and render its HTML safely (contract §6).

Attachments become inert files under the inbound storage root (no extension, mode 0600, never
executed or served inline). HTML is sanitised with nh3 and shown only in a sandboxed frame whose
own CSP forbids scripts and remote loads.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nh3
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from reporting import conf, forwarding
from reporting.models import ForwardStatus, InboundAttachment, InboundEndpoint, InboundMessage, inbound_storage_root
from reporting.payloads import PayloadError, canonical_json, dedup_key, field, without_secret


class TooLarge(Exception):
    """The message's attachments exceed REPORTING_INBOUND_MAX_MESSAGE_BYTES."""


@dataclass(slots=True)
class Part:
    name: str
    content_type: str
    content_id: str
    embedded: bool
    content: bytes


def _str(value: Any, limit: int) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value).strip()[:limit]


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _message(data: dict[str, Any]) -> dict[str, Any]:
    message = field(data, "message")
    if not isinstance(message, dict):
        raise PayloadError("The post has no Message object.")
    return message


def header(message: dict[str, Any], name: str) -> str:
    headers = field(message, "customheaders") or []
    if isinstance(headers, list):
        for item in headers:
            if isinstance(item, dict) and str(field(item, "name", "")).lower() == name:
                return _str(field(item, "value"), 998)
    return ""


def _parts(message: dict[str, Any]) -> list[Part]:
    parts: list[Part] = []
    limit = conf.get("REPORTING_INBOUND_MAX_MESSAGE_BYTES")
    total = 0
    for list_name, embedded in (("Attachments", False), ("EmbeddedMedia", True)):
        items = field(message, list_name.lower()) or []
        if not isinstance(items, list):
            raise PayloadError(f"Message.{list_name} must be a list.")
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise PayloadError(f"Message.{list_name}[{index}] must be an object.")
            name = _str(field(item, "name"), 255)
            encoded = field(item, "content") or ""
            if not isinstance(encoded, str):
                raise PayloadError(f"Message.{list_name}[{index}] ({name}): Content must be base64 text.")
            try:
                content = base64.b64decode("".join(encoded.split()), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise PayloadError(f"Message.{list_name}[{index}] ({name}): Content is not valid base64.") from exc
            total += len(content)
            if total > limit:
                raise TooLarge(f"The message's attachments exceed {limit // (1024 * 1024)} MB.")
            parts.append(
                Part(
                    name=name,
                    content_type=_str(field(item, "contenttype"), 255),
                    content_id=_str(field(item, "contentid"), 255).strip("<>"),
                    embedded=embedded,
                    content=content,
                )
            )
    return parts


def _without_content(item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    return {k: (None if k.lower() == "content" else v) for k, v in item.items()}


def _payload_without_contents(data: dict[str, Any]) -> dict[str, Any]:
    """The stored copy: no SecretKey, attachment contents replaced by their size."""
    stored = without_secret(data)
    for key, value in list(stored.items()):
        if key.lower() != "message" or not isinstance(value, dict):
            continue
        message = dict(value)
        for list_key, items in list(message.items()):
            if list_key.lower() in ("attachments", "embeddedmedia") and isinstance(items, list):
                message[list_key] = [_without_content(item) for item in items]
        stored[key] = message
    return stored


def store_message(*, endpoint: InboundEndpoint, data: dict[str, Any], size: int) -> InboundMessage | None:
    """Store one parsed message; None when this exact post was stored before (a retry)."""
    message = _message(data)
    message_id = header(message, "message-id")
    key = dedup_key(endpoint.server_id, canonical_json(without_secret(data)), extra=message_id)
    if InboundMessage.objects.filter(dedup_key=key).exists():
        return None
    parts = _parts(message)
    sender = field(message, "from")
    sender = sender if isinstance(sender, dict) else {}
    rcpt_to = _str(field(data, "inboundrcptto"), 320).lower()
    route = forwarding.route_for(server_id=endpoint.server_id, rcpt_to=rcpt_to)
    forwards = route is not None and bool(route.forward_url)
    record = InboundMessage(
        endpoint=endpoint,
        server_id=endpoint.server_id,
        dedup_key=key,
        mail_from=_str(field(data, "inboundmailfrom"), 320),
        rcpt_to=rcpt_to,
        remote_ip=_str(field(data, "inboundipaddress"), 45),
        from_address=_str(field(sender, "emailaddress"), 320),
        from_name=_str(field(sender, "friendlyname"), 320),
        subject=_str(field(message, "subject"), 10_000),
        text_body=_str(field(message, "textbody"), 100 * 1024 * 1024),
        html_body=_str(field(message, "htmlbody"), 100 * 1024 * 1024),
        message_id=message_id,
        spam_score=_float(field(data, "spamscore")),
        size=size,
        payload=_payload_without_contents(data),
        route=route,
        forward_status=ForwardStatus.PENDING if forwards else ForwardStatus.NONE,
        forward_next_at=timezone.now() if forwards else None,
    )
    root = Path(inbound_storage_root())
    written: list[Path] = []
    try:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    record.save()
            except IntegrityError:
                return None  # the same post is being stored concurrently
            attachments = []
            day = timezone.now().strftime("%Y/%m/%d")
            for part in parts:
                relative = f"{day}/{uuid.uuid4().hex}"
                target = root / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                # O_EXCL: never overwrite; 0600 and no extension: an inert blob, not something to run or serve.
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                written.append(target)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(part.content)
                attachments.append(
                    InboundAttachment(
                        message=record,
                        name=part.name,
                        content_type=part.content_type,
                        content_id=part.content_id,
                        embedded=part.embedded,
                        size=len(part.content),
                        sha256=_sha256(part.content),
                        path=relative,
                    )
                )
            InboundAttachment.objects.bulk_create(attachments)
            InboundEndpoint.objects.filter(pk=endpoint.pk).update(
                messages_received=F("messages_received") + 1, last_event_at=timezone.now()
            )
            if forwards:
                forwarding.enqueue([record.pk])
    except BaseException:
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    return record


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def attachment_path(attachment: InboundAttachment) -> Path:
    root = Path(inbound_storage_root()).resolve()
    path = (root / attachment.path).resolve()
    if root not in path.parents:
        raise FileNotFoundError(attachment.path)
    return path


# --- Safe HTML --------------------------------------------------------------------------------

EMBED_INLINE_MAX = 2 * 1024 * 1024
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def safe_html(message: InboundMessage) -> str:
    """Sanitised HTML: no scripts, handlers, styles or frames; `cid:` images inlined as data: URIs."""
    cleaned = nh3.clean(
        message.html_body,
        url_schemes={"http", "https", "mailto", "cid"},
        link_rel="noopener noreferrer nofollow",
    )
    for part in message.attachments.filter(embedded=True).exclude(content_id=""):
        if part.content_type.lower() not in IMAGE_TYPES or part.size > EMBED_INLINE_MAX:
            continue
        try:
            content = attachment_path(part).read_bytes()
        except OSError:
            continue
        data_uri = f"data:{part.content_type.lower()};base64,{base64.b64encode(content).decode()}"
        cleaned = cleaned.replace(f'src="cid:{part.content_id}"', f'src="{data_uri}"')
    return cleaned
