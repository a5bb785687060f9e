"""Encrypted model field for secrets at rest (SocketLabs API keys, webhook secrets).

MultiFernet over MAILROOM_ENCRYPTION_KEYS (newest first): the first key
encrypts, every key decrypts, and `rotate_encryption_keys` re-encrypts rows
with the newest. Keys are independent of SECRET_KEY.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@cache
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("MAILROOM_ENCRYPTION_KEYS is empty: no key to encrypt secrets with.")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "MAILROOM_ENCRYPTION_KEYS must hold Fernet keys (32 url-safe base64 bytes each)."
        ) from exc


def fernet() -> MultiFernet:
    return _fernet_for(tuple(settings.MAILROOM_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    return fernet().decrypt(token.encode()).decode()


def rotate(token: str) -> str:
    return fernet().rotate(token.encode()).decode()


class DecryptionError(Exception):
    """A stored secret cannot be decrypted with any configured key."""


class EncryptedTextField(models.TextField):
    """A text field stored as a Fernet token; reads back as plaintext.

    The empty string is stored as-is (no secret set), so "has a key" is a
    cheap check that needs no decryption.
    """

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        try:
            return decrypt(value)
        except InvalidToken as exc:
            raise DecryptionError(
                f"{self.model.__name__}.{self.name} cannot be decrypted: is MAILROOM_ENCRYPTION_KEYS missing a key?"
            ) from exc

    def get_prep_value(self, value: Any) -> str | None:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)


def mask(secret: str | None) -> str:
    """Show a secret as bullets plus its last four characters."""
    if not secret:
        return ""
    return "••••" + secret[-4:] if len(secret) > 8 else "••••"
