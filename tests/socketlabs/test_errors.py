"""Every status maps to its error class, with permanence, status, type and message from the body."""

from __future__ import annotations

import pytest
import requests

import socketlabs
from socketlabs import SocketLabsClient
from tests.socketlabs.conftest import API, BEARER_KEY, SERVER_ID

SERVER_URL = f"{API}/servers/{SERVER_ID}"


def v2_error(error_type: str, message: str) -> dict:
    return {"data": None, "errors": [{"errorType": error_type, "message": message}]}


@pytest.mark.parametrize(
    ("status", "error_class", "permanent"),
    [
        (400, socketlabs.ValidationError, True),
        (401, socketlabs.AuthenticationError, True),
        (403, socketlabs.PermissionDeniedError, True),
        (404, socketlabs.NotFoundError, True),
        (405, socketlabs.SocketLabsError, True),
        (409, socketlabs.ConflictError, True),
        (410, socketlabs.SocketLabsError, True),
        (422, socketlabs.ValidationError, True),
        (429, socketlabs.RateLimitedError, False),
        (500, socketlabs.ServerError, False),
        (502, socketlabs.ServerError, False),
        (503, socketlabs.ServerError, False),
        (504, socketlabs.ServerError, False),
    ],
)
def test_it_maps_each_status_to_its_error(
    make_client, loose, status: int, error_class: type[socketlabs.SocketLabsError], permanent: bool
) -> None:
    client = make_client(max_attempts=1)
    loose.get(SERVER_URL, status=status, json=v2_error("Kind", "What went wrong"))

    with pytest.raises(socketlabs.SocketLabsError) as caught:
        client.get_server()

    error = caught.value
    assert type(error) is error_class
    assert error.permanent is permanent
    assert error.status == status
    assert error.error_type == "Kind"
    assert error.message == "What went wrong"
    assert str(error) == f"HTTP {status}: What went wrong"


def test_it_lists_every_field_error_of_a_422(client: SocketLabsClient, loose) -> None:
    loose.post(
        f"{SERVER_URL}/sending-domains",
        status=422,
        json={
            "data": None,
            "errors": [
                {"errorType": "ValidationError", "message": "domain: is not a valid domain name"},
                {"errorType": "ValidationError", "message": "Something is wrong with the request."},
                {"errorType": "Required", "message": "must be set", "field": "isDefault"},
            ],
        },
    )

    with pytest.raises(socketlabs.ValidationError) as caught:
        client.sending_domains.add("not a domain")

    error = caught.value
    assert [(e.error_type, e.field) for e in error.errors] == [
        ("ValidationError", "domain"),
        ("ValidationError", None),
        ("Required", "isDefault"),
    ]
    assert error.field_errors() == {
        "domain": ["domain: is not a valid domain name"],
        "": ["Something is wrong with the request."],
        "isDefault": ["must be set"],
    }
    assert "is not a valid domain name" in error.message


def test_it_reads_the_retry_after_of_a_429(make_client, loose) -> None:
    client = make_client(max_attempts=1)
    loose.get(SERVER_URL, status=429, headers={"Retry-After": "12"}, json=v2_error("TooManyRequests", "Slow down"))

    with pytest.raises(socketlabs.RateLimitedError) as caught:
        client.get_server()

    assert caught.value.retry_after == 12.0


def test_it_names_the_transaction_receipt_of_a_500(make_client, loose) -> None:
    client = make_client(max_attempts=1)
    loose.get(SERVER_URL, status=500, json={"data": None, "errors": [], "transactionReceipt": "tr-99"})

    with pytest.raises(socketlabs.ServerError) as caught:
        client.get_server()

    assert "tr-99" in caught.value.message


def test_it_maps_an_html_error_page_by_its_status(make_client, loose) -> None:
    client = make_client(max_attempts=1)
    loose.get(SERVER_URL, status=502, body="<html><h1>502 Bad Gateway</h1></html>", content_type="text/html")

    with pytest.raises(socketlabs.ServerError) as caught:
        client.get_server()

    assert caught.value.status == 502
    assert caught.value.error_type is None
    assert "internal error" in caught.value.message


def test_it_reads_the_older_management_api_error_array(make_client, loose) -> None:
    client = make_client(max_attempts=1)
    loose.get(SERVER_URL, status=404, json=[{"Message": "Server not found", "ErrorType": "NotFound"}])

    with pytest.raises(socketlabs.NotFoundError) as caught:
        client.get_server()

    assert (caught.value.error_type, caught.value.message) == ("NotFound", "Server not found")


def test_it_raises_a_protocol_error_for_a_2xx_that_is_not_json(make_client, loose) -> None:
    client = make_client(max_attempts=1)
    loose.get(SERVER_URL, body="<html>Welcome to nginx</html>", status=200)

    with pytest.raises(socketlabs.ProtocolError) as caught:
        client.get_server()

    assert caught.value.status == 200
    assert caught.value.permanent is False


def test_it_maps_a_read_timeout_and_a_connection_error(make_client, loose) -> None:
    client = make_client(max_attempts=1)
    loose.get(SERVER_URL, body=requests.ReadTimeout())
    with pytest.raises(socketlabs.TimeoutError, match="did not answer within 30 s"):
        client.get_server()

    loose.replace("GET", SERVER_URL, body=requests.ConnectionError())
    with pytest.raises(socketlabs.ConnectError, match="api.test:8081"):
        client.get_server()


def test_it_refuses_to_follow_a_redirect(make_client, loose) -> None:
    client = make_client(max_attempts=1)
    loose.get(SERVER_URL, status=301, headers={"Location": "https://elsewhere.test/v2/servers/1"})

    with pytest.raises(socketlabs.SocketLabsError, match="unexpected redirect") as caught:
        client.get_server()

    assert caught.value.permanent is True
    assert len(loose.calls) == 1


def test_it_says_which_key_is_missing_before_any_call(make_client, loose) -> None:
    with pytest.raises(socketlabs.ConfigurationError, match="No API v2 key"):
        make_client(api_key="").get_server()
    with pytest.raises(socketlabs.ConfigurationError, match="No Marketing API key"):
        make_client(marketing_key="").marketing.lists.list()
    assert len(loose.calls) == 0


def test_it_reports_a_malformed_base_url_as_a_configuration_error(make_client) -> None:
    client = make_client(api_url="not a url")

    with pytest.raises(socketlabs.ConfigurationError, match="not a valid URL"):
        client.get_server()


def test_errors_and_clients_never_show_keys(make_client, loose) -> None:
    client = make_client(max_attempts=1)
    loose.get(SERVER_URL, status=401, json=v2_error("Unauthorized", "A valid API key is required."))

    with pytest.raises(socketlabs.AuthenticationError) as caught:
        client.get_server()

    for text in (str(caught.value), repr(caught.value), repr(client)):
        assert BEARER_KEY not in text
