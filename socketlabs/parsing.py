"""Lenient JSON → frozen dataclass parsing (contract §8.2, §8.3).

* Keys are matched without regard to case (`serverId`, `ServerId`, `SERVERID` all work).
* Unknown keys are kept in the dataclass's `extra` dict, so nothing SocketLabs adds is lost.
* A value that does not convert (a date that is not a date, a number that is not a number)
  falls back to the field's default and its raw value is kept in `extra`: parsing never crashes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

Converter = Callable[[Any], Any]


def ci_get(data: object, key: str, default: Any = None) -> Any:
    """`data[key]` matched case-insensitively; `default` when absent or `data` is not a mapping."""
    if not isinstance(data, Mapping):
        return default
    if key in data:
        return data[key]
    folded = key.casefold()
    for k, v in data.items():
        if isinstance(k, str) and k.casefold() == folded:
            return v
    return default


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# --- converters: each raises ValueError/TypeError on a value it cannot read ------------------
def as_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise TypeError("not a string")
    return str(value)


def as_addresses(value: Any) -> tuple[str, ...]:
    """Recipients as plain addresses, from `"a@x, b@y"` or `[{emailAddress, friendlyName}, …]`."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list | tuple):
        found = (ci_get(item, "emailAddress") if isinstance(item, Mapping) else item for item in value)
        return tuple(str(address) for address in found if isinstance(address, str) and address)
    return ()


def as_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("not a whole number")
        return int(value)
    return int(str(value).strip())


def as_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    return float(value)


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def as_bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def as_datetime(value: Any) -> datetime | None:
    """ISO-8601 (`Z` or offset, up to 7 fractional digits); a naive value is taken as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        # .NET writes 7 fractional digits; older Pythons accept at most 6.
        if "." in text:
            head, _, tail = text.partition(".")
            digits = len(tail) - len(tail.lstrip("0123456789"))
            if digits > 6:
                tail = tail[:6] + tail[digits:]
            text = f"{head}.{tail}"
        parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def as_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if len(text) > 10:
        parsed = as_datetime(text)
        return parsed.date() if parsed else None
    return date.fromisoformat(text)


def tuple_of(convert: Converter) -> Converter:
    def convert_all(value: Any) -> tuple[Any, ...]:
        if value is None:
            return ()
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
            raise TypeError("not a list")
        return tuple(convert(item) for item in value)

    return convert_all


def record[T](cls: type[T]) -> Callable[[Any], T]:
    """Converter for a nested object parsed into another record dataclass."""

    def convert(value: Any) -> T:
        if not isinstance(value, Mapping):
            raise TypeError("not an object")
        return build(cls, value)

    return convert


def records[T](cls: type[T]) -> Converter:
    return tuple_of(record(cls))


# --- dataclass fields and the builder ---------------------------------------------------------
def f(
    default: Any = None,
    *,
    key: str | tuple[str, ...] | None = None,
    conv: Converter | None = None,
    secret: bool = False,
    factory: Callable[[], Any] | None = None,
) -> Any:
    """A record field: `key` is the JSON name, or a tuple of accepted names (default: the camelCase
    of the attribute),
    `conv` converts the raw value, `secret=True` keeps it out of `repr()` (and so out of logs)."""
    metadata = {"key": key, "conv": conv}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata, repr=not secret)
    return dataclasses.field(default=default, metadata=metadata, repr=not secret)


def extra_field() -> Any:
    """Unknown keys of the answer, as received. Not hashed, not shown in repr (it may hold anything)."""
    return dataclasses.field(default_factory=dict, hash=False, repr=False, metadata={"extra": True})


def build[T](cls: type[T], data: object) -> T:
    """Build record `cls` from a JSON object, leniently (see the module docstring)."""
    if not isinstance(data, Mapping):
        data = {}
    folded: dict[str, str] = {}
    for k in data:
        if isinstance(k, str):
            folded.setdefault(k.casefold(), k)
    kwargs: dict[str, Any] = {}
    used: set[str] = set()
    for fld in dataclasses.fields(cls):  # type: ignore[arg-type]
        if fld.metadata.get("extra"):
            continue
        keys = fld.metadata.get("key") or camel(fld.name)
        # A field may name alternatives (a tuple): the first one present wins.
        candidates = (keys,) if isinstance(keys, str) else keys
        original = next((folded[k.casefold()] for k in candidates if k.casefold() in folded), None)
        if original is None:
            continue
        raw = data[original]
        convert = fld.metadata.get("conv")
        try:
            value = convert(raw) if convert else raw
        except (ValueError, TypeError, OverflowError):
            continue  # keep the default; the raw value stays in `extra`
        if value is None and (fld.default is not dataclasses.MISSING or fld.default_factory is not dataclasses.MISSING):
            # An explicit null takes the field's default (e.g. "" for a name, () for a list).
            used.add(original)
            continue
        kwargs[fld.name] = value
        used.add(original)
    extra = {k: v for k, v in data.items() if k not in used}
    if any(fld.metadata.get("extra") for fld in dataclasses.fields(cls)):  # type: ignore[arg-type]
        kwargs["extra"] = extra
    return cls(**kwargs)
