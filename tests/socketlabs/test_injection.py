"""Injection API: auth choice, PascalCase request bodies, and lenient result parsing (§2, §9b)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import responses
from hypothesis import given, settings
from hypothesis import strategies as st

import socketlabs
from socketlabs import (
    Address,
    Attachment,
    BasicMessage,
    BulkMessage,
    BulkRecipient,
    SendResult,
    SocketLabsClient,
)
from socketlabs.injection import parse_result
from tests.socketlabs.conftest import BEARER_KEY, INJECT, LEGACY_KEY, SERVER_ID

SUCCESS = {"ErrorCode": "Success", "MessageResults": [], "TransactionReceipt": None}
SIMPLE = BasicMessage(from_address="shop@example.com", to=["ann@example.net"], subject="Hi", text_body="Hello")


def sent(rsps: responses.RequestsMock, n: int = 0) -> dict[str, Any]:
    return json.loads(rsps.calls[n].request.body)


# --- authentication -----------------------------------------------------------------------------------
def test_it_sends_a_61_character_key_as_bearer_and_not_in_the_body(make_client, mocked) -> None:
    client = make_client(injection_key=BEARER_KEY)
    mocked.post(INJECT, json=SUCCESS)

    client.inject(SIMPLE)

    request = mocked.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {BEARER_KEY}"
    body = sent(mocked)
    assert "ApiKey" not in body
    assert BEARER_KEY not in request.body.decode()


@pytest.mark.parametrize("key", [LEGACY_KEY, "x" * 61, "a" * 19 + "." + "b" * 41, "a" * 20 + "." + "b" * 39 + "."])
def test_it_sends_any_other_key_in_the_body_without_an_authorization_header(make_client, mocked, key: str) -> None:
    client = make_client(injection_key=key)
    mocked.post(INJECT, json=SUCCESS)

    client.inject(SIMPLE)

    assert "Authorization" not in mocked.calls[0].request.headers
    assert sent(mocked)["ApiKey"] == key


def test_it_refuses_to_inject_without_an_injection_key(make_client, mocked) -> None:
    client = make_client(injection_key="")

    with pytest.raises(socketlabs.ConfigurationError, match="No Injection API key"):
        client.inject(SIMPLE)

    assert len(mocked.calls) == 0


# --- request bodies ---------------------------------------------------------------------------------------
def test_it_writes_a_basic_message_with_pascal_case_keys_and_an_integer_server_id(client, mocked) -> None:
    mocked.post(INJECT, json=SUCCESS)
    message = BasicMessage(
        from_address=Address("shop@example.com", "Acme Shop"),
        reply_to="help@example.com",
        to=["ann@example.net", ("bo@example.net", "Bo")],
        cc=[Address("cc@example.net")],
        bcc=["audit@example.com"],
        subject="Your order",
        text_body="Thanks",
        html_body="<p>Thanks</p>",
        amp_body="<html amp4email></html>",
        api_template=42,
        mailing_id="spring",
        message_id="order-42",
        charset="UTF-8",
        custom_headers={"X-Campaign": "spring"},
        attachments=[Attachment("a.txt", b"hello", "text/plain", content_id="logo", custom_headers=[("X-A", "1")])],
        metadata={"userId": "77"},
        tags=["receipt", "shop"],
    )

    client.inject(message)

    assert sent(mocked) == {
        "ServerId": SERVER_ID,
        "Messages": [
            {
                "To": [{"EmailAddress": "ann@example.net"}, {"EmailAddress": "bo@example.net", "FriendlyName": "Bo"}],
                "Cc": [{"EmailAddress": "cc@example.net"}],
                "Bcc": [{"EmailAddress": "audit@example.com"}],
                "From": {"EmailAddress": "shop@example.com", "FriendlyName": "Acme Shop"},
                "ReplyTo": {"EmailAddress": "help@example.com"},
                "Subject": "Your order",
                "TextBody": "Thanks",
                "HtmlBody": "<p>Thanks</p>",
                "AmpBody": "<html amp4email></html>",
                "MailingId": "spring",
                "MessageId": "order-42",
                "CharSet": "UTF-8",
                "ApiTemplate": "42",
                "CustomHeaders": [{"Name": "X-Campaign", "Value": "spring"}],
                "Attachments": [
                    {
                        "Name": "a.txt",
                        "Content": base64.b64encode(b"hello").decode(),
                        "ContentType": "text/plain",
                        "ContentId": "logo",
                        "CustomHeaders": [{"Name": "X-A", "Value": "1"}],
                    }
                ],
                "Metadata": [{"Key": "userId", "Value": "77"}],
                "Tags": ["receipt", "shop"],
            }
        ],
    }
    assert mocked.calls[0].request.headers["Content-Type"] == "application/json; charset=utf-8"


def test_it_leaves_out_empty_optional_parts(client, mocked) -> None:
    mocked.post(INJECT, json=SUCCESS)

    client.inject(SIMPLE)

    assert sent(mocked)["Messages"] == [
        {
            "To": [{"EmailAddress": "ann@example.net"}],
            "From": {"EmailAddress": "shop@example.com"},
            "Subject": "Hi",
            "TextBody": "Hello",
        }
    ]


def test_it_writes_a_bulk_message_as_one_merge_row_per_recipient(client, mocked) -> None:
    mocked.post(INJECT, json=SUCCESS)
    message = BulkMessage(
        from_address="news@example.com",
        subject="Hello %%FirstName%%",
        html_body="<p>%%FirstName%%, %%Motto%%</p>",
        recipients=[
            BulkRecipient("ann@example.net", "Ann A.", {"FirstName": "Ann"}),
            BulkRecipient("bo@example.net", merge_fields={"FirstName": "Bo", "Motto": "be bold"}),
            "cy@example.net",
        ],
        global_merge_fields={"Motto": "be kind"},
        mailing_id="spring",
    )

    client.inject(message)

    (written,) = sent(mocked)["Messages"]
    assert written["To"] == [{"EmailAddress": "%%DeliveryAddress%%", "FriendlyName": "%%RecipientName%%"}]
    assert written["MergeData"] == {
        "PerMessage": [
            [
                {"Field": "FirstName", "Value": "Ann"},
                {"Field": "DeliveryAddress", "Value": "ann@example.net"},
                {"Field": "RecipientName", "Value": "Ann A."},
            ],
            [
                {"Field": "FirstName", "Value": "Bo"},
                {"Field": "Motto", "Value": "be bold"},
                {"Field": "DeliveryAddress", "Value": "bo@example.net"},
            ],
            [{"Field": "DeliveryAddress", "Value": "cy@example.net"}],
        ],
        "Global": [{"Field": "Motto", "Value": "be kind"}],
    }
    assert written["Subject"] == "Hello %%FirstName%%"
    assert written["MailingId"] == "spring"


def test_it_sends_several_messages_in_one_request(client, mocked) -> None:
    mocked.post(INJECT, json=SUCCESS)
    second = BasicMessage(from_address="shop@example.com", to=["bo@example.net"], subject="Two", api_template=7)

    client.inject([SIMPLE, second])

    assert len(mocked.calls) == 1
    messages = sent(mocked)["Messages"]
    assert [m["Subject"] for m in messages] == ["Hi", "Two"]
    assert messages[1]["ApiTemplate"] == "7"


def test_it_sends_to_a_gateway_url_when_told(client, mocked) -> None:
    gateway = "http://inject-cx.test:9000/api/v1/email"
    mocked.post(gateway, json=SUCCESS)

    assert client.inject(SIMPLE, inject_url=gateway).ok


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (BasicMessage(from_address="", to=["a@example.net"], subject="s", text_body="t"), "Messages[0].From"),
        (
            BasicMessage(from_address="f@example.com", to=["a@example.net"], subject=" ", text_body="t"),
            "Messages[0].Subject",
        ),
        (BasicMessage(from_address="f@example.com", to=["a@example.net"], subject="s"), "Messages[0]"),
        (BasicMessage(from_address="f@example.com", subject="s", text_body="t"), "Messages[0].To"),
        (BulkMessage(from_address="f@example.com", subject="s", text_body="t"), "Messages[0].MergeData"),
    ],
)
def test_it_refuses_an_incomplete_message_before_any_call(client, mocked, message, field: str) -> None:
    with pytest.raises(socketlabs.ValidationError) as caught:
        client.inject(message)

    assert [e.field for e in caught.value.errors] == [field]
    assert len(mocked.calls) == 0


def test_it_refuses_an_empty_batch(client, mocked) -> None:
    with pytest.raises(socketlabs.ValidationError, match="at least one message"):
        client.inject([])


# --- results ------------------------------------------------------------------------------------------------
def test_it_surfaces_per_message_and_per_address_results(client: SocketLabsClient, mocked) -> None:
    mocked.post(
        INJECT,
        json={
            "ErrorCode": "Warning",
            "MessageResults": [
                {
                    "Index": 1,
                    "ErrorCode": "InvalidAddress",
                    "AddressResults": [
                        {"EmailAddress": "bad@@example", "Accepted": False, "ErrorCode": "InvalidAddress"},
                        {"EmailAddress": "ok@example.net", "Accepted": True, "ErrorCode": "Success"},
                    ],
                }
            ],
            "TransactionReceipt": None,
        },
    )

    result = client.inject([SIMPLE, SIMPLE])

    assert result.error_code is SendResult.WARNING
    assert result.accepted_any and not result.ok
    assert result.for_message(0) is None
    message = result.for_message(1)
    assert message is not None and message.error_code is SendResult.INVALID_ADDRESS
    assert [a.email_address for a in result.rejected_addresses()] == ["bad@@example"]
    assert message.address_results[1].accepted is True


def test_it_reads_keys_in_any_case_and_keeps_unknown_fields(client: SocketLabsClient, mocked) -> None:
    mocked.post(
        INJECT,
        json={
            "errorCode": "warning",
            "messageresults": [{"INDEX": "0", "errorcode": "NoValidRecipients", "addressResults": None, "Hint": "x"}],
            "transactionReceipt": "tr-1",
            "RequestId": "abc",
        },
    )

    result = client.inject(SIMPLE)

    assert result.error_code is SendResult.WARNING
    assert result.raw_error_code == "warning"
    assert result.transaction_receipt == "tr-1"
    assert result.extra == {"RequestId": "abc"}
    (message,) = result.message_results
    assert message.index == 0
    assert message.error_code is SendResult.NO_VALID_RECIPIENTS
    assert message.address_results == ()
    assert message.extra == {"Hint": "x"}


def test_it_keeps_an_unknown_error_code_as_a_raw_string(client: SocketLabsClient, mocked) -> None:
    mocked.post(
        INJECT,
        json={
            "ErrorCode": "SomethingNew",
            "MessageResults": [{"Index": 0, "ErrorCode": "InvalidFromAddress", "AddressResults": []}],
        },
    )

    result = client.inject(SIMPLE)

    assert result.error_code is SendResult.UNKNOWN
    assert result.raw_error_code == "SomethingNew"
    assert result.message_results[0].error_code is SendResult.INVALID_FROM_ADDRESS


def test_it_accepts_null_message_results(client: SocketLabsClient, mocked) -> None:
    mocked.post(INJECT, json={"ErrorCode": "OverQuota", "MessageResults": None, "TransactionReceipt": None})

    result = client.inject(SIMPLE)

    assert result.error_code is SendResult.OVER_QUOTA
    assert result.message_results == ()
    assert not result.accepted_any


def test_it_reads_an_answer_without_error_code_as_unknown(client: SocketLabsClient, mocked) -> None:
    mocked.post(INJECT, json={"Something": "else"})

    result = client.inject(SIMPLE)

    assert result.error_code is SendResult.UNKNOWN
    assert result.raw_error_code == ""


def test_it_reports_a_garbage_injection_answer_as_an_unknown_outcome(client: SocketLabsClient, mocked) -> None:
    mocked.post(INJECT, body=b"\x00\xffnot json", status=200)

    with pytest.raises(socketlabs.OutcomeUnknownError) as caught:
        client.inject(SIMPLE)

    assert len(mocked.calls) == 1
    assert "not JSON" in caught.value.message or "other than JSON" in caught.value.message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=15), children, max_size=4),
    max_leaves=20,
)
injection_like = st.fixed_dictionaries(
    {},
    optional={
        "ErrorCode": json_values,
        "MessageResults": st.none()
        | st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "Index": json_values,
                    "ErrorCode": json_values,
                    "AddressResults": st.none()
                    | st.lists(st.dictionaries(st.sampled_from(["EmailAddress", "Accepted", "ErrorCode"]), json_values))
                    | json_values,
                },
            )
            | json_values,
            max_size=3,
        ),
        "TransactionReceipt": json_values,
    },
)


@settings(max_examples=200, deadline=None)
@given(body=injection_like | json_values)
def test_it_never_crashes_on_any_json_answer(body: Any) -> None:
    result = parse_result(body)
    assert isinstance(result.error_code, SendResult)
