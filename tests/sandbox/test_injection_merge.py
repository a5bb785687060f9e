"""Merge expansion (§2.4): one outbound message per PerMessage row, `%%Field%%` substitution everywhere."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from sandbox.injection import substitute
from sandbox.models import SandboxEvent, SandboxMessage
from tests.sandbox.conftest import SandboxKeys
from tests.sandbox.injection_support import merge_message, merge_rows, message, post_injection, request_body

pytestmark = pytest.mark.django_db


def send(client: Client, keys: SandboxKeys, *messages: dict[str, Any]) -> dict[str, Any]:
    response = post_injection(client, request_body(keys.server_id, *messages), key=keys.injection_key)
    assert response.status_code == 200
    return json.loads(response.content)


def test_it_creates_one_message_per_row_with_fields_substituted(client: Client, sandbox_server: SandboxKeys) -> None:
    data = send(client, sandbox_server, merge_message(merge_rows(3)))
    assert data == {"ErrorCode": "Success", "MessageResults": [], "TransactionReceipt": None}
    stored = list(SandboxMessage.objects.order_by("row_index"))
    assert [m.row_index for m in stored] == [0, 1, 2]
    assert [m.to for m in stored] == [
        [{"emailAddress": f"user{i}@example.net", "friendlyName": f"User {i}"}] for i in range(3)
    ]
    assert [m.subject for m in stored] == ["Hello First0", "Hello First1", "Hello First2"]
    assert stored[1].text_body == "Hi First1, be kind"
    assert stored[2].html_body == "<p>Hi First2</p>"
    assert len({m.transaction_receipt for m in stored}) == 1


def test_it_substitutes_in_headers_from_and_the_tracking_ids(client: Client, sandbox_server: SandboxKeys) -> None:
    rows = [
        [
            {"Field": "DeliveryAddress", "Value": "ann@example.net"},
            {"Field": "Team", "Value": "sales"},
            {"Field": "Order", "Value": "42"},
        ]
    ]
    msg = merge_message(
        rows,
        From={"EmailAddress": "%%Team%%@example.com", "FriendlyName": "%%Team%% desk"},
        ReplyTo={"EmailAddress": "reply-%%Order%%@example.com"},
        CustomHeaders=[{"Name": "X-Order", "Value": "order-%%Order%%"}],
        MailingId="campaign-%%Team%%",
        MessageId="msg-%%Order%%",
    )
    assert send(client, sandbox_server, msg)["ErrorCode"] == "Success"
    stored = SandboxMessage.objects.get()
    assert (stored.from_address, stored.from_name) == ("sales@example.com", "sales desk")
    assert stored.reply_to == "reply-42@example.com"
    assert stored.custom_headers == [{"name": "X-Order", "value": "order-42"}]
    assert (stored.mailing_id, stored.message_id) == ("campaign-sales", "msg-42")
    assert (
        SandboxEvent.objects.filter(outbound=stored).values_list("message_id", flat=True).distinct().get() == "msg-42"
    )


def test_a_per_message_value_overrides_the_global_one(client: Client, sandbox_server: SandboxKeys) -> None:
    rows = [
        [{"Field": "DeliveryAddress", "Value": "ann@example.net"}, {"Field": "Motto", "Value": "be bold"}],
        [{"Field": "DeliveryAddress", "Value": "bo@example.net"}],
    ]
    send(client, sandbox_server, merge_message(rows))
    bodies = list(SandboxMessage.objects.order_by("row_index").values_list("text_body", flat=True))
    assert bodies == ["Hi , be bold", "Hi , be kind"]


def test_field_names_match_without_case_and_unknown_tokens_become_empty(
    client: Client, sandbox_server: SandboxKeys
) -> None:
    rows = [[{"Field": "deliveryADDRESS", "Value": "ann@example.net"}, {"Field": "FIRSTNAME", "Value": "Ann"}]]
    msg = merge_message(rows, Subject="Hi %%firstname%% %%Nickname%%!", TextBody="%%FirstName%%|%%missing%%|100%")
    send(client, sandbox_server, msg)
    stored = SandboxMessage.objects.get()
    assert stored.to == [{"emailAddress": "ann@example.net", "friendlyName": ""}]
    assert stored.subject == "Hi Ann !"
    assert stored.text_body == "Ann||100%"


def test_a_basic_message_uses_global_values(client: Client, sandbox_server: SandboxKeys) -> None:
    msg = message(Subject="News for %%Town%%", MergeData={"Global": [{"Field": "Town", "Value": "Ghent"}]})
    send(client, sandbox_server, msg)
    assert SandboxMessage.objects.get().subject == "News for Ghent"


def test_rows_whose_address_does_not_resolve_are_failed_addresses(client: Client, sandbox_server: SandboxKeys) -> None:
    rows = [
        [{"Field": "DeliveryAddress", "Value": "ann@example.net"}],
        [{"Field": "DeliveryAddress", "Value": "not-an-address"}],
        [{"Field": "FirstName", "Value": "No address"}],
        [{"Field": "DeliveryAddress", "Value": "bo@example.net"}],
    ]
    data = send(client, sandbox_server, merge_message(rows))
    assert data["ErrorCode"] == "Warning"
    assert data["MessageResults"] == [
        {
            "Index": 0,
            "ErrorCode": "InvalidAddress",
            "AddressResults": [
                {"EmailAddress": "not-an-address", "Accepted": False, "ErrorCode": "InvalidAddress"},
                {"EmailAddress": "%%DeliveryAddress%%", "Accepted": False, "ErrorCode": "InvalidAddress"},
            ],
        }
    ]
    stored = list(SandboxMessage.objects.order_by("row_index").values_list("row_index", "to"))
    assert [(i, to[0]["emailAddress"]) for i, to in stored] == [(0, "ann@example.net"), (3, "bo@example.net")]


def test_a_merge_where_no_row_resolves_has_no_valid_recipients(client: Client, sandbox_server: SandboxKeys) -> None:
    rows = [[{"Field": "DeliveryAddress", "Value": "x"}], [{"Field": "DeliveryAddress", "Value": ""}]]
    data = send(client, sandbox_server, merge_message(rows))
    assert data["ErrorCode"] == "Warning"
    assert data["MessageResults"][0]["ErrorCode"] == "NoValidRecipients"
    assert len(data["MessageResults"][0]["AddressResults"]) == 2
    assert SandboxMessage.objects.count() == 0


def test_a_merged_from_that_does_not_resolve_fails_the_row(client: Client, sandbox_server: SandboxKeys) -> None:
    rows = [
        [{"Field": "DeliveryAddress", "Value": "ann@example.net"}, {"Field": "Sender", "Value": "news@example.com"}],
        [{"Field": "DeliveryAddress", "Value": "bo@example.net"}],
    ]
    data = send(client, sandbox_server, merge_message(rows, From={"EmailAddress": "%%Sender%%"}))
    assert data["MessageResults"] == [
        {
            "Index": 0,
            "ErrorCode": "InvalidFrom",
            "AddressResults": [{"EmailAddress": "bo@example.net", "Accepted": False, "ErrorCode": "InvalidFrom"}],
        }
    ]
    assert SandboxMessage.objects.get().from_address == "news@example.com"


def test_more_rows_than_the_limit_is_too_many_recipients(
    client: Client, sandbox_server: SandboxKeys, settings: Any
) -> None:
    settings.SANDBOX_INJECTION_MAX_MERGE_ROWS = 5
    data = send(client, sandbox_server, merge_message(merge_rows(6)), merge_message(merge_rows(5)))
    assert [(r["Index"], r["ErrorCode"]) for r in data["MessageResults"]] == [(0, "TooManyRecipients")]
    assert SandboxMessage.objects.count() == 5


def test_ten_thousand_merge_recipients_in_one_request_use_a_bounded_number_of_queries(
    client: Client, sandbox_server: SandboxKeys, django_assert_max_num_queries: Any
) -> None:
    messages = [merge_message(merge_rows(1000, domain=f"d{i}.example")) for i in range(10)]
    with django_assert_max_num_queries(40):
        data = send(client, sandbox_server, *messages)
    assert data["ErrorCode"] == "Success"
    assert SandboxMessage.objects.filter(server=sandbox_server.server).count() == 10_000
    assert SandboxEvent.objects.filter(server=sandbox_server.server, type="Queued").count() == 10_000
    assert SandboxMessage.objects.filter(subject="Hello First999", to__0__emailAddress="user999@d9.example").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("%%A%%%%b%%", "12"),
        ("%%a", "%%a"),
        ("50%% off %%A%%", "50%% off 1"),
        ("%%with space%%", "%%with space%%"),
        ("%%first.name%%", "dotted"),
    ],
)
def test_substitution_edges(text: str, expected: str) -> None:
    assert substitute(text, {"a": "1", "b": "2", "first.name": "dotted"}) == expected
