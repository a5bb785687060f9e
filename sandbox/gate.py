"""Decorators every sandbox view wears.

`SANDBOX_ENABLED` is read per request, so switching it off makes every sandbox
URL a 404 at once (and tests can flip it with override_settings).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

View = Callable[..., HttpResponse]


def _require_enabled() -> None:
    if not settings.SANDBOX_ENABLED:
        raise Http404("The sandbox is switched off.")


def sandbox_api(view: View) -> View:
    """An endpoint of the fake SocketLabs: authenticated by its own API keys, never by Mailroom's session."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        _require_enabled()
        return view(request, *args, **kwargs)

    return login_not_required(csrf_exempt(wrapped))


def sandbox_page(view: View) -> View:
    """A sandbox page for people: Mailroom login required, site administrators only."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        _require_enabled()
        if not request.user.is_superuser:
            raise PermissionDenied("The sandbox pages are for site administrators.")
        return view(request, *args, **kwargs)

    return wrapped
