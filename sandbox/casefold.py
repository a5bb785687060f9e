"""Case-insensitive access to request data (contract §8.2).

SocketLabs receives `serverId` from the Python SDK, `ServerId` from C# and `APIKey` in the
wild, so every key the sandbox reads is matched without regard to case, nested keys included.
Original keys are kept (only lookups fold case), so anything echoed back keeps the sender's spelling.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from django.http import QueryDict


class CIMap(Mapping[str, Any]):
    """A read-only mapping whose lookups ignore case; nested objects come back wrapped too."""

    __slots__ = ("_data", "_folded")

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = dict(data or {})
        # First spelling wins when a sender sends both `email` and `Email`.
        self._folded: dict[str, str] = {}
        for key in self._data:
            self._folded.setdefault(str(key).casefold(), key)

    def __getitem__(self, key: str) -> Any:
        original = self._folded.get(key.casefold())
        if original is None:
            raise KeyError(key)
        return wrap(self._data[original])

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.casefold() in self._folded

    def __repr__(self) -> str:
        return f"CIMap({self._data!r})"

    def first(self, *names: str, default: Any = None) -> Any:
        """The value of the first of `names` present (aliases such as `emailAddress` / `email`)."""
        for name in names:
            if name in self:
                return self[name]
        return default

    def raw(self) -> dict[str, Any]:
        """The underlying dict, keys as sent."""
        return self._data


def wrap(value: Any) -> Any:
    """Wrap dicts (and dicts inside lists) so lookups anywhere in a JSON tree ignore case."""
    if isinstance(value, CIMap):
        return value
    if isinstance(value, Mapping):
        return CIMap(value)
    if isinstance(value, list):
        return [wrap(item) for item in value]
    return value


def ci_get(data: Mapping[str, Any] | None, *names: str, default: Any = None) -> Any:
    """Look up the first of `names` in a plain dict without regard to case."""
    if not data:
        return default
    return CIMap(data).first(*names, default=default)


def query_get(query: QueryDict, name: str, default: str | None = None) -> str | None:
    """A query-string parameter matched without regard to case (`emailAddress`, `EmailAddress`)."""
    if name in query:
        return query.get(name, default)
    folded = name.casefold()
    for key in query:
        if key.casefold() == folded:
            return query.get(key, default)
    return default
