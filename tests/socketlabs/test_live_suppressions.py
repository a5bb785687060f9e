"""Suppressions S1–S5, client → sandbox over real HTTP, checked against the sandbox's rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

import socketlabs
from sandbox.models import SandboxSuppression
from socketlabs import SocketLabsClient
from tests.sandbox.conftest import SandboxKeys
from tests.socketlabs.conftest import LIVE_MARKS
from tests.socketlabs.test_live_coverage import covers

pytestmark = LIVE_MARKS

DAY = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def seed(keys: SandboxKeys) -> None:
    """23 entries over 3 domains, 3 reasons and 5 days (written straight into the sandbox)."""
    reasons = ["Bounce", "Complaint", "Unsubscribe"]
    domains = ["example.org", "example.net", "other.test"]
    SandboxSuppression.objects.bulk_create(
        SandboxSuppression(
            server=keys.server,
            email_address=f"user{n:02d}@{domains[n % 3]}",
            reason=reasons[n % 3 if n % 2 else 0],
            source="seed",
            last_update=DAY + timedelta(days=n % 5, minutes=n),
        )
        for n in range(23)
    )


@covers("suppressions.check", "suppressions.add", "suppressions.remove")
def test_it_checks_adds_and_removes_one_address(live_client: SocketLabsClient, live_keys: SandboxKeys) -> None:
    assert live_client.suppressions.check("ann@example.net") is None

    added = live_client.suppressions.add("Ann@Example.net", reason="Unsubscribe")

    row = SandboxSuppression.objects.get(server=live_keys.server)
    assert (row.email_address, row.reason, row.source) == ("ann@example.net", "Unsubscribe", "api")
    assert (added.email_address, added.reason, added.source) == ("ann@example.net", "Unsubscribe", "api")
    assert added.suppression_last_update == row.last_update
    assert live_client.suppressions.check("ann@example.net") == added
    assert live_client.suppressions.add("bo@example.net").reason == "CustomerRequest"  # the sandbox's default

    live_client.suppressions.remove("ann@example.net")

    assert list(SandboxSuppression.objects.values_list("email_address", flat=True)) == ["bo@example.net"]
    assert live_client.suppressions.check("ann@example.net") is None
    with pytest.raises(socketlabs.NotFoundError) as caught:
        live_client.suppressions.remove("ann@example.net")
    assert caught.value.permanent is True
    assert caught.value.message == "ann@example.net is not on the suppression list of server 17001."


@covers("suppressions.search")
def test_it_searches_with_filters_and_pages_through_every_match(
    live_client: SocketLabsClient, live_keys: SandboxKeys
) -> None:
    seed(live_keys)
    rows = SandboxSuppression.objects.filter(server=live_keys.server)

    every = list(live_client.suppressions.iter_search(page_size=5, sort_field="emailAddress", sort_direction="asc"))

    assert [s.email_address for s in every] == sorted(rows.values_list("email_address", flat=True))  # 5 pages
    assert len(every) == 23
    first = live_client.suppressions.search(page_size=5, page_number=1, sort_field="emailAddress", sort_direction="asc")
    assert (first.total, first.page_number, len(first.items)) == (23, 1, 5)
    assert list(first.items) == every[5:10]
    stored = rows.get(email_address=every[0].email_address)
    assert (every[0].reason, every[0].source, every[0].suppression_last_update) == (
        stored.reason,
        "seed",
        stored.last_update,
    )

    by_domain = list(live_client.suppressions.iter_search(domain="example.net", page_size=3))
    assert sorted(s.email_address for s in by_domain) == sorted(
        rows.filter(email_address__endswith="@example.net").values_list("email_address", flat=True)
    )
    by_reason = list(live_client.suppressions.iter_search(reason="Complaint", page_size=2))
    assert {s.reason for s in by_reason} == {"Complaint"}
    assert len(by_reason) == rows.filter(reason="Complaint").count() > 2
    by_prefix = list(live_client.suppressions.iter_search(email_address="user1", page_size=4))
    assert sorted(s.email_address for s in by_prefix) == sorted(
        rows.filter(email_address__startswith="user1").values_list("email_address", flat=True)
    )
    start, end = date(2026, 3, 11), date(2026, 3, 12)
    in_range = list(live_client.suppressions.iter_search(start_date=start, end_date=end, page_size=3))
    assert sorted(s.email_address for s in in_range) == sorted(
        rows.filter(last_update__date__gte=start, last_update__date__lte=end).values_list("email_address", flat=True)
    )
    assert all(start <= s.suppression_last_update.date() <= end for s in in_range if s.suppression_last_update)
    newest_first = list(live_client.suppressions.iter_search(page_size=10, sort_direction="dsc"))
    assert [s.suppression_last_update for s in newest_first] == sorted(
        (s.suppression_last_update for s in newest_first), key=lambda d: d or DAY, reverse=True
    )


@covers("suppressions.download")
def test_it_downloads_the_whole_list_as_streamed_csv_rows(
    live_client: SocketLabsClient, live_keys: SandboxKeys
) -> None:
    seed(live_keys)
    live_client.suppressions.add("late@example.net", reason="Bounce")  # one through the API too

    stream = live_client.suppressions.download()

    assert isinstance(stream, Iterator)  # rows are read off the connection as they are consumed
    header = next(stream)
    records = list(stream)
    assert header == ["serverId", "suppressionLastUpdate", "reason", "emailAddress", "source"]
    address_at = header.index("emailAddress")
    stored = {s.email_address: s for s in SandboxSuppression.objects.filter(server=live_keys.server)}
    assert sorted(r[address_at] for r in records) == sorted(stored)  # the address in its own (4th) column
    for record in records:
        entry = stored[record[address_at]]
        assert (record[0], record[header.index("reason")], record[header.index("source")]) == (
            "17001",
            entry.reason,
            entry.source,
        )
    newest = [datetime.fromisoformat(r[1].replace("Z", "+00:00")) for r in records]
    assert newest == sorted(newest, reverse=True)  # the client asks for newest first
