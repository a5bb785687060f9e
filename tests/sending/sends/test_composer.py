"""The composer against the sandbox: a test send to yourself, and the wizard's headers, metadata and segments."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditLog, Server, User
from marketing.models import Contact, Segment
from sandbox.models import SandboxMessage
from sending import engine
from sending.models import Send, SendRecipient, Template

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def template(inject_server: Server) -> Template:
    return Template.objects.create(
        server=inject_server, name="T", subject="Hi %%FirstName%%", text_body="Code %%Code%%", html_body=""
    )


def test_a_test_send_goes_to_the_signed_in_user_merged(
    as_user: Callable[[User], Client], marketing: User, inject_server: Server, template: Template
) -> None:
    response = as_user(marketing).post(
        reverse("sending:send_template_test", args=[inject_server.pk, template.pk]),
        {"from_address": "news@example.com", "row": "FirstName: Ann"},
        follow=True,
    )

    assert "Test sent to marketing@example.com." in response.content.decode()
    message = SandboxMessage.objects.get()
    assert (message.to[0]["emailAddress"], message.subject, message.text_body) == (
        "marketing@example.com",
        "Hi Ann",
        "Code ",
    )
    assert AuditLog.objects.filter(action="send_template.test").exists()


def test_a_refused_test_send_says_why(
    as_user: Callable[[User], Client], marketing: User, inject_server: Server, template: Template
) -> None:
    inject_server.injection_key = "x" * 20 + "." + "y" * 40
    inject_server.save()

    response = as_user(marketing).post(
        reverse("sending:send_template_test", args=[inject_server.pk, template.pk]),
        {"from_address": "news@example.com", "row": ""},
        follow=True,
    )

    assert "The test was not sent:" in response.content.decode()
    assert not SandboxMessage.objects.exists()


def test_the_wizard_sends_headers_metadata_and_a_segment(
    as_user: Callable[[User], Client], marketing: User, inject_server: Server, template: Template
) -> None:
    Contact.objects.create(server=inject_server, email="vip@example.net", first_name="Vi", custom={"Code": "V1"})
    Contact.objects.create(server=inject_server, email="other@example.net", first_name="Ot")
    segment = Segment.objects.create(
        server=inject_server,
        name="VIPs",
        definition={"match": "all", "conditions": [{"field": "email", "op": "contains", "value": "vip"}]},
    )

    response = as_user(marketing).post(
        reverse("sending:send_new", args=[inject_server.pk]),
        {
            "template": template.pk,
            "from_address": "news@example.com",
            "audience": "segment",
            "segment": str(segment.pk),
            "message_id_prefix": "spring",
            "metadata": "campaign: spring",
            "custom_headers": "X-Campaign: spring-%%Code%%",
            "tags": "a, b",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    send = Send.objects.get()
    assert send.audience == "Segment: VIPs"
    assert list(SendRecipient.objects.values_list("address", flat=True)) == ["vip@example.net"]
    engine.start(send, actor=marketing)
    engine.run_dispatcher(send.pk)

    message = SandboxMessage.objects.get()
    assert message.custom_headers == [{"name": "X-Campaign", "value": "spring-V1"}]
    assert message.metadata == [{"key": "campaign", "value": "spring"}]
    assert message.tags == ["a", "b"]
    assert message.message_id == f"spring-{SendRecipient.objects.get().pk}"


def test_a_bad_header_name_is_refused(
    as_user: Callable[[User], Client], marketing: User, inject_server: Server, template: Template
) -> None:
    response = as_user(marketing).post(
        reverse("sending:send_new", args=[inject_server.pk]),
        {
            "template": template.pk,
            "from_address": "news@example.com",
            "audience": "pasted",
            "addresses": "a@example.net",
            "custom_headers": "Bad Header: x",
        },
    )

    assert "Custom headers: “Bad Header” is not a header name" in response.content.decode()
    assert not Send.objects.exists()


def test_an_attachment_goes_with_every_message_and_a_large_one_is_refused(
    as_user: Callable[[User], Client], marketing: User, inject_server: Server, template: Template
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    wizard = {
        "template": template.pk,
        "from_address": "news@example.com",
        "audience": "pasted",
        "addresses": "a@example.net\nb@example.net",
    }
    too_big = SimpleUploadedFile("big.bin", b"x" * (engine.MAX_ATTACHMENT_BYTES + 1))
    refused = as_user(marketing).post(
        reverse("sending:send_new", args=[inject_server.pk]), {**wizard, "attachment": too_big}
    )
    assert "at most 2 MB in all" in refused.content.decode()
    assert not Send.objects.exists()  # nothing half-written

    pdf = SimpleUploadedFile("terms.pdf", b"%PDF-1.4 terms", content_type="application/pdf")
    as_user(marketing).post(reverse("sending:send_new", args=[inject_server.pk]), {**wizard, "attachment": pdf})
    send = Send.objects.get()
    engine.start(send, actor=marketing)
    engine.run_dispatcher(send.pk)

    attachments = list(SandboxMessage.objects.values_list("attachments", flat=True))
    assert attachments == [[{"name": "terms.pdf", "contentType": "application/pdf", "contentId": "", "size": 14}]] * 2
