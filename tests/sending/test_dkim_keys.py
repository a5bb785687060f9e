"""DKIM keys and TXT values: pasted keys are checked with `cryptography`, long values split and join back."""

from __future__ import annotations

import base64
import math
import random

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st

from sending import dkim
from sending.validators import normalize_domain


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, fmt: serialization.PrivateFormat, password: bytes | None = None
) -> str:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption).decode()


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29):
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _weak_rsa_key(bits: int = 512) -> rsa.RSAPrivateKey:
    """`cryptography` refuses to generate keys under 1024 bits, so build one from primes (for the refusal test)."""
    rng = random.Random(7)

    def prime() -> int:
        while True:
            candidate = rng.getrandbits(bits // 2) | (1 << (bits // 2 - 1)) | 1
            if _is_prime(candidate):
                return candidate

    e = 65537
    while True:
        p, q = prime(), prime()
        phi = (p - 1) * (q - 1)
        if p != q and math.gcd(e, phi) == 1:
            break
    d = pow(e, -1, phi)
    public = rsa.RSAPublicNumbers(e, p * q)
    return rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), public).private_key()


def test_it_reads_a_pkcs1_pem_key_and_derives_the_public_key(rsa_key: rsa.RSAPrivateKey) -> None:
    pair = dkim.parse_private_key(_pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL))
    der = rsa_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert pair.public_b64 == base64.b64encode(der).decode()
    assert pair.bits == 2048


def test_it_reads_pkcs8_and_bare_base64_der(rsa_key: rsa.RSAPrivateKey) -> None:
    pkcs8 = _pem(rsa_key, serialization.PrivateFormat.PKCS8)
    der = rsa_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    bare = "\n".join(base64.b64encode(der).decode()[i : i + 64] for i in range(0, 2000, 64))
    assert dkim.parse_private_key(pkcs8).public_b64 == dkim.parse_private_key(bare).public_b64


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "Paste a private key"),
        ("hello, I am not a key", "not a readable private key"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEnotreally\n-----END RSA PRIVATE KEY-----", "not a readable private key"),
    ],
)
def test_it_refuses_text_that_is_not_a_key(text: str, words: str) -> None:
    with pytest.raises(dkim.InvalidPrivateKey, match=words):
        dkim.parse_private_key(text)


def test_it_refuses_a_key_under_1024_bits() -> None:
    weak = _weak_rsa_key()
    with pytest.raises(dkim.InvalidPrivateKey, match="use at least 1024"):
        dkim.parse_private_key(_pem(weak, serialization.PrivateFormat.TraditionalOpenSSL))


def test_it_accepts_exactly_1024_bits() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    assert dkim.parse_private_key(_pem(key, serialization.PrivateFormat.PKCS8)).bits == 1024


def test_it_refuses_a_key_that_is_not_rsa() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(dkim.InvalidPrivateKey, match="not an RSA key"):
        dkim.parse_private_key(_pem(key, serialization.PrivateFormat.PKCS8))


def test_it_refuses_a_passphrase_protected_key(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(dkim.InvalidPrivateKey, match="passphrase"):
        dkim.parse_private_key(_pem(rsa_key, serialization.PrivateFormat.PKCS8, password=b"secret"))


def test_a_2048_bit_record_splits_into_two_strings_that_join_back() -> None:
    value = dkim.txt_value(dkim.generate_key().public_b64)
    parts = dkim.split_txt(value)
    assert len(parts) == 2
    assert all(len(p.encode()) <= 255 for p in parts)
    assert "".join(parts) == value
    assert dkim.zone_strings(value) == f'"{parts[0]}" "{parts[1]}"'
    assert dkim.zone_line("mr1._domainkey.example.com", value).startswith('mr1._domainkey.example.com. 3600 IN TXT ( "')


@given(st.text(max_size=2000))
def test_split_and_join_round_trip_for_any_text(value: str) -> None:
    parts = dkim.split_txt(value)
    assert "".join(parts) == value
    assert all(len(p.encode()) <= 255 for p in parts)


@given(st.text(max_size=500))
def test_the_tag_parser_never_raises(value: str) -> None:
    tags = dkim.parse_tags(value)
    assert isinstance(tags, dict)
    dkim.looks_like_dkim(value)
    dkim.same_public_key(value, "AAAA")


def test_the_tag_parser_reads_what_verifiers_read() -> None:
    assert dkim.parse_tags("v=DKIM1; k=rsa;\tp=AB CD\n EF==; t=s") == {
        "v": "DKIM1",
        "k": "rsa",
        "p": "ABCDEF==",
        "t": "s",
    }
    assert dkim.public_key_of("v=DKIM1; p=") == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [("mr1", "mr1"), ("MR-2025", "mr-2025"), ("s1.eu", "s1.eu")],
)
def test_it_accepts_selectors(text: str, expected: str) -> None:
    assert dkim.normalize_selector(text) == expected


@pytest.mark.parametrize("text", ["", "-mr", "mr_1", "a b", "x" * 64, "mr..1"])
def test_it_refuses_bad_selectors(text: str) -> None:
    with pytest.raises(ValueError):
        dkim.normalize_selector(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Example.COM", "example.com"),
        ("mail.example.com.", "mail.example.com"),
        ("  bücher.example ", "xn--bcher-kva.example"),
    ],
)
def test_it_normalises_domains(text: str, expected: str) -> None:
    assert normalize_domain(text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "Enter a domain"),
        ("localhost", "at least one dot"),
        ("bad domain.com", "no spaces"),
        ("user@example.com", "no spaces, @"),
        ("https://example.com", "no spaces, @, / or :"),
        ("-bad.example.com", "may not start or end with a hyphen"),
        ("a..example.com", "empty part"),
        ("x" * 64 + ".com", "longer than 63"),
        ("10.0.0.1", "IP address"),
        ("under_score.example.com", "letters, digits and hyphens"),
    ],
)
def test_it_refuses_invalid_domain_names_saying_why(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace(".", r"\.").replace("/", "/")):
        normalize_domain(text)
