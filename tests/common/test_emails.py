"""Address normalisation: the fast path, the exact path, and the lenient path for SocketLabs' own data."""

from __future__ import annotations

import pytest

from common.emails import InvalidAddress, domain_of, lenient_email, normalise_email


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Bob@Example.COM", "bob@example.com"),
        ("  ann.lee+news@mail.example.org \t", "ann.lee+news@mail.example.org"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("josé@exámple.com", "josé@exámple.com"),
    ],
)
def test_it_trims_and_lower_cases_valid_addresses(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "empty"),
        ("not-an-address", "has no @"),
        ("a b@example.com", "invalid characters"),
        ("<a@example.com>", "angle brackets"),
        ("a@example", "period"),
        ("a..b@example.com", "period"),
        ("x" * 65 + "@example.com", "too long"),
    ],
)
def test_it_says_why_an_address_is_refused(raw: str, why: str) -> None:
    with pytest.raises(InvalidAddress) as caught:
        normalise_email(raw)
    assert why in str(caught.value)


def test_it_accepts_what_socketlabs_holds_even_when_our_rules_are_stricter() -> None:
    assert lenient_email(" Someone@Localhost ") == "someone@localhost"
    assert lenient_email('"odd local"@example.com') is None  # a space inside
    assert lenient_email("no-at-sign") is None
    assert lenient_email("a@b.c\x00") is None


def test_it_takes_the_domain_after_the_last_at() -> None:
    assert domain_of("bob@example.com") == "example.com"
    assert domain_of('"a@b"@example.org') == "example.org"
