"""REST API: /api/v1/servers/{server_id}/contacts/… — contacts, bulk upsert, lists and members, segments, fields.

Access goes through `accounts.access.get_server_for_user` before anything else: 404 without access
to the server, 403 for a change without the Marketing (or Admin) role. Every write calls the same
services as the pages (audit, history, outbox). Lists of contacts page by cursor in address order.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import access
from accounts.models import Server
from accounts.roles import Capability
from marketing import selectors, services
from marketing.models import Contact, ContactList, CustomField, FieldType, Membership, Segment, Status, Via
from marketing.segments import describe

SAFE = ("GET", "HEAD", "OPTIONS")


class ByEmail(CursorPagination):
    ordering = "email"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class ByName(CursorPagination):
    ordering = ("name", "id")
    page_size = 100


class ServerScoped:
    """Resolves `server_id` through the access helper before any handler runs."""

    server: Server
    kwargs: dict[str, Any]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        capability = Capability.READ if request.method in SAFE else Capability.MARKETING
        self.server = access.get_server_for_user(request.user, int(self.kwargs["server_id"]), capability)


def _raise(exc: services.ContactError) -> None:
    raise ValidationError(exc.errors)


# --- contacts -------------------------------------------------------------------------------------
class ContactSerializer(serializers.ModelSerializer):
    custom = serializers.DictField(required=False, help_text="Custom-field values by field key.")
    lists = serializers.ListField(
        child=serializers.IntegerField(), required=False, write_only=True, help_text="List ids (on create)."
    )

    class Meta:
        model = Contact
        fields = ["id", "email", "first_name", "last_name", "status", "custom", "lists", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs: ClassVar[dict[str, Any]] = {
            "email": {"validators": []}
        }  # uniqueness is the service's to check, per server


class BulkContactSerializer(serializers.Serializer):
    email = serializers.CharField()
    first_name = serializers.CharField(required=False, allow_blank=True)
    last_name = serializers.CharField(required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    custom = serializers.DictField(required=False)


class BulkRequestSerializer(serializers.Serializer):
    contacts = serializers.ListField(child=serializers.JSONField(), max_length=services.BULK_UPSERT_LIMIT)
    update_existing = serializers.BooleanField(default=True)
    skip_invalid = serializers.BooleanField(default=False)
    new_status = serializers.ChoiceField(choices=Status.choices, default=Status.SUBSCRIBED)
    lists = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)


class BulkRequestSchema(BulkRequestSerializer):
    """The request as documented (validation takes any objects and reports problems per contact)."""

    contacts = BulkContactSerializer(many=True)  # type: ignore[assignment]


class ProblemSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the contact in the request, from 0.")
    field = serializers.CharField()
    message = serializers.CharField()


class BulkResultSerializer(serializers.Serializer):
    committed = serializers.BooleanField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    skipped = serializers.IntegerField()
    invalid = serializers.IntegerField()
    list_added = serializers.IntegerField()
    problems = ProblemSerializer(many=True)


CONTACT_FILTERS = [
    OpenApiParameter("q", str, description="Start of the address."),
    OpenApiParameter("status", str, enum=Status.values),
    OpenApiParameter("list", int, description="Only members of this list."),
    OpenApiParameter("segment", int, description="Only contacts matching this saved segment."),
]


@extend_schema(tags=["contacts"])
class ContactViewSet(ServerScoped, viewsets.ModelViewSet):
    serializer_class = ContactSerializer
    pagination_class = ByEmail
    lookup_value_regex = "[0-9]+"

    def get_queryset(self) -> QuerySet[Contact]:
        params = self.request.query_params
        contacts = Contact.objects.filter(server=self.server)
        if params.get("q"):
            contacts = contacts.filter(selectors.search_q(params["q"].strip()))
        if params.get("status") in Status.values:
            contacts = contacts.filter(status=params["status"])
        if params.get("list", "").isdigit():
            contacts = contacts.filter(
                pk__in=Membership.objects.filter(contact_list_id=int(params["list"])).values("contact_id")
            )
        if params.get("segment", "").isdigit():
            segment = Segment.objects.filter(server=self.server, pk=int(params["segment"])).first()
            contacts = (
                contacts.filter(pk__in=services.contacts_matching(self.server, segment.definition).values("pk"))
                if segment
                else contacts.none()
            )
        return contacts

    @extend_schema(parameters=CONTACT_FILTERS)
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def perform_create(self, serializer: Any) -> None:
        data = dict(serializer.validated_data)
        try:
            contact = services.create_contact(
                server=self.server,
                actor=self.request.user,
                data={k: v for k, v in data.items() if k != "lists"},
                list_ids=data.get("lists", []),
                request=self.request._request,
                via=Via.API,
            )
        except services.ContactError as exc:
            _raise(exc)
        serializer.instance = contact

    def perform_update(self, serializer: Any) -> None:
        data = {k: v for k, v in serializer.validated_data.items() if k != "lists"}
        try:
            services.update_contact(
                contact=serializer.instance,
                actor=self.request.user,
                data=data,
                request=self.request._request,
                via=Via.API,
            )
        except services.ContactError as exc:
            _raise(exc)

    def perform_destroy(self, instance: Contact) -> None:
        instance.server = self.server
        services.delete_contact(contact=instance, actor=self.request.user, request=self.request._request)

    @extend_schema(request=BulkRequestSchema, responses={200: BulkResultSerializer, 400: BulkResultSerializer})
    @action(detail=False, methods=["post"], url_path="bulk")
    def bulk(self, request: Request, server_id: str) -> Response:
        """Create or update up to 10,000 contacts in one set-based transaction.

        Empty values never erase stored ones; an existing contact's status only moves away from
        "subscribed". Strict by default: one invalid contact and nothing is written (400, with every
        problem); with `skip_invalid` the valid ones are written and the others listed.
        """
        body = BulkRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            outcome, problems = services.bulk_upsert(
                server=self.server,
                actor=request.user,
                records=data["contacts"],
                update_existing=data["update_existing"],
                skip_invalid=data["skip_invalid"],
                list_ids=data["lists"],
                new_status=data["new_status"],
                request=request._request,
            )
        except services.ContactError as exc:
            _raise(exc)
        result = {**outcome.as_dict(), "problems": problems}
        return Response(result, status=status.HTTP_200_OK if outcome.committed else status.HTTP_400_BAD_REQUEST)


# --- lists ----------------------------------------------------------------------------------------
class ContactListSerializer(serializers.ModelSerializer):
    class Meta:
        model = ContactList
        fields = ["id", "name", "description", "remote_id", "member_count", "counted_at", "created_at"]
        read_only_fields = ["id", "remote_id", "member_count", "counted_at", "created_at"]
        extra_kwargs: ClassVar[dict[str, Any]] = {"name": {"validators": []}}


class MembersSerializer(serializers.Serializer):
    emails = serializers.ListField(child=serializers.CharField(), required=False, default=list, max_length=10_000)
    contact_ids = serializers.ListField(
        child=serializers.IntegerField(), required=False, default=list, max_length=10_000
    )


class MembersResultSerializer(serializers.Serializer):
    changed = serializers.IntegerField()
    not_found = serializers.ListField(child=serializers.CharField())


@extend_schema(tags=["contacts"])
class ContactListViewSet(ServerScoped, viewsets.ModelViewSet):
    serializer_class = ContactListSerializer
    pagination_class = ByName
    lookup_value_regex = "[0-9]+"

    def get_queryset(self) -> QuerySet[ContactList]:
        return ContactList.objects.filter(server=self.server)

    def perform_create(self, serializer: Any) -> None:
        try:
            serializer.instance = services.create_list(
                server=self.server,
                actor=self.request.user,
                name=serializer.validated_data["name"],
                description=serializer.validated_data.get("description", ""),
                request=self.request._request,
            )
        except services.ContactError as exc:
            _raise(exc)

    def perform_update(self, serializer: Any) -> None:
        instance = serializer.instance
        try:
            services.update_list(
                contact_list=instance,
                actor=self.request.user,
                name=serializer.validated_data.get("name", instance.name),
                description=serializer.validated_data.get("description", instance.description),
                request=self.request._request,
            )
        except services.ContactError as exc:
            _raise(exc)

    def perform_destroy(self, instance: ContactList) -> None:
        instance.server = self.server
        services.delete_list(contact_list=instance, actor=self.request.user, request=self.request._request)

    @extend_schema(
        methods=["GET"], responses=ContactSerializer(many=True), parameters=[OpenApiParameter("cursor", str)]
    )
    @extend_schema(methods=["POST", "DELETE"], request=MembersSerializer, responses=MembersResultSerializer)
    @action(detail=True, methods=["get", "post", "delete"])
    def members(self, request: Request, server_id: str, pk: str) -> Response:
        """GET the list's contacts; POST adds, DELETE removes contacts given by address or id (up to 10,000)."""
        contact_list = self.get_object()
        contact_list.server = self.server
        if request.method == "GET":
            members = Contact.objects.filter(
                server=self.server,
                pk__in=Membership.objects.filter(contact_list=contact_list).values("contact_id"),
            )
            paginator = ByEmail()
            page = paginator.paginate_queryset(members, request, view=self)
            return paginator.get_paginated_response(ContactSerializer(page, many=True).data)
        body = MembersSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        emails = [e.strip().lower() for e in body.validated_data["emails"]]
        ids = body.validated_data["contact_ids"]
        chosen = Contact.objects.filter(server=self.server, email__in=emails) | Contact.objects.filter(
            server=self.server, pk__in=ids
        )
        found = set(chosen.values_list("email", flat=True))
        found_ids = set(chosen.values_list("pk", flat=True))
        not_found = [e for e in emails if e not in found] + [str(i) for i in ids if i not in found_ids]
        if request.method == "POST":
            changed = services.bulk_add_to_list(
                server=self.server,
                contacts=chosen,
                contact_list=contact_list,
                actor=request.user,
                request=request._request,
            )
        else:
            changed = services.bulk_remove_from_list(
                server=self.server,
                contacts=chosen,
                contact_list=contact_list,
                actor=request.user,
                request=request._request,
            )
        return Response({"changed": changed, "not_found": not_found})


# --- segments -------------------------------------------------------------------------------------
class SegmentSerializer(serializers.ModelSerializer):
    definition = serializers.JSONField(
        help_text='{"match": "all"|"any", "conditions": [{"field": "custom.score", "op": "gte", "value": 50}, …]}'
    )
    description = serializers.SerializerMethodField()

    class Meta:
        model = Segment
        fields = ["id", "name", "definition", "description", "cached_count", "counted_at", "created_at", "updated_at"]
        read_only_fields = ["id", "cached_count", "counted_at", "created_at", "updated_at"]
        extra_kwargs: ClassVar[dict[str, Any]] = {"name": {"validators": []}}

    def get_description(self, obj: Segment) -> str:
        return describe(obj.definition, self.context["fields"])


@extend_schema(tags=["contacts"])
class SegmentViewSet(ServerScoped, viewsets.ModelViewSet):
    serializer_class = SegmentSerializer
    pagination_class = ByName
    lookup_value_regex = "[0-9]+"

    def get_queryset(self) -> QuerySet[Segment]:
        return Segment.objects.filter(server=self.server)

    def get_serializer_context(self) -> dict[str, Any]:
        context = dict(super().get_serializer_context())
        if hasattr(self, "server"):
            context["fields"] = services.segment_fields(self.server)
        return context

    def perform_create(self, serializer: Any) -> None:
        try:
            serializer.instance = services.save_segment(
                server=self.server,
                actor=self.request.user,
                name=serializer.validated_data["name"],
                definition=serializer.validated_data["definition"],
                request=self.request._request,
            )
        except services.ContactError as exc:
            _raise(exc)

    def perform_update(self, serializer: Any) -> None:
        instance = serializer.instance
        instance.server = self.server
        try:
            services.save_segment(
                server=self.server,
                actor=self.request.user,
                name=serializer.validated_data.get("name", instance.name),
                definition=serializer.validated_data.get("definition", instance.definition),
                segment=instance,
                request=self.request._request,
            )
        except services.ContactError as exc:
            _raise(exc)

    def perform_destroy(self, instance: Segment) -> None:
        instance.server = self.server
        services.delete_segment(segment=instance, actor=self.request.user, request=self.request._request)

    @extend_schema(responses=inline_serializer("SegmentCount", {"count": serializers.IntegerField()}))
    @action(detail=True, methods=["get"])
    def count(self, request: Request, server_id: str, pk: str) -> Response:
        """Count the contacts matching the segment now (the figure is also kept on the segment)."""
        segment = self.get_object()
        segment.server = self.server
        return Response({"count": services.count_segment(segment=segment)})

    @extend_schema(responses=ContactSerializer(many=True), parameters=[OpenApiParameter("cursor", str)])
    @action(detail=True, methods=["get"])
    def contacts(self, request: Request, server_id: str, pk: str) -> Response:
        segment = self.get_object()
        paginator = ByEmail()
        page = paginator.paginate_queryset(
            services.contacts_matching(self.server, segment.definition), request, view=self
        )
        return paginator.get_paginated_response(ContactSerializer(page, many=True).data)


# --- custom fields --------------------------------------------------------------------------------
class CustomFieldSerializer(serializers.ModelSerializer):
    key = serializers.CharField(required=False, max_length=50, help_text="Made from the label when not given.")
    choices = serializers.ListField(child=serializers.CharField(max_length=100), required=False, default=list)

    class Meta:
        model = CustomField
        fields = ["id", "key", "label", "type", "choices", "remote_name", "created_at"]
        read_only_fields = ["id", "remote_name", "created_at"]


@extend_schema(tags=["contacts"])
class CustomFieldViewSet(
    ServerScoped,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = CustomFieldSerializer
    pagination_class = None
    lookup_value_regex = "[0-9]+"

    def get_queryset(self) -> QuerySet[CustomField]:
        return CustomField.objects.filter(server=self.server).order_by("label", "id")

    def perform_create(self, serializer: Any) -> None:
        data = serializer.validated_data
        try:
            serializer.instance = services.create_field(
                server=self.server,
                actor=self.request.user,
                label=data["label"],
                type=data.get("type", FieldType.TEXT),
                choices=data.get("choices", []),
                key=data.get("key", ""),
                request=self.request._request,
            )
        except services.ContactError as exc:
            _raise(exc)

    def perform_update(self, serializer: Any) -> None:
        instance = serializer.instance
        instance.server = self.server
        data = serializer.validated_data
        if "type" in data and data["type"] != instance.type:
            raise ValidationError({"type": ["The type of a field cannot change."]})
        if "key" in data and data["key"] != instance.key:
            raise ValidationError({"key": ["The key of a field cannot change."]})
        try:
            services.update_field(
                custom=instance,
                actor=self.request.user,
                label=data.get("label", instance.label),
                choices=data.get("choices", instance.choices),
                request=self.request._request,
            )
        except services.ContactError as exc:
            _raise(exc)

    def perform_destroy(self, instance: CustomField) -> None:
        instance.server = self.server
        services.delete_field(custom=instance, actor=self.request.user, request=self.request._request)
