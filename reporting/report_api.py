"""REST API for pulled report data: /api/v1/servers/{server_id}/reports/…

Read-only; every role with access to the server may read, others get 404 (through
`accounts.access.get_server_for_user`). Dates are UTC days as SocketLabs reports them (`YYYY-MM-DD`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination

from accounts import access
from accounts.models import Server
from reporting.models import Alert, AlertKind, ReportBreakdown, ReportDay, ReportDimension, ReportKind, StreamScoreDay


class ReportDaySerializer(serializers.ModelSerializer):
    class Meta:
        model = ReportDay
        fields = ["day", "kind", "total", "unique", "pulled_at"]
        read_only_fields = fields


class ReportBreakdownSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReportBreakdown
        fields = ["day", "kind", "dimension", "key", "count"]
        read_only_fields = fields


class StreamScoreDaySerializer(serializers.ModelSerializer):
    class Meta:
        model = StreamScoreDay
        fields = ["day", "score", "rating", "pulled_at"]
        read_only_fields = fields


class AlertSerializer(serializers.ModelSerializer):
    open = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = ["id", "day", "kind", "value", "threshold", "created_at", "notified_at", "dismissed_at", "open"]
        read_only_fields = fields

    def get_open(self, alert: Alert) -> bool:
        return alert.dismissed_at is None


class NewestDayFirst(CursorPagination):
    ordering = ("-day", "-id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


def _server(view: generics.GenericAPIView) -> Server:
    return access.get_server_for_user(view.request.user, int(view.kwargs["server_id"]))


def _day(name: str, value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValidationError({name: f"“{value}” is not a date in the form YYYY-MM-DD."}) from exc


def _choice(name: str, value: str | None, choices: list[str]) -> str | None:
    if not value:
        return None
    if value not in choices:
        raise ValidationError({name: f"Unknown {name} “{value}”; one of {', '.join(choices)}."})
    return value


def _date_range(queryset: QuerySet[Any], params: Any) -> QuerySet[Any]:
    first, last = _day("from", params.get("from")), _day("to", params.get("to"))
    if first and last and first > last:
        raise ValidationError({"from": f"“from” ({first}) is after “to” ({last})."})
    if first:
        queryset = queryset.filter(day__gte=first)
    if last:
        queryset = queryset.filter(day__lte=last)
    return queryset


RANGE = [
    OpenApiParameter("from", date, description="First UTC day, inclusive (YYYY-MM-DD)."),
    OpenApiParameter("to", date, description="Last UTC day, inclusive (YYYY-MM-DD)."),
]
KIND = OpenApiParameter("kind", str, enum=ReportKind.values, description="Only this report kind.")


@extend_schema(parameters=[*RANGE, KIND])
class ReportDayListView(generics.ListAPIView):
    """Pulled overview totals per UTC day and report kind, newest day first."""

    serializer_class = ReportDaySerializer
    pagination_class = NewestDayFirst

    def get_queryset(self) -> QuerySet[ReportDay]:
        params = self.request.query_params
        rows = _date_range(ReportDay.objects.filter(server=_server(self)), params)
        if kind := _choice("kind", params.get("kind"), ReportKind.values):
            rows = rows.filter(kind=kind)
        return rows


@extend_schema(
    parameters=[
        *RANGE,
        KIND,
        OpenApiParameter("dimension", str, enum=ReportDimension.values, description="Only this breakdown."),
    ]
)
class ReportBreakdownListView(generics.ListAPIView):
    """Pulled counts split by recipient domain, mailing, failure code, reason or URL, newest day first."""

    serializer_class = ReportBreakdownSerializer
    pagination_class = NewestDayFirst

    def get_queryset(self) -> QuerySet[ReportBreakdown]:
        params = self.request.query_params
        rows = _date_range(ReportBreakdown.objects.filter(server=_server(self)), params)
        if kind := _choice("kind", params.get("kind"), ReportKind.values):
            rows = rows.filter(kind=kind)
        if dimension := _choice("dimension", params.get("dimension"), ReportDimension.values):
            rows = rows.filter(dimension=dimension)
        return rows


@extend_schema(parameters=RANGE)
class StreamScoreListView(generics.ListAPIView):
    """StreamScore per UTC day with SocketLabs' rating, newest day first."""

    serializer_class = StreamScoreDaySerializer
    pagination_class = NewestDayFirst

    def get_queryset(self) -> QuerySet[StreamScoreDay]:
        return _date_range(StreamScoreDay.objects.filter(server=_server(self)), self.request.query_params)


@extend_schema(
    parameters=[
        *RANGE,
        OpenApiParameter("kind", str, enum=AlertKind.values, description="Only this kind of alert."),
        OpenApiParameter("open", bool, description="true: only alerts not dismissed; false: only dismissed ones."),
    ]
)
class AlertListView(generics.ListAPIView):
    """Thresholds crossed on the server's days (value and threshold as percent, or the StreamScore)."""

    serializer_class = AlertSerializer
    pagination_class = NewestDayFirst

    def get_queryset(self) -> QuerySet[Alert]:
        params = self.request.query_params
        rows = _date_range(Alert.objects.filter(server=_server(self)), params)
        if kind := _choice("kind", params.get("kind"), AlertKind.values):
            rows = rows.filter(kind=kind)
        if flag := _choice("open", params.get("open"), ["true", "false"]):
            rows = rows.filter(dismissed_at__isnull=flag == "true")
        return rows
