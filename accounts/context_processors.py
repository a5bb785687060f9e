from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from accounts.models import Server


def navigation(request: HttpRequest) -> dict[str, Any]:
    """The server switcher: servers the user may see, and the one in the URL if any."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    servers = list(Server.objects.for_user(user).only("id", "name", "socketlabs_id"))
    current_id = None
    match = getattr(request, "resolver_match", None)
    if match is not None:
        current_id = match.kwargs.get("server_id")
    current = next((s for s in servers if s.pk == current_id), None)
    return {
        "nav_servers": servers,
        "current_server": current,
        "sandbox_enabled": settings.SANDBOX_ENABLED and user.is_superuser,
    }
