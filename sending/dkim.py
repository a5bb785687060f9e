"""DKIM keys and TXT values: read a pasted private key, build the record, split it for zone files, parse it back.

Plain functions with no Django or network: the DNS checks and the pages both use them.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

MIN_KEY_BITS = 1024
TXT_STRING_MAX = 255  # bytes in one character-string of a TXT record (RFC 1035 §3.3)
_SELECTOR_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


class InvalidPrivateKey(ValueError):
    """The pasted text is not a usable RSA private key; the message says why, in plain words."""


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    public_b64: str  # the `p=` value: base64 of the DER SubjectPublicKeyInfo
    bits: int


def public_b64(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(
        encoding=serialization.Encoding.DER, format=serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def parse_private_key(text: str) -> KeyPair:
    """Accept a PEM (PKCS#1 or PKCS#8) or bare base64 DER RSA private key of at least 1024 bits."""
    raw = (text or "").strip()
    if not raw:
        raise InvalidPrivateKey("Paste a private key, or leave the field empty to have SocketLabs generate one.")
    if "ENCRYPTED" in raw:
        raise InvalidPrivateKey("This private key is protected by a passphrase. Paste the unencrypted key.")
    try:
        if raw.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(raw.encode(), password=None)
        else:
            der = base64.b64decode("".join(raw.split()), validate=True)
            key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm, binascii.Error) as exc:
        raise InvalidPrivateKey(
            "This is not a readable private key. Paste the whole PEM block, from “-----BEGIN” to “-----END … KEY-----”."
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidPrivateKey("This is not an RSA key. DKIM keys for SocketLabs must be RSA (k=rsa).")
    if key.key_size < MIN_KEY_BITS:
        raise InvalidPrivateKey(f"This RSA key has {key.key_size} bits; use at least {MIN_KEY_BITS} (2048 is best).")
    pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.TraditionalOpenSSL,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode()
    return KeyPair(private_pem=pem, public_b64=public_b64(key), bits=key.key_size)


def generate_key(bits: int = 2048) -> KeyPair:
    """A local key pair; used by tests and as a fallback, the pages ask SocketLabs to generate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.TraditionalOpenSSL,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode()
    return KeyPair(private_pem=pem, public_b64=public_b64(key), bits=bits)


def host_name(domain: str, selector: str) -> str:
    return f"{selector}._domainkey.{domain}"


def txt_value(public: str) -> str:
    return f"v=DKIM1; k=rsa; p={public}"


def split_txt(value: str, size: int = TXT_STRING_MAX) -> list[str]:
    """Cut a TXT value into character-strings of at most `size` bytes (never inside a UTF-8 sequence)."""
    data = value.encode()
    parts: list[str] = []
    while data:
        cut = min(size, len(data))
        # Step back off UTF-8 continuation bytes so every part decodes on its own.
        while cut < len(data) and cut > 0 and (data[cut] & 0xC0) == 0x80:
            cut -= 1
        parts.append(data[:cut].decode())
        data = data[cut:]
    return parts or [""]


def zone_strings(value: str) -> str:
    """The TXT value as a zone file writes it: quoted strings of ≤255 bytes, separated by spaces."""
    return " ".join('"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"' for part in split_txt(value))


def zone_line(host: str, value: str, ttl: int = 3600) -> str:
    return f"{host}. {ttl} IN TXT ( {zone_strings(value)} )"


def parse_tags(value: str) -> dict[str, str]:
    """A DKIM tag list (`v=DKIM1; k=rsa; p=…`) as a dict of lower-cased tag names; whitespace in values dropped.

    Never raises: a fragment without `=` is ignored, as a verifier would (RFC 6376 §3.2).
    """
    tags: dict[str, str] = {}
    for item in value.split(";"):
        name, sep, tag_value = item.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            continue
        tags.setdefault(name, "".join(tag_value.split()))
    return tags


def looks_like_dkim(value: str) -> bool:
    tags = parse_tags(value)
    return tags.get("v", "").upper() == "DKIM1" or "p" in tags


def public_key_of(record: str | None) -> str:
    """The `p=` of a DKIM TXT value ('' when absent)."""
    return parse_tags(record or "").get("p", "")


def same_public_key(a: str, b: str) -> bool:
    """Compare two `p=` values by the bytes they encode, so line breaks or padding differences do not matter."""
    try:
        return base64.b64decode("".join(a.split()), validate=True) == base64.b64decode(
            "".join(b.split()), validate=True
        )
    except (binascii.Error, ValueError):
        return False


def valid_b64(value: str) -> bool:
    try:
        base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return bool(value)


def normalize_selector(text: str) -> str:
    """A selector is one or more DNS labels (RFC 6376 §3.1); lower-cased. Raises ValueError with a plain message."""
    value = (text or "").strip().lower().rstrip(".")
    if not value:
        raise ValueError("Enter a selector, e.g. “mr2025”.")
    labels = value.split(".")
    if len(value) > 63 or not all(_SELECTOR_LABEL.match(label) for label in labels):
        raise ValueError(
            f"“{text}” is not a valid selector: use letters, digits and hyphens (not at the start or end), "
            "at most 63 characters."
        )
    return value
