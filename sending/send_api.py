"""REST API for bulk sends, under /api/v1/servers/{server_id}/sends/ — the same engine as the pages.

Reads need any role on the server; creating, starting, pausing, resuming and cancelling need
Marketing or Admin (404 without access, 403 for the wrong role). A send is created as a draft
with its recipients (inline rows, up to 10,000 per call; larger audiences can be added with
further calls to /recipients/) and only goes out after /start/.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import access
from accounts.models import Server
from accounts.roles import Capability
from sending import engine
from sending.models import RecipientState, Send, SendRecipient, Template

TAG = "Sends"
MAX_ROWS_PER_CALL = 10_000
RESULTS_PAGE = 500


class SendErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


ERRORS = {
    400: OpenApiResponse(SendErrorSerializer, description="Bad input; the detail says which field and why"),
    403: OpenApiResponse(SendErrorSerializer, description="Your role may not do this"),
    404: OpenApiResponse(SendErrorSerializer, description="No such server (or no access), or no such send"),
    409: OpenApiResponse(SendErrorSerializer, description="The send is not in a state that allows this"),
}


class RecipientInSerializer(serializers.Serializer):
    address = serializers.CharField(max_length=320)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    merge_fields = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False, default=dict)


class SendCreateSerializer(serializers.Serializer):
    template_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    subject = serializers.CharField(max_length=998, required=False, allow_blank=True, default="")
    html_body = serializers.CharField(required=False, allow_blank=True, default="")
    text_body = serializers.CharField(required=False, allow_blank=True, default="")
    from_address = serializers.CharField(max_length=254)
    from_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    reply_to = serializers.CharField(max_length=254, required=False, allow_blank=True, default="")
    cc = serializers.ListField(
        child=serializers.CharField(max_length=320),
        required=False,
        default=list,
        max_length=engine.BASIC_MAX_ADDRESSES - 1,
        help_text="Basic sends only: one message to all recipients (To), Cc and Bcc, at most 50 addresses in all, "
        "no per-recipient merge fields.",
    )
    bcc = serializers.ListField(
        child=serializers.CharField(max_length=320),
        required=False,
        default=list,
        max_length=engine.BASIC_MAX_ADDRESSES - 1,
        help_text="As cc.",
    )
    mailing_id = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    message_id_prefix = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    tags = serializers.ListField(child=serializers.CharField(max_length=100), required=False, default=list)
    metadata = serializers.DictField(child=serializers.CharField(), required=False, default=dict)
    custom_headers = serializers.DictField(child=serializers.CharField(), required=False, default=dict)
    global_fields = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False, default=dict)
    recipients = RecipientInSerializer(many=True, required=False, default=list)
    start = serializers.BooleanField(required=False, default=False, help_text="Start at once after creating.")

    def validate_recipients(self, value: list[Any]) -> list[Any]:
        if len(value) > MAX_ROWS_PER_CALL:
            raise serializers.ValidationError(
                f"At most {MAX_ROWS_PER_CALL:,} recipients per call; add more with /recipients/."
            )
        return value


CREATE_FIELDS = (  # passed as they are to engine.create_send
    "name",
    "subject",
    "html_body",
    "text_body",
    "from_address",
    "from_name",
    "reply_to",
    "cc",
    "bcc",
    "mailing_id",
    "message_id_prefix",
    "tags",
    "metadata",
    "custom_headers",
    "global_fields",
)


class RecipientsAddSerializer(serializers.Serializer):
    recipients = RecipientInSerializer(many=True)


class SendSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    cc = serializers.ListField(child=serializers.CharField(), read_only=True)
    bcc = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Send
        fields = [
            "id",
            "name",
            "status",
            "subject",
            "from_address",
            "from_name",
            "reply_to",
            "cc",
            "bcc",
            "mailing_id",
            "tags",
            "audience",
            "audience_state",
            "total",
            "skipped",
            "last_error",
            "created_at",
            "started_at",
            "finished_at",
            "progress",
        ]
        read_only_fields = fields

    def get_progress(self, send: Send) -> dict[str, Any]:
        p = engine.progress(send)
        return {
            "percent": p.percent,
            "pending": p.pending,
            "accepted": p.accepted,
            "rejected": p.rejected,
            "unknown": p.unknown,
            "skipped": p.skipped,
        }


class RecipientOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = SendRecipient
        fields = ["id", "address", "state", "code", "reason"]
        read_only_fields = fields


class ResultsPageSerializer(serializers.Serializer):
    results = RecipientOutSerializer(many=True)
    next_after = serializers.IntegerField(allow_null=True)


class RetrySerializer(serializers.Serializer):
    include_unknown = serializers.BooleanField(required=False, default=False)


def _server(request: Request, server_id: int, capability: str = Capability.READ) -> Server:
    return access.get_server_for_user(request.user, server_id, capability)


def _rows(data: list[dict[str, Any]]) -> list[engine.AudienceRow]:
    return [
        engine.AudienceRow(r["address"], r.get("name", ""), r.get("merge_fields") or {}, line=i + 1)
        for i, r in enumerate(data)
    ]


@extend_schema(tags=[TAG], methods=["GET"], responses={200: SendSerializer(many=True), **ERRORS})
@extend_schema(tags=[TAG], methods=["POST"], request=SendCreateSerializer, responses={201: SendSerializer, **ERRORS})
@api_view(["GET", "POST"])
def sends(request: Request, server_id: int) -> Response:
    if request.method == "GET":
        server = _server(request, server_id)
        return Response(SendSerializer(Send.objects.filter(server=server)[:100], many=True).data)
    server = _server(request, server_id, Capability.MARKETING)
    serializer = SendCreateSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = dict(serializer.validated_data)
    template = None
    if data["template_id"] is not None:
        template = Template.objects.filter(server=server, pk=data["template_id"]).first()
        if template is None:
            return Response({"template_id": ["No such template on this server."]}, status=status.HTTP_400_BAD_REQUEST)
    try:
        with transaction.atomic():
            send = engine.create_send(
                server=server,
                actor=request.user,
                template=template,
                audience="REST API",
                request=request._request,
                **{k: data[k] for k in CREATE_FIELDS},
            )
            engine.add_recipients(send, _rows(data["recipients"]))
            if data["start"]:
                engine.start(send, actor=request.user, request=request._request)
    except engine.SendError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    send.refresh_from_db()
    return Response(SendSerializer(send).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=[TAG], responses={200: SendSerializer, **ERRORS})
@api_view(["GET"])
def send_detail(request: Request, server_id: int, send_id: int) -> Response:
    server = _server(request, server_id)
    return Response(SendSerializer(get_object_or_404(Send, server=server, pk=send_id)).data)


@extend_schema(tags=[TAG], request=RecipientsAddSerializer, responses={200: SendSerializer, **ERRORS})
@api_view(["POST"])
def send_recipients(request: Request, server_id: int, send_id: int) -> Response:
    server = _server(request, server_id, Capability.MARKETING)
    send = get_object_or_404(Send, server=server, pk=send_id)
    serializer = RecipientsAddSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    rows = serializer.validated_data["recipients"]
    if len(rows) > MAX_ROWS_PER_CALL:
        return Response({"recipients": [f"At most {MAX_ROWS_PER_CALL:,} per call."]}, status=400)
    try:
        engine.add_recipients(send, _rows(rows))
    except engine.SendError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    send.refresh_from_db()
    return Response(SendSerializer(send).data)


@extend_schema(
    tags=[TAG],
    parameters=[
        OpenApiParameter("state", str, description="pending, accepted, rejected, skipped or unknown"),
        OpenApiParameter("after", int, description="The `next_after` of the previous page"),
    ],
    responses={200: ResultsPageSerializer, **ERRORS},
)
@api_view(["GET"])
def send_results(request: Request, server_id: int, send_id: int) -> Response:
    """Each recipient's result, a page of 500 at a time (keyset by id)."""
    server = _server(request, server_id)
    send = get_object_or_404(Send, server=server, pk=send_id)
    rows = SendRecipient.objects.filter(send=send).order_by("pk")
    state = request.query_params.get("state")
    if state:
        if state not in RecipientState.values:
            return Response({"state": [f"One of {', '.join(RecipientState.values)}."]}, status=400)
        rows = rows.filter(state=state)
    after = request.query_params.get("after")
    if after:
        if not after.isdigit():
            return Response({"after": ["A whole number."]}, status=400)
        rows = rows.filter(pk__gt=int(after))
    page = list(rows[: RESULTS_PAGE + 1])
    more = len(page) > RESULTS_PAGE
    page = page[:RESULTS_PAGE]
    return Response(
        {"results": RecipientOutSerializer(page, many=True).data, "next_after": page[-1].pk if more and page else None}
    )


@extend_schema(
    tags=[TAG], operation_id="sends_action", request=RetrySerializer, responses={200: SendSerializer, **ERRORS}
)
@api_view(["POST"])
def send_action(request: Request, server_id: int, send_id: int, action: str) -> Response:
    """start, approve (a second Admin), pause, resume, cancel or retry.

    retry re-sends failed recipients; unknown ones only with include_unknown.
    """
    server = _server(request, server_id, Capability.MARKETING)
    send = get_object_or_404(Send, server=server, pk=send_id)
    dj = request._request
    try:
        if action == "start":
            engine.start(send, actor=request.user, request=dj)
            ok = True
        elif action == "pause":
            ok = engine.pause(send, actor=request.user, request=dj)
        elif action == "resume":
            ok = engine.resume(send, actor=request.user, request=dj)
        elif action == "cancel":
            ok = engine.cancel(send, actor=request.user, request=dj)
        elif action == "approve":
            engine.approve(send, actor=request.user, request=dj)
            ok = True
        elif action == "retry":
            serializer = RetrySerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            ok = bool(
                engine.retry_failed(
                    send,
                    actor=request.user,
                    include_unknown=serializer.validated_data["include_unknown"],
                    request=dj,
                )
            )
        else:
            return Response({"detail": "Unknown action."}, status=status.HTTP_404_NOT_FOUND)
    except engine.SendError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    if not ok:
        return Response(
            {"detail": f"Cannot {action} a send that is {send.get_status_display().lower()}."},
            status=status.HTTP_409_CONFLICT,
        )
    send.refresh_from_db()
    return Response(SendSerializer(send).data)
