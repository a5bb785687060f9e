from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

LOGIN_AT_KEY = "mailroom_login_at"

Handler = Callable[[HttpRequest], HttpResponse]


class SessionLifetimeMiddleware:
    """Absolute session lifetime: sign out a session older than SESSION_ABSOLUTE_SECONDS.

    The idle timeout is Django's own (SESSION_COOKIE_AGE renewed on every request).
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            login_at = request.session.get(LOGIN_AT_KEY)
            if login_at is None:
                request.session[LOGIN_AT_KEY] = time.time()
            elif time.time() - float(login_at) > settings.SESSION_ABSOLUTE_SECONDS:
                logout(request)
                return redirect_to_login(request.get_full_path())
        return self.get_response(request)


# Paths a user without two-factor may still reach when it is required.
MFA_EXEMPT_PREFIXES = ("/accounts/", "/static/", "/health/", "/hooks/", "/sandbox/", "/api/")


class RequireMFAMiddleware:
    """When an administrator requires two-factor for everyone, send users without it to set it up."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and not request.path.startswith(MFA_EXEMPT_PREFIXES):
            from accounts.services import mfa_required_for, user_has_mfa

            if mfa_required_for(user) and not user_has_mfa(user):
                return redirect("mfa_activate_totp")
        return self.get_response(request)


class NoStoreMiddleware:
    """Authenticated pages must not be kept by browsers or proxies (ASVS 14.3.2)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.user.is_authenticated and not request.path.startswith(settings.STATIC_URL):
            response["Cache-Control"] = "no-store"
        return response
