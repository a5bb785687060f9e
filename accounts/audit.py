"""The audit service: every write in every app calls `record()`."""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest

from accounts.models import AuditLog, Server

SECRET_KEY_PATTERN = re.compile(r"(key|secret|password|token|credential)", re.IGNORECASE)
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    # Behind a proxy, django-axes' ipware settings decide; here we take the
    # address Django was given, which the proxy configuration makes trustworthy.
    return getattr(request, "axes_ip_address", None) or request.META.get("REMOTE_ADDR") or None


def scrub(data: Any) -> Any:
    """Mask values under secret-looking keys, recursively; escape control characters."""
    if isinstance(data, dict):
        return {
            key: ("••••" if SECRET_KEY_PATTERN.search(str(key)) and isinstance(value, str) and value else scrub(value))
            for key, value in data.items()
        }
    if isinstance(data, list | tuple):
        return [scrub(item) for item in data]
    if isinstance(data, str):
        return escape_control(data)
    return data


def escape_control(text: str) -> str:
    return _CONTROL_CHARS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def record(
    *,
    action: str,
    request: HttpRequest | None = None,
    actor: Any = None,
    server: Server | None = None,
    target: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditLog:
    if actor is None and request is not None:
        actor = getattr(request, "user", None)
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditLog.objects.create(
        actor=actor,
        actor_label=escape_control(str(actor)) if actor else "",
        server=server,
        server_label=str(server) if server else "",
        action=action,
        target=escape_control(target)[:300],
        before=scrub(before) if before is not None else None,
        after=scrub(after) if after is not None else None,
        ip=client_ip(request),
    )
