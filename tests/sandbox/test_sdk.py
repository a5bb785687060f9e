"""The official Python SDK (`socketlabs-injectionapi==1.4.4`) against the sandbox over real HTTP.

The SDK always dials `https://<host>:443` and keeps only the hostname and path of its endpoint
(contract §2.6 item 7), so the one thing patched is the SDK's `HTTPSConnection`: it becomes a plain
`HTTPConnection` to the live server. Everything else — serialisation, headers, auth scheme, response
parsing — is the SDK's own code.
"""

from __future__ import annotations

import http.client
import importlib
import importlib.metadata
import json
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

import pytest
import requests

from sandbox.models import SandboxAccount, SandboxEvent, SandboxMessage, SandboxServer
from socketlabs import SocketLabsClient as OurClient
from socketlabs.injection import Attachment as OurAttachment
from socketlabs.injection import BasicMessage as OurBasicMessage
from socketlabs.injection import BulkMessage as OurBulkMessage
from socketlabs.injection import BulkRecipient as OurBulkRecipient
from tests.sandbox.conftest import SandboxKeys
from tests.sandbox.injection_support import INJECT_PATH

pytestmark = pytest.mark.django_db(transaction=True)

SDK_ENDPOINT = "https://localhost" + INJECT_PATH


def _sdk() -> ModuleType:
    """Import the SDK's `socketlabs.injectionapi` although Mailroom's own `socketlabs` package shadows it.

    Both are called `socketlabs`; the project's is first on sys.path. Adding the SDK's directory to
    the package path lets `socketlabs.injectionapi` resolve to the SDK (the project has no such module).
    """
    import socketlabs

    sdk_dir = str(importlib.metadata.distribution("socketlabs-injectionapi").locate_file("socketlabs"))
    if sdk_dir not in socketlabs.__path__:
        socketlabs.__path__.append(sdk_dir)
    return importlib.import_module("socketlabs.injectionapi")


sdk = _sdk()
from socketlabs.injectionapi.core import httprequest  # noqa: E402 - needs the path set up above
from socketlabs.injectionapi.message.attachment import Attachment  # noqa: E402
from socketlabs.injectionapi.message.basicmessage import BasicMessage  # noqa: E402
from socketlabs.injectionapi.message.bulkmessage import BulkMessage  # noqa: E402
from socketlabs.injectionapi.message.bulkrecipient import BulkRecipient  # noqa: E402
from socketlabs.injectionapi.message.emailaddress import EmailAddress  # noqa: E402
from socketlabs.injectionapi.sendresult import SendResult  # noqa: E402


@pytest.fixture
def sdk_client(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int, str], Any]]:
    port = urlparse(live_server.url).port
    dialled: list[str] = []
    opened: list[http.client.HTTPConnection] = []

    def connection(host: str, *args: Any, **kwargs: Any) -> http.client.HTTPConnection:
        dialled.append(host)
        opened.append(http.client.HTTPConnection("127.0.0.1", port, timeout=kwargs.get("timeout", 30)))
        return opened[-1]

    monkeypatch.setattr(httprequest.http.client, "HTTPSConnection", connection)

    def make(server_id: int, key: str) -> Any:
        client = sdk.SocketLabsClient(server_id, key)
        client.endpoint = SDK_ENDPOINT
        return client

    yield make
    # The SDK never closes its connection; a kept-alive one would hold the server thread (and its
    # database session) open past the test.
    for conn in opened:
        conn.close()
    assert set(dialled) <= {"localhost"}


def quiet(keys: SandboxKeys) -> None:
    SandboxServer.objects.filter(pk=keys.server.pk).update(
        bounce_rate=0, deferral_rate=0, complaint_rate=0, open_rate=0, click_rate=0, unsubscribe_rate=0
    )


def basic_message() -> Any:
    msg = BasicMessage()
    msg.subject = "Your order"
    msg.plain_text_body = "Thanks for your order."
    msg.html_body = '<p>Thanks! <a href="https://example.com/o/1">Track</a></p>'
    msg.from_email_address = EmailAddress("shop@example.com", "Shop")
    msg.add_to_email_address("ann@example.net", "Ann")
    msg.add_to_email_address("open@example.net")
    msg.add_cc_email_address("bounce@example.net")
    msg.mailing_id = "spring"
    msg.message_id = "order-1"
    return msg


def test_r1_a_basic_message_is_accepted_and_stored(sdk_client: Callable[..., Any], sandbox_server: SandboxKeys) -> None:
    quiet(sandbox_server)
    response = sdk_client(sandbox_server.server_id, sandbox_server.injection_key).send(basic_message())
    assert response.result == SendResult.Success
    stored = SandboxMessage.objects.get(server=sandbox_server.server)
    assert stored.to == [
        {"emailAddress": "ann@example.net", "friendlyName": "Ann"},
        {"emailAddress": "open@example.net", "friendlyName": ""},
    ]
    assert stored.cc == [{"emailAddress": "bounce@example.net", "friendlyName": ""}]
    assert (stored.from_address, stored.from_name) == ("shop@example.com", "Shop")
    assert (stored.mailing_id, stored.message_id) == ("spring", "order-1")
    assert stored.client.startswith("SocketLabs-python/1.4.4")
    types = {
        a: list(SandboxEvent.objects.filter(address=a).order_by("due_at", "id").values_list("type", flat=True))
        for a in ("ann@example.net", "open@example.net", "bounce@example.net")
    }
    assert types == {
        "ann@example.net": ["Queued", "Delivered"],
        "open@example.net": ["Queued", "Delivered", "Tracking"],
        "bounce@example.net": ["Queued", "Failed"],
    }


def test_r2_a_bulk_message_to_fifty_recipients_becomes_fifty_messages(
    sdk_client: Callable[..., Any], sandbox_server: SandboxKeys
) -> None:
    quiet(sandbox_server)
    msg = BulkMessage()
    msg.subject = "Hello %%FirstName%%"
    msg.plain_text_body = "Hi %%FirstName%%, %%Motto%%. Your code: %%Code%%"
    msg.html_body = "<p>Hi %%FirstName%%</p>"
    msg.from_email_address = EmailAddress("news@example.com")
    msg.add_global_merge_data("Motto", "be kind")
    msg.add_global_merge_data("Code", "GLOBAL")
    for i in range(50):
        data = {"FirstName": f"Name{i}"}
        if i == 7:
            data["Code"] = "SEVEN"
        msg.add_to_recipient(BulkRecipient(f"user{i}@example.net", f"User {i}" if i % 2 else None, data))
    response = sdk_client(sandbox_server.server_id, sandbox_server.injection_key).send(msg)
    assert response.result == SendResult.Success
    stored = {m.to[0]["emailAddress"]: m for m in SandboxMessage.objects.filter(server=sandbox_server.server)}
    assert len(stored) == 50
    assert stored["user3@example.net"].subject == "Hello Name3"
    assert stored["user3@example.net"].to[0]["friendlyName"] == "User 3"
    assert stored["user4@example.net"].to[0]["friendlyName"] == ""
    assert stored["user4@example.net"].text_body == "Hi Name4, be kind. Your code: GLOBAL"
    assert stored["user7@example.net"].text_body == "Hi Name7, be kind. Your code: SEVEN"
    assert not any("%%" in m.subject + m.text_body + m.html_body for m in stored.values())
    assert SandboxEvent.objects.filter(server=sandbox_server.server, type="Queued").count() == 50
    assert SandboxEvent.objects.filter(server=sandbox_server.server, type="Delivered").count() == 50


def test_r3_attachments_and_custom_headers_survive_and_the_metadata_bug_is_accepted(
    sdk_client: Callable[..., Any], sandbox_server: SandboxKeys
) -> None:
    msg = basic_message()
    msg.add_attachment(Attachment("notes.txt", "text/plain", content=b"hello world"))
    logo = Attachment("logo.png", "image/png", content=b"\x89PNG\r\n" + b"\0" * 100)
    logo.content_id = "logo"
    msg.add_attachment(logo)
    msg.add_custom_header("X-Order", "42")
    msg.add_custom_header("X-Campaign", "spring")
    msg.add_tag("receipt")
    response = sdk_client(sandbox_server.server_id, sandbox_server.injection_key).send(msg)
    assert response.result == SendResult.Success
    stored = SandboxMessage.objects.get(server=sandbox_server.server)
    assert stored.attachments == [
        {"name": "notes.txt", "contentType": "text/plain", "contentId": "", "size": 11},
        {"name": "logo.png", "contentType": "image/png", "contentId": "logo", "size": 106},
    ]
    assert stored.custom_headers == [{"name": "X-Order", "value": "42"}, {"name": "X-Campaign", "value": "spring"}]
    # SDK 1.4.4 sends its custom headers again as metadata (§2.6 item 9).
    assert stored.metadata == [{"key": "X-Order", "value": "42"}, {"key": "X-Campaign", "value": "spring"}]
    assert stored.tags == ["receipt"]
    assert stored.size > 117


def test_r4_a_wrong_key_is_invalid_authentication(sdk_client: Callable[..., Any], sandbox_server: SandboxKeys) -> None:
    wrong_bearer = "A" * 20 + "." + "b" * 40
    for key in (wrong_bearer, "legacy-wrong", sandbox_server.api_key):
        response = sdk_client(sandbox_server.server_id, key).send(basic_message())
        assert response.result == SendResult.InvalidAuthentication
    response = sdk_client(sandbox_server.server_id + 1, sandbox_server.injection_key).send(basic_message())
    assert response.result == SendResult.InvalidAuthentication
    assert not SandboxMessage.objects.exists()


def test_r5_a_legacy_key_goes_in_the_body_and_works(
    sdk_client: Callable[..., Any], sandbox_server: SandboxKeys
) -> None:
    response = sdk_client(sandbox_server.server_id, sandbox_server.legacy_key).send(basic_message())
    assert response.result == SendResult.Success
    assert SandboxMessage.objects.count() == 1


def test_r6_server_verdicts_parse_in_the_sdk(sdk_client: Callable[..., Any], sandbox_server: SandboxKeys) -> None:
    SandboxAccount.objects.filter(pk=sandbox_server.account.pk).update(disabled=True)
    response = sdk_client(sandbox_server.server_id, sandbox_server.injection_key).send(basic_message())
    assert response.result == SendResult.AccountDisabled
    SandboxAccount.objects.filter(pk=sandbox_server.account.pk).update(disabled=False)
    SandboxServer.objects.filter(pk=sandbox_server.server.pk).update(rate_limit_per_minute=1)
    client = sdk_client(sandbox_server.server_id, sandbox_server.injection_key)
    assert client.send(basic_message()).result == SendResult.Success
    assert client.send(basic_message()).result == SendResult.OverQuota


def test_r7_a_message_level_problem_surfaces_as_its_code(
    sdk_client: Callable[..., Any], sandbox_server: SandboxKeys, settings: Any
) -> None:
    settings.SANDBOX_INJECTION_TEMPLATE_IDS = [1]
    msg = basic_message()
    msg.api_template = 99  # a template the sandbox does not have
    msg.plain_text_body = None
    msg.html_body = None
    response = sdk_client(sandbox_server.server_id, sandbox_server.injection_key).send(msg)
    assert response.result == SendResult.InvalidTemplateId


# --- our client and the SDK store the same thing ---------------------------------------------------


def _stored(receipt: str) -> list[dict[str, Any]]:
    skip = {"id", "transaction_receipt", "client", "created_on", "metadata", "server"}
    rows = SandboxMessage.objects.filter(transaction_receipt=receipt).order_by("row_index").values()
    return [{k: v for k, v in row.items() if k not in skip} for row in rows]


def test_r8_our_client_and_the_sdk_store_equivalent_messages(
    sdk_client: Callable[..., Any], sandbox_server: SandboxKeys, live_server: Any
) -> None:
    session = requests.Session()
    ours = OurClient(
        server_id=sandbox_server.server_id,
        injection_key=sandbox_server.injection_key,
        inject_url=live_server.url + INJECT_PATH,
        session=session,
    )
    sdk_basic = basic_message()
    sdk_basic.add_custom_header("X-Order", "42")
    sdk_basic.add_attachment(Attachment("notes.txt", "text/plain", content=b"hello"))
    our_basic = OurBasicMessage(
        from_address=("shop@example.com", "Shop"),
        to=[("ann@example.net", "Ann"), "open@example.net"],
        cc=["bounce@example.net"],
        subject="Your order",
        text_body="Thanks for your order.",
        html_body='<p>Thanks! <a href="https://example.com/o/1">Track</a></p>',
        mailing_id="spring",
        message_id="order-1",
        custom_headers=[("X-Order", "42")],
        attachments=[OurAttachment("notes.txt", b"hello", "text/plain")],
    )
    sdk_bulk = BulkMessage()
    sdk_bulk.subject = "Hello %%FirstName%%"
    sdk_bulk.plain_text_body = "Hi %%FirstName%%, %%Motto%%"
    sdk_bulk.from_email_address = EmailAddress("news@example.com")
    sdk_bulk.add_global_merge_data("Motto", "be kind")
    for i in range(5):
        sdk_bulk.add_to_recipient(BulkRecipient(f"user{i}@example.net", f"User {i}", {"FirstName": f"N{i}"}))
    our_bulk = OurBulkMessage(
        from_address="news@example.com",
        subject="Hello %%FirstName%%",
        text_body="Hi %%FirstName%%, %%Motto%%",
        global_merge_fields={"Motto": "be kind"},
        recipients=[OurBulkRecipient(f"user{i}@example.net", f"User {i}", {"FirstName": f"N{i}"}) for i in range(5)],
    )
    for sdk_message, our_message in ((sdk_basic, our_basic), (sdk_bulk, our_bulk)):
        SandboxMessage.objects.all().delete()
        assert sdk_client(sandbox_server.server_id, sandbox_server.injection_key).send(sdk_message).result == (
            SendResult.Success
        )
        sdk_receipt = SandboxMessage.objects.values_list("transaction_receipt", flat=True).distinct().get()
        result = ours.inject(our_message)
        assert result.ok
        our_receipt = (
            SandboxMessage.objects.exclude(transaction_receipt=sdk_receipt)
            .values_list("transaction_receipt", flat=True)
            .distinct()
            .get()
        )
        assert _stored(our_receipt) == _stored(sdk_receipt)
        assert len(_stored(our_receipt)) == (1 if sdk_message is sdk_basic else 5)
    session.close()  # a kept-alive connection would keep a server thread and its database session


def test_r9_the_raw_pascal_case_request_stores_what_the_sdk_does(
    sdk_client: Callable[..., Any], sandbox_server: SandboxKeys, live_server: Any
) -> None:
    sdk_client(sandbox_server.server_id, sandbox_server.injection_key).send(basic_message())
    sdk_receipt = SandboxMessage.objects.values_list("transaction_receipt", flat=True).get()
    body = {
        "ServerId": sandbox_server.server_id,
        "ApiKey": sandbox_server.legacy_key,
        "Messages": [
            {
                "From": {"EmailAddress": "shop@example.com", "FriendlyName": "Shop"},
                "To": [
                    {"EmailAddress": "ann@example.net", "FriendlyName": "Ann"},
                    {"EmailAddress": "open@example.net"},
                ],
                "Cc": [{"EmailAddress": "bounce@example.net"}],
                "Subject": "Your order",
                "TextBody": "Thanks for your order.",
                "HtmlBody": '<p>Thanks! <a href="https://example.com/o/1">Track</a></p>',
                "MailingId": "spring",
                "MessageId": "order-1",
            }
        ],
    }
    response = requests.post(live_server.url + INJECT_PATH, data=json.dumps(body), timeout=30)
    assert response.json()["ErrorCode"] == "Success"
    raw_receipt = (
        SandboxMessage.objects.exclude(transaction_receipt=sdk_receipt)
        .values_list("transaction_receipt", flat=True)
        .get()
    )
    assert _stored(raw_receipt) == _stored(sdk_receipt)
