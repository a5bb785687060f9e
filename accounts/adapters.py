from __future__ import annotations

import time
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest


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
