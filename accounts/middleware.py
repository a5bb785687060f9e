"""Session lifetime, the two-factor requirement and no-store, in one place each."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

LOGIN_AT_KEY = "mailroom_login_at"

Handler = Callable[[HttpRequest], HttpResponse]


class SessionLifetimeMiddleware:
    """Absolute session lifetime: sign out a session older than SESSION_ABSOLUTE_SECONDS.

    The idle timeout is Django's own (SESSION_COOKIE_AGE renewed on every request).
    After signing out, the request carries on as anonymous, so LoginRequiredMiddleware
    sends a page to the login form and DRF answers an API call with 401: one rule each.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            login_at = request.session.get(LOGIN_AT_KEY)
            if login_at is None:
                # Sessions from before this middleware (or force_login) start counting now.
                request.session[LOGIN_AT_KEY] = time.time()
            elif time.time() - float(login_at) > settings.SESSION_ABSOLUTE_SECONDS:
                logout(request)
        return self.get_response(request)


# Paths a signed-in user without two-factor may still reach when it is required: setting it
# up (allauth lives under /accounts/: activate, re-authenticate, sign out) and static files.
MFA_EXEMPT_PREFIXES = ("/accounts/", "/static/")


class RequireMFAMiddleware:
    """When an administrator requires two-factor for everyone, send users without it to set it up.

    Runs in `process_view` so it knows the view: public views (health, webhooks, the sandbox's
    key-authenticated API) are left alone, while a *session* on the REST API gets 403 rather
    than a way around the requirement. API tokens are checked by DRF after this and are only
    created on pages this middleware guards.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        user = request.user
        if not user.is_authenticated or request.path.startswith(MFA_EXEMPT_PREFIXES):
            return None
        # DRF views are login_not_required (they authenticate themselves) but a session there
        # is the same person who must set up two-factor first.
        is_api = not getattr(view_func, "login_required", True)
        if is_api and not request.path.startswith("/api/"):
            return None
        from accounts.services import mfa_required_for, user_has_mfa

        if not mfa_required_for(user) or user_has_mfa(user):
            return None
        if is_api:
            return JsonResponse(
                {"detail": "Two-factor authentication is required. Set it up in Mailroom first."}, status=403
            )
        messages.warning(request, "Two-factor authentication is required on this Mailroom. Set it up to continue.")
        if request.headers.get("HX-Request") == "true":
            response = HttpResponse(status=204)
            response["HX-Redirect"] = reverse("mfa_activate_totp")
            return response
        return redirect("mfa_activate_totp")


class NoStoreMiddleware:
    """Authenticated pages must not be kept by browsers or proxies (ASVS 14.3.2)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.user.is_authenticated and not request.path.startswith(settings.STATIC_URL):
            response["Cache-Control"] = "no-store"
        return response
