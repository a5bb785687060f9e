"""Reads for the reporting pages: health figures, feeds, timelines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Avg, Count, Max, Q, QuerySet
from django.utils import timezone

from accounts.models import Server
from reporting.models import (
    DeadLetter,
    EndpointBase,
    Event,
    EventEndpoint,
    InboundEndpoint,
    RawEvent,
    RequestLog,
)


@dataclass(frozen=True)
class Health:
    last_request_at: datetime | None
    requests_24h: int
    errors_24h: int
    requests_7d: int
    errors_7d: int
    duplicates_7d: int
    avg_latency_ms: float | None
    max_latency_ms: float | None

    @property
    def error_rate_24h(self) -> float | None:
        return self.errors_24h / self.requests_24h if self.requests_24h else None

    @property
    def error_rate_7d(self) -> float | None:
        return self.errors_7d / self.requests_7d if self.requests_7d else None


def request_logs_for(endpoint: EndpointBase) -> QuerySet[RequestLog]:
    if isinstance(endpoint, InboundEndpoint):
        return RequestLog.objects.filter(inbound_endpoint_id=endpoint.pk)
    return RequestLog.objects.filter(endpoint_id=endpoint.pk)


def health(endpoint: EndpointBase, *, now: datetime | None = None) -> Health:
    now = now or timezone.now()
    day = now - timedelta(hours=24)
    logs = request_logs_for(endpoint).filter(received_at__gte=now - timedelta(days=7))
    error = Q(status__gte=400)
    recent = Q(received_at__gte=day)
    figures = logs.aggregate(
        requests_7d=Count("id"),
        errors_7d=Count("id", filter=error),
        duplicates_7d=Count("id", filter=Q(outcome="duplicate")),
        requests_24h=Count("id", filter=recent),
        errors_24h=Count("id", filter=recent & error),
        avg_latency_ms=Avg("latency_ms", filter=recent),
        max_latency_ms=Max("latency_ms", filter=recent),
        last_request_at=Max("received_at"),
    )
    return Health(**figures)


@dataclass(frozen=True)
class Backlog:
    pending: int
    oldest_pending_at: datetime | None
    open_dead_letters: int


def backlog(server: Server) -> Backlog:
    pending = RawEvent.objects.pending().filter(server=server)
    oldest = pending.order_by("id").values_list("received_at", flat=True).first()
    return Backlog(
        pending=pending.count(),
        oldest_pending_at=oldest,
        open_dead_letters=DeadLetter.objects.filter(server=server, replayed_at__isnull=True).count(),
    )


def server_request_logs(server: Server) -> QuerySet[RequestLog]:
    event_ids = EventEndpoint.objects.filter(server=server).values("id")
    inbound_ids = InboundEndpoint.objects.filter(server=server).values("id")
    return RequestLog.objects.filter(Q(endpoint_id__in=event_ids) | Q(inbound_endpoint_id__in=inbound_ids))


def activity(server: Server, *, type: str = "", address: str = "", limit: int = 100) -> list[Event]:
    events = Event.objects.filter(server=server)
    if type:
        events = events.filter(type=type)
    if address:
        events = events.filter(address__contains=address.strip().lower())
    return list(events.order_by("-id")[:limit])


def timeline(server: Server, *, q: str, field: str = "auto", limit: int = 500) -> list[Event]:
    q = q.strip()
    if not q:
        return []
    if field == "auto":
        field = "address" if "@" in q else "ids"
    events = Event.objects.filter(server=server)
    if field == "address":
        events = events.filter(address=q.lower())
    elif field == "message":
        events = events.filter(message_id=q)
    elif field == "mailing":
        events = events.filter(mailing_id=q)
    else:
        events = events.filter(Q(message_id=q) | Q(mailing_id=q))
    return list(events.order_by("occurred_at", "id")[:limit])
