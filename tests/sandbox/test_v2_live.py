"""The sandbox over real HTTP (live_server + requests), and Mailroom's "Test connection" against it."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.conf import settings as django_settings
from pytest_django.fixtures import Settings

from accounts import services
from accounts.models import Server, ServerStatus, User
from sandbox.models import SandboxEventWebhook, SandboxSuppression
from sandbox.seed import seed_demo_servers
from tests.sandbox.conftest import SandboxKeys, make_sandbox_server

pytestmark = pytest.mark.django_db(transaction=True)
TIMEOUT = 10


@pytest.fixture(autouse=True)
def close_connections_per_request() -> Iterator[None]:
    """Live-server threads can outlive their request (keep-alive); with persistent database
    connections they would hold sessions open and PostgreSQL would refuse to drop the test database."""
    database = django_settings.DATABASES["default"]
    kept = database.get("CONN_MAX_AGE", 0)
    database["CONN_MAX_AGE"] = 0
    yield
    database["CONN_MAX_AGE"] = kept


@pytest.fixture
def live_keys(live_server: Any, transactional_db: None) -> SandboxKeys:
    return make_sandbox_server()


@pytest.fixture
def base(live_server: Any, live_keys: SandboxKeys) -> str:
    return f"{live_server.url}/sandbox/api/v2/servers/{live_keys.server_id}"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_it_serves_the_server_over_http_with_bearer_and_basic(base: str, live_keys: SandboxKeys) -> None:
    response = requests.get(base, headers=bearer(live_keys.api_key), timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["data"]["serverId"] == live_keys.server_id
    basic = requests.get(base, auth=("anyone", live_keys.api_key), timeout=TIMEOUT)
    assert basic.status_code == 200


def test_it_answers_errors_as_json_over_http(base: str, live_keys: SandboxKeys) -> None:
    missing = requests.get(base, timeout=TIMEOUT)
    assert missing.status_code == 401
    assert missing.json() == {
        "data": None,
        "errors": [{"errorType": "Unauthorized", "message": missing.json()["errors"][0]["message"]}],
    }
    invalid = requests.post(
        f"{base}/sending-domains", json={"domain": "bad domain"}, headers=bearer(live_keys.api_key), timeout=TIMEOUT
    )
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["errorType"] == "ValidationError"


def test_it_streams_the_suppression_csv_over_http(base: str, live_keys: SandboxKeys) -> None:
    SandboxSuppression.objects.bulk_create(
        SandboxSuppression(server=live_keys.server, email_address=f"user{i:05}@example.net", reason="Bounce")
        for i in range(5000)
    )
    response = requests.get(
        f"{base}/suppressions/download?sortField=emailAddress&sortDirection=asc",
        headers=bearer(live_keys.api_key),
        stream=True,
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert "Content-Length" not in response.headers  # streamed, not buffered
    rows = list(csv.reader(line.decode() for line in response.iter_lines()))
    assert rows[0][3] == "emailAddress"
    assert len(rows) == 5001
    assert rows[1][3] == "user00000@example.net" and rows[-1][3] == "user04999@example.net"


def test_its_injection_credentials_work_at_the_gateway_they_name(base: str, live_keys: SandboxKeys) -> None:
    credentials = requests.get(f"{base}/credentials/injection-api", headers=bearer(live_keys.api_key), timeout=TIMEOUT)
    data = credentials.json()["data"]
    assert data["gateway"].endswith("/sandbox/inject/api/v1/email")
    sent = requests.post(
        data["gateway"],
        json={
            "serverId": live_keys.server_id,
            "apiKey": "",
            "messages": [
                {
                    "from": {"emailAddress": "shop@example.com"},
                    "to": [{"emailAddress": "ann@example.net"}],
                    "subject": "Hello",
                    "textBody": "Hi",
                }
            ],
        },
        headers=bearer(data["apiKey"]),
        timeout=TIMEOUT,
    )
    assert sent.status_code == 200
    assert sent.json()["ErrorCode"] == "Success"


def test_it_validates_a_new_webhook_endpoint_over_http(base: str, live_keys: SandboxKeys, live_server: Any) -> None:
    # The target answers 401 (it is the sandbox itself, without a key), so validation fails for real.
    target = f"{live_server.url}/sandbox/api/v2/servers"
    response = requests.post(
        f"{base}/event-webhooks",
        json={"url": target, "secretKey": "k"},
        headers=bearer(live_keys.api_key),
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "Failed"
    assert SandboxEventWebhook.objects.get().status == "Failed"


def test_it_serves_the_marketing_api_over_http_with_basic_auth(live_server: Any, live_keys: SandboxKeys) -> None:
    url = f"{live_server.url}/sandbox/marketing/v1/contacts"
    ok = requests.get(url, auth=(str(live_keys.server_id), live_keys.marketing_key), timeout=TIMEOUT)
    assert ok.status_code == 200 and ok.json()["totalCount"] == 0
    xml = requests.get(
        url,
        auth=(str(live_keys.server_id), live_keys.marketing_key),
        headers={"Accept": "application/xml"},
        timeout=TIMEOUT,
    )
    assert xml.text.startswith("<?xml") and "<totalCount>0</totalCount>" in xml.text
    refused = requests.get(url, auth=(str(live_keys.server_id), live_keys.api_key), timeout=TIMEOUT)
    assert refused.status_code == 401


# --- Mailroom's "Test connection" against the seeded demo ------------------------------------------
@pytest.fixture
def demo(live_server: Any, settings: Settings, transactional_db: None) -> User:
    settings.SANDBOX_BASE_URL = f"{live_server.url}/sandbox"
    owner = User.objects.create_superuser("root@example.com", "correct horse battery staple 42")
    seed_demo_servers(owner=owner)
    return owner


def test_test_connection_succeeds_against_a_seeded_demo_server(demo: User, live_server: Any) -> None:
    server = Server.objects.get(socketlabs_id=10101)
    assert server.api_url == f"{live_server.url}/sandbox/api/v2"
    result = services.test_connection(request=None, actor=demo, server=server)
    assert result.ok, result.message
    assert result.message == "Connected to server 10101 (Acme Transactional)."
    server.refresh_from_db()
    assert server.status == ServerStatus.OK


def test_test_connection_reports_a_refused_key(demo: User) -> None:
    server = Server.objects.get(socketlabs_id=10102)
    server.api_key = "A" * 20 + "." + "B" * 40
    server.save()
    result = services.test_connection(request=None, actor=demo, server=server)
    assert not result.ok
    assert result.status == ServerStatus.AUTH_FAILED
    assert "(401)" in result.message


def test_test_connection_reports_a_key_for_another_server(demo: User) -> None:
    server = Server.objects.get(socketlabs_id=10103)
    server.api_key = Server.objects.get(socketlabs_id=10101).api_key
    server.save()
    result = services.test_connection(request=None, actor=demo, server=server)
    assert not result.ok
    assert "(403)" in result.message
