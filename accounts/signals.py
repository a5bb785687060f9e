"""Authentication events into the audit log (ASVS 16.3.1): Django, allauth and axes signals.

A successful login is recorded by `AccountAdapter.login`, after every login stage (MFA) passed.
"""

from __future__ import annotations

from typing import Any

from allauth.account.signals import password_changed, password_reset, password_set
from allauth.mfa.signals import authentication_failed, authenticator_added, authenticator_removed, authenticator_reset
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_logged_out, user_login_failed
from django.db.models.signals import post_save, pre_delete, pre_save
from django.dispatch import receiver

from accounts import audit
from accounts.models import AuditLog


def _email(user: Any) -> str:
    return str(getattr(user, "email", "") or "")


@receiver(user_logged_out)
def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit.record(action="logout", request=request, actor=user, target=_email(user))


@receiver(user_login_failed)
def _login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    # Django has already replaced the password in `credentials` with stars; only the address is kept.
    who = str(credentials.get("email") or credentials.get("username") or credentials.get("login") or "")
    audit.record(action="login.failed", request=request, actor=None, target=who)


@receiver(user_locked_out)
def _locked_out(sender: Any, request: Any = None, username: str | None = None, **kwargs: Any) -> None:
    audit.record(action="login.locked_out", request=request, actor=None, target=username or "")


@receiver(authentication_failed)
def _mfa_failed(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    audit.record(action="mfa.failed", request=request, actor=None, target=_email(user))


@receiver(authenticator_added)
def _mfa_added(sender: Any, request: Any = None, user: Any = None, authenticator: Any = None, **kwargs: Any) -> None:
    audit.record(
        action=f"mfa.{getattr(authenticator, 'type', 'unknown')}.activate",
        request=request,
        actor=user,
        target=_email(user),
    )


@receiver(authenticator_removed)
def _mfa_removed(sender: Any, request: Any = None, user: Any = None, authenticator: Any = None, **kwargs: Any) -> None:
    audit.record(
        action=f"mfa.{getattr(authenticator, 'type', 'unknown')}.deactivate",
        request=request,
        actor=user,
        target=_email(user),
    )


@receiver(authenticator_reset)
def _mfa_reset(sender: Any, request: Any = None, user: Any = None, authenticator: Any = None, **kwargs: Any) -> None:
    audit.record(
        action=f"mfa.{getattr(authenticator, 'type', 'unknown')}.reset",
        request=request,
        actor=user,
        target=_email(user),
    )


@receiver(password_changed)
def _password_changed(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    audit.record(action="password.change", request=request, actor=user, target=_email(user))


@receiver(password_set)
def _password_set(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    audit.record(action="password.set", request=request, actor=user, target=_email(user))


@receiver(password_reset)
def _password_reset(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    # The invitation link is a password reset: this is also "invited user chose a password".
    audit.record(action="password.reset", request=request, actor=user, target=_email(user))


# --- The audit log is append-only (ASVS 16.4.2) -----------------------------------------------
class AuditLogIsAppendOnly(Exception):
    """Audit rows are written once by `accounts.audit.record()` and never changed or deleted."""


@receiver(pre_save, sender=AuditLog)
def _refuse_audit_update(sender: Any, instance: AuditLog, raw: bool = False, **kwargs: Any) -> None:
    if not raw and not instance._state.adding:
        raise AuditLogIsAppendOnly(f"Audit entry {instance.pk} cannot be changed.")


@receiver(pre_delete, sender=AuditLog)
def _refuse_audit_delete(sender: Any, instance: AuditLog, **kwargs: Any) -> None:
    raise AuditLogIsAppendOnly(f"Audit entry {instance.pk} cannot be deleted.")


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def _one_sign_in_address(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """Give every user their address as allauth's primary, verified EmailAddress.

    With ACCOUNT_MAX_EMAIL_ADDRESSES = 1 this is what stops a user adding a second address
    themselves: administrators decide who signs in with which address.
    """
    from allauth.account.models import EmailAddress

    if not instance.email:
        return
    EmailAddress.objects.filter(user=instance).exclude(email__iexact=instance.email).delete()
    EmailAddress.objects.update_or_create(
        user=instance, email=instance.email, defaults={"primary": True, "verified": True}
    )
