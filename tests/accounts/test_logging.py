"""Structured logs: JSON lines, secrets masked in messages, arguments and tracebacks.

`emitted` captures what the *configured* handler writes (settings.LOGGING: its filter and
formatter), not what pytest's own capture sees, so these tests check the real output.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet

from accounts.logging import JsonFormatter, MaskSecretsFilter

SL_KEY = "AbCdEfGhIjKlMnOpQrSt.0123456789abcdefghijABCDEFGHIJ0123456789"  # 61 chars, SocketLabs shape
TOKEN = "mr_Zq7fW2kVn9xT3yLp8sR4uB6cD1eG5hJ0aM2oQ9iK"


def configured_handlers(logger: logging.Logger) -> list[logging.Handler]:
    """Every handler a record from `logger` reaches, pytest's own capture left out."""
    handlers: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        handlers += [
            h
            for h in current.handlers
            if not type(h).__module__.startswith("_pytest") and not isinstance(h, logging.NullHandler)
        ]
        if not current.propagate:
            break
        current = current.parent  # type: ignore[assignment]
    return handlers


@pytest.fixture
def emitted() -> Iterator[io.StringIO]:
    """Point the configured console handler at a buffer for the test."""
    buffer = io.StringIO()
    handlers = [h for h in configured_handlers(logging.getLogger()) if isinstance(h, logging.StreamHandler)]
    assert handlers, "settings.LOGGING must configure a console handler on the root logger"
    previous = [h.setStream(buffer) for h in handlers]
    yield buffer
    for handler, stream in zip(handlers, previous, strict=True):
        handler.setStream(stream)


def lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


@pytest.mark.parametrize(
    "name",
    ["", "django", "django.request", "django.security", "django.server", "celery", "axes", "accounts", "socketlabs"],
)
def test_every_handler_a_record_can_reach_masks_secrets(name):
    handlers = configured_handlers(logging.getLogger(name))
    assert handlers
    for handler in handlers:
        assert any(isinstance(f, MaskSecretsFilter) for f in handler.filters), (name, handler)
        assert isinstance(handler.formatter, JsonFormatter), (name, handler)


def test_each_record_is_one_json_line(emitted):
    logging.getLogger("accounts").warning("Server %s checked", "Acme-1")
    [line] = lines(emitted)
    assert line["level"] == "WARNING"
    assert line["logger"] == "accounts"
    assert line["message"] == "Server Acme-1 checked"
    assert line["time"].endswith("+00:00")


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        ("calling with key %s", SL_KEY),
        ("headers: Authorization: Bearer %s", TOKEN),
        ("headers: Authorization: Bearer %s", "opaque-bearer-value-1234"),
        ("GET /v2/servers?api_key=%s&x=1", "plainkey9876"),
        ('body {"ApiKey": "%s", "ServerId": 1}', "legacykey5555"),
        ('webhook {"SecretKey":"%s","Type":"Delivered"}', "whsecret4242"),
        ("marketing auth Authorization: Basic %s", "MTAwMDE6bWFya2V0aW5nLWtleQ=="),
        ("password=%s", "hunter2hunter2"),
        ("stored %s", Fernet(Fernet.generate_key()).encrypt(b"the key").decode()),
        ("MAILROOM_ENCRYPTION_KEYS=%s", Fernet.generate_key().decode()),
        ("bad key %s in settings", Fernet.generate_key().decode()),
        ("token %s shown once", TOKEN),
        ("dkim %s", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"),
    ],
)
def test_secrets_are_masked_in_the_message(emitted, message, secret):
    logging.getLogger("socketlabs").error(message, secret)
    output = emitted.getvalue()
    assert secret not in output
    assert secret[:12] not in output
    assert "••••" in output


def test_secrets_in_a_traceback_are_masked(emitted):
    try:
        raise ValueError(f"SocketLabs refused {SL_KEY} with Bearer {TOKEN}")
    except ValueError:
        logging.getLogger("accounts").exception("connection check failed")
    output = emitted.getvalue()
    [line] = lines(emitted)
    assert "Traceback" in line["exception"]
    assert "ValueError" in line["exception"]
    assert SL_KEY not in output
    assert TOKEN not in output


def test_secrets_in_an_already_formatted_traceback_are_masked(emitted):
    record = logging.LogRecord("accounts", logging.ERROR, __file__, 1, "failed", None, None)
    record.exc_text = f"Traceback (most recent call last):\nRuntimeError: key={SL_KEY}"
    logging.getLogger("accounts").handle(record)
    assert SL_KEY not in emitted.getvalue()


def test_secrets_in_stack_info_are_masked(emitted):
    api_key = SL_KEY  # noqa: F841  (a local in the frame; stack_info shows source lines only)
    logging.getLogger("accounts").warning("with stack %s", SL_KEY, stack_info=True)
    output = emitted.getvalue()
    assert SL_KEY not in output
    assert "stack" in lines(emitted)[0]


def test_a_broken_format_string_still_logs(emitted):
    logging.getLogger("accounts").warning("%d items for %s", "not a number", SL_KEY)
    output = emitted.getvalue()
    assert "items for" in output
    assert SL_KEY not in output


def test_ordinary_text_is_left_alone(emitted):
    text = "Server 10001 (Acme-1) connected; 1,234 messages; id=42; domain example.com"
    logging.getLogger("accounts").info(text)
    assert lines(emitted)[0]["message"] == text


def test_a_request_error_logged_by_django_is_masked(client, emitted, db):
    # Django logs 4xx/5xx with the path; a key pasted into a URL must not survive in the log.
    client.get(f"/no-such-page/?api_key={SL_KEY}")
    client.get(f"/no-such-page/{SL_KEY}/")
    output = emitted.getvalue()
    assert "Not Found" in output
    assert SL_KEY not in output
