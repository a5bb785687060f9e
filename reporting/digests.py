"""Digest e-mails: nightly (yesterday, a UTC day) and weekly (the previous Monday–Sunday, sent on Mondays).

Beat calls `send_due_digests` every 15 minutes. A subscription's digest is due once the period's
last day has been pulled (a `ReportDay` row of the server for it) or, failing that, after the
cutoff hour (UTC), when it goes out noting the days without figures. Each period is claimed by
a unique `DigestDelivery` row created before sending; the send runs under a row lock and sets
`sent_at` in the same transaction, so two runs never both mail a period, and a run that died
before `sent_at` leaves the row for the next run to finish.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Membership, Server
from common.csvio import stream_csv
from reporting.alerts import describe
from reporting.models import (
    Alert,
    DigestDelivery,
    DigestFrequency,
    ReportDay,
    ReportKind,
    ReportSubscription,
    StreamScoreDay,
)
from reporting.report_mail import absolute_url, make_message

log = logging.getLogger(__name__)

# Hour of the UTC day after which a digest goes out even if its last day has not been pulled yet.
DEFAULT_CUTOFF_HOUR = 9
# Claimed but unsent deliveries (a worker died mid-send) are finished by later runs for this long.
RETRY_DAYS = 2
KINDS = [
    ReportKind.DELIVERED,
    ReportKind.FAILED,
    ReportKind.COMPLAINTS,
    ReportKind.OPENS,
    ReportKind.CLICKS,
    ReportKind.UNSUBSCRIBES,
]


def cutoff_hour() -> int:
    return min(23, max(0, int(getattr(settings, "REPORTING_DIGEST_CUTOFF_HOUR", DEFAULT_CUTOFF_HOUR))))


def utc_now(now: datetime | None = None) -> datetime:
    return (now or timezone.now()).astimezone(UTC)


def period_due_on(frequency: str, today: date) -> tuple[date, date] | None:
    """The period a digest sent on `today` covers, or None when this frequency sends nothing that day."""
    if frequency == DigestFrequency.NIGHTLY:
        yesterday = today - timedelta(days=1)
        return yesterday, yesterday
    if frequency == DigestFrequency.WEEKLY and today.weekday() == 0:
        return today - timedelta(days=7), today - timedelta(days=1)
    return None


def latest_period(frequency: str, today: date) -> tuple[date, date]:
    """The last complete period of this frequency before `today` (for previews); weekly = last Mon–Sun."""
    if frequency == DigestFrequency.WEEKLY or frequency == DigestFrequency.NONE:
        monday = today - timedelta(days=today.weekday())
        return monday - timedelta(days=7), monday - timedelta(days=1)
    yesterday = today - timedelta(days=1)
    return yesterday, yesterday


@dataclass(frozen=True)
class NextSend:
    period_start: date
    period_end: date
    not_before: datetime  # the earliest moment: the period must be over
    at_latest: datetime  # the cutoff: sent then even without figures
    overdue: bool = False  # past the cutoff: goes out with the next beat run


def next_send(subscription: ReportSubscription, now: datetime | None = None) -> NextSend | None:
    """When this subscription's next digest goes out, for the subscriptions page."""
    moment = utc_now(now)
    today = moment.date()
    if subscription.digest == DigestFrequency.NONE:
        return None
    sent = set()
    if subscription.pk:
        sent = set(
            DigestDelivery.objects.filter(
                subscription=subscription, sent_at__isnull=False, period_end__gte=today - timedelta(days=7)
            ).values_list("period_end", flat=True)
        )
    for offset in range(8):
        day = today + timedelta(days=offset)
        period = period_due_on(subscription.digest, day)
        if period is None or period[1] in sent:
            continue
        # Today's period not sent yet is next even past the cutoff: the next run (every 15 minutes) sends it.
        latest = datetime.combine(day, time(cutoff_hour()), tzinfo=UTC)
        return NextSend(
            period[0], period[1], datetime.combine(day, time(0), tzinfo=UTC), latest, overdue=moment >= latest
        )
    return None


@dataclass
class DayFigures:
    day: date
    pulled: bool = False
    totals: dict[str, int] = field(default_factory=dict)
    score: int | None = None
    rating: str = ""

    def get(self, kind: str) -> int:
        return self.totals.get(kind, 0)

    @property
    def delivered(self) -> int:
        return self.get(ReportKind.DELIVERED)

    @property
    def failed(self) -> int:
        return self.get(ReportKind.FAILED)

    @property
    def complaints(self) -> int:
        return self.get(ReportKind.COMPLAINTS)

    @property
    def opens(self) -> int:
        return self.get(ReportKind.OPENS)

    @property
    def clicks(self) -> int:
        return self.get(ReportKind.CLICKS)

    @property
    def unsubscribes(self) -> int:
        return self.get(ReportKind.UNSUBSCRIBES)

    @property
    def failure_rate(self) -> float | None:
        attempted = self.delivered + self.failed
        return 100.0 * self.failed / attempted if attempted else None

    @property
    def complaint_rate(self) -> float | None:
        return 100.0 * self.complaints / self.delivered if self.delivered else None


@dataclass
class Digest:
    server: Server
    frequency: str
    period_start: date
    period_end: date
    days: list[DayFigures]
    total: DayFigures
    alerts: list[Any]

    @property
    def missing(self) -> list[date]:
        return [d.day for d in self.days if not d.pulled]

    @property
    def latest_score(self) -> DayFigures | None:
        scored = [d for d in self.days if d.score is not None]
        return scored[-1] if scored else None

    @property
    def period_label(self) -> str:
        if self.period_start == self.period_end:
            return self.period_start.strftime("%a %Y-%m-%d")
        return f"{self.period_start:%a %Y-%m-%d} – {self.period_end:%a %Y-%m-%d}"

    @property
    def filename(self) -> str:
        return f"digest-{slugify(self.server.name) or self.server.pk}-{self.period_start}-{self.period_end}.csv"


def build_digest(server: Server, start: date, end: date, frequency: str) -> Digest:
    """The per-day figures of a server over a period, from pulled reports (two queries, plus alerts)."""
    days = {start + timedelta(days=i): DayFigures(start + timedelta(days=i)) for i in range((end - start).days + 1)}
    for day, kind, count in ReportDay.objects.filter(server=server, day__range=(start, end)).values_list(
        "day", "kind", "total"
    ):
        days[day].pulled = True
        days[day].totals[kind] = count
    for day, score, rating in StreamScoreDay.objects.filter(server=server, day__range=(start, end)).values_list(
        "day", "score", "rating"
    ):
        days[day].score, days[day].rating = score, rating
    rows = [days[d] for d in sorted(days)]
    total = DayFigures(end, pulled=any(d.pulled for d in rows))
    for row in rows:
        for kind, count in row.totals.items():
            total.totals[kind] = total.totals.get(kind, 0) + count
    alerts = [describe(a) for a in Alert.objects.filter(server=server, day__range=(start, end)).order_by("day", "kind")]
    return Digest(server, frequency, start, end, rows, total, alerts)


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


DIGEST_CSV_HEADER = (
    "day",
    "delivered",
    "failed",
    "complaints",
    "opens",
    "clicks",
    "unsubscribes",
    "failure_rate_percent",
    "complaint_rate_percent",
    "streamscore",
    "data",
)


def _csv_row(row: DayFigures) -> list[object]:
    if not row.pulled:
        return [row.day.isoformat(), "", "", "", "", "", "", "", "", row.score or "", "missing"]
    return [
        row.day.isoformat(),
        row.delivered,
        row.failed,
        row.complaints,
        row.opens,
        row.clicks,
        row.unsubscribes,
        _rate(row.failure_rate),
        _rate(row.complaint_rate),
        "" if row.score is None else row.score,
        "pulled",
    ]


def digest_csv(digest: Digest) -> str:
    """The per-day figures as CSV (the digest's attachment), written like every other export."""
    return "".join(stream_csv(DIGEST_CSV_HEADER, (_csv_row(row) for row in digest.days)))


def digest_message(digest: Digest, email: str, *, preview: bool = False) -> Any:
    context = {
        "digest": digest,
        "server": digest.server,
        "frequency": DigestFrequency(digest.frequency).label if digest.frequency else "",
        "preview": preview,
        "reports_url": absolute_url("reports:overview", server_id=digest.server.pk),
        "alerts_url": absolute_url("reports:alerts", server_id=digest.server.pk),
        "subscriptions_url": absolute_url("reports:subscriptions", server_id=digest.server.pk),
    }
    return make_message("digest", context, to=[email], attachments=[(digest.filename, digest_csv(digest), "text/csv")])


def subscribers_with_access() -> QuerySet[ReportSubscription]:
    """Digest subscriptions whose users are active and may still see the server."""
    member = Membership.objects.filter(user=OuterRef("user"), server=OuterRef("server"))
    return (
        ReportSubscription.objects.exclude(digest=DigestFrequency.NONE)
        .filter(user__is_active=True)
        .filter(Q(user__is_superuser=True) | Exists(member))
        .select_related("user", "server")
    )


def send_due_digests(now: datetime | None = None) -> int:
    """Claim and send every digest due now; returns the number of digests sent."""
    moment = utc_now(now)
    today = moment.date()
    past_cutoff = moment.hour >= cutoff_hour()
    yesterday = today - timedelta(days=1)
    pulled = set(ReportDay.objects.filter(day=yesterday).values_list("server_id", flat=True).distinct())
    for subscription in subscribers_with_access():
        period = period_due_on(subscription.digest, today)
        if period is None:
            continue
        if subscription.server_id not in pulled and not past_cutoff:
            continue  # wait for the night's pull, up to the cutoff
        try:
            with transaction.atomic():
                DigestDelivery.objects.get_or_create(
                    subscription=subscription, period_end=period[1], defaults={"period_start": period[0]}
                )
        except IntegrityError:
            pass  # another run created it at the same moment; the lock below decides who sends
    unsent = DigestDelivery.objects.filter(
        sent_at__isnull=True, period_end__gte=today - timedelta(days=RETRY_DAYS)
    ).values_list("pk", flat=True)
    return sum(deliver(pk) for pk in list(unsent))


def deliver(delivery_id: int) -> bool:
    """Send one claimed digest unless another run holds it or it went out; True when this call sent it."""
    with transaction.atomic():
        delivery = (
            DigestDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("subscription__user", "subscription__server")
            .filter(pk=delivery_id, sent_at__isnull=True)
            .first()
        )
        if delivery is None:
            return False
        subscription = delivery.subscription
        if not _still_subscribed(subscription):
            delivery.delete()
            return False
        digest = build_digest(subscription.server, delivery.period_start, delivery.period_end, subscription.digest)
        try:
            digest_message(digest, subscription.user.email).send()
        except Exception as exc:  # SMTP down, refused address: kept for the next run
            log.exception("digest mail failed", extra={"delivery": delivery.pk})
            delivery.error = f"{type(exc).__name__}: {exc}"[:500]
            delivery.save(update_fields=["error"])
            return False
        delivery.sent_at = timezone.now()
        delivery.error = ""
        delivery.save(update_fields=["sent_at", "error"])
        return True


def _still_subscribed(subscription: ReportSubscription) -> bool:
    return subscribers_with_access().filter(pk=subscription.pk).exists()


def send_preview(*, user: Any, server: Server, frequency: str, now: datetime | None = None) -> Digest:
    """Mail the user the digest of the latest complete period now (not recorded: beat still sends its own)."""
    today = utc_now(now).date()
    start, end = latest_period(frequency, today)
    digest = build_digest(server, start, end, frequency if frequency != DigestFrequency.NONE else "")
    digest_message(digest, user.email, preview=True).send()
    return digest


def subscribe(*, user: Any, server: Server, digest: str, alerts: bool, request: Any = None) -> ReportSubscription:
    """Set a user's own subscription for a server (created on first use), audited."""
    from accounts import audit

    subscription, created = ReportSubscription.objects.get_or_create(user=user, server=server)
    before = None if created else {"digest": subscription.digest, "alerts": subscription.alerts}
    subscription.digest, subscription.alerts = digest, alerts
    subscription.save(update_fields=["digest", "alerts"])
    audit.record(
        action="reports.subscription_changed",
        request=request,
        actor=user,
        server=server,
        target=f"report e-mails of {user.email}",
        before=before,
        after={"digest": digest, "alerts": alerts},
    )
    return subscription


def subscription_summary(subscription: ReportSubscription) -> str:
    digest = {
        DigestFrequency.NONE: "no digest",
        DigestFrequency.NIGHTLY: "a nightly digest",
        DigestFrequency.WEEKLY: "a weekly digest on Mondays",
    }[DigestFrequency(subscription.digest)]
    alerts = "alert e-mails" if subscription.alerts else "no alert e-mails"
    return f"Saved: {subscription.user.email} gets {digest} and {alerts} for {subscription.server.name}."
