"""Typed custom-field values: text from a CSV cell, a form or the API → the value stored in JSON.

Stored forms (what `Contact.custom` holds and what segments compare against):

* text — the trimmed text (at most `MAX_TEXT` characters);
* number — a JSON number: an int when whole, else a float;
* date — "YYYY-MM-DD";
* boolean — true / false;
* choice — one of the field's choices, spelled as the field spells it.

An empty cell means "no value" (the key is absent). Every converter raises `InvalidValue` with
a reason in plain words. Converters are built once per field (`converter_for`) because an import
calls them millions of times.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from marketing.models import FieldType

MAX_TEXT = 500
MAX_NAME = 100
MAX_NUMBER = 1e15

TRUE_WORDS = frozenset({"true", "yes", "y", "1", "on", "x", "t"})
FALSE_WORDS = frozenset({"false", "no", "n", "0", "off", "f"})

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_SLASH_DATE = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})")
_KEY_JUNK = re.compile(r"[^a-z0-9]+")

Value = str | int | float | bool
Converter = Callable[[str], Value | None]


class InvalidValue(ValueError):
    """The text cannot be stored in this field; the message says why."""


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_text(raw: str) -> str | None:
    text = raw.strip()
    if not text:
        return None
    if len(text) > MAX_TEXT:
        raise InvalidValue(f"is {len(text)} characters long; at most {MAX_TEXT} fit")
    return text


def parse_number(raw: str) -> int | float | None:
    text = raw.strip()
    if not text:
        return None
    try:
        # Fast path: most numbers in a file are whole.
        return _checked_number(int(text), text)
    except ValueError:
        pass
    cleaned = text.replace(" ", "").replace("\u00a0", "")
    if _THOUSANDS.fullmatch(cleaned):
        cleaned = cleaned.replace(",", "")  # thousands separators: "1,234,567.5"
    elif cleaned.count(",") == 1 and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")  # a decimal comma: "12,5"
    if not _NUMBER.fullmatch(cleaned):
        raise InvalidValue(f"“{_short(text)}” is not a number")
    number = float(cleaned)
    if number.is_integer() and abs(number) < 2**53:
        return _checked_number(int(number), text)
    return _checked_number(number, text)


def _checked_number(number: int | float, text: str) -> int | float:
    if isinstance(number, float) and not math.isfinite(number):
        raise InvalidValue(f"“{_short(text)}” is not a number")
    if abs(number) >= MAX_NUMBER:
        raise InvalidValue(f"“{_short(text)}” is too large (at most 15 digits)")
    return number


def parse_date(raw: str) -> str | None:
    text = raw.strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            return date.fromisoformat(text).isoformat()
        slash = _SLASH_DATE.fullmatch(text)
        if slash:
            return date(int(slash[1]), int(slash[2]), int(slash[3])).isoformat()
        if len(text) > 10 and text[4] == "-" and text[10] in "T ":
            return datetime.fromisoformat(text).date().isoformat()
    except ValueError:
        pass
    raise InvalidValue(f"“{_short(text)}” is not a date: write dates as YYYY-MM-DD (e.g. 2024-03-31)")


def parse_boolean(raw: str) -> bool | None:
    text = raw.strip().lower()
    if not text:
        return None
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise InvalidValue(f"“{_short(raw.strip())}” is not yes/no (use true/false, yes/no or 1/0)")


def choice_parser(choices: Sequence[str]) -> Converter:
    canonical = {str(c).strip().casefold(): str(c) for c in choices}
    shown = ", ".join(str(c) for c in choices[:10]) + (", …" if len(choices) > 10 else "")

    def parse_choice(raw: str) -> str | None:
        text = raw.strip()
        if not text:
            return None
        found = canonical.get(text.casefold())
        if found is None:
            raise InvalidValue(f"“{_short(text)}” is not one of the choices ({shown})")
        return found

    return parse_choice


def converter_for(field_type: str, choices: Sequence[str] = ()) -> Converter:
    if field_type == FieldType.NUMBER:
        return parse_number
    if field_type == FieldType.DATE:
        return parse_date
    if field_type == FieldType.BOOLEAN:
        return parse_boolean
    if field_type == FieldType.CHOICE:
        return choice_parser(choices)
    return parse_text


def parse_for_field(field: Any, raw: Any) -> Value | None:
    """Any input (CSV text, form text, a JSON value from the API) → the stored value."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        if field.type == FieldType.BOOLEAN:
            return raw
        raw = "true" if raw else "false"
    elif isinstance(raw, int | float):
        if field.type == FieldType.NUMBER:
            return _checked_number(int(raw) if float(raw).is_integer() and abs(raw) < 2**53 else raw, str(raw))
        raw = str(raw)
    elif not isinstance(raw, str):
        raise InvalidValue("must be text, a number, true/false or null")
    return converter_for(field.type, field.choices)(raw)


def display(value: Any) -> str:
    """A stored value as a person reads it (and as exports write it)."""
    if value is None:
        return ""
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(value)


def export_value(value: Any) -> str:
    """A stored value in an export: booleans as true/false so the file imports back unchanged."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def infer_type(samples: Sequence[str]) -> str:
    """The type a new field should get from the first values of its column."""
    values = [s.strip() for s in samples if s and s.strip()]
    if not values:
        return FieldType.TEXT
    for field_type, parse in (
        (FieldType.BOOLEAN, parse_boolean),
        (FieldType.NUMBER, parse_number),
        (FieldType.DATE, parse_date),
    ):
        if field_type == FieldType.BOOLEAN and all(v.lower() in ("0", "1") for v in values):
            continue  # a column of 0/1 is as likely a count as a flag
        try:
            for value in values:
                parse(value)
        except InvalidValue:
            continue
        return field_type
    return FieldType.TEXT


def key_for(label: str) -> str:
    """A field key from a label: "Signup Date" → "signup_date" (letters, digits, underscores)."""
    key = _KEY_JUNK.sub("_", label.strip().lower()).strip("_")
    if not key:
        key = "field"
    if key[0].isdigit():
        key = "f_" + key
    return key[:50]
