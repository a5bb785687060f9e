"""Report alerts: thresholds crossed on a server's day (issue 9). Interface used by pulls and dashboards.

A pull stores its days, then calls `evaluate_days`: for each day, the failure rate
(failed / (delivered + failed)), the complaint rate (complaints / delivered) and StreamScore are
compared with the server's `ReportSettings`. A crossed threshold is one `Alert` row per server,
day and kind (unique), so a re-pull updates the figure and never mails twice: mailing claims the
row by setting `notified_at` with a conditional update first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts import audit
from accounts.models import Membership, Server
from reporting.models import Alert, AlertKind, ReportDay, ReportKind, ReportSettings, ReportSubscription, StreamScoreDay
from reporting.report_mail import absolute_url, make_message

log = logging.getLogger(__name__)

# Alerts whose mail failed are retried by the digest beat for this long.
RETRY_MAIL_DAYS = 3


def settings_for(server: Server) -> ReportSettings:
    """The server's report settings, created with the defaults the first time they are needed."""
    report_settings, _ = ReportSettings.objects.get_or_create(server=server)
    return report_settings


@dataclass(frozen=True)
class Reading:
    """One figure of one day compared with its threshold (exactly: 5 failed of 100 is not above 5 %)."""

    kind: str
    exact: Fraction
    limit: Fraction

    @property
    def value(self) -> float:
        return float(self.exact)

    @property
    def threshold(self) -> float:
        return float(self.limit)

    @property
    def crossed(self) -> bool:
        if self.kind == AlertKind.STREAMSCORE:
            return self.exact < self.limit
        return self.exact > self.limit


def readings(report_settings: ReportSettings, totals: dict[str, int], score: int | None) -> list[Reading]:
    """The figures of one day that can be computed (a rate needs a denominator above zero)."""
    found = []
    delivered = totals.get(ReportKind.DELIVERED, 0)
    failed = totals.get(ReportKind.FAILED, 0)
    complaints = totals.get(ReportKind.COMPLAINTS, 0)
    if delivered + failed > 0:
        found.append(
            Reading(
                AlertKind.FAILURE_RATE,
                Fraction(100 * failed, delivered + failed),
                Fraction(Decimal(report_settings.failure_rate_threshold)),
            )
        )
    if delivered > 0:
        found.append(
            Reading(
                AlertKind.COMPLAINT_RATE,
                Fraction(100 * complaints, delivered),
                Fraction(Decimal(report_settings.complaint_rate_threshold)),
            )
        )
    if score is not None:
        found.append(Reading(AlertKind.STREAMSCORE, Fraction(score), Fraction(report_settings.streamscore_threshold)))
    return found


def evaluate_days(server: Server, days: Iterable[date]) -> list[Alert]:
    """Called by a finished report pull for the days it pulled: records (and mails) new alerts.

    Returns the alerts whose threshold is crossed on these days (new or updated). Mail goes out
    after the surrounding transaction commits, once per alert.
    """
    day_list = sorted(set(days))
    if not day_list:
        return []
    report_settings = settings_for(server)
    if not report_settings.alerts_enabled:
        return []
    totals: dict[date, dict[str, int]] = {}
    for row in ReportDay.objects.filter(
        server=server,
        day__in=day_list,
        kind__in=[ReportKind.DELIVERED, ReportKind.FAILED, ReportKind.COMPLAINTS],
    ).values_list("day", "kind", "total"):
        totals.setdefault(row[0], {})[row[1]] = row[2]
    scores = dict(StreamScoreDay.objects.filter(server=server, day__in=day_list).values_list("day", "score"))
    existing = {(a.day, a.kind): a for a in Alert.objects.filter(server=server, day__in=day_list)}

    crossed: list[Alert] = []
    now = timezone.now()
    for day in day_list:
        for reading in readings(report_settings, totals.get(day, {}), scores.get(day)):
            alert = existing.get((day, reading.kind))
            if reading.crossed:
                if alert is None:
                    alert, _ = Alert.objects.get_or_create(
                        server=server,
                        day=day,
                        kind=reading.kind,
                        defaults={"value": reading.value, "threshold": reading.threshold},
                    )
                if (alert.value, alert.threshold) != (reading.value, reading.threshold):
                    alert.value, alert.threshold = reading.value, reading.threshold
                    alert.save(update_fields=["value", "threshold"])
                crossed.append(alert)
            elif alert is not None and alert.dismissed_at is None:
                # Newer figures no longer cross the threshold: the notice goes away by itself.
                alert.value, alert.threshold, alert.dismissed_at = reading.value, reading.threshold, now
                alert.save(update_fields=["value", "threshold", "dismissed_at"])
    pending = [a.pk for a in crossed if a.notified_at is None]
    if pending:
        transaction.on_commit(lambda: notify(pending))
    return crossed


def open_alerts(servers: Iterable[Server]) -> QuerySet[Alert]:
    """Alerts not dismissed for these servers, newest first: the notices on dashboards."""
    return Alert.objects.filter(server__in=list(servers), dismissed_at__isnull=True).select_related("server")


def alert_recipients(server: Server) -> QuerySet[ReportSubscription]:
    """Subscriptions to this server's alerts whose users may still see the server."""
    member = Membership.objects.filter(user=OuterRef("user"), server=server)
    return (
        ReportSubscription.objects.filter(server=server, alerts=True, user__is_active=True)
        .filter(Q(user__is_superuser=True) | Exists(member))
        .select_related("user")
        .order_by("user__email")
    )


def notify(alert_ids: Iterable[int]) -> int:
    """Mail each alert once to the server's alert subscribers; returns the number of messages sent.

    Each alert is claimed (notified_at set where it was empty) before mailing, so two callers never
    both mail it; if sending fails the claim is released and a later run retries.
    """
    ids = list(alert_ids)
    by_server: dict[int, list[Alert]] = {}
    for alert in Alert.objects.filter(pk__in=ids, notified_at__isnull=True, dismissed_at__isnull=True).select_related(
        "server"
    ):
        claimed = Alert.objects.filter(pk=alert.pk, notified_at__isnull=True).update(notified_at=timezone.now())
        if claimed:
            by_server.setdefault(alert.server_id, []).append(alert)
    sent = 0
    for alerts in by_server.values():
        server = alerts[0].server
        sent_here = 0
        try:
            messages = [alert_message(server, alerts, sub.user.email) for sub in alert_recipients(server)]
            for message in messages:
                message.send()
                sent_here += 1
        except Exception:
            log.exception("report alert mail failed", extra={"server": server.pk})
            if not sent_here:
                # Nobody has it yet: release the claim so a later run retries (never a second copy).
                Alert.objects.filter(pk__in=[a.pk for a in alerts]).update(notified_at=None)
        sent += sent_here
    return sent


def notify_pending() -> int:
    """Retry the mail of recent alerts whose mail did not go out (beat, with the digests)."""
    since = timezone.now() - timedelta(days=RETRY_MAIL_DAYS)
    ids = Alert.objects.filter(notified_at__isnull=True, dismissed_at__isnull=True, created_at__gte=since).values_list(
        "pk", flat=True
    )
    return notify(list(ids))


def alert_message(server: Server, alerts: list[Alert], email: str) -> Any:
    context = {
        "server": server,
        "alerts": [describe(a) for a in alerts],
        "alerts_url": absolute_url("reports:alerts", server_id=server.pk),
        "subscriptions_url": absolute_url("reports:subscriptions", server_id=server.pk),
    }
    return make_message("alert", context, to=[email])


@dataclass(frozen=True)
class AlertText:
    alert: Alert
    label: str
    value: str
    threshold: str
    comparison: str


def format_figure(kind: str, value: float) -> str:
    if kind == AlertKind.STREAMSCORE:
        return f"{value:.0f}"
    # Complaint thresholds are tenths of a percent: two decimals keep 0.15 % apart from 0.1 %.
    return f"{value:.2f} %"


def describe(alert: Alert) -> AlertText:
    """The words of an alert for notices and mails: "Failure rate 6.20 % above 5.00 %"."""
    labels = {
        AlertKind.STREAMSCORE: "StreamScore",
        AlertKind.FAILURE_RATE: "Failure rate",
        AlertKind.COMPLAINT_RATE: "Complaint rate",
    }
    return AlertText(
        alert=alert,
        label=labels.get(AlertKind(alert.kind), alert.kind),
        value=format_figure(alert.kind, alert.value),
        threshold=format_figure(alert.kind, alert.threshold),
        comparison="below" if alert.kind == AlertKind.STREAMSCORE else "above",
    )


@dataclass(frozen=True)
class NoticeGroup:
    """The open alerts of one server and kind, shown as one notice: the latest day and how many days."""

    latest: Alert
    days: int
    first_day: date


NOTICE_GROUPS_SHOWN = 8


def notice_groups(alerts: Iterable[Alert]) -> list[NoticeGroup]:
    """One notice per server and kind (a back-fill of a bad fortnight is one line, not fourteen),
    newest day first, then server name."""
    grouped: dict[tuple[int, str], list[Alert]] = {}
    for alert in alerts:
        grouped.setdefault((alert.server_id, alert.kind), []).append(alert)
    groups = [
        NoticeGroup(latest=max(items, key=lambda a: a.day), days=len(items), first_day=min(a.day for a in items))
        for items in grouped.values()
    ]
    return sorted(groups, key=lambda g: (-g.latest.day.toordinal(), g.latest.server.name, g.latest.kind))


def dismiss(*, alert: Alert, actor: Any, request: HttpRequest | None = None) -> bool:
    """Hide an alert's notice for everyone, with the open alerts of the same kind on earlier days
    (its notice stood for all of them); False when it was already dismissed."""
    done = Alert.objects.filter(pk=alert.pk, dismissed_at__isnull=True).update(dismissed_at=timezone.now())
    if done:
        earlier = Alert.objects.filter(
            server_id=alert.server_id, kind=alert.kind, day__lt=alert.day, dismissed_at__isnull=True
        ).update(dismissed_at=timezone.now())
        text = describe(alert)
        also = f" (and {earlier} earlier day{'s' if earlier != 1 else ''})" if earlier else ""
        audit.record(
            action="reports.alert_dismissed",
            request=request,
            actor=actor,
            server=alert.server,
            target=f"{text.label} on {alert.day}: {text.value} {text.comparison} {text.threshold}{also}",
        )
    alert.refresh_from_db(fields=["dismissed_at"])
    return bool(done)


SETTINGS_FIELDS = ("streamscore_threshold", "failure_rate_threshold", "complaint_rate_threshold", "alerts_enabled")


def update_settings(*, report_settings: ReportSettings, data: dict[str, Any], actor: Any, request: HttpRequest) -> None:
    """Save new thresholds (Admin) with the before/after in the audit log."""
    before = {name: str(getattr(report_settings, name)) for name in SETTINGS_FIELDS}
    for name in SETTINGS_FIELDS:
        setattr(report_settings, name, data[name])
    report_settings.updated_at = timezone.now()
    report_settings.save(update_fields=[*SETTINGS_FIELDS, "updated_at"])
    after = {name: str(getattr(report_settings, name)) for name in SETTINGS_FIELDS}
    audit.record(
        action="reports.alert_settings_changed",
        request=request,
        actor=actor,
        server=report_settings.server,
        target="alert thresholds",
        before=before,
        after=after,
    )
