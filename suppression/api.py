"""REST API: /api/v1/servers/{server_id}/suppressions/… — check (one or up to 10,000), add, remove, search, job status.

Access goes through `accounts.access.get_server_for_user`: 404 without access to the server,
403 without the role (Ops or Admin change; every role checks and searches).
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import access
from accounts.models import Server
from accounts.roles import Capability
from common.emails import InvalidAddress
from suppression import imports, services
from suppression.forms import SearchForm
from suppression.models import ImportJob, MirrorState, Reason, Suppression


class EntrySerializer(serializers.Serializer):
    address = serializers.CharField()
    reason = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]  # a declared field, not Field.source
    last_update = serializers.DateTimeField()
    first_seen_at = serializers.DateTimeField()


class MirrorSerializer(serializers.Serializer):
    last_synced_at = serializers.DateTimeField(allow_null=True)
    plan_enabled = serializers.BooleanField(allow_null=True)
    plan_message = serializers.CharField()


class SearchResultSerializer(serializers.Serializer):
    results = EntrySerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
    mirror = MirrorSerializer()


class AddSerializer(serializers.Serializer):
    address = serializers.CharField(max_length=320)
    reason = serializers.ChoiceField(choices=Reason.choices, default=Reason.CUSTOMER_REQUEST)


class RemoveSerializer(serializers.Serializer):
    address = serializers.CharField(max_length=320)


class WriteResultSerializer(serializers.Serializer):
    result = serializers.ChoiceField(choices=["done", "queued", "refused"])
    message = serializers.CharField()
    pending_write_id = serializers.IntegerField(allow_null=True)
    entry = EntrySerializer(allow_null=True)


class BulkCheckSerializer(serializers.Serializer):
    addresses = serializers.ListField(
        child=serializers.CharField(max_length=1000, allow_blank=True), max_length=services.MAX_BULK_CHECK
    )


class CheckRowSerializer(serializers.Serializer):
    address = serializers.CharField()
    suppressed = serializers.BooleanField()
    reason = serializers.CharField(allow_null=True)
    source = serializers.CharField(allow_null=True)  # type: ignore[assignment]
    last_update = serializers.DateTimeField(allow_null=True)


class BulkCheckResultSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    suppressed_count = serializers.IntegerField()
    results = CheckRowSerializer(many=True)
    invalid = inline_serializer(
        "InvalidAddress", {"address": serializers.CharField(), "error": serializers.CharField()}, many=True
    )
    mirror = MirrorSerializer()


class JobStatusSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    status = serializers.CharField()
    filename = serializers.CharField()
    created_at = serializers.DateTimeField()
    rows_read = serializers.IntegerField()
    valid_rows = serializers.IntegerField()
    invalid_rows = serializers.IntegerField()
    duplicate_rows = serializers.IntegerField()
    unique_addresses = serializers.IntegerField()
    error = serializers.CharField()
    target = inline_serializer(
        "ImportTargetStatus",
        {
            "status": serializers.CharField(),
            "to_change": serializers.IntegerField(),
            "unchanged": serializers.IntegerField(),
            "changed": serializers.IntegerField(),
            "skipped": serializers.IntegerField(),
            "failed": serializers.IntegerField(),
            "stop_reason": serializers.CharField(),
        },
    )
    progress = inline_serializer(
        "ImportProgress",
        {
            "total": serializers.IntegerField(),
            "done": serializers.IntegerField(),
            "percent": serializers.FloatField(),
            "eta_seconds": serializers.FloatField(allow_null=True),
        },
    )


def _entry(row: Suppression) -> dict[str, Any]:
    return {
        "address": row.address,
        "reason": row.reason,
        "source": row.source,
        "last_update": row.last_update,
        "first_seen_at": row.first_seen_at,
    }


def _mirror(state: MirrorState) -> dict[str, Any]:
    return {
        "last_synced_at": state.last_synced_at,
        "plan_enabled": state.plan_enabled,
        "plan_message": state.plan_message,
    }


def _server(request: Request, server_id: int, capability: str = Capability.READ) -> Server:
    return access.get_server_for_user(request.user, server_id, capability)


def _write_response(result: services.WriteResult, server: Server, address: str) -> Response:
    entry = Suppression.objects.filter(server=server, address=address).first() if result.ok else None
    body = {
        "result": "done" if result.ok else "queued" if result.queued else "refused",
        "message": result.message,
        "pending_write_id": result.write.pk if result.write is not None and result.queued else None,
        "entry": _entry(entry) if entry is not None else None,
    }
    code: int
    if result.ok:
        code = status.HTTP_200_OK
    elif result.queued:
        code = status.HTTP_202_ACCEPTED
    elif result.plan_refused:
        code = status.HTTP_403_FORBIDDEN
    else:
        code = status.HTTP_502_BAD_GATEWAY  # SocketLabs refused it; the message says why
    return Response(body, status=code)


class SuppressionListView(APIView):
    @extend_schema(
        summary="Search the mirror (keyset pages, no counts)",
        parameters=[
            OpenApiParameter("address", str, description="Exact address or prefix (see `match`)"),
            OpenApiParameter("match", str, enum=["prefix", "exact"]),
            OpenApiParameter("domain", str),
            OpenApiParameter("reason", str, enum=Reason.values),
            OpenApiParameter("since", str, description="YYYY-MM-DD, last update on or after"),
            OpenApiParameter("until", str, description="YYYY-MM-DD, last update on or before"),
            OpenApiParameter("order", str, enum=list(services.ORDERS)),
            OpenApiParameter("cursor", str, description="`next_cursor` of the previous page"),
        ],
        responses=SearchResultSerializer,
    )
    def get(self, request: Request, server_id: int) -> Response:
        server = _server(request, server_id)
        form = SearchForm(request.query_params or None)
        if form.is_bound and not form.is_valid():
            return Response(form.errors, status=status.HTTP_400_BAD_REQUEST)
        page = services.search(server=server, filters=form.filters(), cursor=request.query_params.get("cursor"))
        return Response(
            {
                "results": [_entry(r) for r in page.rows],
                "next_cursor": page.next_cursor,
                "mirror": _mirror(services.state_for(server)),
            }
        )

    @extend_schema(
        summary="Add an address (SocketLabs first, then the mirror)",
        request=AddSerializer,
        responses={200: WriteResultSerializer, 202: WriteResultSerializer, 403: WriteResultSerializer},
    )
    def post(self, request: Request, server_id: int) -> Response:
        server = _server(request, server_id, Capability.OPS)
        data = AddSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            result = services.add(
                server=server,
                address=data.validated_data["address"],
                reason=data.validated_data["reason"],
                actor=request.user,
                request=request._request,
            )
        except InvalidAddress as exc:
            return Response({"address": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return _write_response(result, server, services.normalise(data.validated_data["address"]))


class SuppressionRemoveView(APIView):
    @extend_schema(
        summary="Remove an address (SocketLabs first, then the mirror)",
        request=RemoveSerializer,
        responses={200: WriteResultSerializer, 202: WriteResultSerializer, 403: WriteResultSerializer},
    )
    def post(self, request: Request, server_id: int) -> Response:
        server = _server(request, server_id, Capability.OPS)
        data = RemoveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            result = services.remove(
                server=server, address=data.validated_data["address"], actor=request.user, request=request._request
            )
        except InvalidAddress as exc:
            return Response({"address": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return _write_response(result, server, data.validated_data["address"].strip().lower())


class SuppressionCheckView(APIView):
    @extend_schema(
        summary="Is one address suppressed?",
        parameters=[OpenApiParameter("address", str, required=True)],
        responses=BulkCheckResultSerializer,
    )
    def get(self, request: Request, server_id: int) -> Response:
        server = _server(request, server_id)
        address = request.query_params.get("address", "")
        if not address:
            return Response({"address": ["This parameter is required."]}, status=status.HTTP_400_BAD_REQUEST)
        return self._answer(server, [address])

    @extend_schema(
        summary="Check up to 10,000 addresses in one call (one query)",
        request=BulkCheckSerializer,
        responses=BulkCheckResultSerializer,
    )
    def post(self, request: Request, server_id: int) -> Response:
        server = _server(request, server_id)
        # Checked by hand rather than by the serializer's per-item fields: ten thousand DRF field
        # validations cost more than the lookup itself. The rules are the serializer's.
        addresses = request.data.get("addresses") if isinstance(request.data, dict) else None
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            return Response({"addresses": ["A list of strings is required."]}, status=status.HTTP_400_BAD_REQUEST)
        if len(addresses) > services.MAX_BULK_CHECK:
            return Response(
                {"addresses": [f"Ensure this field has no more than {services.MAX_BULK_CHECK} elements."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        return self._answer(server, addresses)

    @staticmethod
    def _answer(server: Server, addresses: list[str]) -> Response:
        checked = services.check_many(server=server, addresses=addresses)
        return Response(
            {
                "count": len(checked.results),
                "suppressed_count": checked.suppressed_count,
                "results": checked.results,
                "invalid": checked.invalid,
                "mirror": _mirror(services.state_for(server)),
            }
        )


class ImportJobView(APIView):
    @extend_schema(summary="Status of a bulk import on this server", responses=JobStatusSerializer)
    def get(self, request: Request, server_id: int, job_id: str) -> Response:
        server = _server(request, server_id)
        job = imports.get_job_for_user(request.user, job_id)
        target = job.targets.filter(server=server).first()
        if target is None:
            raise Http404("No such import on this server.")
        return Response(_job(job, target))


def _job(job: ImportJob, target: Any) -> dict[str, Any]:
    progress = imports.progress(job)
    return {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "filename": job.filename,
        "created_at": job.created_at,
        "rows_read": job.rows_read,
        "valid_rows": job.valid_rows,
        "invalid_rows": job.invalid_rows,
        "duplicate_rows": job.duplicate_rows,
        "unique_addresses": job.unique_addresses,
        "error": job.error,
        "target": {
            "status": target.status,
            "to_change": target.to_change,
            "unchanged": target.unchanged,
            "changed": target.changed,
            "skipped": target.skipped,
            "failed": target.failed,
            "stop_reason": target.stop_reason,
        },
        "progress": {
            "total": progress.total,
            "done": progress.done,
            "percent": round(progress.percent, 1),
            "eta_seconds": progress.eta_seconds,
        },
    }
