"""The one HTTP choke point: session, mandatory timeouts, error mapping, retries, circuit breaker.

Retry policy (shared/ecosystem.md §3.5 and R9):

* Transient failures are retried with bounded exponential backoff with full jitter — before
  attempt n+1 the client sleeps `rng() * min(30, 1 * 2**(n-1))` seconds — at most 5 attempts
  (4 sleeps). A 429 or 503 with `Retry-After` sleeps exactly that long, capped at 60 s.
* Idempotent calls (GET, PUT, DELETE, and the POSTs marked so in `paths.py`) retry connection
  errors, read timeouts, 408, 429, 5xx and non-JSON answers.
* Non-idempotent POSTs retry only what proves the request was not accepted: connect errors
  (the request never left), 429 and 503. Everything else raises at once.
* The injection POST goes further: when it may have reached the server and no usable answer
  came back (read timeout, connection dropped after sending, a 5xx other than 503, 408, a
  2xx that is not JSON) it raises `OutcomeUnknownError` after exactly one call. It is never
  re-sent automatically: that could deliver the same mail twice.
* 4xx other than 408/429 are never retried.
* A circuit breaker per (base URL, server id) — shared by every client through a registry —
  opens after 10 consecutive failed attempts (connection problems, timeouts, 5xx, non-JSON
  answers; a 4xx or a 429 does not count, and any other answer resets the count) and then fails calls fast for 60 s with
  `CircuitOpenError`, making no HTTP call. After that, the next call is a trial: success
  closes the breaker, failure opens it again for another 60 s.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from urllib3.exceptions import ConnectTimeoutError as Urllib3ConnectTimeout
from urllib3.exceptions import MaxRetryError

from socketlabs import errors
from socketlabs.parsing import ci_get
from socketlabs.paths import Endpoint

MAX_ATTEMPTS = 5
BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0
RETRY_AFTER_CAP = 60.0
BREAKER_THRESHOLD = 10
BREAKER_OPEN_SECONDS = 60.0

Timeout = tuple[float, float]


# --- circuit breaker ---------------------------------------------------------------------------
class CircuitBreaker:
    """Counts consecutive failed attempts; `now` comes from the caller's (injectable) clock."""

    def __init__(self, *, threshold: int = BREAKER_THRESHOLD, open_seconds: float = BREAKER_OPEN_SECONDS) -> None:
        self.threshold = threshold
        self.open_seconds = open_seconds
        self.failures = 0
        self.opened_at: float | None = None
        self._lock = threading.Lock()

    def check(self, now: float) -> float:
        """Seconds until a call is allowed again; 0 when a call may go ahead."""
        with self._lock:
            if self.opened_at is None:
                return 0.0
            remaining = self.opened_at + self.open_seconds - now
            return max(remaining, 0.0)

    def record_success(self) -> None:
        with self._lock:
            self.failures = 0
            self.opened_at = None

    def record_failure(self, now: float) -> None:
        with self._lock:
            if self.opened_at is not None:
                # A failed trial after the open period: open again for a full period.
                if now >= self.opened_at + self.open_seconds:
                    self.opened_at = now
                return
            self.failures += 1
            if self.failures >= self.threshold:
                self.opened_at = now

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None


class BreakerRegistry:
    """One breaker per (base URL, server id), so every client of that server shares it."""

    def __init__(self, *, threshold: int = BREAKER_THRESHOLD, open_seconds: float = BREAKER_OPEN_SECONDS) -> None:
        self.threshold = threshold
        self.open_seconds = open_seconds
        self._breakers: dict[tuple[str, int], CircuitBreaker] = {}
        self._lock = threading.Lock()

    def get(self, base_url: str, server_id: int) -> CircuitBreaker:
        key = (base_url.rstrip("/").lower(), server_id)
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                breaker = self._breakers[key] = CircuitBreaker(threshold=self.threshold, open_seconds=self.open_seconds)
            return breaker

    def reset(self) -> None:
        with self._lock:
            self._breakers.clear()


default_breakers = BreakerRegistry()


# --- answers -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ApiResponse:
    status: int
    data: Any  # parsed JSON, or None for an empty body
    headers: Mapping[str, str]


class _Failure(Exception):
    """Internal: one failed attempt, with what the retry decision needs."""

    def __init__(self, error: errors.SocketLabsError, *, maybe_sent: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.maybe_sent = maybe_sent


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds (a number or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _error_details(body: Any) -> list[errors.ErrorDetail]:
    """The v2 `{"data": null, "errors": [...]}`, the older `[{Message, ErrorType}]`, or `{"message"}`."""
    items: Any
    if isinstance(body, list):
        items = body
    elif isinstance(body, Mapping):
        items = ci_get(body, "errors")
        if items is None:
            message = ci_get(body, "message")
            code = ci_get(body, "errorCode") or ci_get(body, "errorType")
            items = [{"errorType": code or "", "message": message or ""}] if (message or code) else []
    else:
        items = []
    details = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, str):
            details.append(errors.ErrorDetail(error_type="", message=item))
            continue
        if not isinstance(item, Mapping):
            continue
        error_type = str(ci_get(item, "errorType") or ci_get(item, "errorCode") or ci_get(item, "code") or "")
        message = str(ci_get(item, "message") or "")
        field = ci_get(item, "field") or ci_get(item, "propertyName")
        if field is None and ": " in message:
            head = message.split(": ", 1)[0]
            # "emailAddress: is not an e-mail address" names its field; a sentence does not.
            if head and " " not in head and len(head) <= 64:
                field = head
        details.append(errors.ErrorDetail(error_type=error_type, message=message, field=str(field) if field else None))
    return details


_STATUS_ERRORS: dict[int, type[errors.SocketLabsError]] = {
    400: errors.ValidationError,
    401: errors.AuthenticationError,
    403: errors.PermissionDeniedError,
    404: errors.NotFoundError,
    408: errors.TimeoutError,
    409: errors.ConflictError,
    422: errors.ValidationError,
    429: errors.RateLimitedError,
}

_STATUS_WORDS = {
    400: "SocketLabs refused the request as invalid.",
    401: "SocketLabs refused the API key.",
    403: "The API key may not do this on this server.",
    404: "SocketLabs has no such resource.",
    408: "SocketLabs timed out waiting for the request.",
    409: "That already exists at SocketLabs.",
    422: "SocketLabs refused the request as invalid.",
    429: "SocketLabs is rate-limiting these calls.",
}


def error_for_response(response: requests.Response, *, api_name: str) -> errors.SocketLabsError:
    """Map a non-2xx answer to the error family, with type and message from its body."""
    status = response.status_code
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    details = _error_details(body)
    error_type = details[0].error_type if details and details[0].error_type else None
    if isinstance(body, Mapping) and error_type is None:
        # Injection API bodies carry their verdict in ErrorCode.
        code = ci_get(body, "errorCode")
        error_type = str(code) if code else None
    messages = [d.message for d in details if d.message]
    if status >= 500:
        cls: type[errors.SocketLabsError] = errors.ServerError
        fallback = f"{api_name} had an internal error ({status})."
    elif status in _STATUS_ERRORS:
        cls = _STATUS_ERRORS[status]
        fallback = _STATUS_WORDS[status]
    else:
        cls = errors.SocketLabsError
        fallback = f"{api_name} answered with HTTP {status}."
    message = "; ".join(messages) if messages else fallback
    if isinstance(body, Mapping) and status >= 500:
        receipt = ci_get(body, "transactionReceipt")
        if receipt:
            message = f"{message} (transaction receipt {receipt})"
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return cls(
        message,
        status=status,
        error_type=error_type,
        retry_after=retry_after,
        body=body if body is not None else response.text[:2000],
        errors=details,
    )


def _connect_phase(exc: BaseException) -> bool:
    """True when the exception proves the request never left (no connection was made)."""
    if isinstance(exc, (requests.ConnectTimeout, requests.exceptions.ProxyError, requests.exceptions.SSLError)):
        return True
    for arg in getattr(exc, "args", ()):
        if isinstance(arg, MaxRetryError) and isinstance(arg.reason, Urllib3ConnectTimeout):
            # NewConnectionError (refused, DNS failure) is a subclass of ConnectTimeoutError.
            return True
    return False


class Transport:
    """Sends one logical call: retries, breaker, timeouts and error mapping included."""

    def __init__(
        self,
        *,
        timeout: Timeout = (3.05, 30.0),
        session: requests.Session | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        breakers: BreakerRegistry | None = None,
        user_agent: str = "Mailroom-socketlabs/1.0",
    ) -> None:
        self.timeout = check_timeout(timeout)
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.session = session if session is not None else requests.Session()
        self.max_attempts = max_attempts
        self.sleep = sleep
        self.clock = clock
        self.rng = rng
        self.breakers = breakers if breakers is not None else default_breakers
        self.user_agent = user_agent

    # The only place that calls requests: every call gets a (connect, read) timeout.
    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None,
        body: Any,
        headers: Mapping[str, str],
        auth: tuple[str, str] | None,
        stream: bool,
        timeout: Timeout,
    ) -> requests.Response:
        data = None if body is None else json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        send_headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        if data is not None:
            send_headers["Content-Type"] = "application/json; charset=utf-8"
        send_headers.update(headers)
        return self.session.request(
            method,
            url,
            params={k: v for k, v in (params or {}).items() if v is not None},
            data=data,
            headers=send_headers,
            auth=auth,
            timeout=timeout,
            stream=stream,
            # A redirect would turn a POST into a GET; SocketLabs never redirects API calls.
            allow_redirects=False,
        )

    def call(
        self,
        endpoint: Endpoint,
        *,
        base_url: str,
        server_id: int,
        path_params: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        api_name: str = "SocketLabs",
        stream: bool = False,
        timeout: Timeout | None = None,
    ) -> Any:
        """Make the call; returns `ApiResponse`, or the open `requests.Response` when `stream=True`."""
        url = base_url.rstrip("/") + endpoint.path(**(path_params or {}))
        breaker = self.breakers.get(base_url, server_id)
        use_timeout = check_timeout(timeout) if timeout is not None else self.timeout
        attempt = 0
        last_error: errors.SocketLabsError | None = None
        while True:
            attempt += 1
            wait = breaker.check(self.clock())
            if wait > 0:
                raise errors.CircuitOpenError(
                    f"{api_name} failed {breaker.threshold} times in a row; not calling it for another {wait:.0f} s.",
                    retry_after=wait,
                    attempts=attempt - 1,
                ) from last_error
            try:
                result = self._attempt(
                    endpoint,
                    url,
                    params=params,
                    body=body,
                    headers=headers or {},
                    auth=auth,
                    api_name=api_name,
                    stream=stream,
                    timeout=use_timeout,
                )
            except _Failure as failure:
                error = failure.error
                error.attempts = attempt
                if isinstance(error, errors.RateLimitedError):
                    pass  # a deliberate "slow down" from a healthy server: Retry-After handles it
                elif isinstance(error, errors.TransientError):
                    breaker.record_failure(self.clock())
                elif not isinstance(error, errors.ConfigurationError):
                    breaker.record_success()  # the server answered: it is up
                if not self._should_retry(endpoint, failure, attempt):
                    if endpoint.outcome_unknown and _may_have_been_taken(failure):
                        raise self._outcome_unknown(error, api_name) from error
                    raise error from failure.__cause__
                last_error = error
                self.sleep(self._delay(error, attempt))
                continue
            breaker.record_success()
            return result

    def _attempt(
        self,
        endpoint: Endpoint,
        url: str,
        *,
        params: Mapping[str, Any] | None,
        body: Any,
        headers: Mapping[str, str],
        auth: tuple[str, str] | None,
        api_name: str,
        stream: bool,
        timeout: Timeout,
    ) -> Any:
        try:
            response = self._send(
                endpoint.method,
                url,
                params=params,
                body=body,
                headers=headers,
                auth=auth,
                stream=stream,
                timeout=timeout,
            )
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ) as exc:
            raise _Failure(
                errors.ConfigurationError(f"The {api_name} address {url!r} is not a valid URL."), maybe_sent=False
            ) from exc
        except requests.ReadTimeout as exc:
            raise _Failure(
                errors.TimeoutError(f"{api_name} did not answer within {timeout[1]:g} s."), maybe_sent=True
            ) from exc
        except requests.ConnectionError as exc:
            if _connect_phase(exc):
                message = f"Could not connect to {api_name} at {_host(url)}."
                raise _Failure(errors.ConnectError(message), maybe_sent=False) from exc
            message = f"The connection to {api_name} at {_host(url)} broke before an answer came."
            raise _Failure(errors.ConnectError(message), maybe_sent=True) from exc
        except requests.RequestException as exc:
            # ChunkedEncodingError, ContentDecodingError...: the answer broke while being read.
            raise _Failure(
                errors.ProtocolError(f"{api_name} sent an answer that could not be read ({type(exc).__name__})."),
                maybe_sent=True,
            ) from exc

        status = response.status_code
        if 300 <= status < 400 or status < 200:
            location = response.headers.get("Location", "")
            response.close()
            raise _Failure(
                errors.SocketLabsError(
                    f"{api_name} answered with an unexpected redirect ({status}) to {location or 'nowhere'}; "
                    "check the base URL.",
                    status=status,
                ),
                maybe_sent=False,  # answered without being processed
            )
        if status >= 400:
            error = error_for_response(response, api_name=api_name)
            response.close()
            raise _Failure(error, maybe_sent=True)
        if stream:
            return response
        return ApiResponse(status=status, data=self._json(response, api_name), headers=response.headers)

    @staticmethod
    def _json(response: requests.Response, api_name: str) -> Any:
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            raise _Failure(
                errors.ProtocolError(
                    f"{api_name} answered with something other than JSON: {response.text[:80]!r}",
                    status=response.status_code,
                    body=response.text[:2000],
                ),
                maybe_sent=True,
            ) from None

    def _should_retry(self, endpoint: Endpoint, failure: _Failure, attempt: int) -> bool:
        if attempt >= self.max_attempts:
            return False
        error = failure.error
        if not isinstance(error, errors.TransientError):
            return False  # 4xx other than 408/429, configuration problems, redirects
        if isinstance(error, errors.RateLimitedError):
            return True
        if isinstance(error, errors.ConnectError) and not failure.maybe_sent:
            return True
        if isinstance(error, errors.ServerError) and error.status == 503:
            return True  # "Service Unavailable": the request was not taken on
        return endpoint.idempotent

    def _delay(self, error: errors.SocketLabsError, attempt: int) -> float:
        if error.retry_after is not None and isinstance(error, (errors.RateLimitedError, errors.ServerError)):
            return min(error.retry_after, RETRY_AFTER_CAP)
        return self.rng() * min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))

    @staticmethod
    def _outcome_unknown(error: errors.SocketLabsError, api_name: str) -> errors.OutcomeUnknownError:
        return errors.OutcomeUnknownError(
            f"The message may or may not have been accepted by {api_name}: {error.message} "
            "It was not re-sent; check the event webhooks or reports for its MessageId.",
            status=error.status,
            error_type=error.error_type,
            body=error.body,
            errors=error.errors,
            attempts=error.attempts,
        )


def _may_have_been_taken(failure: _Failure) -> bool:
    """For a POST that is not idempotent: could the server have acted on it?

    No when it never left (connect error), or when the server said it did not take it on:
    429, 503, or a 4xx refusal other than 408.
    """
    error = failure.error
    if not failure.maybe_sent:
        return False
    if isinstance(error, errors.RateLimitedError):
        return False
    if error.status == 503:
        return False
    return not (error.status is not None and 400 <= error.status < 500 and error.status != 408)


def check_timeout(timeout: Any) -> Timeout:
    """A `(connect, read)` pair of positive seconds; anything else is refused up front."""
    if not isinstance(timeout, tuple) or len(timeout) != 2:
        raise ValueError("timeout must be a (connect, read) tuple of seconds")
    connect, read = timeout
    if not all(isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0 for t in (connect, read)):
        raise ValueError("timeout values must be positive numbers of seconds")
    return (float(connect), float(read))


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.netloc or url


def iter_text_lines(response: requests.Response, *, chunk_size: int = 64 * 1024) -> Iterator[str]:
    """The body as text lines (line endings kept, so `csv` sees quoted newlines), read lazily.

    Decodes as the answer's charset, else UTF-8, and drops a leading byte-order mark. Unlike
    `iter_lines`, a `\\r\\n` split across two chunks does not produce an extra empty line.
    """
    import codecs

    encoding = response.encoding if "charset" in response.headers.get("Content-Type", "").lower() else None
    if not encoding or codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    pending = ""
    try:
        for chunk in response.iter_content(chunk_size=chunk_size):
            pending += decoder.decode(chunk)
            # Split on "\n" only: "\r\n" stays whole, and other Unicode line breaks stay inside fields.
            *lines, pending = pending.split("\n")
            for line in lines:
                yield line + "\n"
        pending += decoder.decode(b"", final=True)
        if pending:
            yield pending
    except requests.RequestException as exc:
        raise errors.ConnectError(f"The download broke off before its end ({type(exc).__name__}).") from exc
    finally:
        response.close()
