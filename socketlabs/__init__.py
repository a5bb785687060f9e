"""A plain-Python client for the SocketLabs APIs (no Django imports).

Everything in Mailroom that talks to SocketLabs goes through `SocketLabsClient`.
"""

from socketlabs.client import SocketLabsClient
from socketlabs.errors import (
    AuthenticationError,
    ConflictError,
    ConnectError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    SocketLabsError,
    TimeoutError,
    TransientError,
    ValidationError,
)

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "ConnectError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitedError",
    "ServerError",
    "SocketLabsClient",
    "SocketLabsError",
    "TimeoutError",
    "TransientError",
    "ValidationError",
]
