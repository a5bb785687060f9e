from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_out, user_login_failed
from django.dispatch import receiver

from accounts import audit


@receiver(user_logged_out)
def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit.record(action="logout", request=request, actor=user, target=user.email)


@receiver(user_login_failed)
def _login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    who = str(credentials.get("email") or credentials.get("username") or credentials.get("login") or "")
    audit.record(action="login.failed", request=request, actor=None, target=who)


@receiver(user_locked_out)
def _locked_out(sender: Any, request: Any = None, username: str | None = None, **kwargs: Any) -> None:
    audit.record(action="login.locked_out", request=request, actor=None, target=username or "")
