"""A server's time zone as an object: nightly jobs and "today" use it; an unknown name falls back to UTC."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from accounts.models import Server


def test_the_zone_is_the_stored_time_zone() -> None:
    assert Server(time_zone="Pacific/Auckland").zone == ZoneInfo("Pacific/Auckland")


def test_an_unknown_or_empty_name_is_utc() -> None:
    assert Server(time_zone="Mars/Olympus_Mons").zone == ZoneInfo("UTC")
    assert Server(time_zone="").zone == ZoneInfo("UTC")
