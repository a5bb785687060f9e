"""The path table is the one place paths live: every row is used, every name the client asks for exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import socketlabs.client
from socketlabs.paths import PATHS, Api

CLIENT_SOURCE = Path(socketlabs.client.__file__).read_text()
# The first argument of every plumbing call, and every PATHS["..."] lookup.
NAMES_IN_CLIENT = set(
    re.findall(r'\._(?:call|object|list|page|data|iter_pages|iter)\(\s*"([^"]+)"', CLIENT_SOURCE)
) | set(re.findall(r'PATHS\["([^"]+)"\]', CLIENT_SOURCE))


def test_every_name_the_client_uses_is_in_the_table() -> None:
    assert NAMES_IN_CLIENT - set(PATHS) == set()


def test_every_row_of_the_table_is_used_by_the_client() -> None:
    assert set(PATHS) - NAMES_IN_CLIENT == set()


@pytest.mark.parametrize("endpoint", PATHS.values(), ids=list(PATHS))
def test_each_row_is_well_formed(endpoint) -> None:
    assert endpoint.method in {"GET", "POST", "PUT", "DELETE"}
    assert endpoint.template == "" or endpoint.template.startswith("/")
    if endpoint.api is Api.V2 and endpoint.name != "servers.list":
        assert endpoint.template.startswith("/servers/{serverId}")
    if endpoint.method in {"GET", "PUT", "DELETE"}:
        assert endpoint.idempotent


def test_only_the_injection_post_has_an_unknown_outcome() -> None:
    assert [e.name for e in PATHS.values() if e.outcome_unknown] == ["inject"]
    assert PATHS["inject"].idempotent is False


def test_it_quotes_each_path_value_as_one_segment() -> None:
    path = PATHS["dkim.update"].path(serverId=1, domain="../x y")
    assert path == "/servers/1/dkim/..%2Fx%20y"


def test_it_names_a_missing_path_value() -> None:
    with pytest.raises(ValueError, match="domain"):
        PATHS["dkim.update"].path(serverId=1)
