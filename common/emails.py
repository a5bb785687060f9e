"""E-mail address normalisation for bulk paths: fast for the common case, exact for the rest.

`normalise_email` trims and lower-cases an address and checks it. Plain ASCII addresses are
checked by one compiled regular expression (about a microsecond); only addresses that fail
it, or that hold non-ASCII characters, go through `email-validator` (about 25 µs), which
also supplies the reason an address is refused. That keeps a million-row import from
spending most of its time validating (shared/ecosystem.md, "Email address validation").

Addresses are compared lower-cased everywhere in Mailroom, as SocketLabs does.
"""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

MAX_ADDRESS_LENGTH = 254  # RFC 5321 path limit, less the angle brackets
MAX_LOCAL_LENGTH = 64

_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_TLD = r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"
ASCII_EMAIL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+{_TLD}")
_CONTROL_OR_SPACE = re.compile(r"[\s\x00-\x1f\x7f]")


class InvalidAddress(ValueError):
    """The text is not an e-mail address; the message says why, in plain words."""


def normalise_email(raw: str) -> str:
    """The address trimmed and lower-cased, or `InvalidAddress` with the reason."""
    address = raw.strip().lower()
    if len(address) <= MAX_ADDRESS_LENGTH and ASCII_EMAIL.fullmatch(address) and address.index("@") <= MAX_LOCAL_LENGTH:
        return address
    return _validate_slowly(raw.strip())


def _validate_slowly(text: str) -> str:
    if not text:
        raise InvalidAddress("the address is empty")
    if "@" not in text:
        raise InvalidAddress(f"“{_short(text)}” has no @, so it is not an e-mail address")
    try:
        result = validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise InvalidAddress(f"“{_short(text)}”: {exc}") from None
    normalised = result.normalized.lower()
    if len(normalised.rpartition("@")[0]) > MAX_LOCAL_LENGTH:
        raise InvalidAddress(f"“{_short(text)}”: the part before the @ is over {MAX_LOCAL_LENGTH} characters, too long")
    return normalised


def lenient_email(raw: str) -> str | None:
    """For data SocketLabs itself sends back (the suppression download): anything address-shaped.

    The mirror must reflect SocketLabs even where our own rules are stricter, so this only
    refuses what cannot be an address at all: no @ (or nothing on one side of it), whitespace or
    control characters inside, or longer than 320 characters. No regular expression: this runs
    a million times per pull, and string methods are several times faster here.
    """
    address = raw.strip().lower()
    at = address.rfind("@")
    if 0 < at < len(address) - 1 and len(address) <= 320 and " " not in address and address.isprintable():
        return address
    return None


def domain_of(address: str) -> str:
    """The part after the last @ (a quoted local part may itself hold an @)."""
    return address[address.rindex("@") + 1 :]


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
