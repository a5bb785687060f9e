"""Report alerts: thresholds crossed on a server's day (issue 9). Interface used by pulls and dashboards."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from django.db.models import QuerySet

from accounts.models import Server
from reporting.models import Alert


def evaluate_days(server: Server, days: Iterable[date]) -> list[Alert]:
    """Called by a finished report pull for the days it pulled: records (and mails) new alerts."""
    return []


def open_alerts(servers: Iterable[Server]) -> QuerySet[Alert]:
    """Alerts not dismissed for these servers, newest first: the notices on dashboards."""
    return Alert.objects.filter(server__in=list(servers), dismissed_at__isnull=True).select_related("server")
