"""Cc/Bcc for basic sends: one message to the pasted addresses with Cc and Bcc, checked against the sandbox.

A mail merge (a list, segment or CSV, or a template with per-recipient fields) cannot carry Cc/Bcc:
every merged copy would go to them again, so the form, the engine and the API refuse it in words.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken, Server, User
from sandbox.models import SandboxMessage
from sending import engine
from sending.models import RecipientState, Send, SendRecipient, SendStatus, Template
from suppression.models import Suppression

pytestmark = pytest.mark.django_db(transaction=True)

BASIC: dict[str, Any] = {
    "subject": "Board meeting %%Day%%",
    "text_body": "See you on %%Day%%.",
    "from_address": "ceo@example.com",
}


def _send(server: Server, actor: Any, to: list[str], **options: Any) -> Send:
    send = engine.create_send(server=server, actor=actor, **{**BASIC, **options})
    engine.add_recipients(send, [engine.AudienceRow(a, f"Name {i}") for i, a in enumerate(to)])
    return send


def test_a_basic_send_is_one_message_with_to_cc_and_bcc_in_the_sandbox(inject_server: Server, marketing: User) -> None:
    send = _send(
        inject_server,
        marketing,
        ["ann@example.net", "bob@example.net"],
        cc=["Chair@Example.net", "chair@example.net", " "],
        bcc=["archive@example.net"],
        global_fields={"Day": "Monday"},
    )
    assert (send.cc, send.bcc) == (["chair@example.net"], ["archive@example.net"])

    engine.start(send, actor=marketing)
    assert engine.run_dispatcher(send.pk) == "done"

    stored = SandboxMessage.objects.get()  # one message, not one per recipient
    assert [a["emailAddress"] for a in stored.to] == ["ann@example.net", "bob@example.net"]
    assert [a["friendlyName"] for a in stored.to] == ["Name 0", "Name 1"]
    assert [a["emailAddress"] for a in stored.cc] == ["chair@example.net"]
    assert [a["emailAddress"] for a in stored.bcc] == ["archive@example.net"]
    assert (stored.subject, stored.text_body) == ("Board meeting Monday", "See you on Monday.")
    assert stored.mailing_id == send.effective_mailing_id
    assert engine.progress(send).accepted == 2


def test_a_merge_send_has_no_cc_or_bcc(make_send: Callable[..., Send]) -> None:
    send = make_send([engine.AudienceRow("ann@example.net", "", {"FirstName": "Ann"})])
    engine.start(send, actor=send.created_by)
    engine.run_dispatcher(send.pk)

    stored = SandboxMessage.objects.get()
    assert (stored.cc, stored.bcc) == ([], [])


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"cc": ["not an address"]}, "Cc address “not an address”"),
        ({"bcc": ["x@"]}, "Bcc address “x@”"),
        ({"cc": [f"c{i}@example.net" for i in range(50)]}, "at most 50 addresses"),
        ({"cc": ["c@example.net"], "subject": "Hi %%FirstName%%"}, "uses %%FirstName%%, %%Day%%, which would differ"),
    ],
)
def test_bad_cc_and_bcc_are_refused_in_words(
    inject_server: Server, marketing: User, options: dict[str, Any], words: str
) -> None:
    with pytest.raises(engine.SendError, match=words):
        engine.create_send(server=inject_server, actor=marketing, **{**BASIC, **options})
    assert not Send.objects.exists()


def test_a_suppressed_cc_is_refused(inject_server: Server, marketing: User) -> None:
    now = timezone.now()
    Suppression.objects.create(
        server=inject_server,
        address="gone@example.net",
        reason="hardbounce",
        first_seen_at=now,
        last_update=now,
        mirrored_at=now,
    )

    with pytest.raises(engine.SendError, match="gone@example.net is on this server's suppression list"):
        engine.create_send(
            server=inject_server, actor=marketing, cc=["GONE@example.net"], global_fields={"Day": "1"}, **BASIC
        )


def test_too_many_recipients_for_one_basic_message_cannot_start(inject_server: Server, marketing: User) -> None:
    send = _send(
        inject_server,
        marketing,
        [f"p{i}@example.net" for i in range(49)],
        cc=["c@example.net"],
        bcc=["b@example.net"],
        global_fields={"Day": "Monday"},
    )

    with pytest.raises(engine.SendError, match="it has 49 recipients, 1 Cc and 1 Bcc"):
        engine.start(send, actor=marketing)
    send.refresh_from_db()
    assert send.status == SendStatus.DRAFT
    assert not SendRecipient.objects.filter(batch__isnull=False).exists()


def test_a_rejected_recipient_of_a_basic_send_is_recorded(inject_server: Server, marketing: User) -> None:
    send = _send(inject_server, marketing, ["ann@example.net"], cc=["chair@example.net"], global_fields={"Day": "1"})
    # An address our normaliser takes but SocketLabs' rule refuses would be needed for a real rejection;
    # instead a second recipient is made invalid in the database after expansion.
    SendRecipient.objects.create(send=send, address="bad address@example.net", state=RecipientState.PENDING)
    engine.start(send, actor=marketing)
    engine.run_dispatcher(send.pk)

    states = dict(SendRecipient.objects.filter(send=send).values_list("address", "state"))
    assert states == {"ann@example.net": RecipientState.ACCEPTED, "bad address@example.net": RecipientState.REJECTED}
    stored = SandboxMessage.objects.get()
    assert [a["emailAddress"] for a in stored.to] == ["ann@example.net"]
    assert [a["emailAddress"] for a in stored.cc] == ["chair@example.net"]


# --- the form -----------------------------------------------------------------------------------
@pytest.fixture
def template(server: Server) -> Template:
    return Template.objects.create(server=server, name="Memo", subject="Memo", text_body="Read me.")


def _wizard(template: Template, **extra: Any) -> dict[str, Any]:
    return {"template": template.pk, "from_address": "news@example.com", "audience": "pasted", **extra}


def test_the_wizard_creates_a_basic_send_with_cc_and_bcc(
    as_user: Callable[[User], Client], marketing: User, server: Server, template: Template, queued: list[int]
) -> None:
    response = as_user(marketing).post(
        reverse("sending:send_new", args=[server.pk]),
        _wizard(
            template,
            addresses="ann@example.net\nbob@example.net",
            cc="c1@example.net, c2@example.net",
            bcc="b@example.net",
        ),
    )

    assert response.status_code == 302, response.content.decode()
    send = Send.objects.get()
    assert (send.cc, send.bcc, send.total) == (["c1@example.net", "c2@example.net"], ["b@example.net"], 2)
    page = as_user(marketing).get(response["Location"]).content.decode()
    assert "One message to all recipients; Cc c1@example.net, c2@example.net; Bcc b@example.net" in page


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"cc": "nope"}, "Cc: “nope”"),
        ({"audience": "csv", "cc": "c@example.net"}, "Cc/Bcc apply only to a basic send to pasted addresses"),
        (
            {"addresses": "\n".join(f"p{i}@example.net" for i in range(49)), "bcc": "a@example.net, b@example.net"},
            "there are 49 pasted and 2 Cc/Bcc",
        ),
    ],
)
def test_the_wizard_refuses_cc_and_bcc_where_they_cannot_apply(
    as_user: Callable[[User], Client],
    marketing: User,
    server: Server,
    template: Template,
    extra: dict[str, str],
    words: str,
) -> None:
    data = _wizard(template, **{"addresses": "ann@example.net", **extra})

    response = as_user(marketing).post(reverse("sending:send_new", args=[server.pk]), data)

    assert response.status_code == 200
    assert words in response.content.decode()
    assert not Send.objects.exists()


def test_the_wizard_refuses_cc_when_the_template_merges_per_recipient(
    as_user: Callable[[User], Client], marketing: User, server: Server
) -> None:
    merge = Template.objects.create(server=server, name="M", subject="Hi %%FirstName%%", text_body="x")

    response = as_user(marketing).post(
        reverse("sending:send_new", args=[server.pk]), _wizard(merge, addresses="a@example.net", cc="c@example.net")
    )

    assert "Cc/Bcc only apply to a basic send (one message, no mail merge)" in response.content.decode()
    assert not Send.objects.exists()


# --- the API ------------------------------------------------------------------------------------
def test_the_api_creates_a_basic_send_and_reads_cc_and_bcc_back(
    marketing: User, inject_server: Server, queued: list[int]
) -> None:
    _, raw = ApiToken.issue(user=marketing, name="t")
    api = Client(headers={"Authorization": f"Bearer {raw}"})
    body = {
        **BASIC,
        "global_fields": {"Day": "Friday"},
        "cc": ["c@example.net"],
        "bcc": ["b@example.net"],
        "recipients": [{"address": "ann@example.net"}],
        "start": True,
    }

    created = api.post(f"/api/v1/servers/{inject_server.pk}/sends/", body, content_type="application/json")

    assert created.status_code == 201, created.content
    assert (created.json()["cc"], created.json()["bcc"]) == (["c@example.net"], ["b@example.net"])
    engine.run_dispatcher(created.json()["id"])
    stored = SandboxMessage.objects.get()
    assert [a["emailAddress"] for a in stored.bcc] == ["b@example.net"]

    refused = api.post(
        f"/api/v1/servers/{inject_server.pk}/sends/",
        {**body, "subject": "Hi %%FirstName%%"},
        content_type="application/json",
    )
    assert refused.status_code == 400
    assert "would differ per recipient" in refused.json()["detail"]
