"""REST API for servers. Every view reuses the access helper; DRF authenticates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_not_required
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import access, services
from accounts.models import Server
from accounts.roles import Capability


def login_not_required_view(view: Callable[..., Any]) -> Callable[..., Any]:
    """API views authenticate inside DRF (tokens or session), so the login middleware steps aside."""
    return login_not_required(view)


class ServerSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()
    has_api_key = serializers.SerializerMethodField()
    has_injection_key = serializers.SerializerMethodField()
    has_marketing_key = serializers.SerializerMethodField()

    class Meta:
        model = Server
        fields = [
            "id",
            "name",
            "socketlabs_id",
            "account_id",
            "subaccount_id",
            "time_zone",
            "status",
            "status_message",
            "last_checked_at",
            "role",
            "has_api_key",
            "has_injection_key",
            "has_marketing_key",
        ]
        read_only_fields = fields

    def get_role(self, obj: Server) -> str | None:
        return obj.role_for(self.context["request"].user)

    def get_has_api_key(self, obj: Server) -> bool:
        return bool(obj.api_key)

    def get_has_injection_key(self, obj: Server) -> bool:
        return bool(obj.injection_key)

    def get_has_marketing_key(self, obj: Server) -> bool:
        return bool(obj.marketing_key)


class ByIdCursorPagination(CursorPagination):
    # DRF's cursor pagination orders by "-created" unless told otherwise; servers have "id".
    ordering = "id"


class ServerViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ServerSerializer
    pagination_class = ByIdCursorPagination

    def get_queryset(self) -> Any:
        return Server.objects.for_user(self.request.user).order_by("id")

    def get_object(self) -> Server:
        return access.get_server_for_user(self.request.user, int(self.kwargs["pk"]))

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "ConnectionResult",
            {"ok": serializers.BooleanField(), "status": serializers.CharField(), "message": serializers.CharField()},
        ),
    )
    @action(detail=True, methods=["post"], url_path="test-connection")
    def test_connection(self, request: Request, pk: str) -> Response:
        server = access.get_server_for_user(request.user, int(pk), Capability.MANAGE_SERVER)
        result = services.test_connection(request=request._request, actor=request.user, server=server)
        return Response({"ok": result.ok, "status": result.status, "message": result.message})
