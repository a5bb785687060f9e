"""Structured JSON logs with secrets masked before they leave the process."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

# API keys (SocketLabs 61-char keys and anything after key=/secret=/token=/password=),
# Fernet tokens, bearer headers.
_PATTERNS = [
    re.compile(r"\b[A-Za-z0-9]{20}\.[A-Za-z0-9]{40}\b"),
    re.compile(r"(?i)(bearer\s+)[^\s\"']+"),
    re.compile(r"(?i)((?:api[_-]?key|secret[_-]?key|secret|token|password|apikey)[\"']?\s*[:=]\s*[\"']?)[^\s\"',&}]+"),
    re.compile(r"gAAAAA[A-Za-z0-9_\-=]{20,}"),
]


def mask_text(text: str) -> str:
    for pattern in _PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + "••••", text)
        else:
            text = pattern.sub("••••", text)
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
        return json.dumps(payload, ensure_ascii=False)
