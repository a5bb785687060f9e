"""How allauth, django-axes and allauth.usersessions fit Mailroom's rules.

* Sign-up is closed: administrators invite people (`accounts.services.invite_user`).
* Every successful login stamps the session (absolute lifetime) and is audited.
* Axes counts failures per (e-mail, IP). allauth hands `authenticate()` the address as
  `email=…`, not as the form field `login`, so axes needs `axes_username` to find it.
* Ending sessions from the sessions page is audited.
* Two-factor codes have their own limit per user (`MFA_CODE_RATE`). allauth counts wrong codes
  under its "login_failed" limit, which settings switch off so that axes alone handles passwords
  (allauth's per-address limit would let anyone lock a user out from every IP).
"""

from __future__ import annotations

import time
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.core import context, ratelimit
from allauth.mfa.base.forms import AuthenticateForm, ReauthenticateForm
from allauth.usersessions.adapter import DefaultUserSessionsAdapter
from django.http import HttpRequest

# The allauth rate-limit action (configured in ACCOUNT_RATE_LIMITS) for wrong two-factor codes.
MFA_CODE_ACTION = "mfa_code"


class AccountAdapter(DefaultAccountAdapter):
    """Mailroom is invitation-only: administrators add users, nobody signs up."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False

    def login(self, request: HttpRequest, user: Any) -> None:
        super().login(request, user)
        from accounts import audit
        from accounts.middleware import LOGIN_AT_KEY

        request.session[LOGIN_AT_KEY] = time.time()
        audit.record(action="login", request=request, actor=user, target=user.email)


def axes_username(request: HttpRequest | None, credentials: dict[str, Any] | None = None) -> str | None:
    """The address a login attempt is for, normalised so `Bob@X` and `bob@x` share one counter."""
    value: Any = None
    if credentials:
        value = credentials.get("email") or credentials.get("login") or credentials.get("username")
    if not value and request is not None:
        data = getattr(request, "data", None) or request.POST
        value = data.get("login") or data.get("email") or data.get("username")
    if not value:
        return None
    return str(value).strip().lower()


class UserSessionsAdapter(DefaultUserSessionsAdapter):
    """Ending sessions (the user's own "sign out other sessions") leaves an audit entry."""

    def end_sessions(self, sessions: Any) -> None:
        from allauth.core import context

        from accounts import audit

        sessions = list(sessions)
        super().end_sessions(sessions)
        request = getattr(context, "request", None)
        for session in sessions:
            audit.record(
                action="session.end",
                request=request,
                target=str(getattr(session.user, "email", "")),
                after={"ip": session.ip},
            )


class _CodeLimit:
    """Wrong two-factor codes per user, across addresses: whoever guesses already has the password."""

    user: Any

    def clean_code(self) -> str:
        request = context.request
        key = f"mfa-code-user-{self.user.pk}"
        if not ratelimit.consume(request, action=MFA_CODE_ACTION, key=key):
            raise get_account_adapter().validation_error("too_many_login_attempts")
        code: str = super().clean_code()  # type: ignore[misc]
        ratelimit.clear(request, action=MFA_CODE_ACTION, key=key)
        return code


class MFAAuthenticateForm(_CodeLimit, AuthenticateForm):
    """The code asked for at sign-in (MFA_FORMS["authenticate"])."""


class MFAReauthenticateForm(_CodeLimit, ReauthenticateForm):
    """The code asked for before a sensitive change (MFA_FORMS["reauthenticate"])."""
