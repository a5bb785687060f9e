"""Roles on a server and what each may do. One table decides every permission."""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    OPS = "ops", "Ops"
    MARKETING = "marketing", "Marketing"
    VIEWER = "viewer", "Viewer"


class Capability(models.TextChoices):
    READ = "read", "read the server's data"
    MANAGE_SERVER = "manage_server", "change the server, its credentials and its users"
    OPS = "ops", "change domains, keys, suppressions and webhooks"
    MARKETING = "marketing", "change contacts and lists, send, configure reports"


CAPABILITIES: dict[str, frozenset[str]] = {
    Role.ADMIN: frozenset(Capability.values),
    Role.OPS: frozenset({Capability.READ, Capability.OPS}),
    Role.MARKETING: frozenset({Capability.READ, Capability.MARKETING}),
    Role.VIEWER: frozenset({Capability.READ}),
}


def role_allows(role: str | None, capability: str) -> bool:
    return role is not None and capability in CAPABILITIES.get(role, frozenset())
