"""Talking to SocketLabs about suppressions: the client, and its errors in plain words.

Every call goes through `socketlabs.SocketLabsClient.suppressions` (S1–S5 of the contract).
Interactive calls (a page, an API request) make one attempt: when SocketLabs cannot be
reached, the change goes to the outbox (`PendingWrite`) and Celery retries it with backoff,
instead of keeping the person waiting through the client's own retries.
"""

from __future__ import annotations

import socketlabs
from accounts.models import Server
from accounts.services import client_for

INTERACTIVE_ATTEMPTS = 1
BACKGROUND_ATTEMPTS = 3


def client(server: Server, *, interactive: bool) -> socketlabs.SocketLabsClient:
    return client_for(server, max_attempts=INTERACTIVE_ATTEMPTS if interactive else BACKGROUND_ATTEMPTS)


def is_plan_refusal(exc: Exception) -> bool:
    """SocketLabs answers 403 to suppression calls when the server's plan lacks the feature."""
    return isinstance(exc, socketlabs.PermissionDeniedError)


def is_transient(exc: Exception) -> bool:
    return isinstance(exc, socketlabs.SocketLabsError) and not exc.permanent


def plan_message(server: Server, exc: Exception | None = None) -> str:
    detail = f" SocketLabs said: {exc.message}" if isinstance(exc, socketlabs.SocketLabsError) and exc.message else ""
    return (
        f"Suppression management is not part of the SocketLabs plan of {server.name} "
        f"(server {server.socketlabs_id}), so Mailroom cannot check or change its list there (403).{detail}"
    )


def describe(server: Server, exc: Exception) -> str:
    """One sentence for the page: what went wrong and what to do, never a stack trace."""
    where = f"server {server.socketlabs_id}"
    if not server.api_key:
        return f"No API key is stored for {server.name}. Add one under Admin → Servers."
    if isinstance(exc, socketlabs.AuthenticationError):
        return f"SocketLabs refused the API key for {where} (401). Check the key under Admin → Servers."
    if isinstance(exc, socketlabs.PermissionDeniedError):
        return plan_message(server, exc)
    if isinstance(exc, socketlabs.ValidationError):
        return f"SocketLabs refused the request for {where}: {exc.message}"
    if isinstance(exc, socketlabs.NotFoundError):
        return f"SocketLabs has no such entry for {where} (404)."
    if isinstance(exc, socketlabs.RateLimitedError):
        wait = f" for {exc.retry_after:.0f} s" if exc.retry_after else ""
        return f"SocketLabs asked Mailroom to slow down{wait} (429)."
    if isinstance(exc, socketlabs.ConnectError):
        return f"Could not reach SocketLabs at {server.effective_api_url}."
    if isinstance(exc, socketlabs.TimeoutError):
        return f"SocketLabs did not answer in time for {where}."
    if isinstance(exc, socketlabs.ServerError):
        return f"SocketLabs had an internal error ({exc.status}) for {where}."
    if isinstance(exc, socketlabs.SocketLabsError):
        return f"SocketLabs answered with an error for {where}: {exc}"
    return f"Unexpected error talking to SocketLabs for {where}: {type(exc).__name__}."
