"""One exception family for everything that can go wrong talking to SocketLabs.

Every error carries:
* `permanent` — True when retrying the same call cannot help (bad key, validation error,
  missing resource, or an injection whose outcome is unknown and must not be re-sent);
  False for transient failures (timeouts, 429, 5xx, connection problems) worth retrying later.
* `status` — the HTTP status, or None when no answer came back.
* `error_type` / `message` — taken from the answer's body when it has them
  (API v2 `errors[0].errorType`, Injection API `ErrorCode`), else a plain description.
* `errors` — every `ErrorDetail` the body listed (one per bad field on a 422).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of a v2 error body: `{"errorType": ..., "message": ...}`.

    `field` is the request field the message is about, when the body says so (an explicit
    `field`/`propertyName` key, or a message written as `"field: why"`).
    """

    error_type: str
    message: str
    field: str | None = None


class SocketLabsError(Exception):
    """Base of every client error."""

    permanent: bool = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        permanent: bool | None = None,
        retry_after: float | None = None,
        body: object = None,
        errors: list[ErrorDetail] | tuple[ErrorDetail, ...] | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type
        self.retry_after = retry_after
        self.body = body
        self.errors: tuple[ErrorDetail, ...] = tuple(errors or ())
        # How many HTTP calls the client made before giving up (set by the transport).
        self.attempts = attempts
        if permanent is not None:
            self.permanent = permanent

    def __str__(self) -> str:
        prefix = f"HTTP {self.status}: " if self.status else ""
        return f"{prefix}{self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, error_type={self.error_type!r}, message={self.message!r})"
        )


class ConfigurationError(SocketLabsError):
    """The client cannot make the call as configured (no key for that API, malformed base URL)."""


class AuthenticationError(SocketLabsError):
    """SocketLabs refused the key (401)."""


class PermissionDeniedError(SocketLabsError):
    """The key lacks the permission, or the server belongs to another account (403)."""


class NotFoundError(SocketLabsError):
    """The resource does not exist (404)."""


class ConflictError(SocketLabsError):
    """The resource already exists (409)."""


class ValidationError(SocketLabsError):
    """The request was refused as invalid (400/422); `errors` holds one entry per problem."""

    def field_errors(self) -> dict[str, list[str]]:
        """Messages grouped by field (entries without a field are under "")."""
        grouped: dict[str, list[str]] = {}
        for detail in self.errors:
            grouped.setdefault(detail.field or "", []).append(detail.message)
        return grouped


class TransientError(SocketLabsError):
    """Worth retrying later: 429, 5xx, connection problems."""

    permanent = False


class RateLimitedError(TransientError):
    """429 Too Many Requests; `retry_after` holds the server's hint in seconds."""


class ServerError(TransientError):
    """5xx from SocketLabs."""


class ConnectError(TransientError):
    """The host could not be reached (DNS, refused, connect timeout, connection dropped)."""


class TimeoutError(TransientError):  # noqa: A001 - deliberately named for callers: socketlabs.TimeoutError
    """No answer in time after the request was sent (read timeout, or HTTP 408)."""


class CircuitOpenError(ConnectError):
    """Too many consecutive failures reaching this API: calls fail fast without any HTTP call.

    A kind of `ConnectError` (the host was not even tried, because it has been failing), so
    "could not reach" handling covers it. `retry_after` holds the seconds until a call is let through.
    """


class OutcomeUnknownError(SocketLabsError):
    """An injection may have reached SocketLabs but no usable answer came back.

    Never retried automatically: retrying could send the same message twice.
    Reconcile from event webhooks or reports instead (the MailingId/MessageId you sent).
    """

    permanent = True


class ProtocolError(TransientError):
    """The answer was not what the contract promises (not JSON, wrong shape, unexpected redirect)."""
