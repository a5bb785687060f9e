"""Compose and send pages: roles, templates with preview, the wizard from audience to summary, actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts.models import AuditLog, Server, User
from marketing.models import Contact, ContactList, Membership, Status
from sending import engine
from sending.models import RecipientState, Send, SendRecipient, SendStatus, Template

pytestmark = pytest.mark.django_db


@pytest.fixture
def template(server: Server) -> Template:
    return Template.objects.create(
        server=server, name="Spring", subject="Hi %%FirstName%%", html_body="<p>Hi %%FirstName%% %%Code%%</p>"
    )


def _wizard(server: Server, template: Template, **extra: Any) -> dict[str, Any]:
    return {
        "template": template.pk,
        "from_address": "news@example.com",
        "audience": "pasted",
        "addresses": "",
        "global_fields": "",
        **extra,
    }


@pytest.mark.parametrize("persona", ["admin", "marketing"])
def test_marketing_and_admin_create_a_send_from_pasted_addresses(
    persona: str,
    request: pytest.FixtureRequest,
    as_user: Callable[[User], Client],
    server: Server,
    template: Template,
    queued: list[int],
) -> None:
    client = as_user(request.getfixturevalue(persona))
    pasted = "ann@example.net\nbob@example.net\nnot-an-address\nANN@example.net\n"

    response = client.post(reverse("sending:send_new", args=[server.pk]), _wizard(server, template, addresses=pasted))

    send = Send.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("sending:send_detail", args=[server.pk, send.pk])
    assert (send.status, send.total, send.skipped) == (SendStatus.DRAFT, 2, 1)
    page = client.get(response["Location"]).content.decode()
    assert "<strong>2</strong> recipients, <strong>1</strong> skipped" in page
    assert "No recipient has a value for: FirstName, Code" in page  # merge fields nobody has
    assert not queued  # nothing is sent before the confirmation

    client.post(reverse("sending:send_action", args=[server.pk, send.pk, "start"]))

    send.refresh_from_db()
    assert send.status == SendStatus.QUEUED
    assert queued
    assert AuditLog.objects.filter(action="send.start", server=server).exists()


@pytest.mark.parametrize("persona", ["ops", "viewer"])
def test_ops_and_viewers_read_sends_but_cannot_send(
    persona: str,
    request: pytest.FixtureRequest,
    as_user: Callable[[User], Client],
    server: Server,
    template: Template,
    marketing: User,
) -> None:
    send = engine.create_send(server=server, actor=marketing, template=template, from_address="a@example.com")
    client = as_user(request.getfixturevalue(persona))

    assert client.get(reverse("sending:send_list", args=[server.pk])).status_code == 200
    assert client.get(reverse("sending:send_detail", args=[server.pk, send.pk])).status_code == 200
    assert client.get(reverse("sending:send_new", args=[server.pk])).status_code == 403
    assert client.post(reverse("sending:send_action", args=[server.pk, send.pk, "start"])).status_code == 403
    assert client.post(reverse("sending:send_template_new", args=[server.pk]), {}).status_code == 403
    assert Send.objects.get().status == SendStatus.DRAFT


def test_an_outsider_gets_404_everywhere(
    as_user: Callable[[User], Client], outsider: User, server: Server, template: Template, marketing: User
) -> None:
    send = engine.create_send(server=server, actor=marketing, template=template, from_address="a@example.com")
    client = as_user(outsider)

    for url in (
        reverse("sending:send_list", args=[server.pk]),
        reverse("sending:send_detail", args=[server.pk, send.pk]),
        reverse("sending:send_progress", args=[server.pk, send.pk]),
        reverse("sending:send_templates", args=[server.pk]),
    ):
        assert client.get(url).status_code == 404
    assert client.post(reverse("sending:send_action", args=[server.pk, send.pk, "cancel"])).status_code == 404


def test_a_send_of_another_server_is_not_found_under_this_one(
    as_user: Callable[[User], Client], admin: User, server: Server, other_server: Server
) -> None:
    other = engine.create_send(
        server=other_server, actor=None, subject="s", text_body="t", from_address="a@example.com"
    )

    assert as_user(admin).get(reverse("sending:send_detail", args=[server.pk, other.pk])).status_code == 404


def test_the_preview_substitutes_the_pasted_row_and_escapes_everything(
    as_user: Callable[[User], Client], marketing: User, server: Server
) -> None:
    response = as_user(marketing).post(
        reverse("sending:send_template_preview", args=[server.pk]),
        {
            "subject": "Hello %%FirstName%%",
            "html_body": "<p>%%FirstName%% {{ 7|add:1 }} %%Missing%%</p>",
            "text_body": "",
            "row": "FirstName: <script>alert(1)</script>",
        },
    )

    html = response.content.decode()
    assert "Hello &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    assert "{{ 7|add:1 }}" in html  # never rendered by the template engine
    assert "No value for: Missing" in html


def test_a_bad_preview_row_says_which_line(as_user: Callable[[User], Client], marketing: User, server: Server) -> None:
    response = as_user(marketing).post(
        reverse("sending:send_template_preview", args=[server.pk]),
        {"subject": "s", "html_body": "", "text_body": "", "row": "FirstName: Ann\njust words"},
    )

    assert "Line 2: write each field as “Name: value”." in response.content.decode()


def test_a_template_is_saved_with_a_text_body_generated_from_html(
    as_user: Callable[[User], Client], marketing: User, server: Server
) -> None:
    response = as_user(marketing).post(
        reverse("sending:send_template_new", args=[server.pk]),
        {
            "name": "Welcome",
            "subject": "Hi",
            "html_body": "<h1>Hi %%FirstName%%</h1><p>Fish &amp; chips</p>",
            "text_body": "",
            "generate_text": "on",
        },
    )

    template = Template.objects.get()
    assert response.status_code == 302
    assert template.text_body == "Hi %%FirstName%%\nFish & chips"
    assert AuditLog.objects.filter(action="send_template.create").exists()


def test_a_csv_audience_turns_columns_into_merge_fields(
    as_user: Callable[[User], Client], marketing: User, server: Server, template: Template
) -> None:
    upload = SimpleUploadedFile("people.csv", b"Email,FirstName,Code\nann@example.net,Ann,A1\nbad,Bo,B2\n")

    as_user(marketing).post(
        reverse("sending:send_new", args=[server.pk]), _wizard(server, template, audience="csv", csv_file=upload)
    )

    ann = SendRecipient.objects.get(address="ann@example.net")
    assert ann.fields == {"FirstName": "Ann", "Code": "A1"}
    bad = SendRecipient.objects.get(state=RecipientState.SKIPPED)
    assert bad.reason.startswith("line 3: ")


def test_a_list_audience_uses_subscribed_contacts_and_reports_the_others(
    as_user: Callable[[User], Client], marketing: User, server: Server, template: Template
) -> None:
    contact_list = ContactList.objects.create(server=server, name="Customers")
    ann = Contact.objects.create(server=server, email="ann@example.net", first_name="Ann", custom={"code": "A1"})
    gone = Contact.objects.create(server=server, email="gone@example.net", status=Status.UNSUBSCRIBED)
    Membership.objects.create(contact_list=contact_list, contact=ann)
    Membership.objects.create(contact_list=contact_list, contact=gone)

    as_user(marketing).post(
        reverse("sending:send_new", args=[server.pk]),
        _wizard(server, template, audience="lists", lists=[str(contact_list.pk)]),
    )

    recipient = SendRecipient.objects.get(state=RecipientState.PENDING)
    assert (recipient.address, recipient.fields["FirstName"], recipient.fields["code"]) == (
        "ann@example.net",
        "Ann",
        "A1",
    )
    skipped = SendRecipient.objects.get(state=RecipientState.SKIPPED)
    assert (skipped.address, skipped.reason) == ("gone@example.net", "unsubscribed")


def test_the_wizard_explains_what_is_missing(
    as_user: Callable[[User], Client], marketing: User, server: Server, template: Template
) -> None:
    response = as_user(marketing).post(
        reverse("sending:send_new", args=[server.pk]),
        _wizard(server, template, from_address="nobody", addresses="a@example.net", global_fields="oops"),
    )

    html = response.content.decode()
    assert "Global merge fields: Line 1: write each field as “Name: value”." in html
    assert not Send.objects.exists()


def test_pause_and_cancel_from_the_page_are_audited(
    as_user: Callable[[User], Client], marketing: User, server: Server, template: Template, queued: list[int]
) -> None:
    send = engine.create_send(server=server, actor=marketing, template=template, from_address="a@example.com")
    engine.add_recipients(send, [engine.AudienceRow("ann@example.net")])
    engine.start(send, actor=marketing)
    client = as_user(marketing)

    client.post(reverse("sending:send_action", args=[server.pk, send.pk, "pause"]))
    assert Send.objects.get().status == SendStatus.PAUSED
    client.post(reverse("sending:send_action", args=[server.pk, send.pk, "cancel"]))

    assert Send.objects.get().status == SendStatus.CANCELLED
    assert {"send.pause", "send.cancel"} <= set(AuditLog.objects.values_list("action", flat=True))
    assert "Cancelled" in client.get(reverse("sending:send_list", args=[server.pk])).content.decode()


def test_the_history_joins_webhook_counts_by_mailing_id(
    as_user: Callable[[User], Client], marketing: User, server: Server, template: Template
) -> None:
    from datetime import date

    from reporting.models import DailyRollup

    send = engine.create_send(
        server=server, actor=marketing, template=template, from_address="a@example.com", mailing_id="spring"
    )
    for day, kind, count in ((1, "delivered", 7), (2, "delivered", 3), (1, "open", 4), (1, "click", 2)):
        DailyRollup.objects.create(server=server, day=date(2026, 11, day), type=kind, mailing_id="spring", count=count)
    DailyRollup.objects.create(server=server, day=date(2026, 11, 1), type="delivered", mailing_id="other", count=99)

    html = as_user(marketing).get(reverse("sending:send_list", args=[server.pk])).content.decode()

    assert engine.event_counts(server, [send])[send.pk] == {
        "delivered": 10,
        "failed": 0,
        "open": 4,
        "click": 2,
        "complaint": 0,
    }
    assert 'data-testid="delivered">10<' in html
    assert 'data-testid="opened">4<' in html
