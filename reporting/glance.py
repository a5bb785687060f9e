"""The main dashboard's figures per server: latest StreamScore, today's volume, open alerts.

A fixed number of queries whatever the number of servers: the StreamScore rides on the server
query as subqueries, today's volume is one grouped query over the webhook rollups, the alerts one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from django.db.models import OuterRef, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from accounts.models import Server
from reporting.alerts import open_alerts
from reporting.models import Alert, DailyRollup, EventType, StreamScoreDay

NOTICES_SHOWN = 50


def with_latest_streamscore(servers: QuerySet[Server]) -> QuerySet[Server]:
    latest = StreamScoreDay.objects.filter(server=OuterRef("pk")).order_by("-day")
    return servers.annotate(
        glance_score=Subquery(latest.values("score")[:1]),
        glance_rating=Subquery(latest.values("rating")[:1]),
        glance_score_day=Subquery(latest.values("day")[:1]),
    )


@dataclass
class Glance:
    alerts: list[Alert] = field(default_factory=list)
    more_alerts: int = 0


def annotate(servers: list[Server], now: datetime | None = None) -> Glance:
    """Set `glance_today` (delivered + failed today, server's local day), `glance_today_day` and
    `glance_alerts` (open alerts) on each server; return the newest open alerts for the notices."""
    moment = now or timezone.now()
    by_day: dict[date, list[int]] = {}
    for server in servers:
        server.glance_today_day = moment.astimezone(server.zone).date()  # type: ignore[attr-defined]
        by_day.setdefault(server.glance_today_day, []).append(server.pk)  # type: ignore[attr-defined]
    volume: dict[int, int] = {}
    if by_day:
        where = Q()
        for day, ids in by_day.items():
            where |= Q(day=day, server_id__in=ids)
        rows = (
            DailyRollup.objects.filter(where, type__in=[EventType.DELIVERED, EventType.FAILED])
            .values("server_id")
            .annotate(total=Sum("count"))
            .values_list("server_id", "total")
        )
        volume = {server_id: total or 0 for server_id, total in rows}
    alerts = list(open_alerts(servers).order_by("-day", "server__name", "kind"))
    counts: dict[int, int] = {}
    for alert in alerts:
        counts[alert.server_id] = counts.get(alert.server_id, 0) + 1
    for server in servers:
        server.glance_today = volume.get(server.pk, 0)  # type: ignore[attr-defined]
        server.glance_alerts = counts.get(server.pk, 0)  # type: ignore[attr-defined]
    return Glance(alerts=alerts[:NOTICES_SHOWN], more_alerts=max(0, len(alerts) - NOTICES_SHOWN))
