"""Error mapping over real HTTP: each sandbox refusal reaches the caller as the right exception.

401 bad key, 403 another server's key / a key without the permission / a plan without suppression
management, 404, 409, 422 (and the Marketing API's 400): the class, the status, `permanent`
and the sandbox's own message — and nothing written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import socketlabs
from sandbox.models import SandboxServer, SandboxSuppression
from socketlabs import SocketLabsClient
from tests.sandbox.conftest import SandboxKeys, make_sandbox_server
from tests.socketlabs.conftest import LIVE_MARKS
from tests.socketlabs.test_live_coverage import covers

pytestmark = LIVE_MARKS

UNKNOWN_KEY = "Q" * 20 + "." + "z" * 40


def raised(call: Callable[[], Any], cls: type[socketlabs.SocketLabsError]) -> socketlabs.SocketLabsError:
    with pytest.raises(cls) as caught:
        call()
    assert caught.type is cls, f"{caught.type.__name__} is not exactly {cls.__name__}"
    return caught.value


@covers("servers.get", "marketing.contacts.list")
def test_it_raises_authentication_error_for_a_bad_key(
    live_keys: SandboxKeys, make_live_client: Callable[..., SocketLabsClient]
) -> None:
    bad = make_live_client(live_keys, api_key=UNKNOWN_KEY, marketing_key="wrong")

    error = raised(bad.servers.get, socketlabs.AuthenticationError)

    assert (error.status, error.error_type, error.permanent) == (401, "Unauthorized", True)
    assert error.message == "A valid API key is required."
    marketing = raised(bad.marketing.contacts.list, socketlabs.AuthenticationError)
    assert (marketing.status, marketing.permanent) == (401, True)
    assert marketing.message == "HTTP Basic with the ServerId and a Marketing API key is required."


@covers("servers.get", "sending_domains.add")
def test_it_raises_permission_denied_for_another_servers_key_or_a_key_without_the_permission(
    live_keys: SandboxKeys, make_live_client: Callable[..., SocketLabsClient]
) -> None:
    other = make_sandbox_server(server_id=17002, name="Sandbox Two", account_id=9002)
    borrowed = make_live_client(live_keys, api_key=other.api_key)  # server 17001, 17002's key

    error = raised(lambda: borrowed.sending_domains.add("mail.example.com"), socketlabs.PermissionDeniedError)

    assert (error.status, error.error_type, error.permanent) == (403, "Forbidden", True)
    assert error.message == "This API key may not access server 17001."
    assert not live_keys.server.sending_domains.exists()
    injection_only = make_live_client(live_keys, api_key=live_keys.injection_key)
    no_permission = raised(injection_only.servers.get, socketlabs.PermissionDeniedError)
    assert no_permission.message == "This API key does not have the SocketLabs API permission."


@covers(
    "suppressions.check",
    "suppressions.add",
    "suppressions.remove",
    "suppressions.search",
    "suppressions.download",
)
def test_every_suppression_call_is_refused_on_a_plan_without_suppression_management(
    live_client: SocketLabsClient, live_keys: SandboxKeys
) -> None:
    SandboxSuppression.objects.create(server=live_keys.server, email_address="ann@example.net", reason="Bounce")
    SandboxServer.objects.filter(pk=live_keys.server.pk).update(suppression_enabled=False)
    calls: dict[str, Callable[[], Any]] = {
        "check": lambda: live_client.suppressions.check("ann@example.net"),  # 403 is not "not suppressed"
        "add": lambda: live_client.suppressions.add("bo@example.net"),
        "remove": lambda: live_client.suppressions.remove("ann@example.net"),
        "search": lambda: live_client.suppressions.search(),
        "download": lambda: live_client.suppressions.download(),  # the request is made at once
    }

    for name, call in calls.items():
        error = raised(call, socketlabs.PermissionDeniedError)
        assert (error.status, error.error_type, error.permanent) == (403, "FeatureNotEnabled", True), name
        assert error.message == "Suppression management is not part of server 17001's plan.", name

    assert list(SandboxSuppression.objects.values_list("email_address", flat=True)) == ["ann@example.net"]


@covers("sending_domains.get", "api_keys.delete", "event_webhooks.delete", "marketing.contacts.get")
def test_it_raises_not_found_with_the_sandboxs_message(live_client: SocketLabsClient) -> None:
    cases: list[tuple[Callable[[], Any], str]] = [
        (
            lambda: live_client.sending_domains.get("nope.example.com"),
            "nope.example.com is not a sending domain of server 17001.",
        ),
        (lambda: live_client.api_keys.delete(999999), "Server 17001 has no API key 999999."),
        (lambda: live_client.event_webhooks.delete(424242), "Server 17001 has no event webhook 424242."),
        (lambda: live_client.marketing.contacts.get(777), "Server 17001 has no contact 777."),
    ]
    for call, message in cases:
        error = raised(call, socketlabs.NotFoundError)
        assert (error.status, error.error_type, error.permanent, error.message) == (404, "NotFound", True, message)


@covers("sending_domains.add", "suppressions.add", "inbound_parse.create", "dkim.add", "dkim.generate")
def test_it_raises_conflict_for_what_already_exists(live_client: SocketLabsClient, live_keys: SandboxKeys) -> None:
    live_client.sending_domains.add("mail.example.com")
    live_client.suppressions.add("ann@example.net")
    live_client.inbound_parse.create(
        domain_or_address="in.example.com", url="https://hooks.example.com/in", secret_key="s", validation_key="v"
    )
    key = live_client.dkim.generate(domain="example.com", selector="s1").private_key or ""
    live_client.dkim.add(domain="example.com", selector="s1", private_key=key)
    cases: list[tuple[Callable[[], Any], str]] = [
        (
            lambda: live_client.sending_domains.add("mail.example.com"),
            "mail.example.com is already a sending domain of server 17001.",
        ),
        (
            lambda: live_client.suppressions.add("ANN@example.net"),
            "ann@example.net is already on the suppression list of server 17001.",
        ),
        (
            lambda: live_client.inbound_parse.create(
                domain_or_address="in.example.com", url="https://other.example.com/", secret_key="t", validation_key="w"
            ),
            "in.example.com already has an inbound parse endpoint on server 17001.",
        ),
        (
            lambda: live_client.dkim.add(domain="example.com", selector="s1", private_key=key),
            "A DKIM key for s1._domainkey.example.com already exists.",
        ),
    ]
    for call, message in cases:
        error = raised(call, socketlabs.ConflictError)
        assert (error.status, error.error_type, error.permanent, error.message) == (409, "Conflict", True, message)
    assert live_keys.server.sending_domains.count() == 1
    assert live_keys.server.inbound_endpoints.get().url == "https://hooks.example.com/in"


@covers("sending_domains.add", "api_keys.create", "event_webhooks.create", "tracking_domains.add")
def test_it_raises_validation_error_naming_each_bad_field(
    live_client: SocketLabsClient, live_keys: SandboxKeys
) -> None:
    domain = raised(lambda: live_client.sending_domains.add("not a domain"), socketlabs.ValidationError)

    assert (domain.status, domain.error_type, domain.permanent) == (422, "ValidationError", True)
    assert [d.field for d in domain.errors] == ["domain"]
    assert domain.message == "domain: 'not a domain' is not a valid domain name."
    key = raised(lambda: live_client.api_keys.create(name="", permissions=["teleport"]), socketlabs.ValidationError)
    assert [d.field for d in key.errors] == ["name", "permissions"]  # one error per field, all at once
    assert key.errors[1].message and "'teleport'" in key.errors[1].message
    hook = raised(
        lambda: live_client.event_webhooks.create(url="ftp://x", secret_key="", events=["Nope"]),
        socketlabs.ValidationError,
    )
    assert {d.field for d in hook.errors} == {"url", "secretKey", "events"}
    with pytest.raises(socketlabs.ValidationError):
        live_client.tracking_domains.add("bad domain", opens_enabled=True)
    assert not live_keys.server.sending_domains.exists()
    assert live_keys.server.api_keys.count() == 4  # the fixture's keys only
    assert not live_keys.server.event_webhooks.exists() and not live_keys.server.tracking_domains.exists()
