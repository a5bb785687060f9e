"""Lenient parsing: any case, unknown keys kept, unreadable values never crash (§8.2, §8.3)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import socketlabs.models
from socketlabs.parsing import as_bool, as_date, as_datetime, as_int, build, ci_get

RECORDS = [
    obj
    for obj in vars(socketlabs.models).values()
    if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj is not socketlabs.models.Page
]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-05-01T10:00:03Z", datetime(2024, 5, 1, 10, 0, 3, tzinfo=UTC)),
        ("2023-06-12T10:04:56.3694682Z", datetime(2023, 6, 12, 10, 4, 56, 369468, tzinfo=UTC)),
        ("2022-01-01T07:00:00-05:00", datetime(2022, 1, 1, 7, tzinfo=timezone(timedelta(hours=-5)))),
        ("2024-05-01T10:00:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        (None, None),
        ("", None),
    ],
)
def test_it_reads_iso_timestamps(raw: str | None, expected: datetime | None) -> None:
    assert as_datetime(raw) == expected


@pytest.mark.parametrize("raw", ["yesterday", "2024-13-01T00:00:00Z", "Tue, 14 Aug 2018 16:35:37 GMT"])
def test_it_refuses_what_is_not_an_iso_timestamp(raw: str) -> None:
    with pytest.raises(ValueError):
        as_datetime(raw)


def test_it_reads_numbers_booleans_and_dates_leniently() -> None:
    assert as_int("42") == 42 and as_int(42.0) == 42
    with pytest.raises((TypeError, ValueError)):
        as_int(True)
    with pytest.raises(ValueError):
        as_int(1.5)
    assert as_bool("TRUE") is True and as_bool(0) is False
    with pytest.raises(ValueError):
        as_bool("maybe")
    assert as_date("2024-05-01T23:00:00Z") == date(2024, 5, 1)


def test_it_finds_keys_in_any_case() -> None:
    assert ci_get({"EmailAddress": "a"}, "emailaddress") == "a"
    assert ci_get(["not", "a", "dict"], "x", "default") == "default"


def test_it_keeps_unknown_and_unreadable_values_in_extra() -> None:
    record = build(
        socketlabs.models.Suppression, {"EMAILADDRESS": "a@b.c", "suppressionLastUpdate": 12, "new": {"x": 1}}
    )

    assert record.email_address == "a@b.c"
    assert record.suppression_last_update is None
    assert record.extra == {"suppressionLastUpdate": 12, "new": {"x": 1}}


def test_records_are_frozen() -> None:
    record = build(socketlabs.models.ServerInfo, {"serverId": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.name = "x"  # type: ignore[misc]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=3),
    max_leaves=15,
)


@settings(max_examples=60, deadline=None)
@pytest.mark.parametrize("record_class", RECORDS, ids=[r.__name__ for r in RECORDS])
@given(data=st.data())
def test_it_never_crashes_on_any_json(record_class: type, data: Any) -> None:
    keys = []
    for fld in dataclasses.fields(record_class):
        named = fld.metadata.get("key") or fld.name
        keys.extend([named] if isinstance(named, str) else named)
    camel = [k.split("_")[0] + "".join(p.title() for p in k.split("_")[1:]) for k in keys]
    payload = data.draw(
        st.dictionaries(st.sampled_from(camel) | st.text(max_size=8), json_values, max_size=6) | json_values
    )
    record = build(record_class, payload)
    assert isinstance(record, record_class)
