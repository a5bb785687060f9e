"""Report pulls (issue 9, R22): idempotent days, backfill, the nightly schedule across time zones, retries.

Pulls read the sandbox (the local SocketLabs) over real HTTP from `live_server`; only retry sequences the
sandbox cannot produce (503, 429, 401 on demand) use a made-up remote host through `responses`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
import responses
import time_machine
from django.utils import timezone

import socketlabs
from accounts import services as account_services
from accounts.models import AuditLog, Server
from reporting import pulls
from reporting.models import (
    PullStatus,
    PullTrigger,
    ReportBreakdown,
    ReportDay,
    ReportPull,
    ReportSettings,
    StreamScoreDay,
)
from sandbox import reports as sandbox_reports
from sandbox.models import EventType, SandboxEvent, SandboxMessage, SandboxServer
from tests.e2e.conftest import pytest_runtest_teardown  # noqa: F401 - fast DELETE flush after live-server tests
from tests.sandbox.conftest import SandboxKeys, make_sandbox_server

FAKE_API = "http://socketlabs.test/v2"
DELIVERED = {"Response": "250 2.0.0 OK"}
PERMANENT = {"FailureType": "Permanent", "FailureCode": 2001, "Reason": "550 5.1.1 user unknown"}
SUPPRESSED = {"FailureType": "Suppressed", "FailureCode": 9999, "Reason": "NA"}
LONG_URL = "https://example.com/" + "x" * 300


# --- helpers shared with the page and command tests -------------------------------------------------------
@dataclass
class Linked:
    server: Server
    keys: SandboxKeys

    @property
    def sandbox(self) -> SandboxServer:
        return self.keys.server


def link_server(server: Server, live_url: str, sandbox_id: int = 17001) -> Linked:
    keys = make_sandbox_server(server_id=sandbox_id, name=f"Sandbox {sandbox_id}", account_id=sandbox_id + 1000)
    server.socketlabs_id = sandbox_id
    server.api_url = f"{live_url}/sandbox/api/v2"
    server.api_key = keys.api_key
    server.save()
    return Linked(server=server, keys=keys)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def send(keys: SandboxKeys, to: str, when: datetime, *, mailing: str = "") -> SandboxMessage:
    return SandboxMessage.objects.create(
        server=keys.server,
        transaction_receipt="r-" + to,
        message_index=0,
        message_id=f"msg-{to}-{when:%m%d%H%M}",
        mailing_id=mailing,
        from_address="shop@example.com",
        to=[{"emailAddress": to, "friendlyName": ""}],
        subject="Hi",
        created_on=when,
    )


def event(message: SandboxMessage, kind: str, when: datetime, payload: dict[str, Any] | None = None) -> SandboxEvent:
    return SandboxEvent.objects.create(
        server=message.server,
        outbound=message,
        type=kind,
        address=message.to[0]["emailAddress"],
        message_id=message.message_id,
        mailing_id=message.mailing_id,
        due_at=when,
        happened=True,
        payload=payload or {},
    )


def seed_day(keys: SandboxKeys, day: date, *, scale: int = 1) -> None:
    """Traffic on one UTC day (hours 00 and 23 test the day's edges): every kind, dimension and a long URL."""
    for i in range(2 * scale):
        m = send(keys, f"ann{i}@x.com", at(day, 0, i), mailing="spring")
        event(m, EventType.DELIVERED, at(day, 0, 5 + i), DELIVERED)
        event(m, EventType.TRACKING, at(day, 1), {"TrackingType": "Open"})
        event(m, EventType.TRACKING, at(day, 2), {"TrackingType": "Click", "Url": "https://example.com/a"})
    m = send(keys, "bob@y.org", at(day, 9), mailing="summer")
    event(m, EventType.DELIVERED, at(day, 9, 1), DELIVERED)
    event(m, EventType.COMPLAINT, at(day, 10), {"FblType": "abuse"})
    event(m, EventType.TRACKING, at(day, 11), {"TrackingType": "Click", "Url": LONG_URL})
    event(m, EventType.TRACKING, at(day, 12), {"TrackingType": "Unsubscribe"})
    m = send(keys, "cy@z.net", at(day, 22))
    event(m, EventType.FAILED, at(day, 23, 59), PERMANENT)
    m = send(keys, "dee@z.net", at(day, 22, 30))
    event(m, EventType.FAILED, at(day, 23, 30), SUPPRESSED)


def snapshot(server: Server) -> dict[str, Any]:
    return {
        "days": sorted(ReportDay.objects.filter(server=server).values_list("day", "kind", "total", "unique")),
        "breakdowns": sorted(
            ReportBreakdown.objects.filter(server=server).values_list("day", "kind", "dimension", "key", "count")
        ),
        "scores": sorted(StreamScoreDay.objects.filter(server=server).values_list("day", "score", "rating")),
    }


def run(server: Server, first: date, last: date | None = None, trigger: str = PullTrigger.MANUAL) -> ReportPull:
    pull = pulls.create_pull(server, first, last or first, trigger, enqueue=False)
    pulls.run_pull(pull.pk)
    pull.refresh_from_db()
    return pull


def fake_remote(server: Server, monkeypatch: pytest.MonkeyPatch, *, max_attempts: int = 5) -> Callable[[], list[float]]:
    """Point `server` at a made-up host; the client keeps its R9 retries but records its sleeps instead."""
    server.api_url = FAKE_API
    server.save()
    slept: list[float] = []
    registry = socketlabs.BreakerRegistry()
    monkeypatch.setattr(
        pulls,
        "remote_client",
        lambda s: account_services.client_for(s, max_attempts=max_attempts, sleep=slept.append, breakers=registry),
    )
    return lambda: slept


def empty_answers(rsps: responses.RequestsMock) -> None:
    """What SocketLabs answers for a day without traffic, for every path a pull reads."""
    rsps.get(re.compile(rf"{FAKE_API}/servers/\d+/reports/\w+/overview.*"), json={"data": {"total": 0, "unique": 0}})
    rsps.get(re.compile(rf"{FAKE_API}/servers/\d+/reports/\w+/aggregate.*"), json={"data": [], "total": 0})
    rsps.get(re.compile(rf"{FAKE_API}/servers/\d+/reports/\w+/list.*"), json={"data": [], "total": 0})
    rsps.get(re.compile(rf"{FAKE_API}/servers/\d+/streamscore.*"), json={"data": {"score": 100, "rating": "Good"}})


@pytest.fixture
def linked(live_server: Any, settings: Any, server: Server, short_db_sessions: None) -> Linked:
    settings.SANDBOX_ENABLED = True
    return link_server(server, live_server.url)


@pytest.fixture
def alerts_seen(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, list[date]]]:
    calls: list[tuple[int, list[date]]] = []
    monkeypatch.setattr(pulls.alerts, "evaluate_days", lambda server, days: calls.append((server.pk, list(days))))
    return calls


TODAY = timezone.now().astimezone(UTC).date()
D1 = TODAY - timedelta(days=3)
D2 = TODAY - timedelta(days=2)


# --- pulling days -----------------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_it_stores_what_socketlabs_reports_for_the_day_and_a_second_pull_changes_nothing(
    linked: Linked, alerts_seen: list[tuple[int, list[date]]]
) -> None:
    seed_day(linked.keys, D1)
    seed_day(linked.keys, D2, scale=3)  # the next day must not leak into D1

    first = run(linked.server, D1)

    assert first.status == PullStatus.DONE and first.days_done == first.days_total == 1 and not first.error
    start, end = at(D1, 0), at(D1 + timedelta(days=1), 0)
    totals = {k: (t, u) for _, k, t, u in snapshot(linked.server)["days"]}
    for kind, remote, tracking in pulls.KINDS:
        expected = sandbox_reports.overview(linked.sandbox, remote, start, end, tracking_type=tracking)
        assert totals[kind] == (expected["total"], expected["unique"]), kind
    assert totals == {
        "delivered": (3, 3),
        "failed": (2, 2),
        "complaints": (1, 1),
        "opens": (2, 2),
        "clicks": (3, 3),
        "unsubscribes": (1, 1),
    }
    rows = {(k, d, key): c for _, k, d, key, c in snapshot(linked.server)["breakdowns"]}
    assert rows[("delivered", "domain", "x.com")] == 2 and rows[("delivered", "domain", "y.org")] == 1
    assert rows[("delivered", "mailing", "spring")] == 2 and rows[("delivered", "mailing", "summer")] == 1
    assert rows[("failed", "mailing", "")] == 2
    assert rows[("failed", "failure_code", "2001")] == 1 and rows[("failed", "failure_code", "9999")] == 1
    assert rows[("failed", "reason", "550 5.1.1 user unknown")] == 1 and rows[("failed", "reason", "NA")] == 1
    assert rows[("clicks", "url", "https://example.com/a")] == 2
    assert rows[("clicks", "url", LONG_URL[:255])] == 1  # cut to the column, still counted
    # StreamScore of the day as the sandbox defines it: 1 real failure of 4 processed, 1 complaint of 3 delivered.
    expected_score = sandbox_reports.score_for(3, 1, 1)
    assert snapshot(linked.server)["scores"] == [(D1, expected_score, sandbox_reports.rating_for(expected_score))]
    assert alerts_seen == [(linked.server.pk, [D1])]

    before = snapshot(linked.server)
    ids = sorted(ReportDay.objects.values_list("pk", flat=True))
    again = run(linked.server, D1)

    assert again.status == PullStatus.DONE
    assert snapshot(linked.server) == before
    assert sorted(ReportDay.objects.values_list("pk", flat=True)) == ids  # updated in place, not re-added


@pytest.mark.django_db(transaction=True)
def test_a_re_pull_replaces_the_day_so_keys_that_went_away_go_away(linked: Linked) -> None:
    seed_day(linked.keys, D1)
    run(linked.server, D1)
    SandboxEvent.objects.filter(server=linked.sandbox, payload__Url=LONG_URL).delete()

    run(linked.server, D1)

    urls = ReportBreakdown.objects.filter(server=linked.server, dimension="url")
    assert list(urls.values_list("key", "count")) == [("https://example.com/a", 2)]
    assert ReportDay.objects.get(server=linked.server, day=D1, kind="clicks").total == 2


@pytest.mark.django_db(transaction=True)
def test_it_back_fills_a_range_day_by_day_and_leaves_other_servers_alone(
    linked: Linked, other_server: Server, live_server: Any, alerts_seen: list[tuple[int, list[date]]]
) -> None:
    other = link_server(other_server, live_server.url, sandbox_id=17002)
    seed_day(linked.keys, D1)
    seed_day(linked.keys, D2, scale=2)
    seed_day(other.keys, D1, scale=5)
    days = [D1 - timedelta(days=1), D1, D2]

    pull = run(linked.server, days[0], days[-1], PullTrigger.BACKFILL)

    assert (pull.status, pull.days_done, pull.days_total) == (PullStatus.DONE, 3, 3)
    delivered = dict(ReportDay.objects.filter(server=linked.server, kind="delivered").values_list("day", "total"))
    assert delivered == {days[0]: 0, D1: 3, D2: 5}
    assert not ReportDay.objects.filter(server=other.server).exists()
    assert not StreamScoreDay.objects.filter(server=linked.server, day=days[0]).exists()  # no traffic, no score
    assert alerts_seen == [(linked.server.pk, days)]


@pytest.mark.django_db(transaction=True)
def test_a_pull_that_ran_out_of_time_goes_on_from_the_day_it_reached(linked: Linked) -> None:
    seed_day(linked.keys, D1)
    seed_day(linked.keys, D2)
    pull = pulls.create_pull(linked.server, D1, D2, PullTrigger.BACKFILL, enqueue=False)

    assert pulls.run_pull(pull.pk, budget_seconds=1e-9) == "more"
    pull.refresh_from_db()
    assert (pull.status, pull.days_done) == (PullStatus.QUEUED, 1)
    assert pulls.run_pull(pull.pk) == "done"
    pull.refresh_from_db()
    assert pull.days_done == 2
    assert set(ReportDay.objects.filter(server=linked.server).values_list("day", flat=True)) == {D1, D2}


@pytest.mark.django_db(transaction=True)
def test_a_pull_whose_worker_died_is_taken_over_and_goes_on_from_the_last_stored_day(linked: Linked) -> None:
    seed_day(linked.keys, D1)
    seed_day(linked.keys, D2)
    pull = pulls.create_pull(linked.server, D1, D2, PullTrigger.BACKFILL, enqueue=False)
    # A worker claimed it, stored D1 (here: only its progress), then died: its lease ran out.
    ReportPull.objects.filter(pk=pull.pk).update(
        status=PullStatus.RUNNING, days_done=1, next_attempt_at=timezone.now() - timedelta(seconds=1)
    )

    assert pulls.due_pull_ids() == [pull.pk]
    assert pulls.run_pull(pull.pk) == "done"
    assert set(ReportDay.objects.filter(server=linked.server).values_list("day", flat=True)) == {D2}


@pytest.mark.django_db(transaction=True)
def test_two_pulls_storing_the_same_day_at_the_same_moment_wait_for_each_other(
    linked: Linked, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from django.db import connection

    seed_day(linked.keys, D1)
    fetch = pulls.fetch_day
    both_fetched = threading.Barrier(2, timeout=30)

    def fetch_then_meet(*args: Any, **kwargs: Any) -> pulls.DayData:
        data = fetch(*args, **kwargs)
        both_fetched.wait()  # both store the day together
        return data

    monkeypatch.setattr(pulls, "fetch_day", fetch_then_meet)
    ids = [pulls.create_pull(linked.server, D1, D1, PullTrigger.MANUAL, enqueue=False).pk for _ in range(2)]
    outcomes: list[str] = []

    def work(pull_id: int) -> None:
        try:
            outcomes.append(pulls.run_pull(pull_id))
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(pull_id,)) for pull_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert outcomes == ["done", "done"]
    once = snapshot(linked.server)
    monkeypatch.setattr(pulls, "fetch_day", fetch)
    run(linked.server, D1)
    assert snapshot(linked.server) == once and once["breakdowns"]


@pytest.mark.django_db(transaction=True)
def test_two_workers_given_the_same_pull_run_it_once(linked: Linked, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from django.db import connection

    seed_day(linked.keys, D1)
    pull = pulls.create_pull(linked.server, D1, D1, PullTrigger.MANUAL, enqueue=False)
    start = threading.Barrier(2, timeout=30)
    outcomes: list[str] = []

    def work() -> None:
        try:
            start.wait()
            outcomes.append(pulls.run_pull(pull.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(outcomes) == ["done", "skipped"]


def test_the_tasks_hand_over_send_due_pulls_and_dispatch_the_nightly_runs(
    db: None, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reporting import pull_tasks

    sent: list[int] = []
    monkeypatch.setattr(pull_tasks.run_pull, "delay", sent.append)
    monkeypatch.setattr(pulls, "run_pull", lambda pull_id: "more")
    assert pull_tasks.run_pull(41) == "more" and sent == [41]  # a fresh task takes over

    due = ReportPull.objects.create(
        server=server,
        first_day=D1,
        last_day=D1,
        trigger="manual",
        status=PullStatus.RETRYING,
        next_attempt_at=timezone.now() - timedelta(seconds=5),
    )
    assert pull_tasks.sweep_pulls() == 1 and sent == [41, due.pk]

    with time_machine.travel(datetime(2026, 11, 25, 3, 0, tzinfo=UTC), tick=False):
        assert pull_tasks.dispatch_nightly_pulls() == 1
        assert pull_tasks.dispatch_nightly_pulls() == 0
    assert ReportPull.objects.filter(server=server, nightly_for=date(2026, 11, 25)).count() == 1


def test_history_older_than_socketlabs_keeps_is_never_deleted_by_a_pull(db: None, server: Server) -> None:
    old = TODAY - timedelta(days=400)
    ReportDay.objects.create(server=server, day=old, kind="delivered", total=7)

    with pytest.raises(pulls.PullError, match="keeps report data for 90 days"):
        pulls.create_pull(server, old, old, PullTrigger.BACKFILL)

    assert ReportDay.objects.get(server=server, day=old).total == 7
    assert not ReportPull.objects.exists()
    # Nor does the nightly pruning of webhook data touch pulled figures.
    from django.core.management import call_command

    StreamScoreDay.objects.create(server=server, day=old, score=88, rating="Good")
    call_command("prune_reporting", stdout=StringIO())
    assert ReportDay.objects.filter(server=server, day=old).exists()
    assert StreamScoreDay.objects.filter(server=server, day=old).exists()


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        (D2, D1, "is after the last day"),
        (TODAY, TODAY + timedelta(days=1), "is in the future"),
        (TODAY - timedelta(days=90), TODAY - timedelta(days=80), "oldest day it can give is"),
        (TODAY - timedelta(days=89), TODAY, None),
    ],
)
def test_it_checks_the_range_before_anything_is_queued(first: date, last: date, message: str | None) -> None:
    if message is None:
        pulls.check_range(first, last)
        return
    with pytest.raises(pulls.PullError, match=message):
        pulls.check_range(first, last)


def test_a_range_longer_than_a_pull_may_cover_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pulls, "MAX_RANGE_DAYS", 10)
    with pytest.raises(pulls.PullError, match="at most 10 days; this range has 11"):
        pulls.check_range(D1 - timedelta(days=10), D1)


# --- claiming ------------------------------------------------------------------------------------------------
def test_a_pull_another_worker_holds_is_not_run_twice(db: None, server: Server) -> None:
    pull = pulls.create_pull(server, D1, D1, PullTrigger.MANUAL, enqueue=False)
    ReportPull.objects.filter(pk=pull.pk).update(
        status=PullStatus.RUNNING, next_attempt_at=timezone.now() + timedelta(minutes=5)
    )

    assert pulls.run_pull(pull.pk) == "skipped"
    assert pulls.run_pull(pull.pk + 1000) == "skipped"


def test_the_sweep_sends_due_retries_lost_tasks_and_pulls_whose_worker_died(db: None, server: Server) -> None:
    now = timezone.now()

    def make(status: str, due: datetime | None) -> int:
        pull = ReportPull.objects.create(
            server=server, first_day=D1, last_day=D1, trigger="manual", status=status, next_attempt_at=due
        )
        return pull.pk

    due_retry = make(PullStatus.RETRYING, now - timedelta(seconds=1))
    make(PullStatus.RETRYING, now + timedelta(minutes=3))
    dead_worker = make(PullStatus.RUNNING, now - timedelta(seconds=1))
    make(PullStatus.RUNNING, now + timedelta(minutes=9))
    lost = make(PullStatus.QUEUED, now - timedelta(minutes=1))
    make(PullStatus.QUEUED, now + timedelta(minutes=1))
    make(PullStatus.FAILED, None)
    make(PullStatus.DONE, None)

    assert sorted(pulls.due_pull_ids(now=now)) == sorted([due_retry, dead_worker, lost])
    # The lost one gets a new grace period; the others wait for their claim.
    regraced = ReportPull.objects.get(pk=lost).next_attempt_at
    assert regraced is not None and regraced > now
    assert sorted(pulls.due_pull_ids(now=now)) == sorted([due_retry, dead_worker])


# --- R9 through the pull: a report GET is retried, then the pull retries, then it fails in plain words ------
@responses.activate
def test_a_report_get_answered_503_then_429_is_retried_by_the_client(
    db: None, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept = fake_remote(server, monkeypatch)
    overview = f"{FAKE_API}/servers/{server.socketlabs_id}/reports/delivered/overview"
    responses.get(overview, status=503, json={"errors": [{"errorType": "Unavailable", "message": "later"}]})
    responses.get(overview, status=429, headers={"Retry-After": "7"}, json={})
    responses.get(overview, json={"data": {"total": 42, "unique": 40}})
    empty_answers(responses.mock)

    pull = run(server, D1)

    assert pull.status == PullStatus.DONE and pull.attempts == 0
    assert ReportDay.objects.get(server=server, day=D1, kind="delivered").total == 42
    delivered_calls = [c for c in responses.calls if c.request.url and "/delivered/overview" in c.request.url]
    assert len(delivered_calls) == 3
    assert slept()[1] == 7  # Retry-After honoured
    assert 0 <= slept()[0] <= 1


@responses.activate
def test_a_pull_that_keeps_failing_retries_with_backoff_then_fails_in_plain_words(
    db: None, server: Server, monkeypatch: pytest.MonkeyPatch, alerts_seen: list[tuple[int, list[date]]]
) -> None:
    fake_remote(server, monkeypatch, max_attempts=2)
    responses.get(re.compile(rf"{FAKE_API}/.*"), status=503, json={"errors": [{"errorType": "Busy", "message": "x"}]})
    pull = pulls.create_pull(server, D1, D1, PullTrigger.MANUAL, enqueue=False)
    waits = []

    for attempt in range(1, pulls.MAX_ATTEMPTS):
        assert pulls.run_pull(pull.pk) == "retrying"
        pull.refresh_from_db()
        assert (pull.status, pull.attempts) == (PullStatus.RETRYING, attempt)
        assert "SocketLabs had an internal problem (503)" in pull.error
        assert f"attempt {attempt + 1} of {pulls.MAX_ATTEMPTS}" in pull.error
        assert pull.next_attempt_at is not None
        waits.append(pull.next_attempt_at - timezone.now())
        assert pulls.run_pull(pull.pk) == "skipped"  # not due yet
        ReportPull.objects.filter(pk=pull.pk).update(next_attempt_at=timezone.now())

    assert pulls.run_pull(pull.pk) == "failed"
    pull.refresh_from_db()
    assert pull.status == PullStatus.FAILED and pull.finished_at and pull.next_attempt_at is None
    assert pull.error == (
        f"Acme-1, {D1:%Y-%m-%d}: SocketLabs had an internal problem (503) when asked to read its reports. "
        f"Try again in a few minutes. Gave up after {pulls.MAX_ATTEMPTS} attempts."
    )
    # Exponential: about 1, 2, 4 minutes.
    assert [round(w.total_seconds() / 60) for w in waits] == [1, 2, 4]
    assert len(responses.calls) == 2 * pulls.MAX_ATTEMPTS  # the client's two tries per attempt, first call only
    assert alerts_seen == []


@responses.activate
def test_a_refused_key_fails_at_once_naming_the_server(
    db: None, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_remote(server, monkeypatch)
    responses.get(re.compile(rf"{FAKE_API}/.*"), status=401, json={"errors": [{"errorType": "Unauthorized"}]})

    pull = run(server, D1)

    assert pull.status == PullStatus.FAILED and pull.attempts == 1
    assert pull.error == (
        f"Acme-1, {D1:%Y-%m-%d}: SocketLabs refused the API key for server 10001 (401). "
        "Check the key under Admin → Servers."
    )
    assert len(responses.calls) == 1
    assert pulls.retry_pull(pull)
    pull.refresh_from_db()
    assert (pull.status, pull.attempts, pull.error) == (PullStatus.QUEUED, 0, "")
    assert not pulls.retry_pull(pull)  # only failed pulls


# --- nightly (R22) -------------------------------------------------------------------------------------------
@pytest.fixture
def zoned(db: None) -> dict[str, Server]:
    """Three servers with keys: UTC, Los Angeles (UTC−8 in November) and Auckland (UTC+13 in November)."""
    return {
        zone: Server.objects.create(name=zone, socketlabs_id=30000 + i, api_key=f"key-{i}", time_zone=zone)
        for i, zone in enumerate(["UTC", "America/Los_Angeles", "Pacific/Auckland"])
    }


def nightly(servers: dict[str, Server]) -> dict[str, list[tuple[date | None, date, date]]]:
    return {
        zone: list(
            ReportPull.objects.filter(server=s, trigger=PullTrigger.NIGHTLY)
            .order_by("nightly_for")
            .values_list("nightly_for", "first_day", "last_day")
        )
        for zone, s in servers.items()
    }


def dispatch_at(moment: datetime) -> list[ReportPull]:
    with time_machine.travel(moment, tick=False):
        return pulls.dispatch_nightly()


def test_each_server_is_pulled_after_the_pull_hour_of_its_own_time_zone(zoned: dict[str, Server]) -> None:
    def nights() -> dict[str, list[date | None]]:
        return {zone: [n for n, _, _ in rows] for zone, rows in nightly(zoned).items()}

    def nov(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 11, day, hour, minute, tzinfo=UTC)

    n24, n25, n26 = date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 26)

    # 01:59 UTC on the 25th: 17:59 on the 24th in LA and 14:59 on the 25th in Auckland (both past 02:00).
    dispatch_at(nov(25, 1, 59))
    assert nights() == {"UTC": [], "America/Los_Angeles": [n24], "Pacific/Auckland": [n25]}
    dispatch_at(nov(25, 2, 0))  # 02:00 in UTC
    assert nights()["UTC"] == [n25]
    dispatch_at(nov(25, 9, 59))  # 01:59 on the 25th in LA: not yet
    assert nights()["America/Los_Angeles"] == [n24]
    dispatch_at(nov(25, 10, 0))  # 02:00 on the 25th in LA
    assert nights()["America/Los_Angeles"] == [n24, n25]
    dispatch_at(nov(25, 12, 59))  # 01:59 on the 26th in Auckland: not yet
    assert nights()["Pacific/Auckland"] == [n25]
    dispatch_at(nov(25, 13, 0))  # 02:00 on the 26th in Auckland
    assert nights() == {"UTC": [n25], "America/Los_Angeles": [n24, n25], "Pacific/Auckland": [n25, n26]}
    # Every run pulled the last complete UTC day at its moment: the 24th.
    assert {(first, last) for rows in nightly(zoned).values() for _, first, last in rows} == {(n24, n24)}
    dispatch_at(nov(26, 1, 59))  # 01:59 UTC on the 26th: nothing is due anywhere
    assert ReportPull.objects.count() == 5


def test_beat_firing_twice_or_late_still_makes_one_run_per_server_and_local_day(zoned: dict[str, Server]) -> None:
    moment = datetime(2026, 11, 25, 13, 30, tzinfo=UTC)
    first = dispatch_at(moment)
    again = dispatch_at(moment + timedelta(minutes=5))
    later = dispatch_at(moment + timedelta(hours=3))

    assert len(first) == 3 and again == [] and later == []
    assert ReportPull.objects.filter(trigger=PullTrigger.NIGHTLY).count() == 3


def test_the_database_refuses_a_second_nightly_run_for_the_same_local_day(db: None, server: Server) -> None:
    from django.db import IntegrityError, transaction

    pulls.create_pull(server, D1, D1, PullTrigger.NIGHTLY, nightly_for=D2, enqueue=False)
    with pytest.raises(IntegrityError), transaction.atomic():
        pulls.create_pull(server, D1, D1, PullTrigger.NIGHTLY, nightly_for=D2, enqueue=False)


def test_servers_without_a_key_or_with_the_nightly_pull_off_are_skipped(zoned: dict[str, Server]) -> None:
    Server.objects.filter(pk=zoned["UTC"].pk).update(api_key="")
    ReportSettings.objects.create(server=zoned["Pacific/Auckland"], nightly_enabled=False)
    ReportSettings.objects.create(server=zoned["America/Los_Angeles"], pull_hour=23)

    assert dispatch_at(datetime(2026, 11, 25, 13, 0, tzinfo=UTC)) == []  # 05:00 in LA, before 23:00
    created = dispatch_at(datetime(2026, 11, 26, 7, 0, tzinfo=UTC))  # 23:00 on the 25th in LA
    assert [p.server.time_zone for p in created] == ["America/Los_Angeles"]


def test_a_failed_or_missed_night_is_back_filled_by_the_next_run_and_a_new_server_starts_with_yesterday(
    zoned: dict[str, Server],
) -> None:
    utc = zoned["UTC"]
    (first,) = [p for p in dispatch_at(datetime(2026, 11, 10, 2, 30, tzinfo=UTC)) if p.server == utc]
    assert (first.first_day, first.last_day) == (date(2026, 11, 9), date(2026, 11, 9))
    ReportPull.objects.filter(pk=first.pk).update(
        status=PullStatus.DONE, started_at=datetime(2026, 11, 10, 2, 31, tzinfo=UTC)
    )
    # Beat is down on the 11th; the 12th pulls the 10th and the 11th.
    (second,) = [p for p in dispatch_at(datetime(2026, 11, 12, 2, 30, tzinfo=UTC)) if p.server == utc]
    assert (second.first_day, second.last_day) == (date(2026, 11, 10), date(2026, 11, 11))
    ReportPull.objects.filter(pk=second.pk).update(status=PullStatus.FAILED)
    # That run failed: the 13th takes its days too.
    (third,) = [p for p in dispatch_at(datetime(2026, 11, 13, 2, 30, tzinfo=UTC)) if p.server == utc]
    assert (third.first_day, third.last_day) == (date(2026, 11, 10), date(2026, 11, 12))


def test_a_partial_day_pulled_on_demand_does_not_count_as_pulled(db: None, server: Server) -> None:
    day = date(2026, 11, 9)
    ReportPull.objects.create(
        server=server,
        first_day=day - timedelta(days=1),
        last_day=day - timedelta(days=1),
        trigger="nightly",
        status=PullStatus.DONE,
        started_at=datetime(2026, 11, 9, 2, tzinfo=UTC),
        nightly_for=day,
    )
    # Pulled during the day itself: the 9th was not over yet.
    ReportPull.objects.create(
        server=server,
        first_day=day,
        last_day=day,
        trigger="manual",
        status=PullStatus.DONE,
        started_at=datetime(2026, 11, 9, 15, tzinfo=UTC),
    )
    assert pulls.nightly_range(server, now=datetime(2026, 11, 11, 3, tzinfo=UTC)) == (day, date(2026, 11, 10))


def test_the_back_fill_of_a_long_outage_is_capped(db: None, server: Server) -> None:
    ReportPull.objects.create(
        server=server,
        first_day=date(2026, 1, 1),
        last_day=date(2026, 1, 1),
        trigger="nightly",
        status=PullStatus.DONE,
        started_at=datetime(2026, 1, 2, 2, tzinfo=UTC),
        nightly_for=date(2026, 1, 2),
    )
    first, last = pulls.nightly_range(server, now=datetime(2026, 11, 25, 3, tzinfo=UTC))
    assert last == date(2026, 11, 24)
    assert (last - first).days + 1 == pulls.NIGHTLY_BACKFILL_DAYS


@pytest.mark.django_db(transaction=True)
def test_beat_down_for_a_day_end_to_end_the_next_run_stores_the_missed_day(
    linked: Linked, alerts_seen: list[tuple[int, list[date]]]
) -> None:
    d7, d8, d9 = date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9)
    for day in (d7, d8, d9):
        seed_day(linked.keys, day, scale=(day - d7).days + 1)

    (night1,) = dispatch_at(datetime(2026, 3, 8, 2, 30, tzinfo=UTC))
    with time_machine.travel(datetime(2026, 3, 8, 2, 31, tzinfo=UTC), tick=True):
        assert pulls.run_pull(night1.pk) == "done"
    assert dispatch_at(datetime(2026, 3, 8, 23, 0, tzinfo=UTC)) == []  # same local day: nothing new
    # The 9th passes with beat down. On the 10th:
    (night2,) = dispatch_at(datetime(2026, 3, 10, 2, 30, tzinfo=UTC))
    assert (night2.first_day, night2.last_day) == (d8, d9)
    with time_machine.travel(datetime(2026, 3, 10, 2, 31, tzinfo=UTC), tick=True):
        assert pulls.run_pull(night2.pk) == "done"

    delivered = dict(ReportDay.objects.filter(server=linked.server, kind="delivered").values_list("day", "total"))
    assert delivered == {d7: 3, d8: 5, d9: 7}
    assert alerts_seen == [(linked.server.pk, [d7]), (linked.server.pk, [d8, d9])]


def test_the_next_run_is_shown_in_the_servers_time_zone(db: None, server: Server) -> None:
    Server.objects.filter(pk=server.pk).update(time_zone="Pacific/Auckland")
    server.refresh_from_db()
    report_settings = pulls.settings_for(server)
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # 01:00 on the 26th in Auckland

    due = pulls.next_nightly_run(server, report_settings, now=now)
    assert due is not None and due.isoformat() == "2026-11-26T02:00:00+13:00"
    ReportPull.objects.create(
        server=server, first_day=D1, last_day=D1, trigger="nightly", nightly_for=date(2026, 11, 26)
    )
    due = pulls.next_nightly_run(server, report_settings, now=now + timedelta(hours=2))
    assert due is not None and due.isoformat() == "2026-11-27T02:00:00+13:00"
    report_settings.nightly_enabled = False
    assert pulls.next_nightly_run(server, report_settings, now=now) is None


def test_a_schedule_change_is_audited_with_before_and_after(db: None, server: Server, admin: Any) -> None:
    pulls.update_schedule(server, nightly_enabled=False, pull_hour=5, user=admin)
    pulls.update_schedule(server, nightly_enabled=False, pull_hour=5, user=admin)  # no change, no entry

    entry = AuditLog.objects.get(action="reports.schedule")
    assert entry.before == {"nightly_enabled": True, "pull_hour": 2}
    assert entry.after == {"nightly_enabled": False, "pull_hour": 5}


def test_beat_runs_the_dispatcher_and_the_sweep_and_their_entries_expire_before_the_next(settings: Any) -> None:
    import reporting.pull_tasks  # noqa: F401 - registers the tasks
    from config.celery import app

    for name, task, every in (
        ("reports-dispatch-nightly", "reporting.pull_tasks.dispatch_nightly_pulls", 300),
        ("reports-sweep-pulls", "reporting.pull_tasks.sweep_pulls", 60),
    ):
        entry = settings.CELERY_BEAT_SCHEDULE[name]
        assert entry["task"] == task and task in app.tasks
        assert entry["schedule"] == every and entry["options"]["expires"] < every
