"""DKIM keys for the sandbox: generate RSA-2048 pairs, parse pasted private keys, build the DNS record."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


class InvalidPrivateKey(ValueError):
    pass


@dataclass(frozen=True)
class DkimKeyPair:
    private_pem: str
    public_b64: str  # the `p=` value: base64 of the DER SubjectPublicKeyInfo

    def dns_record(self) -> str:
        return dns_record(self.public_b64)


def dns_host_name(domain: str, selector: str) -> str:
    return f"{selector}._domainkey.{domain}"


def dns_record(public_b64: str) -> str:
    return f"v=DKIM1; k=rsa; p={public_b64}"


def _public_b64(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(
        encoding=serialization.Encoding.DER, format=serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def generate(bits: int = 2048) -> DkimKeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.TraditionalOpenSSL,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode()
    return DkimKeyPair(private_pem=pem, public_b64=_public_b64(key))


def parse_private_key(text: str) -> DkimKeyPair:
    """Accept a PEM (PKCS#1 or PKCS#8) or a bare base64 DER RSA private key; raise InvalidPrivateKey otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidPrivateKey("is required.")
    raw = text.strip()
    try:
        if raw.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(raw.encode(), password=None)
        else:
            key = serialization.load_der_private_key(base64.b64decode("".join(raw.split()), validate=True), None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidPrivateKey("is not a readable unencrypted RSA private key.") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidPrivateKey("must be an RSA key (DKIM k=rsa).")
    if key.key_size < 1024:
        raise InvalidPrivateKey("must be at least 1024 bits.")
    pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.TraditionalOpenSSL,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode()
    return DkimKeyPair(private_pem=pem, public_b64=_public_b64(key))
