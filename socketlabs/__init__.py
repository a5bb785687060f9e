"""A plain-Python client for the SocketLabs APIs (no Django imports).

Everything in Mailroom that talks to SocketLabs goes through `SocketLabsClient`: the Injection
API (`client.inject`), API v2 (`client.get_server`, `client.suppressions`, `client.reports`, …)
and the Marketing API (`client.marketing`). Paths live in `socketlabs.paths.PATHS`.

Retries and the no-double-send rule (shared/ecosystem.md §3.5, R9):

* Every HTTP call has a `(connect, read)` timeout; there is no way to make one without it.
* Transient failures — connection errors, 429, 5xx, non-JSON answers, and read timeouts on
  GET/PUT/DELETE — are retried with exponential backoff and full jitter (base 1 s, cap 30 s),
  at most 5 attempts. A 429/503 `Retry-After` is honoured exactly, capped at 60 s.
* 4xx other than 408/429 are never retried: they raise at once (`permanent=True`).
* **An injection is never sent twice by the client.** Only failures that prove SocketLabs did
  not take the request — a connect error (it never left), 429, 503 — are retried. A read
  timeout, a connection dropped after sending, another 5xx or a garbled answer raise
  `OutcomeUnknownError` after exactly one call; reconcile it from webhooks/reports by MessageId.
  Business verdicts (`OverQuota`, `InvalidAddress`, …) come back in the `InjectionResult`.
* A circuit breaker per (base URL, server id) opens after 10 consecutive failed attempts; for
  the next 60 s calls raise `CircuitOpenError` without any HTTP call.
* `sleep`, `clock` and `rng` are constructor arguments, so tests assert exact sleeps.

Errors all derive from `SocketLabsError` and carry `permanent`, `status`, `error_type`,
`message` and `errors` (one `ErrorDetail` per problem reported in the body).
"""

from socketlabs.client import (
    DEFAULT_API_URL,
    DEFAULT_INJECT_URL,
    DEFAULT_MARKETING_URL,
    SocketLabsClient,
)
from socketlabs.errors import (
    AuthenticationError,
    CircuitOpenError,
    ConfigurationError,
    ConflictError,
    ConnectError,
    ErrorDetail,
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
from socketlabs.injection import (
    Address,
    AddressResult,
    Attachment,
    BasicMessage,
    BulkMessage,
    BulkRecipient,
    InjectionResult,
    MessageResult,
    SendResult,
    is_bearer_key,
)
from socketlabs.models import (
    AggregateRow,
    ApiKey,
    BounceDomain,
    Contact,
    ContactList,
    CustomField,
    CustomFieldValue,
    DkimRecord,
    EventWebhook,
    GroupBy,
    InboundParseEndpoint,
    InjectionCredentials,
    KeyPermission,
    MessageDetail,
    MessageEvent,
    Page,
    RecipientSearchRow,
    ReportEvent,
    ReportKind,
    ReportOverview,
    SendingDomain,
    ServerInfo,
    StreamScore,
    StreamScorePoint,
    Suppression,
    SuppressionReason,
    TrackingDomain,
)
from socketlabs.transport import BreakerRegistry, default_breakers

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_INJECT_URL",
    "DEFAULT_MARKETING_URL",
    "Address",
    "AddressResult",
    "AggregateRow",
    "ApiKey",
    "Attachment",
    "AuthenticationError",
    "BasicMessage",
    "BounceDomain",
    "BreakerRegistry",
    "BulkMessage",
    "BulkRecipient",
    "CircuitOpenError",
    "ConfigurationError",
    "ConflictError",
    "ConnectError",
    "Contact",
    "ContactList",
    "CustomField",
    "CustomFieldValue",
    "DkimRecord",
    "ErrorDetail",
    "EventWebhook",
    "GroupBy",
    "InboundParseEndpoint",
    "InjectionCredentials",
    "InjectionResult",
    "KeyPermission",
    "MessageDetail",
    "MessageEvent",
    "MessageResult",
    "NotFoundError",
    "OutcomeUnknownError",
    "Page",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitedError",
    "RecipientSearchRow",
    "ReportEvent",
    "ReportKind",
    "ReportOverview",
    "SendResult",
    "SendingDomain",
    "ServerError",
    "ServerInfo",
    "SocketLabsClient",
    "SocketLabsError",
    "StreamScore",
    "StreamScorePoint",
    "Suppression",
    "SuppressionReason",
    "TimeoutError",
    "TrackingDomain",
    "TransientError",
    "ValidationError",
    "default_breakers",
    "is_bearer_key",
]
