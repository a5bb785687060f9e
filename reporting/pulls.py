"""Report pulls from SocketLabs: one server, a range of UTC days, every report kind and StreamScore.

* `pull_day(server, day)` fetches one UTC day (overview, aggregates by domain and mailing, failure codes
  and reasons from the failed list, clicked URLs from the click list, StreamScore) and stores it in one
  transaction, replacing that day's rows: pulling a day twice leaves the same rows.
* `create_pull(...)` records a job (`ReportPull`) and queues it; `run_pull(pull_id)` claims it with a
  conditional update (two workers never run the same pull), stores day after day with progress, and on a
  SocketLabs failure (after the client's own R9 retries) waits and tries again a few times before it
  gives up with the error in plain words.
* `dispatch_nightly(now)`: for each server with an API key and the nightly pull switched on, once the
  server's local time is past its pull hour, one nightly pull per server and *local* date (unique
  `nightly_for`, so beat firing twice still makes one run, R22). It covers the last complete UTC day
  (SocketLabs counts UTC days) and back-fills the days that no finished pull covers since the last
  successful one, up to `NIGHTLY_BACKFILL_DAYS`.

While a pull runs, `next_attempt_at` is its lease: the worker pushes it forward as it works, and the sweep
re-queues a running pull whose lease ran out (its worker died). For a queued pull it is the time after
which the sweep re-sends a task that got lost; for a pull waiting to retry, when the retry is due.

Pulled rows are never deleted by age: history outlives SocketLabs' 90 days. Days older than SocketLabs
keeps cannot be pulled (refused with a message), so old rows are never overwritten with nothing.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils import timezone

import socketlabs
from accounts import audit
from accounts.models import Server
from accounts.services import client_for
from reporting import alerts
from reporting.models import (
    PullStatus,
    PullTrigger,
    ReportBreakdown,
    ReportBreakdownWeek,
    ReportDay,
    ReportDimension,
    ReportKind,
    ReportPull,
    ReportSettings,
    StreamScoreDay,
    week_start,
)
from sending.errors import explain

log = logging.getLogger(__name__)

# SocketLabs keeps report data for 90 days (contract §"Retention"): today and the 89 days before.
RETENTION_DAYS = 90
# A pull (on demand or backfill) covers at most this many days: the whole retention window.
MAX_RANGE_DAYS = RETENTION_DAYS
# How far back a nightly run looks for days no finished pull covers.
NIGHTLY_BACKFILL_DAYS = 31
# Attempts of a pull in all (the client already retried each GET per R9); waits 1, 2, 4 … minutes.
MAX_ATTEMPTS = 4
RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=1)
# A running pull whose worker has not reported for this long is taken over by the sweep.
LEASE = timedelta(minutes=10)
# A queued pull no worker picked up within this long gets its task sent again.
QUEUED_GRACE = timedelta(minutes=5)
LIST_PAGE_SIZE = 500
KEY_LENGTH = 255

# Our kinds → (SocketLabs report, tracking type).
KINDS: tuple[tuple[str, str, str | None], ...] = (
    (ReportKind.DELIVERED, "delivered", None),
    (ReportKind.FAILED, "failed", None),
    (ReportKind.COMPLAINTS, "complaints", None),
    (ReportKind.OPENS, "tracking", "Open"),
    (ReportKind.CLICKS, "tracking", "Click"),
    (ReportKind.UNSUBSCRIBES, "tracking", "Unsubscribe"),
)
GROUPS: tuple[tuple[str, str], ...] = ((ReportDimension.DOMAIN, "domain"), (ReportDimension.MAILING, "mailingId"))


class PullError(Exception):
    """A pull that cannot be started; `message` says why, ready to show."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def remote_client(server: Server) -> socketlabs.SocketLabsClient:
    """The client pulls use (background work: the client's full R9 retries). Tests replace it."""
    return client_for(server)


def utc_today(now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(UTC).date()


def oldest_pullable_day(today: date | None = None) -> date:
    return (today or utc_today()) - timedelta(days=RETENTION_DAYS - 1)


def settings_for(server: Server) -> ReportSettings:
    """The server's report settings, created with the defaults the first time they are needed."""
    found, _ = ReportSettings.objects.get_or_create(server=server)
    return found


# --- fetching and storing one day ---------------------------------------------------------------------
@dataclass
class DayData:
    totals: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    breakdowns: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    streamscore: tuple[int, str] | None = None


def _key(value: object) -> str:
    return "" if value is None else str(value)[:KEY_LENGTH]


# A bounce text usually names the recipient ("550 5.1.1 <bob@example.net>: User unknown"); with the
# address in it every failure would be its own reason. Addresses become "<address>" so equal texts add up.
_ADDRESS_IN_TEXT = re.compile(r"<?[^\s<>@\"']+@[^\s<>\"']+>?")


def reason_key(reason: object) -> str:
    """The failure reason as a breakdown key: addresses replaced, spaces collapsed, cut to the key length."""
    if reason is None:
        return ""
    text = _ADDRESS_IN_TEXT.sub("<address>", str(reason))
    return " ".join(text.split())[:KEY_LENGTH]


def fetch_day(
    client: socketlabs.SocketLabsClient, day: date, *, heartbeat: Callable[[], None] | None = None
) -> DayData:
    """Every figure of one UTC day, read from SocketLabs (no database work)."""
    beat = heartbeat or (lambda: None)
    data = DayData()
    reports = client.reports
    for kind, remote, tracking in KINDS:
        overview = reports.overview(remote, start_date=day, end_date=day, tracking_type=tracking)
        data.totals[kind] = (overview.total, overview.unique)
        beat()
        for dimension, group_by in GROUPS:
            counts: Counter[str] = Counter()
            for row in reports.aggregate(
                remote, group_by=group_by, start_date=day, end_date=day, tracking_type=tracking
            ):
                counts[_key(row.key)] += row.count
            data.breakdowns[(kind, dimension)] = counts
            beat()
    codes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for index, event in enumerate(
        reports.iter_list("failed", start_date=day, end_date=day, page_size=LIST_PAGE_SIZE), 1
    ):
        codes[_key(event.failure_code)] += 1
        reasons[reason_key(event.reason)] += 1
        if index % LIST_PAGE_SIZE == 0:
            beat()
    data.breakdowns[(ReportKind.FAILED, ReportDimension.FAILURE_CODE)] = codes
    data.breakdowns[(ReportKind.FAILED, ReportDimension.REASON)] = reasons
    urls: Counter[str] = Counter()
    for index, event in enumerate(
        reports.iter_list("tracking", start_date=day, end_date=day, tracking_type="Click", page_size=LIST_PAGE_SIZE),
        1,
    ):
        urls[_key(event.url)] += 1
        if index % LIST_PAGE_SIZE == 0:
            beat()
    data.breakdowns[(ReportKind.CLICKS, ReportDimension.URL)] = urls
    score = client.streamscore(start_date=day, end_date=day)
    beat()
    data.streamscore = _score_of_day(score, day, data)
    return data


def _score_of_day(score: socketlabs.StreamScore, day: date, data: DayData) -> tuple[int, str] | None:
    """The day's point of the history; a day without traffic has no score (SocketLabs lists none)."""
    traffic = sum(data.totals.get(k, (0, None))[0] for k in (ReportKind.DELIVERED, ReportKind.FAILED))
    point = next((p for p in score.history if p.day == day and p.score is not None), None)
    if point is not None and point.score is not None:
        return max(0, min(100, point.score)), score.rating or ""
    if traffic and score.score is not None:
        return max(0, min(100, score.score)), score.rating or ""
    return None


def store_day(server: Server, day: date, data: DayData) -> None:
    """Replace the server's rows for this day with `data`, and recompute its week rollup, in one transaction."""
    now = timezone.now()
    settings_for(server)
    with transaction.atomic():
        # One writer per server at a time: two pulls overlapping on a day would otherwise both
        # delete and then both insert that day's breakdown rows.
        ReportSettings.objects.select_for_update().filter(server=server).first()
        ReportDay.objects.bulk_create(
            [
                ReportDay(server=server, day=day, kind=kind, total=total, unique=unique, pulled_at=now)
                for kind, (total, unique) in data.totals.items()
            ],
            update_conflicts=True,
            unique_fields=["server", "day", "kind"],
            update_fields=["total", "unique", "pulled_at"],
        )
        ReportBreakdown.objects.filter(server=server, day=day).delete()
        ReportBreakdown.objects.bulk_create(
            [
                ReportBreakdown(server=server, day=day, kind=kind, dimension=dimension, key=key, count=count)
                for (kind, dimension), counts in data.breakdowns.items()
                for key, count in counts.items()
                if count
            ],
            batch_size=2000,
        )
        roll_up_weeks(server.pk, [day])
        if data.streamscore is None:
            StreamScoreDay.objects.filter(server=server, day=day).delete()
        else:
            score, rating = data.streamscore
            StreamScoreDay.objects.update_or_create(
                server=server, day=day, defaults={"score": score, "rating": rating[:10], "pulled_at": now}
            )


def roll_up_weeks(server_id: int, days: Iterable[date]) -> None:
    """Recompute the server's `ReportBreakdownWeek` rows of the weeks these days fall in from the day rows.

    Run inside the transaction that changed the day rows. Every kind and dimension of the week is
    summed again from `ReportBreakdown` (at most seven days of one server), so the week rows equal the
    day rows' sums however often a day is pulled and whatever changed. Portable SQL, the week's
    Monday computed here (PostgreSQL and SQLite).
    """
    week = connection.ops.quote_name(ReportBreakdownWeek._meta.db_table)
    breakdown = connection.ops.quote_name(ReportBreakdown._meta.db_table)
    key, count = connection.ops.quote_name("key"), connection.ops.quote_name("count")
    with connection.cursor() as cursor:
        for monday in sorted({week_start(d) for d in days}):
            cursor.execute(f"DELETE FROM {week} WHERE server_id = %s AND week_start = %s", [server_id, monday])
            cursor.execute(
                f"INSERT INTO {week} (server_id, week_start, kind, dimension, {key}, {count})"
                f" SELECT server_id, %s, kind, dimension, {key}, SUM({count}) FROM {breakdown}"
                " WHERE server_id = %s AND day >= %s AND day <= %s"
                f" GROUP BY server_id, kind, dimension, {key}",
                [monday, server_id, monday, monday + timedelta(days=6)],
            )


def pull_day(server: Server, day: date, *, client: socketlabs.SocketLabsClient | None = None) -> DayData:
    """Fetch and store one UTC day. SocketLabs errors propagate (nothing is stored then)."""
    data = fetch_day(client or remote_client(server), day)
    store_day(server, day, data)
    return data


# --- ranges -----------------------------------------------------------------------------------------------
def check_range(first_day: date, last_day: date, *, today: date | None = None) -> None:
    """Raise `PullError` with a plain message when SocketLabs cannot give these days."""
    today = today or utc_today()
    oldest = oldest_pullable_day(today)
    if first_day > last_day:
        raise PullError(
            f"The first day ({first_day:%Y-%m-%d}) is after the last day ({last_day:%Y-%m-%d}). Swap them.",
            field="first_day",
        )
    if last_day > today:
        raise PullError(
            f"{last_day:%Y-%m-%d} is in the future (today is {today:%Y-%m-%d} in UTC, the time SocketLabs counts "
            "days in). Choose today or an earlier day.",
            field="last_day",
        )
    if first_day < oldest:
        raise PullError(
            f"SocketLabs keeps report data for {RETENTION_DAYS} days, so the oldest day it can give is "
            f"{oldest:%Y-%m-%d}. Days pulled earlier stay in Mailroom for good.",
            field="first_day",
        )
    days = (last_day - first_day).days + 1
    if days > MAX_RANGE_DAYS:
        raise PullError(f"A pull covers at most {MAX_RANGE_DAYS} days; this range has {days}.", field="last_day")


def days_of(pull: ReportPull) -> list[date]:
    return [pull.first_day + timedelta(days=i) for i in range((pull.last_day - pull.first_day).days + 1)]


# --- creating, running, retrying ----------------------------------------------------------------------------
AUDIT_ACTIONS: dict[str, str] = {
    PullTrigger.MANUAL: "reports.pull",
    PullTrigger.BACKFILL: "reports.backfill",
    PullTrigger.COMMAND: "reports.pull_command",
}


def create_pull(
    server: Server,
    first_day: date,
    last_day: date,
    trigger: str,
    user: Any = None,
    *,
    request: HttpRequest | None = None,
    nightly_for: date | None = None,
    enqueue: bool = True,
    now: datetime | None = None,
) -> ReportPull:
    """Record a pull and queue it once the transaction commits. Raises `PullError` for days it cannot pull."""
    now = now or timezone.now()
    check_range(first_day, last_day, today=utc_today(now))
    with transaction.atomic():
        pull = ReportPull.objects.create(
            server=server,
            first_day=first_day,
            last_day=last_day,
            trigger=trigger,
            nightly_for=nightly_for,
            days_total=(last_day - first_day).days + 1,
            created_by=user if getattr(user, "is_authenticated", False) else None,
            created_at=now,
            next_attempt_at=now + QUEUED_GRACE,
        )
        if trigger in AUDIT_ACTIONS:
            audit.record(
                action=AUDIT_ACTIONS[trigger],
                request=request,
                actor=user,
                server=server,
                target=f"pull {pull.pk}: {first_day:%Y-%m-%d} to {last_day:%Y-%m-%d}",
            )
        if enqueue:
            _enqueue_on_commit(pull.pk)
    return pull


def retry_pull(pull: ReportPull, *, user: Any = None, request: HttpRequest | None = None) -> bool:
    """Queue a failed pull again from the day it stopped at; False when it is not failed (any more)."""
    now = timezone.now()
    with transaction.atomic():
        changed = ReportPull.objects.filter(pk=pull.pk, status=PullStatus.FAILED).update(
            status=PullStatus.QUEUED, attempts=0, error="", finished_at=None, next_attempt_at=now + QUEUED_GRACE
        )
        if changed:
            audit.record(
                action="reports.pull_retry",
                request=request,
                actor=user,
                server=pull.server,
                target=f"pull {pull.pk}: {pull.first_day:%Y-%m-%d} to {pull.last_day:%Y-%m-%d}",
            )
            _enqueue_on_commit(pull.pk)
    return bool(changed)


def _enqueue_on_commit(pull_id: int) -> None:
    from reporting.pull_tasks import run_pull as run_pull_task

    transaction.on_commit(lambda: run_pull_task.delay(pull_id))


def _claim(pull_id: int, now: datetime) -> bool:
    claimable = (
        Q(status=PullStatus.QUEUED)
        | Q(status=PullStatus.RETRYING, next_attempt_at__lte=now)
        | Q(status=PullStatus.RUNNING, next_attempt_at__lt=now)
    )
    return bool(
        ReportPull.objects.filter(claimable, pk=pull_id).update(
            status=PullStatus.RUNNING, started_at=Coalesce(F("started_at"), now), next_attempt_at=now + LEASE
        )
    )


class _Lease:
    """Pushes the running pull's lease forward while it works (at most once a minute)."""

    def __init__(self, pull_id: int) -> None:
        self.pull_id = pull_id
        self.renewed = time.monotonic()

    def __call__(self) -> None:
        if time.monotonic() - self.renewed < 60:
            return
        self.renewed = time.monotonic()
        ReportPull.objects.filter(pk=self.pull_id, status=PullStatus.RUNNING).update(
            next_attempt_at=timezone.now() + LEASE
        )


def retry_delay(attempts: int) -> timedelta:
    return min(RETRY_CAP, RETRY_BASE * (2 ** max(0, attempts - 1)))


def run_pull(
    pull_id: int,
    *,
    budget_seconds: float | None = None,
    retry_later: bool = True,
    on_day: Callable[[ReportPull, date], None] | None = None,
) -> str:
    """Run a pull from where it stands. Returns done | more | retrying | failed | skipped.

    `more`: the time budget ran out between days and the pull is queued again (the task hands over to a
    fresh one). With `retry_later=False` (the command) a SocketLabs failure ends the pull at once.
    """
    now = timezone.now()
    if not _claim(pull_id, now):
        return "skipped"
    pull = ReportPull.objects.select_related("server").get(pk=pull_id)
    server = pull.server
    if budget_seconds is None:
        budget_seconds = float(_setting("REPORTING_PULL_TASK_SECONDS", 120))
    deadline = time.monotonic() + budget_seconds if budget_seconds else None
    lease = _Lease(pull.pk)
    client = remote_client(server)
    days = days_of(pull)
    while pull.days_done < len(days):
        day = days[pull.days_done]
        try:
            data = fetch_day(client, day, heartbeat=lease)
            store_day(server, day, data)
        except socketlabs.SocketLabsError as exc:
            return _failed_attempt(pull, exc, retry_later=retry_later)
        except OperationalError:
            raise  # the database: the task retries, the lease lets the sweep take over otherwise
        except Exception as exc:
            log.exception("report pull %s failed on %s", pull.pk, day)
            _finish(
                pull,
                PullStatus.FAILED,
                f"Mailroom could not store the reports of {day:%Y-%m-%d} ({type(exc).__name__}).",
            )
            return "failed"
        pull.days_done += 1
        ReportPull.objects.filter(pk=pull.pk).update(days_done=pull.days_done, next_attempt_at=timezone.now() + LEASE)
        if on_day is not None:
            on_day(pull, day)
        if deadline is not None and time.monotonic() > deadline and pull.days_done < len(days):
            ReportPull.objects.filter(pk=pull.pk, status=PullStatus.RUNNING).update(
                status=PullStatus.QUEUED, next_attempt_at=timezone.now() + QUEUED_GRACE
            )
            return "more"
    _finish(pull, PullStatus.DONE, "")
    try:
        alerts.evaluate_days(server, days)
    except Exception:
        log.exception("alerts for report pull %s failed", pull.pk)
    return "done"


def _finish(pull: ReportPull, status: str, error: str) -> None:
    pull.status, pull.error, pull.finished_at = status, error, timezone.now()
    ReportPull.objects.filter(pk=pull.pk).update(
        status=status, error=error[:2000], finished_at=pull.finished_at, next_attempt_at=None
    )


def describe_error(server: Server, exc: socketlabs.SocketLabsError) -> str:
    """The failure in plain words (the same sentences the other pages use)."""
    return explain(exc, server=server, doing="read its reports")


def _failed_attempt(pull: ReportPull, exc: socketlabs.SocketLabsError, *, retry_later: bool) -> str:
    server = pull.server
    attempts = pull.attempts + 1
    day = pull.first_day + timedelta(days=pull.days_done)
    message = f"{server.name}, {day:%Y-%m-%d}: {describe_error(server, exc)}"
    if exc.permanent or not retry_later or attempts >= MAX_ATTEMPTS:
        if attempts > 1:
            message += f" Gave up after {attempts} attempts."
        ReportPull.objects.filter(pk=pull.pk).update(attempts=attempts)
        _finish(pull, PullStatus.FAILED, message)
        return "failed"
    wait = retry_delay(attempts)
    if exc.retry_after:
        wait = max(wait, timedelta(seconds=exc.retry_after))
    due = timezone.now() + wait
    ReportPull.objects.filter(pk=pull.pk).update(
        status=PullStatus.RETRYING,
        attempts=attempts,
        error=f"{message} Trying again at {due:%H:%M} UTC (attempt {attempts + 1} of {MAX_ATTEMPTS})."[:2000],
        next_attempt_at=due,
    )
    return "retrying"


def due_pull_ids(*, now: datetime | None = None, limit: int = 100) -> list[int]:
    """Pulls the sweep must (re-)send: retries that are due, running ones whose worker went silent, lost tasks."""
    now = now or timezone.now()
    ids = list(
        ReportPull.objects.filter(
            status__in=[PullStatus.QUEUED, PullStatus.RETRYING, PullStatus.RUNNING], next_attempt_at__lte=now
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    # Queued ones get a new grace period, so a long queue is not re-sent every minute.
    ReportPull.objects.filter(pk__in=ids, status=PullStatus.QUEUED).update(next_attempt_at=now + QUEUED_GRACE)
    return ids


# --- nightly ----------------------------------------------------------------------------------------------
def nightly_range(server: Server, *, now: datetime) -> tuple[date, date]:
    """The last complete UTC day, back to the first day no finished pull covers since the last good one."""
    today = utc_today(now)
    target = today - timedelta(days=1)
    window_start = max(target - timedelta(days=NIGHTLY_BACKFILL_DAYS - 1), oldest_pullable_day(today))
    done = list(
        ReportPull.objects.filter(server=server, status=PullStatus.DONE, started_at__isnull=False).values_list(
            "first_day", "last_day", "started_at"
        )
    )
    if not done:
        return target, target
    window_start = max(window_start, min(first for first, _, _ in done))
    covered: set[date] = set()
    for first, last, started in done:
        if started is None:
            continue
        # A day counts as covered only if it was over when the pull started (a partial "today" is not).
        complete_before = started.astimezone(UTC).date()
        day = max(first, window_start)
        while day <= min(last, target):
            if day < complete_before:
                covered.add(day)
            day += timedelta(days=1)
    day = window_start
    while day <= target:
        if day not in covered:
            return day, target
        day += timedelta(days=1)
    return target, target


def dispatch_nightly(now: datetime | None = None) -> list[ReportPull]:
    """Beat: create (and queue) each due server's nightly pull; at most one per server and local date."""
    now = now or timezone.now()
    created = []
    for server in Server.objects.exclude(api_key="").order_by("pk"):
        report_settings = settings_for(server)
        if not report_settings.nightly_enabled:
            continue
        local = now.astimezone(server.zone)
        if local.hour < report_settings.pull_hour:
            continue
        if ReportPull.objects.filter(server=server, nightly_for=local.date()).exists():
            continue
        first_day, last_day = nightly_range(server, now=now)
        try:
            with transaction.atomic():
                created.append(
                    create_pull(server, first_day, last_day, PullTrigger.NIGHTLY, nightly_for=local.date(), now=now)
                )
        except IntegrityError:
            continue  # another dispatcher created it a moment ago
        except PullError as exc:  # cannot happen with the ranges above; never stop the other servers
            log.warning("nightly report pull of server %s not created: %s", server.pk, exc.message)
    return created


def next_nightly_run(
    server: Server, report_settings: ReportSettings, *, now: datetime | None = None
) -> datetime | None:
    """When the next nightly pull is due, in the server's time zone (None when switched off or without a key)."""
    if not report_settings.nightly_enabled or not server.api_key:
        return None
    now = now or timezone.now()
    zone = server.zone
    local = now.astimezone(zone)
    ran_today = ReportPull.objects.filter(server=server, nightly_for=local.date()).exists()
    day = local.date() + timedelta(days=1) if ran_today else local.date()
    due = datetime.combine(day, dtime(report_settings.pull_hour), tzinfo=zone)
    return max(due, local) if not ran_today else due


def update_schedule(
    server: Server, *, nightly_enabled: bool, pull_hour: int, user: Any, request: HttpRequest | None = None
) -> ReportSettings:
    report_settings = settings_for(server)
    before = {"nightly_enabled": report_settings.nightly_enabled, "pull_hour": report_settings.pull_hour}
    after = {"nightly_enabled": nightly_enabled, "pull_hour": pull_hour}
    if before != after:
        with transaction.atomic():
            report_settings.nightly_enabled = nightly_enabled
            report_settings.pull_hour = pull_hour
            report_settings.updated_at = timezone.now()
            report_settings.save(update_fields=["nightly_enabled", "pull_hour", "updated_at"])
            audit.record(
                action="reports.schedule",
                request=request,
                actor=user,
                server=server,
                target=server.name,
                before=before,
                after=after,
            )
    return report_settings


def eta_seconds(pull: ReportPull, *, now: datetime | None = None) -> int | None:
    """Seconds a running pull still needs at the pace of the days it has done; None before the first day."""
    if pull.status != PullStatus.RUNNING or not pull.days_done or pull.started_at is None:
        return None
    elapsed = ((now or timezone.now()) - pull.started_at).total_seconds()
    return max(1, round(elapsed / pull.days_done * (pull.days_total - pull.days_done)))


def pulls_for(servers: Iterable[Server]) -> Any:
    return ReportPull.objects.filter(server__in=list(servers)).select_related("server", "created_by")
