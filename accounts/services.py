"""Writes for accounts: servers, credentials, memberships, invitations, connection checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

import socketlabs
from accounts import audit
from accounts.models import Membership, Server, ServerStatus, SiteSettings, User
from accounts.roles import Role

SERVER_AUDIT_FIELDS = (
    "name",
    "socketlabs_id",
    "account_id",
    "subaccount_id",
    "inject_url",
    "api_url",
    "marketing_url",
    "time_zone",
)


def _server_snapshot(server: Server) -> dict[str, Any]:
    data: dict[str, Any] = {f: getattr(server, f) for f in SERVER_AUDIT_FIELDS}
    # Secrets are never stored in the audit log, only whether they changed.
    for secret in Server.SECRET_FIELDS:
        data[f"{secret}_set"] = bool(getattr(server, secret))
    return data


def create_server(*, request: HttpRequest | None, actor: Any, data: dict[str, Any]) -> Server:
    with transaction.atomic():
        server = Server.objects.create(**data)
        audit.record(
            action="server.create",
            request=request,
            actor=actor,
            server=server,
            target=str(server),
            after=_server_snapshot(server),
        )
    return server


def update_server(*, request: HttpRequest | None, actor: Any, server: Server, data: dict[str, Any]) -> Server:
    """Apply changes; a blank secret in `data` keeps the stored one (write-only fields)."""
    before = _server_snapshot(server)
    changed_secrets = []
    for key, value in data.items():
        if key in Server.SECRET_FIELDS:
            if not value:
                continue
            if value != getattr(server, key):
                changed_secrets.append(key)
        setattr(server, key, value)
    if changed_secrets:
        server.status = ServerStatus.UNKNOWN
        server.status_message = ""
    with transaction.atomic():
        server.save()
        after = _server_snapshot(server)
        for key in changed_secrets:
            after[f"{key}_changed"] = True
        audit.record(
            action="server.update",
            request=request,
            actor=actor,
            server=server,
            target=str(server),
            before=before,
            after=after,
        )
    return server


def delete_server(*, request: HttpRequest | None, actor: Any, server: Server) -> None:
    with transaction.atomic():
        audit.record(
            action="server.delete",
            request=request,
            actor=actor,
            server=None,
            target=str(server),
            before=_server_snapshot(server),
        )
        server.delete()


def client_for(server: Server, **options: Any) -> socketlabs.SocketLabsClient:
    """A client for this server's three APIs; `options` go to the client (e.g. `max_attempts=1`)."""
    return socketlabs.SocketLabsClient(
        server_id=server.socketlabs_id,
        api_url=server.effective_api_url,
        api_key=server.api_key or "",
        inject_url=server.effective_inject_url,
        injection_key=server.injection_key or "",
        marketing_url=server.effective_marketing_url,
        marketing_key=server.marketing_key or "",
        timeout=(settings.SOCKETLABS_CONNECT_TIMEOUT, settings.SOCKETLABS_READ_TIMEOUT),
        **options,
    )


@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    status: str
    message: str


def check_connection(*, server: Server) -> ConnectionResult:
    """Ask SocketLabs about this server with its API key and translate the outcome."""
    where = f"server {server.socketlabs_id}"
    if not server.api_key:
        return ConnectionResult(False, ServerStatus.AUTH_FAILED, f"No API key is stored for {where}. Add one first.")
    try:
        # One attempt: a person is waiting on the button, and the answer (even "unreachable")
        # is what they asked for. Background work keeps the client's retries.
        info = client_for(server, max_attempts=1).get_server()
    except socketlabs.AuthenticationError:
        return ConnectionResult(
            False,
            ServerStatus.AUTH_FAILED,
            f"SocketLabs refused the API key for {where} (401). Check the key under Admin → Servers.",
        )
    except socketlabs.PermissionDeniedError:
        return ConnectionResult(
            False,
            ServerStatus.AUTH_FAILED,
            f"The API key is valid but may not read {where} (403). Check its permissions and the server id.",
        )
    except socketlabs.NotFoundError:
        return ConnectionResult(False, ServerStatus.ERROR, f"SocketLabs has no {where} (404). Check the server id.")
    except socketlabs.ConnectError:
        return ConnectionResult(
            False,
            ServerStatus.UNREACHABLE,
            f"Could not reach {server.effective_api_url}. Check the address and the network.",
        )
    except socketlabs.TimeoutError:
        return ConnectionResult(
            False,
            ServerStatus.TIMEOUT,
            f"{server.effective_api_url} did not answer within {settings.SOCKETLABS_READ_TIMEOUT:g} s.",
        )
    except socketlabs.SocketLabsError as exc:
        detail = _without_secrets(str(exc), server)
        return ConnectionResult(False, ServerStatus.ERROR, f"SocketLabs answered with an error: {detail}")
    name = f" ({info.name})" if info.name else ""
    return ConnectionResult(True, ServerStatus.OK, f"Connected to {where}{name}.")


def _without_secrets(text: str, server: Server) -> str:
    """Remote error text is shown and stored: a key it echoes back must not be."""
    from accounts.fields import mask
    from accounts.logging import mask_text

    for field in Server.SECRET_FIELDS:
        secret = getattr(server, field)
        if secret:
            text = text.replace(secret, mask(secret))
    return mask_text(text)


def test_connection(*, request: HttpRequest | None, actor: Any, server: Server) -> ConnectionResult:
    result = check_connection(server=server)
    Server.objects.filter(pk=server.pk).update(
        status=result.status, status_message=result.message[:500], last_checked_at=timezone.now()
    )
    server.refresh_from_db(fields=["status", "status_message", "last_checked_at"])
    audit.record(
        action="server.test_connection",
        request=request,
        actor=actor,
        server=server,
        target=str(server),
        after={"ok": result.ok, "status": result.status},
    )
    return result


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def set_membership(
    *, request: HttpRequest | None, actor: Any, server: Server, user: User, role: str | None
) -> Membership | None:
    """Give `user` a role on `server`, change it, or (role=None) remove access."""
    existing = Membership.objects.filter(server=server, user=user).first()
    before = {"role": existing.role} if existing else None
    with transaction.atomic():
        if role is None:
            if existing:
                existing.delete()
            membership = None
        elif existing:
            existing.role = role
            existing.save(update_fields=["role"])
            membership = existing
        else:
            membership = Membership.objects.create(server=server, user=user, role=role)
        audit.record(
            action="membership.remove" if role is None else "membership.set",
            request=request,
            actor=actor,
            server=server,
            target=user.email,
            before=before,
            after={"role": role} if role else None,
        )
    return membership


def invite_user(
    *, request: HttpRequest, actor: Any, email: str, server: Server | None = None, role: str = Role.VIEWER
) -> tuple[User, str]:
    """Create (or find) a user and return a one-time link to set their password."""
    email = email.strip().lower()
    with transaction.atomic():
        user, created = User.objects.get_or_create(email=email)
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            audit.record(action="user.invite", request=request, actor=actor, server=server, target=email)
        if server is not None:
            set_membership(request=request, actor=actor, server=server, user=user, role=role)
    return user, request.build_absolute_uri(password_setup_path(user))


def password_setup_path(user: User) -> str:
    """A one-time link (allauth's password-reset key) for a user to choose a password."""
    from allauth.account.forms import default_token_generator as allauth_tokens
    from allauth.account.utils import user_pk_to_url_str

    key = allauth_tokens.make_token(user)
    return reverse("account_reset_password_from_key", kwargs={"uidb36": user_pk_to_url_str(user), "key": key})


def set_user_active(*, request: HttpRequest, actor: Any, user: User, active: bool) -> None:
    """Deactivating a user also ends all of their sessions."""
    with transaction.atomic():
        user.is_active = active
        user.save(update_fields=["is_active"])
        if not active:
            end_all_sessions(user=user)
        audit.record(
            action="user.activate" if active else "user.deactivate",
            request=request,
            actor=actor,
            target=user.email,
        )


def end_all_sessions(*, user: User) -> int:
    from allauth.usersessions.models import UserSession
    from django.contrib.sessions.models import Session

    keys = list(UserSession.objects.filter(user=user).values_list("session_key", flat=True))
    UserSession.objects.filter(user=user).delete()
    deleted, _ = Session.objects.filter(session_key__in=keys).delete()
    return deleted


# --- Two-factor policy ---------------------------------------------------------
MFA_CACHE_KEY = "mailroom:site:require_mfa"


def mfa_required_for(user: Any) -> bool:
    required = cache.get(MFA_CACHE_KEY)
    if required is None:
        required = SiteSettings.load().require_mfa
        cache.set(MFA_CACHE_KEY, required, 60)
    return bool(required)


def user_has_mfa(user: Any) -> bool:
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def set_require_mfa(*, request: HttpRequest, actor: Any, required: bool) -> None:
    site = SiteSettings.load()
    before = site.require_mfa
    site.require_mfa = required
    site.save(update_fields=["require_mfa"])
    cache.delete(MFA_CACHE_KEY)
    audit.record(
        action="site.require_mfa",
        request=request,
        actor=actor,
        target="site",
        before={"require_mfa": before},
        after={"require_mfa": required},
    )
