"""The inbound parse receiver: verification, storage of messages and attachments (contract §6)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from reporting.inbound import attachment_path
from reporting.models import InboundAttachment, InboundEndpoint, InboundMessage, Outcome, RequestLog
from tests.reporting.conftest import INBOUND_SECRET, fixture_bytes, fixture_json, post


def url(endpoint: InboundEndpoint) -> str:
    return f"/hooks/socketlabs/inbound/{endpoint.uuid}/"


def test_it_stores_the_contract_example_with_its_attachment(client: Client, inbound_endpoint: InboundEndpoint) -> None:
    response = post(client, url(inbound_endpoint), fixture_bytes("inbound.json"))

    assert response.status_code == 200
    assert response.content.decode() == inbound_endpoint.validation_key
    message = InboundMessage.objects.get()
    assert (message.mail_from, message.rcpt_to, message.remote_ip) == (
        "alice@example.org",
        "support@parse.example.com",
        "198.51.100.7",
    )
    assert (message.from_address, message.from_name, message.subject) == ("alice@example.org", "Alice", "Help")
    assert (message.text_body, message.html_body) == ("Hi", "<p>Hi</p>")
    assert message.message_id == "<abc@example.org>"
    assert message.spam_score == 0.0
    assert message.server_id == inbound_endpoint.server_id
    attachment = InboundAttachment.objects.get()
    assert (attachment.name, attachment.content_type, attachment.size, attachment.embedded) == (
        "a.txt",
        "text/plain",
        5,
        False,
    )
    path = attachment_path(attachment)
    assert path.read_bytes() == b"hello"
    assert path.suffix == ""
    assert not os.access(path, os.X_OK)
    assert (path.stat().st_mode & 0o777) == 0o600
    inbound_endpoint.refresh_from_db()
    assert inbound_endpoint.messages_received == 1
    assert RequestLog.objects.get().outcome == Outcome.ACCEPTED


def test_it_keeps_neither_the_secret_nor_attachment_contents_in_the_row(
    client: Client, inbound_endpoint: InboundEndpoint
) -> None:
    post(client, url(inbound_endpoint), fixture_bytes("inbound.json"))

    stored = json.dumps(InboundMessage.objects.get().payload)
    assert INBOUND_SECRET not in stored
    assert "aGVsbG8=" not in stored
    assert json.loads(stored)["Message"]["Attachments"][0]["Name"] == "a.txt"


def test_it_stores_a_repeated_post_once(client: Client, inbound_endpoint: InboundEndpoint) -> None:
    statuses = [post(client, url(inbound_endpoint), fixture_bytes("inbound.json")).status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    assert InboundMessage.objects.count() == 1
    assert InboundAttachment.objects.count() == 1
    assert list(RequestLog.objects.order_by("id").values_list("outcome", flat=True)) == [
        Outcome.ACCEPTED,
        Outcome.DUPLICATE,
        Outcome.DUPLICATE,
    ]


def test_it_answers_the_legacy_form_validation_with_the_key(client: Client, inbound_endpoint: InboundEndpoint) -> None:
    response = post(
        client,
        url(inbound_endpoint),
        fixture_bytes("inbound_validation.form"),
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    assert response.content.decode() == inbound_endpoint.validation_key
    assert not InboundMessage.objects.exists()


def test_it_answers_a_json_validation_with_the_key(client: Client, inbound_endpoint: InboundEndpoint) -> None:
    body = {"Type": "Validation", "ServerId": 12345, "SecretKey": INBOUND_SECRET}

    response = post(client, url(inbound_endpoint), body)

    assert response.status_code == 200
    assert inbound_endpoint.validation_key in response.content.decode()


@pytest.mark.parametrize(
    ("change", "status"),
    [({"SecretKey": "wrong"}, 401), ({"SecretKey": None}, 401), ({"Message": "text"}, 400)],
)
def test_it_refuses_bad_posts(
    client: Client, inbound_endpoint: InboundEndpoint, change: dict[str, Any], status: int
) -> None:
    response = post(client, url(inbound_endpoint), fixture_json("inbound.json") | change)

    assert response.status_code == status
    assert not InboundMessage.objects.exists()


def test_it_refuses_invalid_base64_and_writes_no_file(
    client: Client, inbound_endpoint: InboundEndpoint, settings: Any
) -> None:
    body = fixture_json("inbound.json")
    body["Message"]["Attachments"][0]["Content"] = "not base64!!"

    response = post(client, url(inbound_endpoint), body)

    assert response.status_code == 400
    assert "Attachments[0] (a.txt)" in response.content.decode()
    assert not Path(settings.REPORTING_INBOUND_ROOT).exists() or not any(
        Path(settings.REPORTING_INBOUND_ROOT).rglob("*")
    )


def test_it_refuses_attachments_over_the_size_limit_with_413(
    client: Client, inbound_endpoint: InboundEndpoint, settings: Any
) -> None:
    settings.REPORTING_INBOUND_MAX_MESSAGE_BYTES = 1024
    body = fixture_json("inbound.json")
    body["Message"]["Attachments"][0]["Content"] = base64.b64encode(b"x" * 2048).decode()

    response = post(client, url(inbound_endpoint), body)

    assert response.status_code == 413
    assert not InboundMessage.objects.exists()


def test_it_refuses_a_body_over_the_limit_by_its_length(
    client: Client, inbound_endpoint: InboundEndpoint, settings: Any
) -> None:
    settings.REPORTING_INBOUND_MAX_BYTES = 100

    response = post(client, url(inbound_endpoint), fixture_bytes("inbound.json"))

    assert response.status_code == 413


def test_it_accepts_a_body_larger_than_djangos_upload_limit(
    client: Client, inbound_endpoint: InboundEndpoint, settings: Any
) -> None:
    # DATA_UPLOAD_MAX_MEMORY_SIZE (2 MiB) would answer 400; inbound messages may be up to 50 MB.
    body = fixture_json("inbound.json")
    body["Message"]["Attachments"][0]["Content"] = base64.b64encode(os.urandom(3 * 1024 * 1024)).decode()

    response = post(client, url(inbound_endpoint), body)

    assert response.status_code == 200
    assert InboundAttachment.objects.get().size == 3 * 1024 * 1024


def test_it_stores_embedded_media_apart_from_attachments(client: Client, inbound_endpoint: InboundEndpoint) -> None:
    body = fixture_json("inbound.json")
    body["Message"]["EmbeddedMedia"] = [
        {"Name": "logo.png", "ContentType": "image/png", "Content": "iVBORw0KGgo=", "ContentId": "<logo@x>"}
    ]

    post(client, url(inbound_endpoint), body)

    embedded = InboundAttachment.objects.get(embedded=True)
    assert (embedded.name, embedded.content_id) == ("logo.png", "logo@x")
