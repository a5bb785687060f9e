"""REST API for sending setup, under /api/v1/servers/{server_id}/sending/ — the same services as the pages.

Reads need any role on the server, changes need Ops or Admin (the access helper: 404 without
access, 403 for the wrong role). SocketLabs failures come back as `{"detail": "<plain words>"}`
with 4xx when SocketLabs refused the request and 502/503 when it failed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from uuid import UUID

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import access
from accounts.models import Server
from accounts.roles import Capability
from sending import dkim, services
from sending.errors import SendingError
from sending.models import DkimSetup, DnsCheckJob, DnsCheckResult, RecordKind
from sending.validators import normalize_domain

TAG = "Sending setup"


# --- serializers -------------------------------------------------------------------------------------
class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    field = serializers.CharField(required=False, allow_null=True)


class DnsResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = DnsCheckResult
        fields = [
            "kind",
            "domain",
            "selector",
            "host",
            "rtype",
            "expected",
            "published",
            "state",
            "detail",
            "checked_at",
        ]
        read_only_fields = fields


class DnsResultWithServerSerializer(DnsResultSerializer):
    class Meta(DnsResultSerializer.Meta):
        fields = ["server", *DnsResultSerializer.Meta.fields]
        read_only_fields = fields


class ApiKeySerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    public_part = serializers.CharField()
    permissions = serializers.ListField(child=serializers.CharField())
    created_on = serializers.DateTimeField(allow_null=True)
    last_used_on = serializers.DateTimeField(allow_null=True)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    secret = serializers.CharField(help_text="The whole key. Shown in this answer only: store it now.")
    stored_for_mailroom = serializers.BooleanField()


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    permissions = serializers.ListField(
        child=serializers.ChoiceField(choices=list(services.PERMISSIONS)), allow_empty=False
    )
    use_for_mailroom = serializers.BooleanField(
        default=False, help_text="Store the new key (encrypted) as this server's credential. Needs the Admin role."
    )


class DomainSerializer(serializers.Serializer):
    domain = serializers.CharField(max_length=300)

    def validate_domain(self, value: str) -> str:
        try:
            return normalize_domain(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc


class SendingDomainSerializer(serializers.Serializer):
    domain = serializers.CharField()
    status = serializers.CharField()
    verification_record = serializers.CharField(allow_null=True)
    created_on = serializers.DateTimeField(allow_null=True)
    verified_on = serializers.DateTimeField(allow_null=True)


class OutcomeSerializer(serializers.Serializer):
    state = serializers.CharField()
    published = serializers.ListField(child=serializers.CharField())
    detail = serializers.CharField()


class VerifySerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField()
    status = serializers.CharField()
    dns = OutcomeSerializer(source="outcome", allow_null=True)


class DkimRecordSerializer(serializers.Serializer):
    domain = serializers.CharField()
    selector = serializers.CharField()
    dns_host_name = serializers.CharField(allow_null=True)
    dns_record = serializers.CharField(allow_null=True)
    public_key = serializers.CharField(allow_null=True)
    validation_status = serializers.CharField(allow_null=True)


class DkimSetupSerializer(serializers.ModelSerializer):
    host = serializers.CharField(read_only=True)
    old_host = serializers.CharField(read_only=True)
    txt_value = serializers.CharField(read_only=True)
    txt_strings = serializers.SerializerMethodField(help_text="The TXT value as ≤255-byte strings, for zone files.")

    class Meta:
        model = DkimSetup
        fields = [
            "id",
            "domain",
            "selector",
            "old_selector",
            "host",
            "old_host",
            "txt_value",
            "txt_strings",
            "source",
            "step",
            "socketlabs_status",
            "last_message",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_txt_strings(self, obj: DkimSetup) -> list[str]:
        return dkim.split_txt(obj.txt_value)


class DkimCreateSerializer(DomainSerializer):
    selector = serializers.CharField(max_length=63)
    private_key = serializers.CharField(
        required=False,
        allow_blank=True,
        write_only=True,
        help_text="Your own unencrypted RSA private key (PEM, ≥1024 bits). Omit to have SocketLabs generate one.",
    )


class DkimRotateSerializer(DkimCreateSerializer):
    old_selector = serializers.CharField(max_length=63)


class StepSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField()
    setup = DkimSetupSerializer()


class BounceDomainSerializer(serializers.Serializer):
    domain = serializers.CharField()
    is_default = serializers.BooleanField()
    validation_status = serializers.CharField(allow_null=True)
    created_on = serializers.DateTimeField(allow_null=True)
    updated_on = serializers.DateTimeField(allow_null=True)


class BounceCreateSerializer(DomainSerializer):
    is_default = serializers.BooleanField(default=False)


class BounceUpdateSerializer(serializers.Serializer):
    is_default = serializers.BooleanField()


class TrackingFlagsSerializer(serializers.Serializer):
    opens_enabled = serializers.BooleanField(required=False, allow_null=True, default=None)
    clicks_enabled = serializers.BooleanField(required=False, allow_null=True, default=None)
    unsubscribes_enabled = serializers.BooleanField(required=False, allow_null=True, default=None)
    https_enabled = serializers.BooleanField(required=False, allow_null=True, default=None)
    is_default = serializers.BooleanField(required=False, allow_null=True, default=None)


class TrackingCreateSerializer(DomainSerializer, TrackingFlagsSerializer):
    pass


class TrackingDomainSerializer(serializers.Serializer):
    domain = serializers.CharField()
    opens_enabled = serializers.BooleanField(allow_null=True)
    clicks_enabled = serializers.BooleanField(allow_null=True)
    unsubscribes_enabled = serializers.BooleanField(allow_null=True)
    https_enabled = serializers.BooleanField(allow_null=True)
    is_default = serializers.BooleanField(allow_null=True)
    validation_status = serializers.CharField(allow_null=True)


class CheckSerializer(DomainSerializer):
    kind = serializers.ChoiceField(choices=RecordKind.choices)
    selector = serializers.CharField(required=False, allow_blank=True, default="")


class DnsJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = DnsCheckJob
        fields = [
            "id",
            "status",
            "trigger",
            "server_ids",
            "total",
            "done",
            "problems",
            "errors",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


# --- plumbing -----------------------------------------------------------------------------------------
ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Bad input, or SocketLabs refused it"),
    403: OpenApiResponse(ErrorSerializer, description="Your role may not do this"),
    404: OpenApiResponse(ErrorSerializer, description="No such server (or no access), or nothing there"),
    502: OpenApiResponse(ErrorSerializer, description="SocketLabs failed; the detail says what to do"),
}


def translated(view: Callable[..., Response]) -> Callable[..., Response]:
    """A SendingError becomes `{"detail", "field"}` with its status."""

    @wraps(view)
    def wrapper(request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return view(request, *args, **kwargs)
        except SendingError as exc:
            return Response({"detail": exc.message, "field": exc.field}, status=exc.status)

    return wrapper


def _server(request: Request, server_id: int, capability: str = Capability.READ) -> Server:
    return access.get_server_for_user(request.user, server_id, capability)


def _writer(request: Request, server_id: int) -> Server:
    """Every unsafe method needs Ops; checked before the body is even read."""
    return _server(request, server_id, Capability.OPS)


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _dj(request: Request) -> Any:
    return request._request


# --- API keys --------------------------------------------------------------------------------------------
@extend_schema(tags=[TAG], methods=["GET"], responses={200: ApiKeySerializer(many=True), **ERRORS})
@extend_schema(
    tags=[TAG], methods=["POST"], request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer, **ERRORS}
)
@api_view(["GET", "POST"])
@translated
def api_keys(request: Request, server_id: int) -> Response:
    if request.method == "GET":
        server = _server(request, server_id)
        return Response(ApiKeySerializer(services.list_api_keys(server=server), many=True).data)
    server = _writer(request, server_id)
    data = _valid(ApiKeyCreateSerializer, request.data)
    if data["use_for_mailroom"] and not access.user_can(request.user, server, Capability.MANAGE_SERVER):
        raise PermissionDenied("Only an Admin of this server may store a key as Mailroom's credential.")
    key = services.create_api_key(
        request=_dj(request),
        actor=request.user,
        server=server,
        name=data["name"],
        permissions=data["permissions"],
        use_for_mailroom=data["use_for_mailroom"],
    )
    body = {**ApiKeySerializer(key).data, "secret": key.secret or "", "stored_for_mailroom": data["use_for_mailroom"]}
    return Response(body, status=status.HTTP_201_CREATED)


@extend_schema(tags=[TAG], methods=["DELETE"], responses={204: None, **ERRORS})
@api_view(["DELETE"])
@translated
def api_key_detail(request: Request, server_id: int, key_id: str) -> Response:
    server = _writer(request, server_id)
    services.revoke_api_key(request=_dj(request), actor=request.user, server=server, key_id=key_id)
    return Response(status=status.HTTP_204_NO_CONTENT)


# --- sending domains ---------------------------------------------------------------------------------------
@extend_schema(tags=[TAG], methods=["GET"], responses={200: SendingDomainSerializer(many=True), **ERRORS})
@extend_schema(
    tags=[TAG], methods=["POST"], request=DomainSerializer, responses={201: SendingDomainSerializer, **ERRORS}
)
@api_view(["GET", "POST"])
@translated
def domains(request: Request, server_id: int) -> Response:
    if request.method == "GET":
        server = _server(request, server_id)
        return Response(SendingDomainSerializer(services.list_sending_domains(server=server), many=True).data)
    server = _writer(request, server_id)
    data = _valid(DomainSerializer, request.data)
    added = services.add_sending_domain(request=_dj(request), actor=request.user, server=server, domain=data["domain"])
    return Response(SendingDomainSerializer(added).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=[TAG], methods=["DELETE"], responses={204: None, **ERRORS})
@api_view(["DELETE"])
@translated
def domain_detail(request: Request, server_id: int, domain: str) -> Response:
    server = _writer(request, server_id)
    services.remove_sending_domain(request=_dj(request), actor=request.user, server=server, domain=domain)
    return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=[TAG], methods=["POST"], request=None, responses={200: VerifySerializer, **ERRORS})
@api_view(["POST"])
@translated
def domain_verify(request: Request, server_id: int, domain: str) -> Response:
    """Checks the verification TXT record from Mailroom first; asks SocketLabs only when it matches."""
    server = _writer(request, server_id)
    result = services.verify_sending_domain(request=_dj(request), actor=request.user, server=server, domain=domain)
    return Response(VerifySerializer(result).data)


# --- DKIM --------------------------------------------------------------------------------------------------
@extend_schema(tags=[TAG], methods=["GET"], responses={200: DkimRecordSerializer(many=True), **ERRORS})
@extend_schema(
    tags=[TAG],
    methods=["POST"],
    request=DkimCreateSerializer,
    responses={201: DkimSetupSerializer, 409: OpenApiResponse(ErrorSerializer), **ERRORS},
    description="A new key (generated by SocketLabs, or yours) waiting for its TXT record; then POST …/verify/.",
)
@api_view(["GET", "POST"])
@translated
def dkim_keys(request: Request, server_id: int) -> Response:
    if request.method == "GET":
        server = _server(request, server_id)
        return Response(DkimRecordSerializer(services.list_dkim(server=server), many=True).data)
    server = _writer(request, server_id)
    data = _valid(DkimCreateSerializer, request.data)
    setup = services.start_dkim(
        request=_dj(request),
        actor=request.user,
        server=server,
        domain=data["domain"],
        selector=data["selector"],
        private_key=data.get("private_key", ""),
    )
    return Response(DkimSetupSerializer(setup).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=[TAG], methods=["DELETE"], responses={204: None, **ERRORS})
@api_view(["DELETE"])
@translated
def dkim_key_detail(request: Request, server_id: int, domain: str, selector: str) -> Response:
    server = _writer(request, server_id)
    services.remove_dkim(request=_dj(request), actor=request.user, server=server, domain=domain, selector=selector)
    return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=[TAG], methods=["GET"], responses={200: DkimSetupSerializer(many=True), **ERRORS})
@api_view(["GET"])
@translated
def dkim_setups(request: Request, server_id: int) -> Response:
    server = _server(request, server_id)
    return Response(DkimSetupSerializer(DkimSetup.objects.open().filter(server=server), many=True).data)


@extend_schema(
    tags=[TAG],
    methods=["POST"],
    request=DkimRotateSerializer,
    responses={201: DkimSetupSerializer, 409: OpenApiResponse(ErrorSerializer), **ERRORS},
    description="Start a rotation to a new selector: publish → verify → switch → finish.",
)
@api_view(["POST"])
@translated
def dkim_rotations(request: Request, server_id: int) -> Response:
    server = _writer(request, server_id)
    data = _valid(DkimRotateSerializer, request.data)
    setup = services.start_rotation(
        request=_dj(request),
        actor=request.user,
        server=server,
        domain=data["domain"],
        old_selector=data["old_selector"],
        new_selector=data["selector"],
        private_key=data.get("private_key", ""),
    )
    return Response(DkimSetupSerializer(setup).data, status=status.HTTP_201_CREATED)


def _setup(request: Request, server_id: int, setup_id: int, capability: str) -> DkimSetup:
    server = _server(request, server_id, capability)
    setup = get_object_or_404(DkimSetup, pk=setup_id, server=server)
    setup.server = server
    return setup


@extend_schema(tags=[TAG], methods=["GET"], responses={200: DkimSetupSerializer, **ERRORS})
@extend_schema(tags=[TAG], methods=["DELETE"], responses={204: None, **ERRORS}, description="Cancel the key.")
@api_view(["GET", "DELETE"])
@translated
def dkim_setup_detail(request: Request, server_id: int, setup_id: int) -> Response:
    if request.method == "GET":
        return Response(DkimSetupSerializer(_setup(request, server_id, setup_id, Capability.READ)).data)
    setup = _setup(request, server_id, setup_id, Capability.OPS)
    services.cancel_dkim(request=_dj(request), actor=request.user, setup=setup)
    return Response(status=status.HTTP_204_NO_CONTENT)


def _step(action: Callable[..., services.StepResult], description: str) -> Callable[..., Response]:
    @extend_schema(
        tags=[TAG], methods=["POST"], request=None, responses={200: StepSerializer, **ERRORS}, description=description
    )
    @api_view(["POST"])
    @translated
    def view(request: Request, server_id: int, setup_id: int) -> Response:
        setup = _setup(request, server_id, setup_id, Capability.OPS)
        result = action(request=_dj(request), actor=request.user, setup=setup)
        setup.refresh_from_db()
        return Response({"ok": result.ok, "message": result.message, "setup": DkimSetupSerializer(setup).data})

    return view


dkim_verify = _step(
    services.verify_dkim, "Check the TXT record from Mailroom; when it matches, SocketLabs validates the key."
)
dkim_switch = _step(services.switch_dkim, "Rotation: remove the old key at SocketLabs so only the new one signs.")
dkim_finish = _step(services.finish_rotation, "Rotation: finished once the old TXT record is gone from DNS.")


# --- bounce domains -----------------------------------------------------------------------------------------
@extend_schema(tags=[TAG], methods=["GET"], responses={200: BounceDomainSerializer(many=True), **ERRORS})
@extend_schema(
    tags=[TAG], methods=["POST"], request=BounceCreateSerializer, responses={201: BounceDomainSerializer, **ERRORS}
)
@api_view(["GET", "POST"])
@translated
def bounce_domains(request: Request, server_id: int) -> Response:
    if request.method == "GET":
        server = _server(request, server_id)
        return Response(BounceDomainSerializer(services.list_bounce_domains(server=server), many=True).data)
    server = _writer(request, server_id)
    data = _valid(BounceCreateSerializer, request.data)
    added = services.add_bounce_domain(
        request=_dj(request), actor=request.user, server=server, domain=data["domain"], is_default=data["is_default"]
    )
    return Response(BounceDomainSerializer(added).data, status=status.HTTP_201_CREATED)


@extend_schema(
    tags=[TAG], methods=["PATCH"], request=BounceUpdateSerializer, responses={200: BounceDomainSerializer, **ERRORS}
)
@extend_schema(tags=[TAG], methods=["DELETE"], responses={204: None, **ERRORS})
@api_view(["PATCH", "DELETE"])
@translated
def bounce_domain_detail(request: Request, server_id: int, domain: str) -> Response:
    server = _writer(request, server_id)
    if request.method == "DELETE":
        services.remove_bounce_domain(request=_dj(request), actor=request.user, server=server, domain=domain)
        return Response(status=status.HTTP_204_NO_CONTENT)
    data = _valid(BounceUpdateSerializer, request.data)
    updated = services.set_default_bounce_domain(
        request=_dj(request), actor=request.user, server=server, domain=domain, is_default=data["is_default"]
    )
    return Response(BounceDomainSerializer(updated).data)


# --- tracking domains ----------------------------------------------------------------------------------------
@extend_schema(tags=[TAG], methods=["GET"], responses={200: TrackingDomainSerializer(many=True), **ERRORS})
@extend_schema(
    tags=[TAG], methods=["POST"], request=TrackingCreateSerializer, responses={201: TrackingDomainSerializer, **ERRORS}
)
@api_view(["GET", "POST"])
@translated
def tracking_domains(request: Request, server_id: int) -> Response:
    if request.method == "GET":
        server = _server(request, server_id)
        return Response(TrackingDomainSerializer(services.list_tracking_domains(server=server), many=True).data)
    server = _writer(request, server_id)
    data = _valid(TrackingCreateSerializer, request.data)
    domain = data.pop("domain")
    added = services.add_tracking_domain(
        request=_dj(request), actor=request.user, server=server, domain=domain, flags=data
    )
    return Response(TrackingDomainSerializer(added).data, status=status.HTTP_201_CREATED)


@extend_schema(
    tags=[TAG], methods=["PATCH"], request=TrackingFlagsSerializer, responses={200: TrackingDomainSerializer, **ERRORS}
)
@extend_schema(tags=[TAG], methods=["DELETE"], responses={204: None, **ERRORS})
@api_view(["PATCH", "DELETE"])
@translated
def tracking_domain_detail(request: Request, server_id: int, domain: str) -> Response:
    server = _writer(request, server_id)
    if request.method == "DELETE":
        services.remove_tracking_domain(request=_dj(request), actor=request.user, server=server, domain=domain)
        return Response(status=status.HTTP_204_NO_CONTENT)
    flags = _valid(TrackingFlagsSerializer, request.data)
    updated = services.update_tracking_domain(
        request=_dj(request), actor=request.user, server=server, domain=domain, flags=flags
    )
    return Response(TrackingDomainSerializer(updated).data)


# --- DNS -----------------------------------------------------------------------------------------------------
@extend_schema(tags=[TAG], methods=["GET"], responses={200: DnsResultSerializer(many=True), **ERRORS})
@api_view(["GET"])
@translated
def dns_results(request: Request, server_id: int) -> Response:
    server = _server(request, server_id)
    return Response(DnsResultSerializer(DnsCheckResult.objects.filter(server=server), many=True).data)


@extend_schema(
    tags=[TAG],
    methods=["POST"],
    request=CheckSerializer,
    responses={200: DnsResultSerializer, **ERRORS},
    description="Check one record now. `state` is ok only for a match; timeout and error mean unknown.",
)
@api_view(["POST"])
@translated
def dns_check(request: Request, server_id: int) -> Response:
    server = _writer(request, server_id)
    data = _valid(CheckSerializer, request.data)
    result = services.check_record(server=server, kind=data["kind"], domain=data["domain"], selector=data["selector"])
    return Response(DnsResultSerializer(result).data)


@extend_schema(
    tags=[TAG],
    methods=["POST"],
    request=None,
    responses={202: DnsJobSerializer, **ERRORS},
    description="Check every record of the server in the background; poll the job for progress.",
)
@api_view(["POST"])
@translated
def dns_jobs(request: Request, server_id: int) -> Response:
    server = _writer(request, server_id)
    job = services.start_dns_job(
        request=_dj(request), actor=request.user, servers=[server], server=server, trigger="api"
    )
    return Response(DnsJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=[TAG], methods=["GET"], responses={200: DnsJobSerializer, **ERRORS})
@api_view(["GET"])
@translated
def dns_job_detail(request: Request, server_id: int, job_id: UUID) -> Response:
    server = _server(request, server_id)
    return Response(DnsJobSerializer(get_object_or_404(DnsCheckJob, pk=job_id, server=server)).data)


@extend_schema(
    tags=[TAG],
    methods=["GET"],
    responses={200: inline_serializer("DnsHealth", {"results": DnsResultWithServerSerializer(many=True)})},
)
@api_view(["GET"])
def dns_health_all(request: Request) -> Response:
    """DNS check results across every server you can see."""
    servers = Server.objects.for_user(request.user)
    results = DnsCheckResult.objects.filter(server__in=servers).order_by("server_id", "domain", "kind", "host")
    return Response({"results": DnsResultWithServerSerializer(results, many=True).data})
