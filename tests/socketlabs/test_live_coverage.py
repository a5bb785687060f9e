"""Every row of `socketlabs.paths.PATHS` has a live test (client → sandbox over real HTTP).

Live tests declare the endpoints they exercise with `@covers("servers.get", …)`; the
`make_live_client` fixture records the endpoints a test's clients really call and fails the test
at teardown if a declared one was never called. This module adds the other half: a path in the
table that no live test declares fails here, so a new endpoint cannot ship without one.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any, TypeVar

import tests.socketlabs
from socketlabs.paths import PATHS

F = TypeVar("F", bound=Callable[..., Any])


def covers(*names: str) -> Callable[[F], F]:
    """Declare the PATHS rows a live test exercises (checked against the table and at run time)."""
    unknown = [name for name in names if name not in PATHS]
    if unknown:
        raise ValueError(f"not in socketlabs.paths.PATHS: {unknown}")

    def mark(func: F) -> F:
        func.covers_paths = tuple(names)  # type: ignore[attr-defined]
        return func

    return mark


def declared_paths() -> dict[str, list[str]]:
    """{path name: [module.test, …]} over every tests/socketlabs/test_live_*.py module."""
    found: dict[str, list[str]] = {}
    for info in pkgutil.iter_modules(tests.socketlabs.__path__):
        if not info.name.startswith("test_live_"):
            continue
        module = importlib.import_module(f"tests.socketlabs.{info.name}")
        for attr, value in vars(module).items():
            if attr.startswith("test_") and callable(value):
                for name in getattr(value, "covers_paths", ()):
                    found.setdefault(name, []).append(f"{info.name}.{attr}")
    return found


def test_every_path_in_the_table_has_a_live_test() -> None:
    declared = declared_paths()
    missing = sorted(set(PATHS) - set(declared))
    assert not missing, f"paths with no live test against the sandbox: {missing}"


def test_it_refuses_to_declare_a_path_that_is_not_in_the_table() -> None:
    try:
        covers("servers.list", "servers.teleport")
    except ValueError as exc:
        assert "servers.teleport" in str(exc)
    else:  # pragma: no cover - the failure this test exists for
        raise AssertionError("covers() accepted an unknown path")
