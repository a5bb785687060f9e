"""The event webhook receiver: R3 (duplicates) and R4 (authentication) of ecosystem.md."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from django.test import Client

from reporting.models import EventEndpoint, Outcome, RawEvent, RequestLog
from tests.reporting.conftest import EVENT_SECRET, fixture_bytes, fixture_json, post

EXAMPLES = ["delivered.json", "failed.json", "tracking_click.json", "complaint.json"]


def url(endpoint: EventEndpoint | uuid.UUID) -> str:
    value = endpoint.uuid if isinstance(endpoint, EventEndpoint) else endpoint
    return f"/hooks/socketlabs/events/{value}/"


@pytest.mark.parametrize("name", EXAMPLES)
def test_it_stores_each_contract_example_before_answering(client: Client, endpoint: EventEndpoint, name: str) -> None:
    response = post(client, url(endpoint), fixture_bytes(name))

    assert response.status_code == 200
    assert response.content.decode() == endpoint.validation_key
    raw = RawEvent.objects.get()
    expected = fixture_json(name)
    del expected["SecretKey"]
    assert raw.payload == expected
    assert raw.server_id == endpoint.server_id
    assert raw.endpoint_id == endpoint.pk
    assert raw.processed_at is None
    assert raw.content_type == "json"
    log = RequestLog.objects.get()
    assert (log.status, log.outcome, log.raw_id, log.endpoint_id) == (200, Outcome.ACCEPTED, raw.pk, endpoint.pk)
    assert log.body_size == len(fixture_bytes(name))


def test_it_never_stores_the_secret_key(client: Client, endpoint: EventEndpoint) -> None:
    post(client, url(endpoint), fixture_bytes("delivered.json"))

    assert EVENT_SECRET not in json.dumps(RawEvent.objects.get().payload)


def test_it_accepts_the_legacy_form_body(client: Client, endpoint: EventEndpoint) -> None:
    response = post(
        client, url(endpoint), fixture_bytes("failed_legacy.form"), content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 200
    raw = RawEvent.objects.get()
    assert raw.content_type == "form"
    assert raw.payload["FailureCode"] == "4003"
    assert raw.payload["DateTime"] == "Mon, 13 Aug 2018 20:29:59 GMT"
    assert "SecretKey" not in raw.payload


def test_it_matches_field_names_case_insensitively(client: Client, endpoint: EventEndpoint) -> None:
    body = {"type": "Delivered", "secretkey": EVENT_SECRET, "ADDRESS": "a@example.net", "NewField": {"x": 1}}

    response = post(client, url(endpoint), body)

    assert response.status_code == 200
    assert RawEvent.objects.get().payload == {"type": "Delivered", "ADDRESS": "a@example.net", "NewField": {"x": 1}}


def test_it_answers_the_validation_ping_with_the_validation_key(client: Client, endpoint: EventEndpoint) -> None:
    response = post(client, url(endpoint), fixture_bytes("validation.json"))

    assert response.status_code == 200
    assert endpoint.validation_key in response.content.decode()
    assert not RawEvent.objects.exists()
    assert RequestLog.objects.get().outcome == Outcome.VALIDATION


def test_it_answers_a_legacy_form_validation_ping(client: Client, endpoint: EventEndpoint) -> None:
    body = f"Type=Validation&ServerId=12345&SecretKey={EVENT_SECRET}".encode()

    response = post(client, url(endpoint), body, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200
    assert response.content.decode() == endpoint.validation_key


# --- R4: authentication and input limits ------------------------------------------------------


def test_it_refuses_a_wrong_secret_with_401(client: Client, endpoint: EventEndpoint) -> None:
    body = fixture_json("delivered.json") | {"SecretKey": "whsec-abd"}

    response = post(client, url(endpoint), body)

    assert response.status_code == 401
    assert not RawEvent.objects.exists()
    log = RequestLog.objects.get()
    assert (log.status, log.outcome, log.endpoint_id) == (401, Outcome.UNAUTHORIZED, endpoint.pk)


def test_it_refuses_a_missing_secret_with_401(client: Client, endpoint: EventEndpoint) -> None:
    body = fixture_json("delivered.json")
    del body["SecretKey"]

    response = post(client, url(endpoint), body)

    assert response.status_code == 401
    assert not RawEvent.objects.exists()


def test_it_answers_an_unknown_endpoint_exactly_like_a_wrong_secret(client: Client, endpoint: EventEndpoint) -> None:
    wrong_secret = post(client, url(endpoint), fixture_json("delivered.json") | {"SecretKey": "nope"})
    unknown = post(client, url(uuid.uuid4()), fixture_bytes("delivered.json"))

    assert unknown.status_code == wrong_secret.status_code == 401
    assert unknown.content == wrong_secret.content
    assert unknown.headers.get("Content-Type") == wrong_secret.headers.get("Content-Type")
    assert not RawEvent.objects.exists()


def test_it_refuses_malformed_json_with_400(client: Client, endpoint: EventEndpoint) -> None:
    response = post(client, url(endpoint), b'{"Type": "Delivered", "SecretKey": "whsec-abc",')

    assert response.status_code == 400
    assert "not valid JSON" in response.content.decode()
    assert RequestLog.objects.get().outcome == Outcome.MALFORMED


@pytest.mark.parametrize(
    "body", [b"[1, 2]", b'"text"', b'{"Type": NaN, "SecretKey": "whsec-abc"}', b"", b"[" * 100_000]
)
def test_it_refuses_bodies_that_are_not_one_event_with_400(
    client: Client, endpoint: EventEndpoint, body: bytes
) -> None:
    response = post(client, url(endpoint), body)

    assert response.status_code == 400
    assert not RawEvent.objects.exists()


def test_it_refuses_a_3_mib_body_with_413(client: Client, endpoint: EventEndpoint) -> None:
    padding = "x" * (3 * 1024 * 1024)
    body = fixture_json("delivered.json") | {"Padding": padding}

    response = post(client, url(endpoint), body)

    assert response.status_code == 413
    assert not RawEvent.objects.exists()
    assert RequestLog.objects.get().outcome == Outcome.TOO_LARGE


def test_it_refuses_by_content_length_before_reading_the_body(client: Client, endpoint: EventEndpoint) -> None:
    # The declared length alone decides: the (small) body is never read.
    response = post(client, url(endpoint), fixture_bytes("delivered.json"), CONTENT_LENGTH=str(3 * 1024 * 1024))

    assert response.status_code == 413


def test_it_refuses_a_source_outside_the_allowed_networks_with_403(client: Client, endpoint: EventEndpoint) -> None:
    endpoint.allowed_networks = ["142.0.176.0/20"]
    endpoint.save()

    refused = post(client, url(endpoint), fixture_bytes("delivered.json"))
    allowed = post(client, url(endpoint), fixture_bytes("failed.json"), REMOTE_ADDR="142.0.180.9")

    assert refused.status_code == 403
    assert allowed.status_code == 200
    assert RawEvent.objects.count() == 1


def test_it_checks_the_secret_before_the_network(client: Client, endpoint: EventEndpoint) -> None:
    endpoint.allowed_networks = ["142.0.176.0/20"]
    endpoint.save()

    response = post(client, url(endpoint), fixture_json("delivered.json") | {"SecretKey": "nope"})

    assert response.status_code == 401


def test_it_only_allows_post_head_and_options(client: Client, endpoint: EventEndpoint) -> None:
    assert client.get(url(endpoint)).status_code == 405
    assert client.put(url(endpoint), data=b"{}").status_code == 405
    assert client.head(url(endpoint)).status_code == 200
    assert "POST" in client.options(url(endpoint)).headers["Allow"]


def test_it_slows_down_a_client_that_keeps_failing_the_secret(
    client: Client, endpoint: EventEndpoint, settings: Any
) -> None:
    settings.REPORTING_UNAUTHORIZED_PER_MINUTE = 3
    body = fixture_json("delivered.json") | {"SecretKey": "guess"}

    statuses = [post(client, url(endpoint), body).status_code for _ in range(5)]

    assert statuses == [401, 401, 401, 429, 429]
    assert RequestLog.objects.count() == 3


def test_it_keeps_nul_characters_out_of_the_database(client: Client, endpoint: EventEndpoint) -> None:
    body = b'{"Type": "Delivered", "SecretKey": "whsec-abc", "Address": "a\\u0000b@example.net"}'

    response = post(client, url(endpoint), body)

    assert response.status_code == 200
    assert RawEvent.objects.get().payload["Address"] == "a\ufffdb@example.net"


def test_it_keeps_unpaired_surrogates_out_of_the_database(client: Client, endpoint: EventEndpoint) -> None:
    body = b'{"Type": "Delivered", "SecretKey": "whsec-abc", "Note": "x\\ud800y \\ud83d\\ude00"}'

    response = post(client, url(endpoint), body)

    assert response.status_code == 200
    assert RawEvent.objects.get().payload["Note"] == "x?y \U0001f600"


def test_it_answers_from_two_queries(client: Client, endpoint: EventEndpoint, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(2):
        response = post(client, url(endpoint), fixture_bytes("delivered.json"))

    assert response.status_code == 200


def test_it_wakes_the_processor_once_per_quiet_period(
    client: Client, endpoint: EventEndpoint, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.REPORTING_WAKE_LOCAL_SECONDS = 0
    with django_capture_on_commit_callbacks() as callbacks:
        for name in EXAMPLES:
            post(client, url(endpoint), fixture_bytes(name))

    assert RawEvent.objects.count() == 4
    assert len(callbacks) == 1


# --- R3: duplicates ---------------------------------------------------------------------------


@pytest.mark.parametrize("times", [1, 2, 5])
def test_it_stores_a_repeated_post_once(client: Client, endpoint: EventEndpoint, times: int) -> None:
    statuses = [post(client, url(endpoint), fixture_bytes("delivered.json")).status_code for _ in range(times)]

    assert statuses == [200] * times
    assert RawEvent.objects.count() == 1
    outcomes = list(RequestLog.objects.order_by("id").values_list("outcome", flat=True))
    assert outcomes == [Outcome.ACCEPTED] + [Outcome.DUPLICATE] * (times - 1)
    raw_id = RawEvent.objects.get().pk
    assert set(RequestLog.objects.values_list("raw_id", flat=True)) == {raw_id}


def test_it_treats_reordered_keys_and_whitespace_as_the_same_event(client: Client, endpoint: EventEndpoint) -> None:
    data = fixture_json("delivered.json")
    compact = json.dumps(data, separators=(",", ":")).encode()
    reordered = json.dumps(dict(reversed(list(data.items()))), indent=4).encode()

    statuses = [post(client, url(endpoint), body).status_code for body in (compact, reordered)]

    assert statuses == [200, 200]
    assert RawEvent.objects.count() == 1


def test_it_keeps_events_that_differ_only_in_secret_as_one(client: Client, endpoint: EventEndpoint) -> None:
    # The secret is not part of the event: a post before and after a rotation is the same event.
    post(client, url(endpoint), fixture_bytes("delivered.json"))
    endpoint.secret_key = "rotated-secret"
    endpoint.save()
    post(client, url(endpoint), fixture_json("delivered.json") | {"SecretKey": "rotated-secret"})

    assert RawEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_it_stores_one_row_when_five_threads_race(
    live_server: Any, endpoint: EventEndpoint, short_db_sessions: None
) -> None:
    target = live_server.url + url(endpoint)
    body = fixture_bytes("delivered.json")
    barrier = threading.Barrier(5)
    statuses: list[int] = []

    def send() -> None:
        barrier.wait()
        request = urllib.request.Request(target, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)

    threads = [threading.Thread(target=send) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * 5
    assert RawEvent.objects.count() == 1
    assert sorted(RequestLog.objects.values_list("outcome", flat=True)) == sorted(
        [Outcome.ACCEPTED] + [Outcome.DUPLICATE] * 4
    )
