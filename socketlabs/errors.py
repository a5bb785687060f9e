"""One exception family for everything that can go wrong talking to SocketLabs."""

from __future__ import annotations


class SocketLabsError(Exception):
    """Base of every client error.

    `permanent` is True when retrying cannot help (bad key, validation error,
    missing resource) and False for transient failures (timeouts, 429, 5xx),
    which callers may retry later.
    """

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
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type
        self.retry_after = retry_after
        self.body = body
        if permanent is not None:
            self.permanent = permanent

    def __str__(self) -> str:
        prefix = f"HTTP {self.status}: " if self.status else ""
        return f"{prefix}{self.message}"


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

    def __init__(self, message: str, *, errors: list[dict[str, str]] | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.errors = errors or []


class TransientError(SocketLabsError):
    """Worth retrying later: 429, 5xx, connection problems."""

    permanent = False


class RateLimitedError(TransientError):
    """429 Too Many Requests; `retry_after` holds the server's hint in seconds."""


class ServerError(TransientError):
    """5xx from SocketLabs."""


class ConnectError(TransientError):
    """The host could not be reached (DNS, refused, connect timeout)."""


class TimeoutError(TransientError):  # noqa: A001 - deliberately named for callers: socketlabs.TimeoutError
    """No answer in time after the request was sent."""


class OutcomeUnknownError(SocketLabsError):
    """An injection may have reached SocketLabs but no answer came back.

    Never retried automatically: retrying could send the same message twice.
    Reconcile from event webhooks or reports instead.
    """

    permanent = True


class ProtocolError(TransientError):
    """The answer was not what the contract promises (not JSON, wrong shape)."""
