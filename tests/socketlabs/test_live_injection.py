"""The Injection API (§2), client → sandbox over real HTTP, checked against the messages the sandbox stored."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import socketlabs
from sandbox.models import SandboxMessage
from socketlabs import BasicMessage, BulkMessage, BulkRecipient, SendResult, SocketLabsClient
from tests.sandbox.conftest import SandboxKeys
from tests.socketlabs.conftest import LIVE_MARKS
from tests.socketlabs.test_live_coverage import covers

pytestmark = LIVE_MARKS


@covers("inject")
def test_it_injects_a_basic_message_as_the_sandbox_stores_it(
    live_client: SocketLabsClient, live_keys: SandboxKeys
) -> None:
    message = BasicMessage(
        from_address="shop@example.com",
        to=["ann@example.net", "bo@example.net"],
        cc=["cy@example.net"],
        subject="Your order",
        text_body="Thanks",
        html_body="<p>Thanks</p>",
        mailing_id="orders",
        message_id="order-42",
        custom_headers=[("X-Order", "42")],
    )

    result = live_client.inject(message)

    assert (result.error_code, result.ok) == (SendResult.SUCCESS, True)
    stored = SandboxMessage.objects.get(server=live_keys.server)
    assert result.transaction_receipt is None  # null on success (§2); the sandbox keeps its own for the log
    assert (stored.from_address, stored.subject, stored.text_body, stored.html_body) == (
        "shop@example.com",
        "Your order",
        "Thanks",
        "<p>Thanks</p>",
    )
    assert (stored.mailing_id, stored.message_id) == ("orders", "order-42")
    assert [a["emailAddress"] for a in stored.to] == ["ann@example.net", "bo@example.net"]
    assert [a["emailAddress"] for a in stored.cc] == ["cy@example.net"]
    assert {"name": "X-Order", "value": "42"} in [{k.lower(): v for k, v in h.items()} for h in stored.custom_headers]


@covers("inject")
def test_it_injects_a_bulk_merge_to_fifty_recipients_with_global_and_per_message_fields(
    live_client: SocketLabsClient, live_keys: SandboxKeys
) -> None:
    recipients = [
        BulkRecipient(f"r{n:02d}@example.net", f"Reader {n}", {"FirstName": f"R{n}", "Code": f"C-{n}"})
        for n in range(50)
    ]
    bulk = BulkMessage(
        from_address="news@example.com",
        subject="Hello %%FirstName%%",
        text_body="Hi %%FirstName%%, your code is %%Code%%. %%Motto%%",
        recipients=recipients,
        global_merge_fields={"Motto": "Be kind."},
        mailing_id="spring",
    )

    result = live_client.inject(bulk)

    assert result.ok and result.rejected_addresses() == ()
    rows = list(SandboxMessage.objects.filter(server=live_keys.server).order_by("row_index"))
    assert len(rows) == 50
    assert len({r.transaction_receipt for r in rows}) == 1  # one request
    for n, row in enumerate(rows):
        assert row.to == [{"emailAddress": f"r{n:02d}@example.net", "friendlyName": f"Reader {n}"}]
        assert row.subject == f"Hello R{n}"
        assert row.text_body == f"Hi R{n}, your code is C-{n}. Be kind."
        assert row.mailing_id == "spring"


@covers("inject")
def test_it_surfaces_each_invalid_address_and_still_sends_the_rest(
    live_client: SocketLabsClient, live_keys: SandboxKeys
) -> None:
    message = BasicMessage(
        from_address="shop@example.com",
        to=["ann@example.net", "bad@@example", "no-at-sign.example.net"],
        subject="Hi",
        text_body="Hello",
    )

    result = live_client.inject(message)

    assert result.error_code is SendResult.WARNING
    rejected = {a.email_address: (a.accepted, a.raw_error_code) for a in result.rejected_addresses()}
    assert rejected == {"bad@@example": (False, "InvalidAddress"), "no-at-sign.example.net": (False, "InvalidAddress")}
    stored = SandboxMessage.objects.get(server=live_keys.server)
    assert [a["emailAddress"] for a in stored.to] == ["ann@example.net"]


@covers("inject")
def test_it_refuses_a_wrong_key_and_sends_nothing(
    live_keys: SandboxKeys, make_live_client: Callable[..., SocketLabsClient]
) -> None:
    message = BasicMessage(from_address="a@example.com", to=["b@example.net"], subject="s", text_body="t")
    wrong = make_live_client(live_keys, injection_key="A" * 20 + "." + "b" * 40)
    api_key_only = make_live_client(live_keys, injection_key=live_keys.api_key)  # a real key without `injection`

    for client in (wrong, api_key_only):
        with pytest.raises(socketlabs.AuthenticationError) as caught:
            client.inject(message)
        assert (caught.value.status, caught.value.error_type, caught.value.permanent) == (
            401,
            "InvalidAuthentication",
            True,
        )
    assert not SandboxMessage.objects.exists()
    legacy = make_live_client(live_keys, injection_key=live_keys.legacy_key)
    assert legacy.inject(message).ok  # the short legacy key travels in the body
