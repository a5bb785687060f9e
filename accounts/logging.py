"""Structured JSON logs with secrets masked before they leave the process.

`MaskSecretsFilter` sits on every configured handler (settings.LOGGING). It rewrites the
message, the arguments, the traceback and the stack of each record, so a key that reaches a
log call by accident (an exception message, a request dump) is replaced by `••••`.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

MASK = "••••"

# Names whose value is a secret, in `name=value`, `name: value` and JSON `"name": "value"` forms.
_SECRET_NAMES = (
    r"api[_-]?key|apikey|secret[_-]?key|private[_-]?key|validation[_-]?key|access[_-]?key|"
    r"client[_-]?secret|secret|token|password|passwd|pwd"
)

# Patterns with a group keep that group (the label) and mask what follows.
_PATTERNS = [
    # PEM private keys (DKIM), whole block.
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL),
    # SocketLabs API keys: 20 characters, a dot, 40 characters (61 in all).
    re.compile(r"\b[A-Za-z0-9]{20}\.[A-Za-z0-9]{40}\b"),
    # Authorization headers: bearer tokens and HTTP Basic (the Marketing API key is the password).
    re.compile(r"(?i)(\bbearer\s+)[^\s\"',]+"),
    re.compile(r"(?i)(\bbasic\s+)[A-Za-z0-9+/=]{8,}"),
    re.compile(rf"(?i)((?:{_SECRET_NAMES})[\"']?\s*[:=]\s*[\"']?)[^\s\"',&}}]+"),
    # Mailroom API tokens, Fernet tokens (secrets at rest) and Fernet keys.
    re.compile(r"\bmr_[A-Za-z0-9_\-]{20,}"),
    re.compile(r"gAAAAA[A-Za-z0-9_\-=]{20,}"),
    re.compile(r"(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]{43}="),
]


def mask_text(text: str) -> str:
    for pattern in _PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        else:
            text = pattern.sub(MASK, text)
    return text


class MaskSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = str(record.msg)
        record.msg = mask_text(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            payload["exception"] = record.exc_text
        elif record.exc_info:
            payload["exception"] = mask_text(self.formatException(record.exc_info))
        if record.stack_info:
            payload["stack"] = mask_text(record.stack_info)
        return json.dumps(payload, ensure_ascii=False)
