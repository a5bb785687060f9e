"""Domain names as people type them, checked before anything is sent to SocketLabs."""

from __future__ import annotations

import re

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def normalize_domain(text: str) -> str:
    """Lower-case, drop a trailing dot, convert an internationalised name to its xn-- form.

    Raises ValueError with a sentence saying what is wrong.
    """
    raw = (text or "").strip()
    if not raw:
        raise ValueError("Enter a domain name, e.g. mail.example.com.")
    if any(c.isspace() for c in raw) or "/" in raw or "@" in raw or ":" in raw:
        raise ValueError(
            f"“{raw}” is not a domain name: enter only the name, e.g. mail.example.com (no spaces, @, / or :)."
        )
    labels = raw.lower().rstrip(".").split(".")
    for i, label in enumerate(labels):
        if label and not label.isascii():
            try:
                labels[i] = label.encode("idna").decode("ascii")
            except UnicodeError as exc:
                raise ValueError(f"“{raw}”: the part “{label}” is not a valid international name.") from exc
    value = ".".join(labels)
    if len(labels) < 2:
        raise ValueError(f"“{raw}” is not a full domain name: it needs at least one dot, e.g. example.com.")
    if len(value) > 253:
        raise ValueError(f"“{raw[:40]}…” is longer than the 253 characters a domain name may have.")
    for label in labels:
        if not label:
            raise ValueError(f"“{raw}” has an empty part between dots.")
        if len(label) > 63:
            raise ValueError(f"“{raw}”: the part “{label[:20]}…” is longer than 63 characters.")
        if not _LABEL.match(label):
            raise ValueError(
                f"“{raw}”: the part “{label}” may only hold letters, digits and hyphens, "
                "and may not start or end with a hyphen."
            )
    if labels[-1].isdigit():
        raise ValueError(f"“{raw}” looks like an IP address; enter a domain name.")
    return value
