"""The sandbox's Injection API endpoint: authentication, the §2.9 validation order, answers and logs."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.test import Client

from sandbox import injection
from sandbox.models import SandboxMessage, SandboxRequestLog, SandboxServer
from tests.sandbox.conftest import SandboxKeys
from tests.sandbox.injection_support import INJECT_PATH, message, post_injection, request_body

pytestmark = pytest.mark.django_db

SDK_CODES = {
    "UnknownError",
    "Timeout",
    "Success",
    "Warning",
    "InternalError",
    "MessageTooLarge",
    "TooManyRecipients",
    "InvalidData",
    "OverQuota",
    "TooManyErrors",
    "InvalidAuthentication",
    "AccountDisabled",
    "TooManyMessages",
    "NoValidRecipients",
    "InvalidAddress",
    "InvalidAttachment",
    "NoMessages",
    "EmptyMessage",
    "EmptySubject",
    "InvalidFrom",
    "EmptyToAddress",
    "NoValidBodyParts",
    "InvalidTemplateId",
    "TemplateHasNoContent",
    "MessageBodyConflict",
    "InvalidMergeData",
}


def answer(response: Any) -> dict[str, Any]:
    assert response["Content-Type"].startswith("application/json")
    data = json.loads(response.content)
    assert set(data) == {"ErrorCode", "MessageResults", "TransactionReceipt"}
    assert data["ErrorCode"] in SDK_CODES
    for result in data["MessageResults"] or []:
        assert result["ErrorCode"] in SDK_CODES
    return data


# --- authentication (§2.2) ----------------------------------------------------------------------


def test_it_accepts_the_python_sdk_shape_with_a_bearer_key_and_an_empty_body_key(
    client: Client, sandbox_server: SandboxKeys
) -> None:
    body = {
        "serverId": str(sandbox_server.server_id),
        "apiKey": "",
        "messages": [
            {
                "from": {"emailAddress": "shop@example.com"},
                "to": [{"emailAddress": "ann@example.net"}],
                "subject": "Hi",
                "textBody": "Hello",
            }
        ],
    }
    response = post_injection(client, body, key=sandbox_server.injection_key)
    assert response.status_code == 200
    assert answer(response) == {"ErrorCode": "Success", "MessageResults": [], "TransactionReceipt": None}
    stored = SandboxMessage.objects.get(server=sandbox_server.server)
    assert stored.to == [{"emailAddress": "ann@example.net", "friendlyName": ""}]
    assert stored.subject == "Hi"


def test_it_accepts_a_legacy_key_in_the_body(client: Client, sandbox_server: SandboxKeys) -> None:
    response = post_injection(client, request_body(sandbox_server.server_id, api_key=sandbox_server.legacy_key))
    assert answer(response)["ErrorCode"] == "Success"
    assert SandboxMessage.objects.count() == 1


def test_it_accepts_the_server_id_as_a_number_or_a_numeric_string(client: Client, sandbox_server: SandboxKeys) -> None:
    for server_id in (sandbox_server.server_id, str(sandbox_server.server_id), f" {sandbox_server.server_id} "):
        body = {"ServerId": server_id, "Messages": [message()]}
        assert answer(post_injection(client, body, key=sandbox_server.injection_key))["ErrorCode"] == "Success"
    assert SandboxMessage.objects.count() == 3


def test_it_accepts_a_valid_body_key_even_when_the_bearer_is_wrong(client: Client, sandbox_server: SandboxKeys) -> None:
    body = request_body(sandbox_server.server_id, api_key=sandbox_server.legacy_key)
    response = post_injection(client, body, key="W" * 20 + "." + "x" * 40)
    assert answer(response)["ErrorCode"] == "Success"


@pytest.mark.parametrize(
    "case",
    ["wrong-bearer", "no-key", "api-permission-only", "unknown-server", "missing-server-id", "zero-server-id"],
)
def test_it_answers_401_with_a_json_body_for_bad_credentials(
    client: Client, sandbox_server: SandboxKeys, case: str
) -> None:
    server_id: Any = sandbox_server.server_id
    key: str | None = sandbox_server.injection_key
    if case == "wrong-bearer":
        key = "W" * 20 + "." + "x" * 40
    elif case == "no-key":
        key = None
    elif case == "api-permission-only":
        key = sandbox_server.api_key
    elif case == "unknown-server":
        server_id = 999999
    elif case == "missing-server-id":
        server_id = None
    elif case == "zero-server-id":
        server_id = 0
    body = {"ServerId": server_id, "Messages": [message()]}
    response = post_injection(client, body, key=key)
    assert response.status_code == 401
    assert answer(response) == {
        "ErrorCode": "InvalidAuthentication",
        "MessageResults": None,
        "TransactionReceipt": None,
    }
    assert SandboxMessage.objects.count() == 0


def test_it_refuses_the_key_of_another_server(
    client: Client, sandbox_server: SandboxKeys, other_sandbox_server: SandboxKeys
) -> None:
    body = request_body(sandbox_server.server_id)
    response = post_injection(client, body, key=other_sandbox_server.injection_key)
    assert response.status_code == 401
    legacy = request_body(sandbox_server.server_id, api_key=other_sandbox_server.legacy_key)
    assert post_injection(client, legacy).status_code == 401
    assert SandboxMessage.objects.count() == 0


def test_it_records_when_a_key_was_last_used(client: Client, sandbox_server: SandboxKeys) -> None:
    post_injection(client, request_body(sandbox_server.server_id), key=sandbox_server.injection_key)
    used = sandbox_server.server.api_keys.get(name="injection").last_used_on
    assert used is not None
    assert sandbox_server.server.api_keys.get(name="v2").last_used_on is None


# --- decoding (step 1) ------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'"text"', b"", b"\xff\xfe"])
def test_it_answers_invalid_data_in_json_for_a_body_that_is_not_an_object(
    client: Client, sandbox_server: SandboxKeys, raw: bytes
) -> None:
    response = post_injection(client, None, key=sandbox_server.injection_key, raw=raw)
    assert response.status_code == 200
    assert answer(response)["ErrorCode"] == "InvalidData"


def test_it_answers_json_to_a_get(client: Client) -> None:
    response = client.get(INJECT_PATH)
    assert response.status_code == 405
    assert answer(response)["ErrorCode"] == "InvalidData"


def test_it_is_a_404_when_the_sandbox_is_off(client: Client, sandbox_server: SandboxKeys, settings: Any) -> None:
    settings.SANDBOX_ENABLED = False
    response = post_injection(client, request_body(sandbox_server.server_id), key=sandbox_server.injection_key)
    assert response.status_code == 404
    assert SandboxMessage.objects.count() == 0


# --- account state and quota (step 3) ------------------------------------------------------------


def test_it_answers_account_disabled(client: Client, sandbox_server: SandboxKeys) -> None:
    account = sandbox_server.account
    account.disabled = True
    account.save()
    response = post_injection(client, request_body(sandbox_server.server_id), key=sandbox_server.injection_key)
    assert response.status_code == 200
    assert answer(response)["ErrorCode"] == "AccountDisabled"
    assert SandboxMessage.objects.count() == 0


def test_it_checks_credentials_before_the_account_state(client: Client, sandbox_server: SandboxKeys) -> None:
    sandbox_server.account.disabled = True
    sandbox_server.account.save()
    response = post_injection(client, request_body(sandbox_server.server_id), key="nope")
    assert response.status_code == 401


def test_it_answers_over_quota_past_the_rate_limit(client: Client, sandbox_server: SandboxKeys) -> None:
    SandboxServer.objects.filter(pk=sandbox_server.server.pk).update(rate_limit_per_minute=2)
    codes = [
        answer(post_injection(client, request_body(sandbox_server.server_id), key=sandbox_server.injection_key))[
            "ErrorCode"
        ]
        for _ in range(4)
    ]
    assert codes == ["Success", "Success", "OverQuota", "OverQuota"]
    assert SandboxMessage.objects.count() == 2


def test_it_does_not_count_refused_requests_against_the_quota(client: Client, sandbox_server: SandboxKeys) -> None:
    SandboxServer.objects.filter(pk=sandbox_server.server.pk).update(rate_limit_per_minute=1)
    for _ in range(3):
        post_injection(client, request_body(sandbox_server.server_id), key="wrong")
    response = post_injection(client, request_body(sandbox_server.server_id), key=sandbox_server.injection_key)
    assert answer(response)["ErrorCode"] == "Success"


# --- messages (step 4) ------------------------------------------------------------------------


@pytest.mark.parametrize("messages", [None, []])
def test_it_answers_no_messages(client: Client, sandbox_server: SandboxKeys, messages: Any) -> None:
    body = {"ServerId": sandbox_server.server_id, "Messages": messages}
    assert answer(post_injection(client, body, key=sandbox_server.injection_key))["ErrorCode"] == "NoMessages"


def test_it_answers_too_many_messages_past_ten(client: Client, sandbox_server: SandboxKeys) -> None:
    body = request_body(sandbox_server.server_id, *[message() for _ in range(11)])
    assert answer(post_injection(client, body, key=sandbox_server.injection_key))["ErrorCode"] == "TooManyMessages"
    assert SandboxMessage.objects.count() == 0
    body = request_body(sandbox_server.server_id, *[message() for _ in range(10)])
    assert answer(post_injection(client, body, key=sandbox_server.injection_key))["ErrorCode"] == "Success"
    assert SandboxMessage.objects.count() == 10


def test_its_limits_come_from_settings(client: Client, sandbox_server: SandboxKeys, settings: Any) -> None:
    settings.SANDBOX_INJECTION_MAX_MESSAGES = 2
    settings.SANDBOX_INJECTION_MAX_RECIPIENTS = 3
    body = request_body(sandbox_server.server_id, message(), message(), message())
    assert answer(post_injection(client, body, key=sandbox_server.injection_key))["ErrorCode"] == "TooManyMessages"
    to = [{"EmailAddress": f"r{i}@example.net"} for i in range(4)]
    body = request_body(sandbox_server.server_id, message(To=to))
    data = answer(post_injection(client, body, key=sandbox_server.injection_key))
    assert data["MessageResults"][0]["ErrorCode"] == "TooManyRecipients"


def test_it_answers_message_too_large_past_the_request_limit(
    client: Client, sandbox_server: SandboxKeys, settings: Any
) -> None:
    settings.SANDBOX_INJECTION_MAX_REQUEST_BYTES = 1000
    body = request_body(sandbox_server.server_id, message(TextBody="x" * 2000))
    response = post_injection(client, body, key=sandbox_server.injection_key)
    assert response.status_code == 200
    assert answer(response)["ErrorCode"] == "MessageTooLarge"
    assert SandboxMessage.objects.count() == 0


# --- per message (step 5) ------------------------------------------------------------------------

ATTACHMENT = {"Name": "a.txt", "Content": base64.b64encode(b"hello").decode(), "ContentType": "text/plain"}


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"From": None}, "InvalidFrom"),
        ({"From": {"EmailAddress": ""}}, "InvalidFrom"),
        ({"From": {"EmailAddress": "not-an-address"}}, "InvalidFrom"),
        ({"From": {"EmailAddress": "a@@example.com"}}, "InvalidFrom"),
        ({"Subject": None}, "EmptySubject"),
        ({"Subject": "   "}, "EmptySubject"),
        ({"TextBody": None, "HtmlBody": None}, "EmptyMessage"),
        ({"TextBody": "", "HtmlBody": " "}, "EmptyMessage"),
        ({"TextBody": None, "HtmlBody": None, "AmpBody": "<html amp></html>"}, "NoValidBodyParts"),
        ({"ApiTemplate": "abc"}, "InvalidTemplateId"),
        ({"ApiTemplate": "0"}, "InvalidTemplateId"),
        ({"Attachments": [{**ATTACHMENT, "Content": "%%% not base64 %%%"}]}, "InvalidAttachment"),
        ({"Attachments": [{**ATTACHMENT, "Name": ""}]}, "InvalidAttachment"),
        ({"Attachments": ["nope"]}, "InvalidAttachment"),
        ({"MergeData": {"PerMessage": [[{"Field": "X", "Value": 3}]]}}, "InvalidMergeData"),
        ({"MergeData": {"PerMessage": [{"Field": "X", "Value": "3"}]}}, "InvalidMergeData"),
        ({"MergeData": {"Global": [{"Field": "", "Value": "3"}]}}, "InvalidMergeData"),
        ({"MergeData": "rows"}, "InvalidMergeData"),
        ({"To": [{"EmailAddress": f"r{i}@example.net"} for i in range(51)]}, "TooManyRecipients"),
        (
            {
                "To": [{"EmailAddress": "a@example.net"}],
                "Cc": [{"EmailAddress": f"c{i}@example.net"} for i in range(50)],
            },
            "TooManyRecipients",
        ),
        ({"To": []}, "EmptyToAddress"),
        ({"To": None, "Cc": [{"EmailAddress": "c@example.net"}]}, "EmptyToAddress"),
        ({"To": [{"EmailAddress": "bad@@example"}, {"EmailAddress": "no-at-sign"}]}, "NoValidRecipients"),
        ({"CustomHeaders": [{"Name": "", "Value": "x"}]}, "InvalidData"),
        ({"Subject": {"not": "text"}}, "InvalidData"),
    ],
)
def test_it_reports_a_message_level_error_in_a_warning(
    client: Client, sandbox_server: SandboxKeys, overrides: dict[str, Any], code: str
) -> None:
    body = request_body(sandbox_server.server_id, message(**overrides))
    response = post_injection(client, body, key=sandbox_server.injection_key)
    assert response.status_code == 200
    data = answer(response)
    assert data["ErrorCode"] == "Warning"
    assert [(r["Index"], r["ErrorCode"]) for r in data["MessageResults"]] == [(0, code)]
    assert SandboxMessage.objects.count() == 0


def test_it_sends_to_the_valid_recipients_and_reports_the_invalid_ones(
    client: Client, sandbox_server: SandboxKeys
) -> None:
    to = [{"EmailAddress": "ann@example.net"}, {"EmailAddress": "bad@@example"}, {"EmailAddress": "bo@example.net"}]
    body = request_body(sandbox_server.server_id, message(To=to, Bcc=[{"EmailAddress": "x y@example.net"}]))
    data = answer(post_injection(client, body, key=sandbox_server.injection_key))
    assert data["ErrorCode"] == "Warning"
    assert data["MessageResults"] == [
        {
            "Index": 0,
            "ErrorCode": "InvalidAddress",
            "AddressResults": [
                {"EmailAddress": "bad@@example", "Accepted": False, "ErrorCode": "InvalidAddress"},
                {"EmailAddress": "x y@example.net", "Accepted": False, "ErrorCode": "InvalidAddress"},
            ],
        }
    ]
    stored = SandboxMessage.objects.get()
    assert [r["emailAddress"] for r in stored.to] == ["ann@example.net", "bo@example.net"]
    assert stored.bcc == []


def test_a_warning_lists_only_the_messages_with_problems(client: Client, sandbox_server: SandboxKeys) -> None:
    body = request_body(sandbox_server.server_id, message(), message(Subject=""), message(Subject="Third"))
    data = answer(post_injection(client, body, key=sandbox_server.injection_key))
    assert data["ErrorCode"] == "Warning"
    assert [(r["Index"], r["ErrorCode"]) for r in data["MessageResults"]] == [(1, "EmptySubject")]
    assert sorted(SandboxMessage.objects.values_list("message_index", flat=True)) == [0, 2]


def test_it_accepts_a_known_template_id_instead_of_bodies(client: Client, sandbox_server: SandboxKeys) -> None:
    body = request_body(sandbox_server.server_id, message(TextBody=None, HtmlBody=None, ApiTemplate="12"))
    assert answer(post_injection(client, body, key=sandbox_server.injection_key))["ErrorCode"] == "Success"
    assert SandboxMessage.objects.get().api_template == "12"


def test_it_refuses_template_ids_missing_from_the_configured_list(
    client: Client, sandbox_server: SandboxKeys, settings: Any
) -> None:
    settings.SANDBOX_INJECTION_TEMPLATE_IDS = [7]
    body = request_body(sandbox_server.server_id, message(ApiTemplate="12"), message(ApiTemplate="7"))
    data = answer(post_injection(client, body, key=sandbox_server.injection_key))
    assert [(r["Index"], r["ErrorCode"]) for r in data["MessageResults"]] == [(0, "InvalidTemplateId")]


def test_it_keeps_attachment_details_but_not_their_content(client: Client, sandbox_server: SandboxKeys) -> None:
    image = {"Name": "logo.png", "Content": base64.b64encode(b"\x89PNG" * 10).decode(), "ContentType": "image/png"}
    image["ContentId"] = "logo"
    body = request_body(sandbox_server.server_id, message(Attachments=[ATTACHMENT, image]))
    assert answer(post_injection(client, body, key=sandbox_server.injection_key))["ErrorCode"] == "Success"
    assert SandboxMessage.objects.get().attachments == [
        {"name": "a.txt", "contentType": "text/plain", "contentId": "", "size": 5},
        {"name": "logo.png", "contentType": "image/png", "contentId": "logo", "size": 40},
    ]


def test_it_accepts_the_sdk_metadata_bug_and_keeps_headers_metadata_and_tags(
    client: Client, sandbox_server: SandboxKeys
) -> None:
    headers = [{"name": "X-Order", "value": "42"}]
    sdk_message = message(customHeaders=headers, metadata=[{"key": "X-Order", "value": "42"}], tags=["receipt"])
    body = request_body(sandbox_server.server_id, sdk_message)
    assert answer(post_injection(client, body, key=sandbox_server.injection_key))["ErrorCode"] == "Success"
    stored = SandboxMessage.objects.get()
    assert stored.custom_headers == [{"name": "X-Order", "value": "42"}]
    assert stored.metadata == [{"key": "X-Order", "value": "42"}]
    assert stored.tags == ["receipt"]


def test_it_only_checks_the_metadata_size_for_servers_with_strict_codes(
    client: Client, sandbox_server: SandboxKeys
) -> None:
    big = message(Metadata=[{"Key": "blob", "Value": "x" * 13_000}])
    body = request_body(sandbox_server.server_id, big)
    assert answer(post_injection(client, body, key=sandbox_server.injection_key))["ErrorCode"] == "Success"
    SandboxServer.objects.filter(pk=sandbox_server.server.pk).update(strict_codes=True)
    response = post_injection(client, body, key=sandbox_server.injection_key)
    data = json.loads(response.content)
    assert data["MessageResults"][0]["ErrorCode"] == "MetadataOrTagsAreTooLarge"


def test_it_matches_request_keys_without_case_at_every_depth(client: Client, sandbox_server: SandboxKeys) -> None:
    body = {
        "SERVERID": sandbox_server.server_id,
        "aPiKeY": sandbox_server.legacy_key,
        "mEsSaGeS": [
            {
                "FROM": {"EMAILADDRESS": "shop@example.com", "friendlyNAME": "Shop"},
                "tO": [{"emailaddress": "%%deliveryaddress%%", "FRIENDLYNAME": "%%Name%%"}],
                "SUBJECT": "Hi %%NAME%%",
                "textbody": "Hello",
                "CUSTOMHEADERS": [{"NAME": "X-A", "VALUE": "1"}],
                "MergeDATA": {
                    "perMESSAGE": [
                        [{"fIeLd": "DeliveryAddress", "vAlUe": "ann@example.net"}, {"FIELD": "Name", "value": "Ann"}]
                    ],
                    "gLoBaL": [],
                },
            }
        ],
    }
    data = answer(post_injection(client, body))
    assert data["ErrorCode"] == "Success"
    stored = SandboxMessage.objects.get()
    assert stored.from_name == "Shop"
    assert stored.subject == "Hi Ann"
    assert stored.to == [{"emailAddress": "ann@example.net", "friendlyName": "Ann"}]
    assert stored.custom_headers == [{"name": "X-A", "value": "1"}]


# --- answers and the log ---------------------------------------------------------------------------


def test_it_logs_every_request_with_its_outcome(client: Client, sandbox_server: SandboxKeys) -> None:
    post_injection(client, request_body(sandbox_server.server_id), key=sandbox_server.injection_key)
    post_injection(client, request_body(sandbox_server.server_id), key="wrong")
    post_injection(client, None, raw=b"{", key=sandbox_server.injection_key)
    logs = list(
        SandboxRequestLog.objects.order_by("id").values_list("api", "server_id_value", "status_code", "error_code")
    )
    assert logs == [
        ("injection", sandbox_server.server_id, 200, "Success"),
        ("injection", sandbox_server.server_id, 401, "InvalidAuthentication"),
        ("injection", None, 200, "InvalidData"),
    ]


def test_an_unexpected_failure_is_a_500_with_a_json_body_and_a_receipt(
    client: Client, sandbox_server: SandboxKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(**kwargs: Any) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(injection, "store", boom)
    response = post_injection(client, request_body(sandbox_server.server_id), key=sandbox_server.injection_key)
    assert response.status_code == 500
    data = answer(response)
    assert data["ErrorCode"] == "InternalError"
    assert data["MessageResults"] is None
    assert len(data["TransactionReceipt"]) == 32
    assert SandboxMessage.objects.count() == 0


def test_it_stores_one_message_per_basic_message_with_its_details(client: Client, sandbox_server: SandboxKeys) -> None:
    msg = message(
        Cc=[{"EmailAddress": "cc@example.net"}],
        ReplyTo={"EmailAddress": "help@example.com"},
        MailingId="spring",
        MessageId="order-42",
        AmpBody="<html amp></html>",
        CharSet="UTF-8",
    )
    body = request_body(sandbox_server.server_id, msg)
    response = client.post(
        INJECT_PATH,
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {sandbox_server.injection_key}", "User-Agent": "SocketLabs-csharp/1.4.3"},
    )
    assert answer(response)["ErrorCode"] == "Success"
    stored = SandboxMessage.objects.get()
    assert (stored.from_address, stored.from_name, stored.reply_to) == ("shop@example.com", "Shop", "help@example.com")
    assert stored.cc == [{"emailAddress": "cc@example.net", "friendlyName": ""}]
    assert (stored.mailing_id, stored.message_id) == ("spring", "order-42")
    assert stored.amp_body == "<html amp></html>"
    assert stored.client == "SocketLabs-csharp/1.4.3"
    assert stored.size > 0
    assert len(stored.transaction_receipt) == 32
