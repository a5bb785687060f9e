"""The Injection API over real HTTP (live_server + requests): JSON, XML, large bodies."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import requests

from sandbox import xmlcodec
from sandbox.models import SandboxMessage
from tests.sandbox.conftest import SandboxKeys
from tests.sandbox.injection_support import INJECT_PATH, merge_message, merge_rows, message, request_body

pytestmark = pytest.mark.django_db(transaction=True)

XML_REQUEST = """<?xml version="1.0" encoding="utf-8"?>
<InjectionRequest>
  <ServerId>{server_id}</ServerId>
  <ApiKey>{key}</ApiKey>
  <Messages>
    <Message>
      <From><EmailAddress>shop@example.com</EmailAddress><FriendlyName>Shop</FriendlyName></From>
      <To>
        <Address><EmailAddress>%%DeliveryAddress%%</EmailAddress><FriendlyName>%%RecipientName%%</FriendlyName></Address>
      </To>
      <Subject>Hi %%FirstName%%</Subject>
      <TextBody>Hello %%FirstName%%</TextBody>
      <CustomHeaders><CustomHeader><Name>X-Campaign</Name><Value>spring</Value></CustomHeader></CustomHeaders>
      <Tags><Tag>news</Tag><Tag>spring</Tag></Tags>
      <MergeData>
        <PerMessage>
          <Row>
            <MergeField><Field>DeliveryAddress</Field><Value>ann@example.net</Value></MergeField>
            <MergeField><Field>FirstName</Field><Value>Ann</Value></MergeField>
          </Row>
          <Row>
            <MergeField><Field>DeliveryAddress</Field><Value>bad-address</Value></MergeField>
          </Row>
        </PerMessage>
        <Global><MergeField><Field>RecipientName</Field><Value>Friend</Value></MergeField></Global>
      </MergeData>
    </Message>
  </Messages>
</InjectionRequest>"""


def url(live_server: Any) -> str:
    return live_server.url + INJECT_PATH


def test_it_answers_json_over_http_with_a_bearer_key(live_server: Any, sandbox_server: SandboxKeys) -> None:
    response = requests.post(
        url(live_server),
        json=request_body(sandbox_server.server_id, merge_message(merge_rows(50))),
        headers={"Authorization": f"Bearer {sandbox_server.injection_key}"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"ErrorCode": "Success", "MessageResults": [], "TransactionReceipt": None}
    assert SandboxMessage.objects.filter(server=sandbox_server.server).count() == 50


def test_a_wrong_key_is_a_401_with_a_json_body_over_http(live_server: Any, sandbox_server: SandboxKeys) -> None:
    response = requests.post(
        url(live_server),
        json=request_body(sandbox_server.server_id),
        headers={"Authorization": "Bearer " + "A" * 20 + "." + "B" * 40},
        timeout=30,
    )
    assert response.status_code == 401
    assert response.json() == {"ErrorCode": "InvalidAuthentication", "MessageResults": None, "TransactionReceipt": None}


def test_it_takes_requests_larger_than_djangos_upload_limit(live_server: Any, sandbox_server: SandboxKeys) -> None:
    blob = base64.b64encode(b"\0" * (3 * 1024 * 1024)).decode()  # 4 MB of base64, above the 2 MB form limit
    attachment = {"Name": "big.bin", "Content": blob, "ContentType": "application/octet-stream"}
    response = requests.post(
        url(live_server),
        json=request_body(sandbox_server.server_id, message(Attachments=[attachment])),
        headers={"Authorization": f"Bearer {sandbox_server.injection_key}"},
        timeout=30,
    )
    assert response.json()["ErrorCode"] == "Success"
    assert SandboxMessage.objects.get().attachments[0]["size"] == 3 * 1024 * 1024


def test_it_refuses_a_request_over_the_size_limit_without_reading_it(
    live_server: Any, sandbox_server: SandboxKeys, settings: Any
) -> None:
    settings.SANDBOX_INJECTION_MAX_REQUEST_BYTES = 10_000
    response = requests.post(
        url(live_server),
        json=request_body(sandbox_server.server_id, message(TextBody="x" * 20_000)),
        headers={"Authorization": f"Bearer {sandbox_server.injection_key}"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.json()["ErrorCode"] == "MessageTooLarge"


def test_it_reads_xml_and_answers_xml_when_asked(live_server: Any, sandbox_server: SandboxKeys) -> None:
    body = XML_REQUEST.format(server_id=sandbox_server.server_id, key=sandbox_server.legacy_key)
    response = requests.post(
        url(live_server),
        data=body.encode(),
        headers={"Content-Type": "application/xml; charset=utf-8", "Accept": "application/xml"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    assert root.tag == "InjectionResponse"
    assert root.findtext("ErrorCode") == "Warning"
    result = root.find("MessageResults/MessageResult")
    assert result is not None
    assert result.findtext("Index") == "0"
    assert result.findtext("ErrorCode") == "InvalidAddress"
    assert result.findtext("AddressResults/AddressResult/EmailAddress") == "bad-address"
    assert result.findtext("AddressResults/AddressResult/Accepted") == "false"
    stored = SandboxMessage.objects.get()
    assert stored.subject == "Hi Ann"
    assert stored.to == [{"emailAddress": "ann@example.net", "friendlyName": "Friend"}]
    assert stored.custom_headers == [{"name": "X-Campaign", "value": "spring"}]
    assert stored.tags == ["news", "spring"]


def test_an_xml_request_gets_json_unless_it_asks_for_xml(live_server: Any, sandbox_server: SandboxKeys) -> None:
    body = XML_REQUEST.format(server_id=sandbox_server.server_id, key=sandbox_server.legacy_key)
    response = requests.post(url(live_server), data=body.encode(), headers={"Content-Type": "text/xml"}, timeout=30)
    assert response.json()["ErrorCode"] == "Warning"


def test_a_json_request_can_ask_for_an_xml_answer(live_server: Any, sandbox_server: SandboxKeys) -> None:
    response = requests.post(
        url(live_server),
        json=request_body(sandbox_server.server_id),
        headers={"Authorization": "Bearer wrong", "Accept": "application/xml"},
        timeout=30,
    )
    assert response.status_code == 401
    root = ET.fromstring(response.content)
    assert root.findtext("ErrorCode") == "InvalidAuthentication"
    nil = root.find("MessageResults")
    assert nil is not None
    assert nil.get("{http://www.w3.org/2001/XMLSchema-instance}nil") == "true"


@pytest.mark.parametrize(
    "raw",
    [
        b"<not-closed>",
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><r>&a;</r>',
    ],
)
def test_malformed_or_dtd_xml_is_invalid_data(live_server: Any, sandbox_server: SandboxKeys, raw: bytes) -> None:
    response = requests.post(url(live_server), data=raw, headers={"Content-Type": "application/xml"}, timeout=30)
    assert response.status_code == 200
    assert response.json()["ErrorCode"] == "InvalidData"


def test_the_xml_codec_round_trips_lists_and_nil() -> None:
    parsed = xmlcodec.loads(
        b'<R xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><ServerId>5</ServerId>'
        b'<ApiKey xsi:nil="true"/><Messages><M><Cc/><Tags><T>a</T><T/></Tags></M></Messages></R>'
    )
    assert parsed == {"ServerId": "5", "ApiKey": None, "Messages": [{"Cc": [], "Tags": ["a", ""]}]}
    rendered = xmlcodec.dumps({"ErrorCode": "Success", "MessageResults": [], "TransactionReceipt": None})
    root = ET.fromstring(rendered)
    assert root.findtext("ErrorCode") == "Success"
    results = root.find("MessageResults")
    assert results is not None
    assert list(results) == []
