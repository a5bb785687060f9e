"""The inbound message views: HTML that cannot run scripts, attachments that only download."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Server, User
from reporting.models import InboundEndpoint, InboundMessage
from tests.reporting.conftest import fixture_json, post

AsUser = Callable[[User], Client]

HOSTILE_HTML = (
    '<p onclick="alert(1)">Hello <b>there</b></p>'
    "<script>alert('x')</script>"
    '<img src="x" onerror="alert(2)">'
    '<a href="javascript:alert(3)">bad link</a>'
    '<a href="https://example.com/ok">good link</a>'
    '<iframe src="https://evil.example"></iframe>'
    "<style>body{display:none}</style>"
    "<svg><script>alert(4)</script></svg>"
    '<img src="cid:logo@x" alt="logo">'
)
PNG_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@pytest.fixture
def message(client: Client, inbound_endpoint: InboundEndpoint) -> InboundMessage:
    body = fixture_json("inbound.json")
    body["Message"]["HtmlBody"] = HOSTILE_HTML
    body["Message"]["EmbeddedMedia"] = [
        {"Name": "logo.png", "ContentType": "image/png", "Content": PNG_BASE64, "ContentId": "<logo@x>"}
    ]
    body["Message"]["Attachments"].append(
        {"Name": "page.html", "ContentType": "text/html", "Content": "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="}
    )
    assert post(client, f"/hooks/socketlabs/inbound/{inbound_endpoint.uuid}/", body).status_code == 200
    return InboundMessage.objects.get()


def html_url(server: Server, message: InboundMessage) -> str:
    return reverse("reporting:inbound_message_html", args=[server.pk, message.pk])


def test_the_html_view_has_its_own_locked_down_csp(
    as_user: AsUser, viewer: User, server: Server, message: InboundMessage
) -> None:
    response = as_user(viewer).get(html_url(server, message))

    policy = {
        part.strip().split(" ", 1)[0]: part.strip().split(" ", 1)[1]
        for part in response["Content-Security-Policy"].split(";")
        if part.strip()
    }
    assert policy == {
        "default-src": "'none'",
        "img-src": "data:",
        "style-src": "'unsafe-inline'",
        "frame-ancestors": "'self'",
    }
    assert response["X-Frame-Options"] == "SAMEORIGIN"


def test_the_html_view_never_lets_a_script_through(
    as_user: AsUser, viewer: User, server: Server, message: InboundMessage
) -> None:
    text = as_user(viewer).get(html_url(server, message)).content.decode().lower()

    assert "<script" not in text
    assert "alert" not in text
    assert "onclick" not in text and "onerror" not in text
    assert "javascript:" not in text
    assert "<iframe" not in text and "<style" not in text
    assert "<b>there</b>" in text
    assert 'href="https://example.com/ok"' in text


def test_the_html_view_inlines_embedded_images(
    as_user: AsUser, viewer: User, server: Server, message: InboundMessage
) -> None:
    text = as_user(viewer).get(html_url(server, message)).content.decode()

    assert f'src="data:image/png;base64,{PNG_BASE64}"' in text
    assert "cid:" not in text


def test_other_pages_keep_the_site_policy(
    as_user: AsUser, viewer: User, server: Server, message: InboundMessage
) -> None:
    response = as_user(viewer).get(reverse("reporting:inbound_message", args=[server.pk, message.pk]))

    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    text = response.content.decode()
    assert f'<iframe sandbox title="HTML part of the message" src="{html_url(server, message)}"' in text
    assert "Hi" in text  # the text part is shown as text


def test_attachments_only_download_as_opaque_bytes(
    as_user: AsUser, viewer: User, server: Server, message: InboundMessage
) -> None:
    attachment = message.attachments.get(name="page.html")

    response = as_user(viewer).get(reverse("reporting:inbound_attachment", args=[server.pk, attachment.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert 'filename="page.html"' in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == b"<script>alert(1)</script>"  # type: ignore[attr-defined]


def test_a_missing_attachment_file_is_404_not_500(
    as_user: AsUser, viewer: User, server: Server, message: InboundMessage, settings: Any
) -> None:
    from reporting.inbound import attachment_path

    attachment = message.attachments.get(name="a.txt")
    attachment_path(attachment).unlink()

    response = as_user(viewer).get(reverse("reporting:inbound_attachment", args=[server.pk, attachment.pk]))

    assert response.status_code == 404


def test_an_attachment_path_cannot_escape_the_storage_root(message: InboundMessage) -> None:
    from reporting.inbound import attachment_path

    attachment = message.attachments.get(name="a.txt")
    attachment.path = "../../etc/passwd"

    with pytest.raises(FileNotFoundError):
        attachment_path(attachment)
