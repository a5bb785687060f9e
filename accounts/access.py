"""The one place that decides who may see and change which server.

Every page, HTMX fragment and API endpoint fetches its server through
`get_server_for_user`: no membership means 404 (existence is not leaked), a
membership without the capability means 403.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404

from accounts.models import Membership, Server
from accounts.roles import Capability, Role, role_allows


def get_server_for_user(user: Any, server_id: int, capability: str = Capability.READ) -> Server:
    server = Server.objects.for_user(user).filter(pk=server_id).first()
    if server is None:
        _record_denial(user, Server.objects.filter(pk=server_id).first(), f"server {server_id}: {capability}")
        raise Http404("No such server.")
    role = server.role_for(user)
    if not role_allows(role, capability):
        _record_denial(user, server, f"server {server_id}: {capability} (role {role})")
        raise PermissionDenied(f"Your role on {server.name} does not allow this.")
    server.user_role = role  # type: ignore[attr-defined]
    return server


def _record_denial(user: Any, server: Server | None, target: str) -> None:
    """Failed authorization is a security event (ASVS 16.3.2): who tried what, on which server."""
    from accounts import audit

    if getattr(user, "is_authenticated", False):
        audit.record(action="access.denied", actor=user, server=server, target=target)


def user_can(user: Any, server: Server, capability: str) -> bool:
    return role_allows(server.role_for(user), capability)


def servers_allowing(user: Any, servers: Iterable[Server], capability: str) -> set[int]:
    """Ids of those servers on which the user has the capability, in one query (`user_can` for lists)."""
    servers = list(servers)
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    roles: dict[int, str]
    if user.is_superuser:
        roles = {server.pk: Role.ADMIN for server in servers}
    else:
        roles = dict(Membership.objects.filter(user=user, server__in=servers).values_list("server_id", "role"))
    return {pk for pk, role in roles.items() if role_allows(role, capability)}


def is_site_admin(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active and user.is_superuser)


def require_site_admin(user: Any) -> None:
    if not is_site_admin(user):
        _record_denial(user, None, "site administration")
        raise PermissionDenied("Only site administrators may do this.")
