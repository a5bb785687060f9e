"""The client against the sandbox over real HTTP (live_server): the same paths, bodies and answers.

A smoke pass over each API; the full integration suite builds on this. Only what `responses`
cannot show is checked here: that the client and the sandbox agree on the wire.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from pytest_django.fixtures import Settings

import socketlabs
from socketlabs import BasicMessage, BulkMessage, BulkRecipient, SendResult, SocketLabsClient
from tests.sandbox.conftest import SandboxKeys, make_sandbox_server
from tests.socketlabs.conftest import LIVE_MARKS

pytestmark = LIVE_MARKS


@pytest.fixture(autouse=True)
def sandbox_on(settings: Settings) -> Iterator[None]:
    settings.SANDBOX_ENABLED = True
    # Live-server threads may outlive a request; without persistent connections PostgreSQL can
    # drop the test database afterwards.
    database = django_settings.DATABASES["default"]
    kept = database.get("CONN_MAX_AGE", 0)
    database["CONN_MAX_AGE"] = 0
    yield
    database["CONN_MAX_AGE"] = kept


@pytest.fixture
def keys(live_server: Any, transactional_db: None) -> SandboxKeys:
    return make_sandbox_server()


@pytest.fixture
def client(live_server: Any, keys: SandboxKeys) -> SocketLabsClient:
    root = f"{live_server.url}/sandbox"
    return SocketLabsClient(
        server_id=keys.server_id,
        api_url=f"{root}/api/v2",
        api_key=keys.api_key,
        inject_url=f"{root}/inject/api/v1/email",
        injection_key=keys.injection_key,
        marketing_url=f"{root}/marketing/v1",
        marketing_key=keys.marketing_key,
        timeout=(2, 10),
        max_attempts=1,
        breakers=socketlabs.BreakerRegistry(),
    )


def test_it_reads_the_server(client: SocketLabsClient, keys: SandboxKeys) -> None:
    info = client.get_server()
    assert (info.server_id, info.name) == (keys.server_id, "Sandbox One")


def test_it_injects_basic_and_bulk_messages_with_either_key(client: SocketLabsClient, keys: SandboxKeys) -> None:
    basic = BasicMessage(
        from_address="shop@example.com", to=["ann@example.net", "bad@@example"], subject="Hi", text_body="Hello"
    )
    bulk = BulkMessage(
        from_address="news@example.com",
        subject="Hello %%FirstName%%",
        html_body="<p>%%FirstName%%</p>",
        recipients=[BulkRecipient("bo@example.net", "Bo", {"FirstName": "Bo"}), "cy@example.net"],
    )

    result = client.inject([basic, bulk])

    assert result.error_code is SendResult.WARNING
    assert [a.email_address for a in result.rejected_addresses()] == ["bad@@example"]
    legacy = SocketLabsClient(
        server_id=keys.server_id,
        inject_url=client.inject_url,
        injection_key=keys.legacy_key,
        breakers=socketlabs.BreakerRegistry(),
    )
    assert legacy.inject(bulk).ok


def test_it_gets_a_refusal_for_a_wrong_injection_key(client: SocketLabsClient, keys: SandboxKeys) -> None:
    wrong = SocketLabsClient(
        server_id=keys.server_id,
        inject_url=client.inject_url,
        injection_key="nope",
        breakers=socketlabs.BreakerRegistry(),
    )
    message = BasicMessage(from_address="a@example.com", to=["b@example.net"], subject="s", text_body="t")
    with pytest.raises(socketlabs.AuthenticationError) as caught:  # 401, contract §2.9
        wrong.inject(message)
    assert caught.value.error_type == "InvalidAuthentication"


def test_it_manages_suppressions(client: SocketLabsClient) -> None:
    assert client.suppressions.check("ann@example.net") is None
    added = client.suppressions.add("ann@example.net", reason="Unsubscribe")
    assert added.reason == "Unsubscribe"
    with pytest.raises(socketlabs.ConflictError):
        client.suppressions.add("ann@example.net")
    for n in range(5):
        client.suppressions.add(f"user{n}@example.org")
    found = list(client.suppressions.iter_search(domain="example.org", page_size=2))
    assert sorted(s.email_address for s in found) == [f"user{n}@example.org" for n in range(5)]
    rows = list(client.suppressions.download())
    assert len(rows) == 7  # header + 6
    client.suppressions.remove("ann@example.net")
    with pytest.raises(socketlabs.NotFoundError):
        client.suppressions.remove("ann@example.net")


def test_it_manages_domains_keys_and_endpoints(client: SocketLabsClient) -> None:
    domain = client.sending_domains.add("mail.example.com")
    assert domain.status == "Pending"
    assert client.sending_domains.verify("mail.example.com").status == "Verified"
    with pytest.raises(socketlabs.ValidationError) as caught:
        client.sending_domains.add("not a domain")
    assert caught.value.errors and caught.value.errors[0].field == "domain"

    generated = client.dkim.generate(domain="example.com", selector="s1")
    assert generated.private_key
    added = client.dkim.add(domain="example.com", selector="s1", private_key=generated.private_key or "")
    assert added.dns_host_name == "s1._domainkey.example.com"
    client.dkim.delete(domain="example.com", selector="s1")

    client.bounce_domains.add("bounce.example.com", is_default=True)
    assert client.bounce_domains.update("bounce.example.com", is_default=False).is_default is False
    client.tracking_domains.add("t.example.com", opens_enabled=True, clicks_enabled=True)
    assert client.tracking_domains.list()[0].opens_enabled is True

    key = client.api_keys.create(name="ci", permissions=["injection"])
    assert key.secret and socketlabs.is_bearer_key(key.secret)
    client.api_keys.delete(key.id)
    assert client.injection_credentials().gateway.endswith("/sandbox/inject/api/v1/email")


def test_it_reads_reports_and_streamscore(client: SocketLabsClient) -> None:
    overview = client.reports.overview("delivered")
    assert overview.total >= 0
    client.reports.aggregate("failed", group_by="domain")
    assert list(client.reports.iter_list("delivered")) == list(client.reports.list("delivered").items)
    client.reports.recipient_search("ann@example.net")
    client.reports.message_detail(filters="mailingId:spring")
    score = client.streamscore()
    assert score.score is None or 0 <= score.score <= 100


def test_it_uses_the_marketing_api(client: SocketLabsClient) -> None:
    lists = client.marketing.lists.list()
    assert lists.total is not None
    client.marketing.custom_fields.list()
    list(client.marketing.contacts.iter_all(count=2))
