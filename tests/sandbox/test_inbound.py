"""Inbound Parse simulation (§6): .eml or fields → parsed JSON → the endpoint, with its secret; page and command."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import AuditLog, User
from sandbox import inbound
from sandbox.models import SandboxInboundEndpoint, SandboxInboundPost
from tests.sandbox.conftest import SandboxKeys
from tests.sandbox.injection_support import Receiver, running_receiver

pytestmark = pytest.mark.django_db

PAGE = "/sandbox/inbound/"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as box:
        box.default = (200, "ok vkey-123")
        yield box


@pytest.fixture
def parse_endpoint(sandbox_server: SandboxKeys, receiver: Receiver) -> SandboxInboundEndpoint:
    return SandboxInboundEndpoint.objects.create(
        server=sandbox_server.server,
        domain_or_address="parse.example.com",
        url=receiver.url("/inbound"),
        secret_key="inbound-secret-0001",
        validation_key="vkey-123",
    )


def eml() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Alice Liddell <alice@example.org>"
    msg["To"] = "Support <support@parse.example.com>"
    msg["Cc"] = "bob@example.org"
    msg["Reply-To"] = "alice+replies@example.org"
    msg["Subject"] = "Help with order 42"
    msg["Message-ID"] = "<abc123@example.org>"
    msg["Date"] = "Wed, 01 May 2024 10:00:00 +0000"
    msg.set_content("Hi, my order is late.\n")
    msg.add_alternative('<p>Hi, my order is late.</p><img src="cid:logo">', subtype="html")
    msg.get_payload()[1].add_related(PNG, maintype="image", subtype="png", cid="<logo>")
    msg.add_attachment(b"order,42\n", maintype="text", subtype="csv", filename="order.csv")
    return msg.as_bytes()


def test_an_eml_is_parsed_into_the_inbound_json_and_posted_with_the_secret(
    sandbox_server: SandboxKeys, parse_endpoint: SandboxInboundEndpoint, receiver: Receiver
) -> None:
    post = inbound.receive(sandbox_server.server, eml_bytes=eml())
    sent = receiver.on("/inbound")[0]
    assert sent.headers["Content-Type"].startswith("application/json")
    body = sent.json()
    assert body["SecretKey"] == "inbound-secret-0001"
    assert body["ServerId"] == sandbox_server.server_id
    assert (body["InboundMailFrom"], body["InboundRcptTo"]) == ("alice@example.org", "support@parse.example.com")
    assert body["SpamScore"] == 0.0
    message = body["Message"]
    assert message["Subject"] == "Help with order 42"
    assert message["TextBody"] == "Hi, my order is late.\n"
    assert message["HtmlBody"].startswith("<p>Hi, my order is late.</p>")
    assert message["From"] == {"EmailAddress": "alice@example.org", "FriendlyName": "Alice Liddell"}
    assert message["ReplyTo"] == {"EmailAddress": "alice+replies@example.org", "FriendlyName": None}
    assert message["To"] == [{"EmailAddress": "support@parse.example.com", "FriendlyName": "Support"}]
    assert message["Cc"] == [{"EmailAddress": "bob@example.org", "FriendlyName": None}]
    headers = {h["Name"]: h["Value"] for h in message["CustomHeaders"]}
    assert headers["Message-ID"] == "<abc123@example.org>"
    assert headers["Date"] == "Wed, 01 May 2024 10:00:00 +0000"
    assert "Content-Type" in headers
    [attachment] = message["Attachments"]
    assert (attachment["Name"], attachment["ContentType"]) == ("order.csv", "text/csv")
    assert base64.b64decode(attachment["Content"]) == b"order,42\n"
    [image] = message["EmbeddedMedia"]
    assert (image["ContentId"], image["ContentType"]) == ("logo", "image/png")
    assert base64.b64decode(image["Content"]) == PNG
    assert (post.status_code, post.validated, post.error) == (200, True, "")


def test_the_stored_copy_masks_the_secret_and_drops_attachment_contents(
    sandbox_server: SandboxKeys, parse_endpoint: SandboxInboundEndpoint
) -> None:
    post = inbound.receive(sandbox_server.server, eml_bytes=eml())
    post.refresh_from_db()
    assert post.payload["SecretKey"] == "••••0001"
    assert post.payload["Message"]["Attachments"][0]["Content"] == "<9 bytes>"
    assert "inbound-secret-0001" not in str(post.payload)


def test_a_message_from_fields_carries_its_attachment(
    sandbox_server: SandboxKeys, parse_endpoint: SandboxInboundEndpoint, receiver: Receiver
) -> None:
    inbound.receive(
        sandbox_server.server,
        from_="Ann <ann@example.org>",
        to="help@parse.example.com",
        subject="Hello",
        text="Plain",
        html="<b>Rich</b>",
        attachments=[inbound.InboundAttachment("a.txt", b"hello", "text/plain")],
    )
    message = receiver.requests[0].json()["Message"]
    assert (message["Subject"], message["TextBody"], message["HtmlBody"]) == ("Hello", "Plain", "<b>Rich</b>")
    assert message["From"] == {"EmailAddress": "ann@example.org", "FriendlyName": "Ann"}
    assert message["Attachments"][0]["Content"] == base64.b64encode(b"hello").decode()
    assert message["EmbeddedMedia"] is None
    assert {h["Name"] for h in message["CustomHeaders"]} >= {"Date", "Message-ID", "From", "To", "Subject"}


def test_an_answer_without_the_validation_key_is_recorded_as_not_validated(
    sandbox_server: SandboxKeys, parse_endpoint: SandboxInboundEndpoint, receiver: Receiver
) -> None:
    receiver.answer("/inbound", (200, ""), (401, "bad secret"))
    first = inbound.receive(sandbox_server.server, eml_bytes=eml())
    second = inbound.receive(sandbox_server.server, eml_bytes=eml())
    assert (first.status_code, first.validated) == (200, False)
    assert (second.status_code, second.validated, second.error) == (401, False, "HTTP 401")


def test_an_unreachable_endpoint_is_recorded(
    sandbox_server: SandboxKeys, parse_endpoint: SandboxInboundEndpoint
) -> None:
    SandboxInboundEndpoint.objects.filter(pk=parse_endpoint.pk).update(url="http://127.0.0.1:9/inbound")
    post = inbound.receive(sandbox_server.server, eml_bytes=eml())
    assert post.status_code is None
    assert post.error.startswith("Could not connect")


def test_an_exact_address_endpoint_wins_over_its_domain(
    sandbox_server: SandboxKeys, parse_endpoint: SandboxInboundEndpoint, receiver: Receiver
) -> None:
    SandboxInboundEndpoint.objects.create(
        server=sandbox_server.server,
        domain_or_address="Support@Parse.Example.com",
        url=receiver.url("/support"),
        secret_key="s2",
        validation_key="v2",
    )
    inbound.receive(sandbox_server.server, eml_bytes=eml())
    inbound.receive(sandbox_server.server, from_="a@example.org", to="other@parse.example.com", text="x")
    assert [r.path for r in receiver.requests] == ["/support", "/inbound"]


def test_a_recipient_no_endpoint_handles_is_refused_with_the_reason(
    sandbox_server: SandboxKeys, parse_endpoint: SandboxInboundEndpoint
) -> None:
    with pytest.raises(
        inbound.InboundError, match=r"No inbound parse endpoint .* nobody@elsewhere\.net .*parse\.example\.com"
    ):
        inbound.receive(sandbox_server.server, from_="a@example.org", to="nobody@elsewhere.net", text="x")
    assert not SandboxInboundPost.objects.exists()


@pytest.mark.parametrize("raw", [b"", b"just some words without headers"])
def test_a_file_that_is_not_a_message_is_refused(
    sandbox_server: SandboxKeys, parse_endpoint: SandboxInboundEndpoint, raw: bytes
) -> None:
    with pytest.raises(inbound.InboundError):
        inbound.receive(parse_endpoint, eml_bytes=raw)


# --- the command -------------------------------------------------------------------------------------


def test_the_command_receives_an_eml(
    sandbox_server: SandboxKeys, parse_endpoint: SandboxInboundEndpoint, receiver: Receiver, tmp_path: Path, capsys: Any
) -> None:
    path = tmp_path / "message.eml"
    path.write_bytes(eml())
    call_command("sandbox_receive_inbound", "--server", str(sandbox_server.server_id), "--eml", str(path))
    assert "HTTP 200, validation key returned" in capsys.readouterr().out
    assert receiver.requests[0].json()["Message"]["Subject"] == "Help with order 42"


def test_the_command_builds_a_message_from_fields(
    sandbox_server: SandboxKeys, parse_endpoint: SandboxInboundEndpoint, receiver: Receiver, tmp_path: Path
) -> None:
    attachment = tmp_path / "notes.txt"
    attachment.write_text("remember")
    call_command(
        "sandbox_receive_inbound",
        f"--endpoint={parse_endpoint.pk}",
        "--from=ann@example.org",
        "--to=help@parse.example.com",
        "--subject=Fields",
        "--text=Body",
        f"--attach={attachment}",
    )
    message = receiver.requests[0].json()["Message"]
    assert message["Subject"] == "Fields"
    assert message["Attachments"][0]["Name"] == "notes.txt"
    assert message["Attachments"][0]["ContentType"] == "text/plain"


def test_the_command_explains_bad_arguments(sandbox_server: SandboxKeys) -> None:
    with pytest.raises(CommandError, match="No sandbox server 4242"):
        call_command("sandbox_receive_inbound", "--server", "4242", "--to=a@b.c", "--from=c@d.e", "--text=x")
    with pytest.raises(CommandError, match="--server"):
        call_command("sandbox_receive_inbound", "--to=a@b.c")
    with pytest.raises(CommandError, match="No inbound parse endpoint"):
        call_command("sandbox_receive_inbound", "--server", str(sandbox_server.server_id), "--to=a@b.c", "--from=c@d.e")


# --- the page ---------------------------------------------------------------------------------------------


def test_the_page_is_for_site_administrators_only(
    client: Client, site_admin: User, admin: User, as_user: Callable[[User], Client]
) -> None:
    assert client.get(PAGE).status_code == 302
    assert as_user(admin).get(PAGE).status_code == 403
    response = as_user(site_admin).get(PAGE)
    assert response.status_code == 200
    assert b"No inbound parse endpoints" in response.content


def test_the_page_receives_an_uploaded_eml(
    site_admin: User, parse_endpoint: SandboxInboundEndpoint, receiver: Receiver
) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(site_admin)
    page = browser.get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert not re.search(r"<script(?![^>]*\bnonce=)[^>]*>", html)
    assert " style=" not in html
    token = page.cookies["csrftoken"].value
    upload = SimpleUploadedFile("message.eml", eml(), content_type="message/rfc822")
    response = browser.post(
        PAGE, {"endpoint": parse_endpoint.pk, "eml": upload, "csrfmiddlewaretoken": token}, follow=True
    )
    assert response.status_code == 200
    assert b"HTTP 200" in response.content
    assert b"Help with order 42" in response.content
    assert receiver.requests[0].json()["Message"]["Attachments"][0]["Name"] == "order.csv"
    assert AuditLog.objects.filter(action="sandbox.inbound.receive", actor=site_admin).count() == 1


def test_the_page_refuses_a_post_without_a_csrf_token(
    site_admin: User, parse_endpoint: SandboxInboundEndpoint, receiver: Receiver
) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(site_admin)
    response = browser.post(PAGE, {"endpoint": parse_endpoint.pk, "from_": "a@b.org", "to": "x@parse.example.com"})
    assert response.status_code == 403
    assert receiver.requests == []


def test_the_page_shows_what_is_missing_and_keeps_what_was_typed(
    site_admin: User, as_user: Callable[[User], Client], parse_endpoint: SandboxInboundEndpoint, receiver: Receiver
) -> None:
    response = as_user(site_admin).post(PAGE, {"endpoint": parse_endpoint.pk, "from_": "ann@example.org"})
    assert response.status_code == 200
    content = response.content.decode()
    assert "Give a recipient, or upload an .eml file." in content
    assert "Give a subject or a body" in content
    assert 'value="ann@example.org"' in content
    assert receiver.requests == []


def test_the_page_sends_fields_with_an_attachment(
    site_admin: User, as_user: Callable[[User], Client], parse_endpoint: SandboxInboundEndpoint, receiver: Receiver
) -> None:
    upload = SimpleUploadedFile("a.txt", b"hi there", content_type="text/plain")
    response = as_user(site_admin).post(
        PAGE,
        {
            "endpoint": parse_endpoint.pk,
            "from_": "ann@example.org",
            "to": "help@parse.example.com",
            "subject": "From the page",
            "attachment": upload,
        },
    )
    assert response.status_code == 302
    message = receiver.requests[0].json()["Message"]
    assert message["Subject"] == "From the page"
    assert base64.b64decode(message["Attachments"][0]["Content"]) == b"hi there"


def test_the_page_reports_a_failed_post(
    site_admin: User, as_user: Callable[[User], Client], parse_endpoint: SandboxInboundEndpoint, receiver: Receiver
) -> None:
    receiver.answer("/inbound", (500, "boom"))
    response = as_user(site_admin).post(
        PAGE,
        {"endpoint": parse_endpoint.pk, "from_": "a@example.org", "to": "x@parse.example.com", "text": "x"},
        follow=True,
    )
    assert b"failed: HTTP 500" in response.content


# --- endpoint validation ---------------------------------------------------------------------------------


def test_validating_an_inbound_endpoint_wants_its_validation_key_back(
    parse_endpoint: SandboxInboundEndpoint, receiver: Receiver
) -> None:
    assert inbound.validate_endpoint(parse_endpoint) is True
    sent = receiver.on("/inbound")[0].json()
    assert sent == {
        "Type": "Validation",
        "ServerId": parse_endpoint.server.server_id,
        "SecretKey": "inbound-secret-0001",
    }
    parse_endpoint.refresh_from_db()
    assert parse_endpoint.status == "Active"
    receiver.answer("/inbound", (200, "ok but no key"))
    assert inbound.validate_endpoint(parse_endpoint) is False
    parse_endpoint.refresh_from_db()
    assert parse_endpoint.status == "Failed"
    assert SandboxInboundPost.objects.filter(endpoint=parse_endpoint).count() == 2
