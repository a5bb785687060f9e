"""SocketLabs failures in plain words, for the pages and the API (ux.md: "Errors from SocketLabs are translated")."""

from __future__ import annotations

import socketlabs
from accounts.fields import mask
from accounts.logging import mask_text
from accounts.models import Server


class SendingError(Exception):
    """A change could not be made; `message` is ready to show. `status` is what the REST API answers."""

    def __init__(self, message: str, *, status: int = 400, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


def _without_secrets(text: str, server: Server) -> str:
    """Remote error text is shown: a key it echoes back must not be."""
    for name in Server.SECRET_FIELDS:
        secret = getattr(server, name)
        if secret:
            text = text.replace(secret, mask(secret))
    return mask_text(text)


def _seconds(value: float | None, default: int = 60) -> int:
    return max(1, round(value)) if value else default


def explain(exc: socketlabs.SocketLabsError, *, server: Server, doing: str) -> str:
    """One sentence or two: what failed, SocketLabs' own words, and what to do next."""
    where = f"server {server.socketlabs_id}"
    said = _without_secrets(exc.message, server).strip().rstrip(".")
    if isinstance(exc, socketlabs.ConfigurationError):
        return f"Mailroom has no API key for {where}, so it cannot {doing}. An Admin can add one under Admin → Servers."
    if isinstance(exc, socketlabs.AuthenticationError):
        return f"SocketLabs refused the API key for {where} (401). Check the key under Admin → Servers."
    if isinstance(exc, socketlabs.PermissionDeniedError):
        return (
            f"SocketLabs refused to let Mailroom's key {doing} on {where} (403): {said}. "
            "Check that the key has the API permission."
        )
    if isinstance(exc, socketlabs.NotFoundError):
        return f"SocketLabs refused to {doing}: {said} (404). Reload the page to see the current list."
    if isinstance(exc, socketlabs.ConflictError):
        return f"SocketLabs refused to {doing}: {said} (409)."
    if isinstance(exc, socketlabs.ValidationError):
        return f"SocketLabs refused to {doing}: {said} ({exc.status or 422})."
    if isinstance(exc, socketlabs.CircuitOpenError):
        return (
            f"Mailroom paused calls to SocketLabs for {where} after repeated failures. "
            f"Try again in {_seconds(exc.retry_after)} s."
        )
    if isinstance(exc, socketlabs.RateLimitedError):
        return f"SocketLabs is limiting requests for {where} (429). Try again in {_seconds(exc.retry_after)} s."
    if isinstance(exc, socketlabs.ConnectError):
        return f"Could not reach SocketLabs at {server.effective_api_url} to {doing}. Check the network and try again."
    if isinstance(exc, socketlabs.TimeoutError):
        return (
            f"SocketLabs did not answer in time when asked to {doing}. "
            "It may or may not have happened: reload the page to see, then try again."
        )
    if isinstance(exc, socketlabs.ServerError):
        return f"SocketLabs had an internal problem ({exc.status}) when asked to {doing}. Try again in a few minutes."
    if isinstance(exc, socketlabs.ProtocolError):
        return f"SocketLabs sent an answer Mailroom could not read when asked to {doing}. Try again later."
    status = f" (HTTP {exc.status})" if exc.status else ""
    return f"SocketLabs answered with an error when asked to {doing}{status}: {said}."


def api_status(exc: socketlabs.SocketLabsError) -> int:
    """What our REST API answers for a SocketLabs failure: its 4xx verdicts keep their meaning, the rest is 502/503."""
    if isinstance(exc, socketlabs.ConfigurationError):
        return 409
    if isinstance(exc, socketlabs.NotFoundError):
        return 404
    if isinstance(exc, socketlabs.ConflictError):
        return 409
    if isinstance(exc, socketlabs.ValidationError):
        return 422
    if isinstance(exc, socketlabs.RateLimitedError | socketlabs.CircuitOpenError):
        return 503
    return 502
