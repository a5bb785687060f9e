"""SocketLabs failures reach people as plain sentences. `responses` injects what the sandbox cannot send."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import responses

from accounts import services as account_services
from accounts.models import AuditLog, Server, User
from sending import services
from sending.errors import SendingError

pytestmark = pytest.mark.django_db
API = "http://socketlabs.test/v2"


@pytest.fixture
def remote(server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    """`server` pointed at a made-up SocketLabs host; retries do not sleep."""
    server.api_url = API
    server.save()
    monkeypatch.setattr(
        services,
        "client",
        lambda s, interactive=True: account_services.client_for(s, max_attempts=2, sleep=lambda seconds: None),
    )
    return server


def url(server: Server, path: str) -> str:
    return f"{API}/servers/{server.socketlabs_id}/{path}"


def fail(server: Server, method: str, path: str, **kwargs: Any) -> SendingError:
    responses.add(method, url(server, path), **kwargs)
    with pytest.raises(SendingError) as error:
        if method == "GET":
            services.list_sending_domains(server=server)
        else:
            services.add_sending_domain(request=None, actor=None, server=server, domain="example.com")
    return error.value


@responses.activate
def test_a_refused_key_says_where_to_fix_it(remote: Server) -> None:
    error = fail(
        remote,
        "GET",
        "sending-domains",
        status=401,
        json={"data": None, "errors": [{"errorType": "Unauthorized", "message": "Bad key."}]},
    )
    assert (
        error.message == "SocketLabs refused the API key for server 10001 (401). Check the key under Admin → Servers."
    )
    assert error.status == 502


@responses.activate
def test_a_validation_error_repeats_socketlabs_own_words(remote: Server) -> None:
    body = {"data": None, "errors": [{"errorType": "ValidationError", "message": "domain: is on a blocked list."}]}
    error = fail(remote, "POST", "sending-domains", status=422, json=body)
    assert (
        error.message == "SocketLabs refused to add the sending domain example.com: domain: is on a blocked list (422)."
    )
    assert error.status == 422


@responses.activate
def test_a_permission_error_names_the_server_and_the_permission(remote: Server) -> None:
    body = {"data": None, "errors": [{"errorType": "Forbidden", "message": "The key lacks the api permission."}]}
    error = fail(remote, "POST", "sending-domains", status=403, json=body)
    assert "(403)" in error.message and "server 10001" in error.message and "API permission" in error.message


@responses.activate
def test_a_server_error_is_retried_then_explained(remote: Server) -> None:
    body = {"data": None, "errors": [{"errorType": "ServerError", "message": "Oops"}], "transactionReceipt": "r-1"}
    error = fail(remote, "GET", "sending-domains", status=500, json=body)
    assert (
        error.message == "SocketLabs had an internal problem (500) when asked to list the sending domains. "
        "Try again in a few minutes."
    )
    assert len(responses.calls) == 2, "one retry for a person waiting on the page"


@responses.activate
def test_a_503_then_success_is_invisible(remote: Server) -> None:
    responses.add("GET", url(remote, "sending-domains"), status=503)
    responses.add(
        "GET", url(remote, "sending-domains"), json={"data": [{"domain": "example.com", "status": "Verified"}]}
    )
    assert [d.domain for d in services.list_sending_domains(server=remote)] == ["example.com"]


@responses.activate
def test_a_rate_limit_says_when_to_try_again(remote: Server) -> None:
    error = fail(remote, "POST", "sending-domains", status=429, headers={"Retry-After": "7"}, json={"errors": []})
    assert "(429). Try again in 7 s." in error.message
    assert error.status == 503


@responses.activate
def test_an_unreachable_host_is_named(remote: Server) -> None:
    error = fail(remote, "GET", "sending-domains", body=requests.ConnectionError("refused"))
    assert (
        error.message
        == f"Could not reach SocketLabs at {API} to list the sending domains. Check the network and try again."
    )


@responses.activate
def test_a_read_timeout_on_a_change_says_it_may_have_happened(remote: Server) -> None:
    error = fail(remote, "POST", "sending-domains", body=requests.ReadTimeout("slow"))
    assert "did not answer in time" in error.message
    assert "may or may not have happened" in error.message


@responses.activate
def test_a_garbage_answer_is_not_shown_raw(remote: Server) -> None:
    error = fail(remote, "GET", "sending-domains", status=200, body="<html>proxy error</html>")
    assert "could not read" in error.message
    assert "<html>" not in error.message


@responses.activate
def test_a_key_echoed_in_an_error_is_masked(remote: Server) -> None:
    body = {"errors": [{"errorType": "ValidationError", "message": f"key {remote.api_key} is not allowed here"}]}
    error = fail(remote, "POST", "sending-domains", status=400, json=body)
    assert remote.api_key not in error.message
    assert "••••" in error.message


def test_a_server_without_a_key_says_who_can_add_one(server: Server) -> None:
    server.api_key = ""
    server.save()
    with pytest.raises(SendingError, match="Mailroom has no API key for server 10001, so it cannot list the DKIM keys"):
        services.list_dkim(server=server)


@responses.activate
def test_a_failed_change_writes_no_audit_entry(remote: Server, ops: User) -> None:
    responses.add(
        "DELETE",
        url(remote, "bounce/bounce.example.com"),
        status=404,
        json={"errors": [{"message": "No such bounce domain."}]},
    )
    with pytest.raises(
        SendingError,
        match=r"SocketLabs refused to remove the bounce domain bounce.example.com: No such bounce domain \(404\)",
    ):
        services.remove_bounce_domain(request=None, actor=ops, server=remote, domain="bounce.example.com")
    assert not AuditLog.objects.filter(action__startswith="sending.").exists()
