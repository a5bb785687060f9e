"""R9: retries with backoff, Retry-After, the no-double-send rule for injections, and the circuit breaker."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.exceptions import ProtocolError as Urllib3ProtocolError

import socketlabs
from socketlabs import BasicMessage, SocketLabsClient
from tests.socketlabs.conftest import API, INJECT, SERVER_ID, FakeTime

SERVER_URL = f"{API}/servers/{SERVER_ID}"
SERVER_JSON = {"data": {"serverId": SERVER_ID, "name": "Acme", "accountId": 9, "status": "Active"}}
SUCCESS = {"ErrorCode": "Success", "MessageResults": [], "TransactionReceipt": None}
MESSAGE = BasicMessage(from_address="shop@example.com", to=["ann@example.net"], subject="Hi", text_body="Hello")


def refused() -> requests.ConnectionError:
    """What requests raises when nothing listens: the request never left."""
    return requests.ConnectionError(MaxRetryError(None, "/", NewConnectionError(None, "Connection refused")))  # type: ignore[arg-type]


def dropped() -> requests.ConnectionError:
    """What requests raises when the server closes after receiving the request."""
    return requests.ConnectionError(Urllib3ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")))


# --- (a) 429 Retry-After → 200 -----------------------------------------------------------------------
def test_it_honours_retry_after_on_429_exactly(client: SocketLabsClient, mocked, fake_time: FakeTime) -> None:
    mocked.get(SERVER_URL, status=429, headers={"Retry-After": "7"}, json={"data": None, "errors": []})
    mocked.get(SERVER_URL, json=SERVER_JSON)

    info = client.get_server()

    assert info.name == "Acme"
    assert len(mocked.calls) == 2
    assert fake_time.sleeps == [7.0]


def test_it_caps_retry_after_at_60_seconds(client: SocketLabsClient, mocked, fake_time: FakeTime) -> None:
    mocked.get(SERVER_URL, status=429, headers={"Retry-After": "3600"})
    mocked.get(SERVER_URL, json=SERVER_JSON)

    client.get_server()

    assert fake_time.sleeps == [60.0]


def test_it_reads_retry_after_given_as_an_http_date(client: SocketLabsClient, mocked, fake_time: FakeTime) -> None:
    mocked.get(SERVER_URL, status=503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})  # in the past
    mocked.get(SERVER_URL, json=SERVER_JSON)

    client.get_server()

    assert fake_time.sleeps == [0.0]


def test_it_backs_off_with_jitter_on_429_without_retry_after(
    client: SocketLabsClient, mocked, fake_time: FakeTime
) -> None:
    mocked.get(SERVER_URL, status=429)
    mocked.get(SERVER_URL, json=SERVER_JSON)

    client.get_server()

    assert fake_time.sleeps == [0.5]  # rng 0.5 × min(30, 1 × 2**0)


# --- (b) 503, 503 → 200 ------------------------------------------------------------------------------
def test_it_retries_503_twice_within_jittered_windows(make_client, mocked, fake_time: FakeTime) -> None:
    client = make_client(rng=random.Random(4).random)
    mocked.get(SERVER_URL, status=503)
    mocked.get(SERVER_URL, status=503)
    mocked.get(SERVER_URL, json=SERVER_JSON)

    client.get_server()

    assert len(mocked.calls) == 3
    assert len(fake_time.sleeps) == 2
    assert 0 <= fake_time.sleeps[0] <= 1
    assert 0 <= fake_time.sleeps[1] <= 2


def test_its_backoff_is_exactly_rng_times_the_doubling_window(
    client: SocketLabsClient, mocked, fake_time: FakeTime
) -> None:
    mocked.get(SERVER_URL, status=503)
    mocked.get(SERVER_URL, status=503)
    mocked.get(SERVER_URL, json=SERVER_JSON)

    client.get_server()

    assert fake_time.sleeps == [0.5, 1.0]


# --- (c) 500 ×6 ----------------------------------------------------------------------------------------
def test_it_stops_after_five_attempts_and_raises_the_last_error(make_client, mocked, fake_time: FakeTime) -> None:
    client = make_client(rng=random.Random(7).random)
    for n in range(5):
        mocked.get(
            SERVER_URL,
            status=500,
            json={"data": None, "errors": [{"errorType": "InternalError", "message": f"boom {n}"}]},
        )

    with pytest.raises(socketlabs.ServerError) as caught:
        client.get_server()

    assert len(mocked.calls) == 5  # the sixth 500 is never asked for
    assert len(fake_time.sleeps) == 4
    windows = [1, 2, 4, 8]
    assert all(0 <= s <= w for s, w in zip(fake_time.sleeps, windows, strict=True))
    assert sum(fake_time.sleeps) <= 15
    error = caught.value
    assert error.status == 500
    assert error.message == "boom 4"  # the last answer's message
    assert error.error_type == "InternalError"
    assert error.attempts == 5
    assert error.permanent is False


def test_it_never_sleeps_longer_than_the_30_second_cap(make_client, mocked, fake_time: FakeTime) -> None:
    client = make_client(rng=lambda: 1.0, max_attempts=8)
    for _ in range(8):
        mocked.get(SERVER_URL, status=502)

    with pytest.raises(socketlabs.ServerError):
        client.get_server()

    assert fake_time.sleeps == [1, 2, 4, 8, 16, 30, 30]


# --- (d) 400 and the other refusals --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, socketlabs.ValidationError),
        (401, socketlabs.AuthenticationError),
        (403, socketlabs.PermissionDeniedError),
        (404, socketlabs.NotFoundError),
        (409, socketlabs.ConflictError),
        (422, socketlabs.ValidationError),
    ],
)
def test_it_never_retries_a_4xx_refusal(
    client: SocketLabsClient, mocked, fake_time: FakeTime, status: int, error_class: type
) -> None:
    mocked.get(SERVER_URL, status=status, json={"data": None, "errors": [{"errorType": "X", "message": "no"}]})

    with pytest.raises(error_class) as caught:
        client.get_server()

    assert len(mocked.calls) == 1
    assert fake_time.sleeps == []
    assert caught.value.permanent is True


def test_it_retries_a_408_on_a_get(client: SocketLabsClient, mocked, fake_time: FakeTime) -> None:
    mocked.get(SERVER_URL, status=408)
    mocked.get(SERVER_URL, json=SERVER_JSON)

    assert client.get_server().server_id == SERVER_ID
    assert len(mocked.calls) == 2


# --- (e) ConnectionError → 200 -------------------------------------------------------------------------
def test_it_retries_a_connection_error_on_a_get(client: SocketLabsClient, mocked, fake_time: FakeTime) -> None:
    mocked.get(SERVER_URL, body=requests.ConnectionError("refused"))
    mocked.get(SERVER_URL, json=SERVER_JSON)

    assert client.get_server().name == "Acme"
    assert len(mocked.calls) == 2
    assert fake_time.sleeps == [0.5]


def test_it_retries_an_injection_that_could_not_connect(client: SocketLabsClient, mocked, fake_time: FakeTime) -> None:
    mocked.post(INJECT, body=refused())
    mocked.post(INJECT, body=requests.ConnectTimeout("connect timed out"))
    mocked.post(INJECT, json=SUCCESS)

    result = client.inject(MESSAGE)

    assert result.ok
    assert len(mocked.calls) == 3
    assert fake_time.sleeps == [0.5, 1.0]


def test_it_gives_up_on_an_unreachable_injection_host_with_a_transient_connect_error(
    client: SocketLabsClient, mocked, fake_time: FakeTime
) -> None:
    for _ in range(5):
        mocked.post(INJECT, body=refused())

    with pytest.raises(socketlabs.ConnectError) as caught:
        client.inject(MESSAGE)

    assert len(mocked.calls) == 5
    assert caught.value.permanent is False  # never reached SocketLabs: safe to send again later


# --- (f) ReadTimeout on the injection POST ---------------------------------------------------------------
def test_it_never_resends_an_injection_after_a_read_timeout(
    client: SocketLabsClient, mocked, fake_time: FakeTime
) -> None:
    mocked.post(INJECT, body=requests.ReadTimeout("read timed out"))

    with pytest.raises(socketlabs.OutcomeUnknownError) as caught:
        client.inject(MESSAGE)

    assert len(mocked.calls) == 1
    assert fake_time.sleeps == []
    assert caught.value.permanent is True
    assert caught.value.attempts == 1
    assert isinstance(caught.value.__cause__, socketlabs.TimeoutError)


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ({"body": dropped()}, "connection dropped after sending"),
        ({"status": 500, "json": {"ErrorCode": "InternalError", "TransactionReceipt": "r-1"}}, "500"),
        ({"status": 502, "body": "<html>Bad gateway</html>"}, "502"),
        ({"status": 504, "body": ""}, "504"),
        ({"status": 408, "json": {"ErrorCode": "Timeout"}}, "408"),
        ({"status": 200, "body": "<html>oops</html>"}, "200 that is not JSON"),
    ],
)
def test_it_reports_an_unknown_outcome_after_one_call_when_the_injection_may_have_arrived(
    client: SocketLabsClient, mocked, fake_time: FakeTime, answer: dict, why: str
) -> None:
    mocked.post(INJECT, **answer)

    with pytest.raises(socketlabs.OutcomeUnknownError):
        client.inject(MESSAGE)

    assert len(mocked.calls) == 1, why
    assert fake_time.sleeps == []


@pytest.mark.parametrize("status", [429, 503])
def test_it_retries_an_injection_that_the_server_did_not_take_on(
    client: SocketLabsClient, mocked, fake_time: FakeTime, status: int
) -> None:
    mocked.post(INJECT, status=status, headers={"Retry-After": "3"}, json={"ErrorCode": "OverQuota"})
    mocked.post(INJECT, json=SUCCESS)

    assert client.inject(MESSAGE).ok
    assert len(mocked.calls) == 2
    assert fake_time.sleeps == [3.0]


def test_it_raises_a_transient_error_when_injection_stays_rate_limited(
    client: SocketLabsClient, mocked, fake_time: FakeTime
) -> None:
    for _ in range(5):
        mocked.post(INJECT, status=429, headers={"Retry-After": "2"})

    with pytest.raises(socketlabs.RateLimitedError) as caught:
        client.inject(MESSAGE)

    assert len(mocked.calls) == 5
    assert fake_time.sleeps == [2.0, 2.0, 2.0, 2.0]
    assert caught.value.retry_after == 2.0
    assert caught.value.permanent is False


def test_it_does_not_turn_an_injection_refusal_into_an_unknown_outcome(
    client: SocketLabsClient, mocked, fake_time: FakeTime
) -> None:
    mocked.post(INJECT, status=401, json={"ErrorCode": "InvalidAuthentication", "MessageResults": None})

    with pytest.raises(socketlabs.AuthenticationError) as caught:
        client.inject(MESSAGE)

    assert caught.value.error_type == "InvalidAuthentication"
    assert len(mocked.calls) == 1


def test_it_does_not_retry_other_posts_after_a_read_timeout(
    client: SocketLabsClient, mocked, fake_time: FakeTime
) -> None:
    mocked.post(f"{SERVER_URL}/api-keys", body=requests.ReadTimeout("read timed out"))

    with pytest.raises(socketlabs.TimeoutError):
        client.api_keys.create(name="ci", permissions=["injection"])

    assert len(mocked.calls) == 1


# --- (g) ReadTimeout on a report GET → 200 ----------------------------------------------------------------
def test_it_retries_a_report_get_after_a_read_timeout(client: SocketLabsClient, mocked, fake_time: FakeTime) -> None:
    url = f"{SERVER_URL}/reports/delivered/overview"
    mocked.get(url, body=requests.ReadTimeout("read timed out"))
    mocked.get(url, json={"data": {"total": 10, "unique": 9, "rate": 0.9}})

    overview = client.reports.overview("delivered", start_date="2024-05-01", end_date="2024-05-31")

    assert overview.total == 10
    assert len(mocked.calls) == 2
    assert fake_time.sleeps == [0.5]


def test_it_retries_a_get_whose_answer_is_not_json(client: SocketLabsClient, mocked, fake_time: FakeTime) -> None:
    mocked.get(SERVER_URL, body="<html>maintenance</html>")
    mocked.get(SERVER_URL, json=SERVER_JSON)

    assert client.get_server().name == "Acme"
    assert len(mocked.calls) == 2


# --- (h) the circuit breaker -----------------------------------------------------------------------------
def test_it_opens_the_breaker_after_ten_consecutive_failures_and_makes_no_calls_for_60_seconds(
    client: SocketLabsClient, mocked, fake_time: FakeTime
) -> None:
    for _ in range(10):
        mocked.get(SERVER_URL, status=500)
    for _ in range(2):  # two calls of five attempts each
        with pytest.raises(socketlabs.ServerError):
            client.get_server()
    assert len(mocked.calls) == 10

    opened_at = fake_time.now
    with pytest.raises(socketlabs.CircuitOpenError) as caught:
        client.get_server()
    assert len(mocked.calls) == 10  # failed fast: no HTTP call
    assert caught.value.retry_after == 60
    assert caught.value.permanent is False

    fake_time.advance(59.9)
    with pytest.raises(socketlabs.CircuitOpenError):
        client.servers.list()  # any call to the same API of this server
    assert len(mocked.calls) == 10

    fake_time.now = opened_at + 60
    mocked.get(SERVER_URL, json=SERVER_JSON)
    assert client.get_server().name == "Acme"  # the trial call goes through and closes the breaker
    assert len(mocked.calls) == 11


def test_it_reopens_the_breaker_when_the_trial_call_fails(
    client: SocketLabsClient, mocked, fake_time: FakeTime
) -> None:
    for _ in range(10):
        mocked.get(SERVER_URL, status=503)
    for _ in range(2):
        with pytest.raises(socketlabs.ServerError):
            client.get_server()
    fake_time.advance(60)
    mocked.get(SERVER_URL, status=503)

    with pytest.raises(socketlabs.CircuitOpenError):
        client.get_server()  # one trial attempt fails, the breaker opens again before a retry

    assert len(mocked.calls) == 11
    fake_time.advance(30)
    with pytest.raises(socketlabs.CircuitOpenError):
        client.get_server()
    assert len(mocked.calls) == 11


def test_its_breaker_is_shared_by_clients_of_the_same_server_only(
    make_client: Callable[..., SocketLabsClient], mocked, fake_time: FakeTime
) -> None:
    first, second, other = make_client(), make_client(), make_client(server_id=777)
    for _ in range(10):
        mocked.get(SERVER_URL, body=refused())
    for _ in range(2):
        with pytest.raises(socketlabs.ConnectError):
            first.get_server()

    with pytest.raises(socketlabs.CircuitOpenError):
        second.get_server()
    mocked.get(f"{API}/servers/777", json={"data": {"serverId": 777}})
    assert other.get_server().server_id == 777


def test_it_counts_only_consecutive_failures_toward_the_breaker(
    client: SocketLabsClient, mocked, fake_time: FakeTime
) -> None:
    for _ in range(9):
        mocked.get(SERVER_URL, status=500)
    mocked.get(SERVER_URL, json=SERVER_JSON)
    with pytest.raises(socketlabs.ServerError):
        client.get_server()
    client.get_server()  # fails 4 times, then succeeds: the count starts again
    for _ in range(9):
        mocked.get(SERVER_URL, status=500)
    mocked.get(SERVER_URL, json=SERVER_JSON)
    with pytest.raises(socketlabs.ServerError):
        client.get_server()
    assert client.get_server().name == "Acme"
    assert len(mocked.calls) == 20


def test_a_4xx_answer_does_not_count_toward_the_breaker(client: SocketLabsClient, mocked, fake_time: FakeTime) -> None:
    for _ in range(12):
        mocked.get(SERVER_URL, status=404)
    for _ in range(12):
        with pytest.raises(socketlabs.NotFoundError):
            client.get_server()
    assert len(mocked.calls) == 12


def test_it_retries_with_the_real_random_and_sleep_defaults_wired(mocked) -> None:
    """The defaults are the real ones: `time.sleep`, `time.monotonic`, `random.random`."""
    client = SocketLabsClient(server_id=SERVER_ID, api_url=API, api_key="k", breakers=socketlabs.BreakerRegistry())
    assert client.transport.sleep.__module__ == "time"
    assert client.transport.rng.__self__.__class__ is random.Random  # type: ignore[attr-defined]
    mocked.get(SERVER_URL, status=429, headers={"Retry-After": "0"})
    mocked.get(SERVER_URL, json=SERVER_JSON)
    assert client.get_server().name == "Acme"


def test_it_uses_the_shared_breaker_registry_by_default() -> None:
    client = SocketLabsClient(server_id=SERVER_ID, api_url=API, api_key="k")
    assert client.transport.breakers is socketlabs.default_breakers


@pytest.mark.parametrize("timeout", [None, 5, (0, 1), (1, -1), (1,), (1, 2, 3), (True, 1)])
def test_it_refuses_a_client_without_a_proper_connect_and_read_timeout(timeout: object) -> None:
    with pytest.raises(ValueError, match="timeout"):
        SocketLabsClient(server_id=1, api_url=API, timeout=timeout)  # type: ignore[arg-type]


def test_it_sends_every_call_with_the_configured_timeout(make_client, fake_time: FakeTime) -> None:
    seen: list[object] = []

    class RecordingSession(requests.Session):
        def request(self, method, url, **kwargs):  # type: ignore[no-untyped-def, override]
            seen.append(kwargs.get("timeout"))
            return super().request(method, url, **kwargs)

    client = make_client(session=RecordingSession(), timeout=(2, 9))
    with responses.RequestsMock() as rsps:
        rsps.get(SERVER_URL, json=SERVER_JSON)
        rsps.post(INJECT, json=SUCCESS)
        rsps.get(f"{SERVER_URL}/suppressions/download", body="a,b\n")
        client.get_server()
        client.inject(MESSAGE)
        list(client.suppressions.download())
    assert seen == [(2.0, 9.0)] * 3


def test_a_429_does_not_count_toward_the_breaker(client: SocketLabsClient, mocked, fake_time: FakeTime) -> None:
    for _ in range(15):
        mocked.get(SERVER_URL, status=429, headers={"Retry-After": "1"})
    for _ in range(3):
        with pytest.raises(socketlabs.RateLimitedError):
            client.get_server()
    mocked.get(SERVER_URL, json=SERVER_JSON)

    assert client.get_server().name == "Acme"  # not CircuitOpenError
    assert len(mocked.calls) == 16
