"""Failure reasons are grouped without the recipient's address, so "top reasons" ranks texts, not people."""

from __future__ import annotations

import pytest

from reporting.pulls import KEY_LENGTH, reason_key


@pytest.mark.parametrize(
    ("reason", "key"),
    [
        (
            "550 5.1.1 <ann@yahoo.com>: Recipient address rejected: User unknown",
            "550 5.1.1 <address>: Recipient address rejected: User unknown",
        ),
        ("554 5.7.1 bob.smith+tag@mail.example.org blocked", "554 5.7.1 <address> blocked"),
        ("452  4.2.2   mailbox\tfull", "452 4.2.2 mailbox full"),
        ("NA", "NA"),
        ("", ""),
        (None, ""),
    ],
)
def test_addresses_and_extra_spaces_leave_the_key(reason: str | None, key: str) -> None:
    assert reason_key(reason) == key


def test_two_recipients_bounced_for_the_same_reason_share_a_key() -> None:
    assert reason_key("550 <a@x.com>: no such user") == reason_key("550 <b@y.org>: no such user")


def test_a_long_reason_is_cut_to_the_key_length() -> None:
    assert len(reason_key("x" * 1000)) == KEY_LENGTH
