"""API v2: servers, authentication and the §0a error envelope, logging, rate limit, internal errors."""

from __future__ import annotations

import base64
import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from pytest_django.fixtures import Settings

from accounts.models import User
from sandbox import v2_views
from sandbox.models import SandboxApiKey, SandboxRequestLog
from tests.sandbox.conftest import SandboxKeys

pytestmark = pytest.mark.django_db


def bearer(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def server_url(keys: SandboxKeys, rest: str = "") -> str:
    return f"/sandbox/api/v2/servers/{keys.server_id}{rest}"


def assert_error(response, status: int, error_type: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["data"] is None
    assert [e["errorType"] for e in body["errors"]] == [error_type]
    assert body["errors"][0]["message"]


def test_it_returns_the_server_in_a_data_envelope(client: Client, sandbox_server: SandboxKeys) -> None:
    response = client.get(server_url(sandbox_server), **bearer(sandbox_server.api_key))
    assert response.status_code == 200
    assert response.json() == {
        "data": {"serverId": 17001, "name": "Sandbox One", "accountId": 9001, "status": "Active"}
    }


def test_it_lists_only_the_keys_own_server(
    client: Client, sandbox_server: SandboxKeys, other_sandbox_server: SandboxKeys
) -> None:
    body = client.get("/sandbox/api/v2/servers", **bearer(sandbox_server.api_key)).json()
    assert body["total"] == 1
    assert [s["serverId"] for s in body["data"]] == [17001]


def test_it_accepts_basic_auth_with_any_username(client: Client, sandbox_server: SandboxKeys) -> None:
    token = base64.b64encode(f"whoever:{sandbox_server.api_key}".encode()).decode()
    response = client.get(server_url(sandbox_server), HTTP_AUTHORIZATION=f"Basic {token}")
    assert response.status_code == 200


def test_it_accepts_basic_with_the_raw_key_as_in_the_docs(client: Client, sandbox_server: SandboxKeys) -> None:
    response = client.get(server_url(sandbox_server), HTTP_AUTHORIZATION=f"Basic {sandbox_server.api_key}")
    assert response.status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer ",
        "Bearer " + "x" * 20 + "." + "y" * 40,
        "Token abc",
        "Basic " + base64.b64encode(b"u:nope").decode(),
    ],
)
def test_it_answers_401_for_a_missing_or_unknown_key(
    client: Client, sandbox_server: SandboxKeys, header: str | None
) -> None:
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    assert_error(client.get(server_url(sandbox_server), **extra), 401, "Unauthorized")


def test_it_answers_403_when_the_key_lacks_the_api_permission(client: Client, sandbox_server: SandboxKeys) -> None:
    for key in (sandbox_server.injection_key, sandbox_server.marketing_key, sandbox_server.legacy_key):
        assert_error(client.get(server_url(sandbox_server), **bearer(key)), 403, "Forbidden")


def test_it_answers_403_for_another_server_existing_or_not(
    client: Client, sandbox_server: SandboxKeys, other_sandbox_server: SandboxKeys
) -> None:
    assert_error(client.get(server_url(other_sandbox_server), **bearer(sandbox_server.api_key)), 403, "Forbidden")
    assert_error(client.get("/sandbox/api/v2/servers/99999", **bearer(sandbox_server.api_key)), 403, "Forbidden")
    # Nor may it reach the other server's sub-resources.
    response = client.get(server_url(other_sandbox_server, "/api-keys"), **bearer(sandbox_server.api_key))
    assert_error(response, 403, "Forbidden")


def test_it_answers_json_404_for_unknown_paths(client: Client, sandbox_server: SandboxKeys) -> None:
    assert_error(client.get("/sandbox/api/v2/nothing/here"), 404, "NotFound")
    assert_error(
        client.get(server_url(sandbox_server, "/reports/bogus/list"), **bearer(sandbox_server.api_key)), 404, "NotFound"
    )


def test_it_answers_405_with_allow_for_a_wrong_method(client: Client, sandbox_server: SandboxKeys) -> None:
    response = client.delete(server_url(sandbox_server, "/sending-domains"), **bearer(sandbox_server.api_key))
    assert_error(response, 405, "MethodNotAllowed")
    assert response["Allow"] == "GET, POST"


def test_it_checks_the_key_before_the_method(client: Client, sandbox_server: SandboxKeys) -> None:
    assert_error(client.delete(server_url(sandbox_server, "/sending-domains")), 401, "Unauthorized")


def test_it_accepts_a_trailing_slash(client: Client, sandbox_server: SandboxKeys) -> None:
    assert client.get(server_url(sandbox_server, "/"), **bearer(sandbox_server.api_key)).status_code == 200


def test_it_answers_400_for_a_body_that_is_not_json(client: Client, sandbox_server: SandboxKeys) -> None:
    response = client.post(
        server_url(sandbox_server, "/sending-domains"),
        data="{not json",
        content_type="application/json",
        **bearer(sandbox_server.api_key),
    )
    assert_error(response, 400, "BadRequest")


def test_it_logs_every_request_with_status_and_error(client: Client, sandbox_server: SandboxKeys) -> None:
    client.get(server_url(sandbox_server), **bearer(sandbox_server.api_key))
    client.get(server_url(sandbox_server))
    rows = list(
        SandboxRequestLog.objects.filter(api="v2").order_by("id").values_list("path", "status_code", "error_code")
    )
    assert rows == [("/sandbox/api/v2/servers/17001", 200, ""), ("/sandbox/api/v2/servers/17001", 401, "Unauthorized")]
    assert SandboxRequestLog.objects.filter(server_id_value=17001).count() == 2


def test_it_records_when_a_key_was_last_used(client: Client, sandbox_server: SandboxKeys) -> None:
    key = SandboxApiKey.objects.get(server=sandbox_server.server, name="v2")
    assert key.last_used_on is None
    client.get(server_url(sandbox_server), **bearer(sandbox_server.api_key))
    key.refresh_from_db()
    assert key.last_used_on is not None


def test_it_answers_429_with_retry_after_over_the_rate_limit(client: Client, sandbox_server: SandboxKeys) -> None:
    sandbox_server.server.rate_limit_per_minute = 2
    sandbox_server.server.save()
    statuses = [client.get(server_url(sandbox_server), **bearer(sandbox_server.api_key)) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert_error(statuses[2], 429, "TooManyRequests")
    assert statuses[2]["Retry-After"] == "60"


def test_it_answers_500_with_a_transaction_receipt_on_a_crash(
    client: Client, sandbox_server: SandboxKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(server: object) -> dict[str, object]:
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(v2_views, "server_data", boom)
    response = client.get(server_url(sandbox_server), **bearer(sandbox_server.api_key))
    assert_error(response, 500, "InternalError")
    assert re.fullmatch(r"[0-9a-f-]{36}", response.json()["transactionReceipt"])
    assert SandboxRequestLog.objects.get().status_code == 500


def _sample_paths() -> list[str]:
    """A concrete path for every URL pattern under /sandbox/ (ours and the injection side's)."""
    resolver = get_resolver()
    sandbox = next(p for p in resolver.url_patterns if isinstance(p, URLResolver) and str(p.pattern) == "sandbox/")
    paths: list[str] = []

    def sample(pattern: str) -> str:
        pattern = pattern.lstrip("^").removesuffix("$").removesuffix("/?")
        pattern = re.sub(r"\(\?P<\w+>\[0-9\]\+\)", "1", pattern)
        pattern = re.sub(r"\(\?P<\w+>[^)]*\)", "x", pattern)
        pattern = re.sub(r"<int:\w+>", "1", pattern)
        return re.sub(r"<(?:\w+:)?\w+>", "x", pattern)

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> None:
        for p in patterns:
            here = prefix + sample(str(p.pattern))
            if isinstance(p, URLResolver):
                walk(p.url_patterns, here)
            else:
                paths.append("/sandbox/" + here)

    walk(sandbox.url_patterns, "")
    return paths


def test_every_sandbox_url_is_404_when_the_sandbox_is_off(
    client: Client, settings: Settings, sandbox_server: SandboxKeys, site_admin: User
) -> None:
    client.force_login(site_admin)
    paths = _sample_paths()
    # Switched on, these answer (401/403/200…), so the 404s below come from the switch alone.
    assert client.get("/sandbox/api/v2/servers/1").status_code == 401
    assert client.get("/sandbox/").status_code == 200
    settings.SANDBOX_ENABLED = False
    assert "/sandbox/api/v2/servers/1/suppressions/download" in paths
    assert "/sandbox/marketing/v1/lists" in paths
    for path in paths:
        for method in ("get", "post"):
            response = getattr(client, method)(path, **bearer(sandbox_server.api_key))
            assert response.status_code == 404, (method, path, response.status_code)


EVERY_SERVER_PATH = [
    ("get", ""),
    ("get", "/api-keys"),
    ("post", "/api-keys"),
    ("delete", "/api-keys/1"),
    ("get", "/credentials/injection-api"),
    ("get", "/sending-domains"),
    ("post", "/sending-domains"),
    ("get", "/sending-domains/example.com"),
    ("delete", "/sending-domains/example.com"),
    ("post", "/sending-domains/example.com/verify"),
    ("get", "/dkim/generate?domain=example.com&selector=s1"),
    ("get", "/dkim"),
    ("post", "/dkim"),
    ("put", "/dkim/example.com?selector=s1"),
    ("delete", "/dkim/example.com?selector=s1"),
    ("get", "/bounce"),
    ("post", "/bounce"),
    ("put", "/bounce/example.com"),
    ("delete", "/bounce/example.com"),
    ("get", "/tracking"),
    ("post", "/tracking"),
    ("put", "/tracking/example.com"),
    ("delete", "/tracking/example.com"),
    ("get", "/suppressions?emailAddress=a@example.com"),
    ("post", "/suppressions?emailAddress=a@example.com"),
    ("delete", "/suppressions/remove?emailAddress=a@example.com"),
    ("get", "/suppressions/search"),
    ("get", "/suppressions/download"),
    ("get", "/reports/delivered/overview"),
    ("get", "/reports/failed/aggregate?groupBy=day"),
    ("get", "/reports/complaints/list"),
    ("get", "/reports/tracking/list"),
    ("get", "/reports/messages/detail"),
    ("get", "/reports/recipient-search/?toEmailAddress=a@example.com"),
    ("get", "/streamscore"),
    ("get", "/event-webhooks"),
    ("post", "/event-webhooks"),
    ("delete", "/event-webhooks/1"),
    ("get", "/inbound-parse"),
    ("post", "/inbound-parse"),
    ("delete", "/inbound-parse/1"),
]


@pytest.mark.parametrize(("method", "rest"), EVERY_SERVER_PATH)
def test_every_server_path_needs_an_api_key_for_that_server(
    client: Client, sandbox_server: SandboxKeys, other_sandbox_server: SandboxKeys, method: str, rest: str
) -> None:
    path = server_url(sandbox_server, rest)
    send = getattr(client, method)
    assert_error(send(path, content_type="application/json"), 401, "Unauthorized")
    assert_error(send(path, content_type="application/json", **bearer(sandbox_server.injection_key)), 403, "Forbidden")
    assert_error(send(path, content_type="application/json", **bearer(other_sandbox_server.api_key)), 403, "Forbidden")
    # And the right key gets past authentication (whatever the endpoint then says about the body).
    allowed = send(path, content_type="application/json", **bearer(sandbox_server.api_key))
    assert allowed.status_code in (200, 404, 422), allowed.content
