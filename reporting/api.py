"""REST API: /api/v1/servers/{server_id}/events/ and /api/v1/servers/{server_id}/inbound-messages/.

Read-only; every role with access to the server may read. Access goes through
`accounts.access.get_server_for_user` (404 without access). Lists are cursor-paginated, newest first.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination

from accounts import access
from accounts.models import Server
from reporting.models import Event, EventType, InboundAttachment, InboundMessage
from reporting.payloads import PayloadError, parse_datetime_field


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = [
            "id",
            "type",
            "occurred_at",
            "received_at",
            "address",
            "message_id",
            "mailing_id",
            "failure_type",
            "failure_code",
            "reason",
            "url",
            "user_agent",
            "client_ip",
            "extra",
        ]
        read_only_fields = fields


class AttachmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = InboundAttachment
        fields = ["id", "name", "content_type", "content_id", "embedded", "size", "sha256"]
        read_only_fields = fields


class InboundMessageListSerializer(serializers.ModelSerializer):
    class Meta:
        model = InboundMessage
        fields = [
            "id",
            "received_at",
            "mail_from",
            "rcpt_to",
            "from_address",
            "from_name",
            "subject",
            "message_id",
            "spam_score",
            "size",
            "forward_status",
        ]
        read_only_fields = fields


class InboundMessageSerializer(InboundMessageListSerializer):
    attachments = AttachmentSerializer(many=True, read_only=True)

    class Meta(InboundMessageListSerializer.Meta):
        fields = [
            *InboundMessageListSerializer.Meta.fields,
            "remote_ip",
            "text_body",
            "html_body",
            "attachments",
            "forward_attempts",
            "forwarded_at",
            "forward_error",
        ]
        read_only_fields = fields


class NewestFirst(CursorPagination):
    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


def _server(view: generics.GenericAPIView) -> Server:
    return access.get_server_for_user(view.request.user, int(view.kwargs["server_id"]))


def _moment(name: str, value: str | None) -> Any:
    if not value:
        return None
    try:
        return parse_datetime_field(value)
    except PayloadError as exc:
        raise ValidationError({name: f"“{value}” is not an ISO-8601 date and time."}) from exc


@extend_schema(
    parameters=[
        OpenApiParameter("type", str, enum=EventType.values, description="Only events of this type."),
        OpenApiParameter("address", str, description="Recipient address (exact, any case)."),
        OpenApiParameter("message_id", str),
        OpenApiParameter("mailing_id", str),
        OpenApiParameter("since", str, description="ISO-8601; events that occurred at or after."),
        OpenApiParameter("until", str, description="ISO-8601; events that occurred before."),
    ]
)
class EventListView(generics.ListAPIView):
    """Typed events from the server's event webhooks, newest first."""

    serializer_class = EventSerializer
    pagination_class = NewestFirst

    def get_queryset(self) -> QuerySet[Event]:
        events = Event.objects.filter(server=_server(self))
        params = self.request.query_params
        if kind := params.get("type"):
            if kind not in EventType.values:
                raise ValidationError({"type": f"Unknown type “{kind}”; one of {', '.join(EventType.values)}."})
            events = events.filter(type=kind)
        if address := params.get("address"):
            events = events.filter(address=address.strip().lower())
        if message_id := params.get("message_id"):
            events = events.filter(message_id=message_id)
        if mailing_id := params.get("mailing_id"):
            events = events.filter(mailing_id=mailing_id)
        if since := _moment("since", params.get("since")):
            events = events.filter(occurred_at__gte=since)
        if until := _moment("until", params.get("until")):
            events = events.filter(occurred_at__lt=until)
        return events


@extend_schema(parameters=[OpenApiParameter("q", str, description="Subject, sender or recipient contains.")])
class InboundMessageListView(generics.ListAPIView):
    """Messages received through inbound parse, newest first (bodies in the detail)."""

    serializer_class = InboundMessageListSerializer
    pagination_class = NewestFirst

    def get_queryset(self) -> QuerySet[InboundMessage]:
        from django.db.models import Q

        messages = InboundMessage.objects.filter(server=_server(self)).defer("text_body", "html_body", "payload")
        if query := self.request.query_params.get("q", "").strip():
            messages = messages.filter(
                Q(subject__icontains=query) | Q(from_address__icontains=query) | Q(rcpt_to__icontains=query)
            )
        return messages


class InboundMessageDetailView(generics.RetrieveAPIView):
    """One inbound message with its text and raw (unsanitised) HTML and its attachments' metadata."""

    serializer_class = InboundMessageSerializer

    def get_queryset(self) -> QuerySet[InboundMessage]:
        return InboundMessage.objects.filter(server=_server(self)).prefetch_related("attachments")
