"""Approval: above a server's threshold a send waits for a second Admin; the creator cannot approve it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditLog, Server, User
from accounts.roles import Role
from sending import engine
from sending.models import Send, SendStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def big_send(server: Server, marketing: User) -> Send:
    send = engine.create_send(server=server, actor=marketing, subject="s", text_body="t", from_address="a@example.com")
    engine.add_recipients(send, [engine.AudienceRow(f"p{i}@example.net") for i in range(5)])
    return send


def test_a_send_above_the_threshold_waits_for_a_second_admin(
    big_send: Send,
    server: Server,
    admin: User,
    marketing: User,
    make_member: Callable[[str, str], User],
    as_user: Callable[[User], Client],
    queued: list[int],
) -> None:
    engine.set_approval_threshold(server, 4, actor=admin)
    engine.start(big_send, actor=marketing)
    assert big_send.status == SendStatus.AWAITING_APPROVAL
    assert not queued
    detail = reverse("sending:send_detail", args=[server.pk, big_send.pk])
    approve = reverse("sending:send_action", args=[server.pk, big_send.pk, "approve"])

    assert "Approve and send" not in as_user(marketing).get(detail).content.decode()
    as_user(marketing).post(approve)
    assert Send.objects.get().status == SendStatus.AWAITING_APPROVAL
    assert "Approve and send" in as_user(admin).get(detail).content.decode()
    as_user(admin).post(approve)

    send = Send.objects.get()
    assert (send.status, send.approved_by) == (SendStatus.QUEUED, admin)
    assert queued
    assert {"send.approval_requested", "send.approve", "send.settings"} <= set(
        AuditLog.objects.values_list("action", flat=True)
    )


def test_the_admin_who_created_a_send_cannot_approve_it(
    server: Server, admin: User, make_member: Callable[[str, str], User], queued: list[int]
) -> None:
    engine.set_approval_threshold(server, 0, actor=admin)
    send = engine.create_send(server=server, actor=admin, subject="s", text_body="t", from_address="a@example.com")
    engine.add_recipients(send, [engine.AudienceRow("one@example.net")])
    engine.start(send, actor=admin)

    with pytest.raises(engine.SendError, match="other than the person who created it"):
        engine.approve(send, actor=admin)
    engine.approve(send, actor=make_member("second@example.com", Role.ADMIN))

    assert Send.objects.get().status == SendStatus.QUEUED


def test_at_or_below_the_threshold_a_send_starts_at_once(
    big_send: Send, server: Server, admin: User, marketing: User, queued: list[int]
) -> None:
    engine.set_approval_threshold(server, 5, actor=admin)

    engine.start(big_send, actor=marketing)

    assert big_send.status == SendStatus.QUEUED


def test_only_admins_set_the_threshold(
    server: Server, admin: User, marketing: User, as_user: Callable[[User], Client]
) -> None:
    url = reverse("sending:send_settings", args=[server.pk])

    assert as_user(marketing).post(url, {"approval_threshold": "10"}).status_code == 403
    assert engine.approval_threshold(server) is None
    as_user(admin).post(url, {"approval_threshold": "10"})
    assert engine.approval_threshold(server) == 10
    response = as_user(admin).post(url, {"approval_threshold": "-1"}, follow=True)
    assert "Approval threshold: Ensure this value is greater than or equal to 0." in response.content.decode()
    as_user(admin).post(url, {"approval_threshold": ""})
    assert engine.approval_threshold(server) is None
