"""API v2 account operations, client → sandbox over real HTTP, each answer checked against what the sandbox stored.

Servers, API keys, injection credentials, sending domains, DKIM, bounce and tracking domains,
event webhooks and inbound parse endpoints (contract §0a table, §3.2).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import socketlabs
from sandbox.models import (
    SandboxApiKey,
    SandboxBounceDomain,
    SandboxDkim,
    SandboxEventWebhook,
    SandboxInboundEndpoint,
    SandboxSendingDomain,
    SandboxServer,
    SandboxTrackingDomain,
    key_hash,
)
from socketlabs import BasicMessage, SocketLabsClient
from tests.sandbox.conftest import SandboxKeys
from tests.sandbox.injection_support import Receiver, running_receiver
from tests.socketlabs.conftest import LIVE_MARKS
from tests.socketlabs.test_live_coverage import covers

pytestmark = LIVE_MARKS


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as box:
        yield box


@covers("servers.list", "servers.get")
def test_it_lists_and_reads_the_server_as_the_sandbox_stores_it(
    live_client: SocketLabsClient, live_keys: SandboxKeys
) -> None:
    stored = SandboxServer.objects.select_related("account").get(server_id=live_keys.server_id)

    listed = live_client.servers.list()
    got = live_client.servers.get()

    assert [(s.server_id, s.name, s.account_id, s.status) for s in listed] == [
        (stored.server_id, stored.name, stored.account.account_id, stored.status)
    ]
    assert got == listed[0]
    assert (got.server_id, got.name, got.account_id, got.status) == (17001, "Sandbox One", 9001, "Active")


@covers("api_keys.list", "api_keys.create", "api_keys.delete")
def test_it_creates_lists_and_deletes_api_keys_with_the_secret_shown_once(
    live_client: SocketLabsClient, live_keys: SandboxKeys, make_live_client: Callable[..., SocketLabsClient]
) -> None:
    before = live_client.api_keys.list()
    stored = SandboxApiKey.objects.filter(server=live_keys.server).order_by("created_on", "id")
    assert [(k.id, k.name, k.public_part) for k in before] == [(str(k.pk), k.name, k.public_part) for k in stored]
    assert all(k.secret is None for k in before)

    created = live_client.api_keys.create(name="ci deploy", permissions=["api"])

    assert created.secret is not None and len(created.secret) == 61 and socketlabs.is_bearer_key(created.secret)
    row = SandboxApiKey.objects.get(pk=int(created.id))
    assert (row.name, row.permissions, row.public_part) == ("ci deploy", ["api"], created.public_part)
    assert row.key_hash == key_hash(created.secret)  # the sandbox keeps only the hash
    assert created.permissions == ("api",) and created.created_on is not None
    again = {k.id: k for k in live_client.api_keys.list()}
    assert again[created.id].secret is None  # never readable again
    assert again[created.id].public_part == created.public_part
    # The new secret really opens the API.
    with_new_key = make_live_client(live_keys, api_key=created.secret)
    assert with_new_key.servers.get().server_id == live_keys.server_id

    live_client.api_keys.delete(created.id)

    assert not SandboxApiKey.objects.filter(pk=int(created.id)).exists()
    assert created.id not in {k.id for k in live_client.api_keys.list()}
    with pytest.raises(socketlabs.AuthenticationError):
        with_new_key.servers.get()


@covers("credentials.injection")
def test_it_reads_injection_credentials_that_really_inject(
    live_client: SocketLabsClient,
    live_keys: SandboxKeys,
    live_sandbox: str,
    make_live_client: Callable[..., SocketLabsClient],
) -> None:
    credentials = live_client.injection_credentials()

    assert socketlabs.is_bearer_key(credentials.api_key)
    assert SandboxApiKey.objects.filter(server=live_keys.server, key_hash=key_hash(credentials.api_key)).exists()
    assert credentials.gateway == f"{live_sandbox}/inject/api/v1/email"
    assert live_client.injection_credentials().api_key == credentials.api_key  # the same on every call
    sender = make_live_client(server_id=live_keys.server_id, injection_key=credentials.api_key)
    message = BasicMessage(from_address="shop@example.com", to=["ann@example.net"], subject="Hi", text_body="Hello")
    assert sender.inject(message, inject_url=credentials.gateway).ok


@covers(
    "sending_domains.add",
    "sending_domains.get",
    "sending_domains.list",
    "sending_domains.verify",
    "sending_domains.delete",
)
def test_it_adds_reads_verifies_and_deletes_sending_domains(
    live_client: SocketLabsClient, live_keys: SandboxKeys
) -> None:
    added = live_client.sending_domains.add("Mail.Example.com")
    failing = live_client.sending_domains.add("unverified.example.org")

    row = SandboxSendingDomain.objects.get(server=live_keys.server, domain="mail.example.com")
    assert (added.domain, added.status, added.verification_record) == (row.domain, "Pending", row.verification_record)
    assert added.verification_record and added.verification_record.startswith("socketlabs-verification=")
    assert added.verified_on is None and added.created_on is not None
    assert live_client.sending_domains.get("mail.example.com") == added
    assert [d.domain for d in live_client.sending_domains.list()] == ["mail.example.com", "unverified.example.org"]

    verified = live_client.sending_domains.verify("mail.example.com")
    refused = live_client.sending_domains.verify("unverified.example.org")

    row.refresh_from_db()
    assert (verified.status, row.status) == ("Verified", "Verified")
    assert verified.verified_on is not None and verified.verified_on == row.verified_on
    assert (refused.status, refused.verified_on) == ("Failed", None)
    assert failing.status == "Pending"

    live_client.sending_domains.delete("mail.example.com")

    assert not SandboxSendingDomain.objects.filter(domain="mail.example.com").exists()
    with pytest.raises(socketlabs.NotFoundError) as caught:
        live_client.sending_domains.get("mail.example.com")
    assert caught.value.message == "mail.example.com is not a sending domain of server 17001."


@covers("dkim.generate", "dkim.add", "dkim.list", "dkim.update", "dkim.delete")
def test_it_generates_adds_lists_updates_and_deletes_dkim_keys_by_selector(
    live_client: SocketLabsClient, live_keys: SandboxKeys
) -> None:
    generated = live_client.dkim.generate(domain="example.com", selector="s1")
    assert generated.private_key and generated.private_key.startswith("-----BEGIN")
    assert (generated.domain, generated.selector, generated.dns_host_name) == (
        "example.com",
        "s1",
        "s1._domainkey.example.com",
    )
    assert generated.public_key and generated.public_key in (generated.dns_record or "")
    assert not SandboxDkim.objects.exists()  # generating stores nothing

    first = live_client.dkim.add(domain="example.com", selector="s1", private_key=generated.private_key)
    other = live_client.dkim.generate(domain="example.com", selector="s2")
    live_client.dkim.add(domain="example.com", selector="s2", private_key=other.private_key or "")

    row = SandboxDkim.objects.get(server=live_keys.server, selector="s1")
    assert (first.public_key, first.private_key) == (row.public_key, None)  # the private key never comes back
    assert first.public_key == generated.public_key
    assert first.validation_status == row.validation_status == "Verified"
    assert [(d.domain, d.selector) for d in live_client.dkim.list()] == [("example.com", "s1"), ("example.com", "s2")]
    assert [d.selector for d in live_client.dkim.list(domain="example.com", selector="s2")] == ["s2"]

    rotated = live_client.dkim.generate(domain="example.com", selector="s1")
    updated = live_client.dkim.update(domain="example.com", selector="s1", private_key=rotated.private_key or "")

    row.refresh_from_db()
    assert updated.public_key == rotated.public_key == row.public_key != first.public_key
    assert row.private_key.strip() == (rotated.private_key or "").strip()

    live_client.dkim.delete(domain="example.com", selector="s1")

    assert list(SandboxDkim.objects.values_list("selector", flat=True)) == ["s2"]
    assert [d.selector for d in live_client.dkim.list(domain="example.com")] == ["s2"]


@covers("bounce_domains.add", "bounce_domains.update", "bounce_domains.list", "bounce_domains.delete")
def test_it_manages_bounce_domains_with_one_default(live_client: SocketLabsClient, live_keys: SandboxKeys) -> None:
    first = live_client.bounce_domains.add("bounce.example.com", is_default=True)
    second = live_client.bounce_domains.add("b2.example.com", is_default=True)

    stored = dict(SandboxBounceDomain.objects.filter(server=live_keys.server).values_list("domain", "is_default"))
    assert stored == {"bounce.example.com": False, "b2.example.com": True}  # a new default replaces the old
    assert (first.domain, first.is_default, second.is_default) == ("bounce.example.com", True, True)
    assert second.validation_status == "Verified" and second.created_on is not None

    back = live_client.bounce_domains.update("bounce.example.com", is_default=True)

    assert back.is_default is True
    listed = {d.domain: d.is_default for d in live_client.bounce_domains.list()}
    assert listed == {"bounce.example.com": True, "b2.example.com": False}
    assert listed == dict(SandboxBounceDomain.objects.values_list("domain", "is_default"))

    live_client.bounce_domains.delete("b2.example.com")

    assert list(SandboxBounceDomain.objects.values_list("domain", flat=True)) == ["bounce.example.com"]
    assert [d.domain for d in live_client.bounce_domains.list()] == ["bounce.example.com"]


@covers("tracking_domains.add", "tracking_domains.update", "tracking_domains.list", "tracking_domains.delete")
def test_it_manages_tracking_domains_and_their_settings(live_client: SocketLabsClient, live_keys: SandboxKeys) -> None:
    added = live_client.tracking_domains.add(
        "t.example.com", opens_enabled=False, clicks_enabled=True, google_analytics_enabled=True, is_default=True
    )

    row = SandboxTrackingDomain.objects.get(server=live_keys.server, domain="t.example.com")
    flags = ("opens_enabled", "clicks_enabled", "google_analytics_enabled", "https_enabled", "is_default")
    assert {f: getattr(added, f) for f in flags} == {f: getattr(row, f) for f in flags}
    assert (added.opens_enabled, added.clicks_enabled, added.google_analytics_enabled) == (False, True, True)

    updated = live_client.tracking_domains.update("t.example.com", opens_enabled=True, https_enabled=False)

    row.refresh_from_db()
    assert (updated.opens_enabled, updated.https_enabled, updated.clicks_enabled) == (True, False, True)
    assert (row.opens_enabled, row.https_enabled, row.clicks_enabled) == (True, False, True)
    live_client.tracking_domains.add("t2.example.com")
    assert {d.domain: d.opens_enabled for d in live_client.tracking_domains.list()} == {
        "t.example.com": True,
        "t2.example.com": True,
    }

    live_client.tracking_domains.delete("t.example.com")

    assert [d.domain for d in live_client.tracking_domains.list()] == ["t2.example.com"]
    assert list(SandboxTrackingDomain.objects.values_list("domain", flat=True)) == ["t2.example.com"]


@covers("event_webhooks.create", "event_webhooks.list", "event_webhooks.delete")
def test_it_creates_lists_and_deletes_event_webhooks(
    live_client: SocketLabsClient, live_keys: SandboxKeys, receiver: Receiver
) -> None:
    created = live_client.event_webhooks.create(
        url=receiver.url("/events"), secret_key="whsec-1", events=["Delivered", "failed"], format="json"
    )

    row = SandboxEventWebhook.objects.get(pk=int(created.id))
    assert (created.url, created.events, created.format) == (receiver.url("/events"), ("Delivered", "Failed"), "json")
    assert (row.secret_key, row.events) == ("whsec-1", ["Delivered", "Failed"])
    assert created.status == row.status == "Active"  # the validation post reached our receiver
    assert receiver.on("/events") and receiver.on("/events")[0].json()["Type"] == "Validation"
    assert created.secret_key is None  # write-only
    assert [(w.id, w.url) for w in live_client.event_webhooks.list()] == [(created.id, created.url)]

    live_client.event_webhooks.delete(created.id)

    assert live_client.event_webhooks.list() == []
    assert not SandboxEventWebhook.objects.exists()


@covers("inbound_parse.create", "inbound_parse.list", "inbound_parse.delete")
def test_it_creates_lists_and_deletes_inbound_parse_endpoints(
    live_client: SocketLabsClient, live_keys: SandboxKeys
) -> None:
    created = live_client.inbound_parse.create(
        domain_or_address="In.Example.com", url="https://hooks.example.com/in", secret_key="s3", validation_key="v-42"
    )
    by_address = live_client.inbound_parse.create(
        domain_or_address="ann@example.org", url="https://hooks.example.com/ann", secret_key="s4", validation_key=""
    )

    row = SandboxInboundEndpoint.objects.get(pk=int(created.id))
    assert (created.domain_or_address, created.url, created.validation_key) == (
        row.domain_or_address,
        row.url,
        "v-42",
    )
    assert row.domain_or_address == "in.example.com" and row.secret_key == "s3"
    assert created.secret_key is None
    assert by_address.validation_key  # the sandbox makes one up when none is given
    assert [e.id for e in live_client.inbound_parse.list()] == [created.id, by_address.id]

    live_client.inbound_parse.delete(created.id)

    assert [e.domain_or_address for e in live_client.inbound_parse.list()] == ["ann@example.org"]
    assert list(SandboxInboundEndpoint.objects.values_list("pk", flat=True)) == [int(by_address.id)]
