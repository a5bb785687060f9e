"""The sandbox's Marketing API (legacy, beta): contact lists, contacts, custom fields (contract §7, §0a).

HTTP Basic with username = ServerId and password = a key holding the `marketing` permission for
that server; anything else is 401 with a Basic challenge. `Accept: application/xml` (or text/xml)
renders the same data as XML (`<response>…<collection><item>…`), else JSON.

Decisions where the contract is silent: validation errors are 400 (the documented answer for a bad
e-mail) with the v2 error body `{data: null, errors: [{errorType, message}]}`; list paging is
`index` (0-based record offset) and `count` (default and max 500) as in legacy reporting;
`POST /contacts/unsubscribe/` creates the contact (unsubscribed) when the address is unknown;
`SANDBOX_MARKETING_CONTACT_LIMIT` (unset = no limit) makes adding a new contact answer 403.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from sandbox.api_common import (
    ApiError,
    error_body,
    find_key,
    iso,
    json_array_body,
    json_body,
    log_request,
    not_found,
    touch,
    valid_email,
)
from sandbox.casefold import CIMap, query_get
from sandbox.gate import sandbox_api
from sandbox.models import (
    Permission,
    SandboxContact,
    SandboxContactList,
    SandboxCustomField,
    SandboxServer,
)

log = logging.getLogger(__name__)

MAX_COUNT = 500
XML_TYPES = ("application/xml", "text/xml")


# --- rendering -------------------------------------------------------------------------
def wants_xml(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "").lower()
    return any(t in accept for t in XML_TYPES) and "application/json" not in accept


def _xml_fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _xml_fill(ET.SubElement(element, str(key)), item)
    elif isinstance(value, list):
        for item in value:
            _xml_fill(ET.SubElement(element, "item"), item)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)


def to_xml(data: Any) -> bytes:
    root = ET.Element("response")
    _xml_fill(root, data)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def render(request: HttpRequest, data: Any, status: int = 200) -> HttpResponse:
    if wants_xml(request):
        return HttpResponse(to_xml(data), status=status, content_type="application/xml; charset=utf-8")
    return HttpResponse(json.dumps(data), status=status, content_type="application/json")


def envelope(items: list[dict[str, Any]], *, total: int, count: int) -> dict[str, Any]:
    return {
        "timestamp": iso(timezone.now()),
        "totalCount": total,
        "totalPages": math.ceil(total / count) if count else 0,
        "count": len(items),
        "collection": items,
    }


def bad(message: str, kind: str = "ValidationError") -> ApiError:
    return ApiError(400, [(kind, message)])


# --- auth and the endpoint wrapper -------------------------------------------------------
def _basic_credentials(request: HttpRequest) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def _authenticate(request: HttpRequest) -> SandboxServer:
    credentials = _basic_credentials(request)
    failure = ApiError(401, [("Unauthorized", "HTTP Basic with the ServerId and a Marketing API key is required.")])
    failure.headers["WWW-Authenticate"] = 'Basic realm="SocketLabsMarketingAPI"'
    if credentials is None:
        raise failure
    server_id, password = credentials
    key = find_key(password)
    if (
        key is None
        or Permission.MARKETING not in key.permissions
        or not server_id.strip().isdigit()
        or key.server.server_id != int(server_id)
    ):
        raise failure
    touch(key)
    return key.server


@dataclass
class MCall:
    request: HttpRequest
    server: SandboxServer
    kwargs: dict[str, Any]

    @cached_property
    def body(self) -> CIMap:
        return json_body(self.request)

    def q(self, name: str) -> str | None:
        return query_get(self.request.GET, name)


MHandler = Callable[[MCall], Any]


def marketing_endpoint(**handlers: MHandler) -> Callable[..., HttpResponse]:
    allowed = {method.upper(): handler for method, handler in handlers.items()}

    @sandbox_api
    def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        server_id: int | None = None
        status, error = 500, ""
        try:
            server = _authenticate(request)
            server_id = server.server_id
            handler = allowed.get(request.method or "")
            if handler is None:
                raise ApiError(405, [("MethodNotAllowed", f"{request.method} is not allowed on this path.")])
            response = render(request, handler(MCall(request=request, server=server, kwargs=kwargs)))
            status = response.status_code
            return response
        except ApiError as exc:
            status, error = exc.status, exc.errors[0][0]
            response = render(request, error_body(exc.errors), status=exc.status)
            for name, value in exc.headers.items():
                response[name] = value
            return response
        except Exception:
            receipt = str(uuid.uuid4())
            log.exception("sandbox marketing internal error %s", receipt)
            status, error = 500, "InternalError"
            body = error_body([("InternalError", "The sandbox had an internal error.")])
            body["transactionReceipt"] = receipt
            return render(request, body, status=500)
        finally:
            log_request(request, api="marketing", server_id=server_id, status=status, error=error)

    return view


@sandbox_api
def not_found_view(request: HttpRequest, rest: str = "") -> HttpResponse:
    log_request(request, api="marketing", server_id=None, status=404, error="NotFound")
    return render(request, error_body(not_found(f"No Marketing API endpoint at {request.path}.").errors), status=404)


# --- shapes and lookups -----------------------------------------------------------------------
def contact_data(c: SandboxContact) -> dict[str, Any]:
    return {
        "id": c.pk,
        "emailAddress": c.email_address,
        "firstName": c.first_name,
        "lastName": c.last_name,
        "customFields": [{"name": k, "value": v} for k, v in sorted((c.custom_fields or {}).items())],
        "unsubscribed": c.unsubscribed,
    }


def _window(call: MCall) -> tuple[int, int]:
    """`index` (0-based record offset) and `count` (default and maximum 500)."""
    values = {"index": 0, "count": MAX_COUNT}
    for name in values:
        raw = call.q(name)
        if raw in (None, ""):
            continue
        if not str(raw).isdigit():
            raise bad(f"{name}: must be a whole number, got {raw!r}.")
        values[name] = int(str(raw))
    return values["index"], max(1, min(values["count"], MAX_COUNT))


def _paged(call: MCall, qs: QuerySet[Any], shape: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    index, count = _window(call)
    return envelope([shape(o) for o in qs[index : index + count]], total=qs.count(), count=count)


def _list(call: MCall) -> SandboxContactList:
    found = SandboxContactList.objects.filter(server=call.server, pk=call.kwargs["list_id"]).first()
    if found is None:
        raise not_found(f"Server {call.server.server_id} has no contact list {call.kwargs['list_id']}.")
    return found


def _contact(call: MCall) -> SandboxContact:
    found = SandboxContact.objects.filter(server=call.server, pk=call.kwargs["contact_id"]).first()
    if found is None:
        raise not_found(f"Server {call.server.server_id} has no contact {call.kwargs['contact_id']}.")
    return found


def _email(value: Any) -> str:
    if value in (None, ""):
        raise bad("emailAddress: is required.")
    if not valid_email(value):
        raise bad(f"emailAddress: {value!r} is not a valid e-mail address.")
    return str(value).strip().lower()


def _name(body: CIMap, name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 100:
        raise bad(f"{name}: must be text of at most 100 characters.")
    return value.strip()


def _check_contact_limit(server: SandboxServer) -> None:
    limit = getattr(settings, "SANDBOX_MARKETING_CONTACT_LIMIT", None)
    if limit is not None and SandboxContact.objects.filter(server=server).count() >= int(limit):
        raise ApiError(403, [("ContactLimitReached", f"The contact limit of {limit} is reached.")])


# --- handlers ----------------------------------------------------------------------------------
def get_lists(call: MCall) -> dict[str, Any]:
    qs = SandboxContactList.objects.filter(server=call.server).annotate(size=Count("contacts")).order_by("id")
    return _paged(
        call,
        qs,
        lambda lst: {"id": lst.pk, "name": lst.name, "contactCount": lst.size, "createdOn": iso(lst.created_on)},
    )


def add_existing_to_list(call: MCall) -> dict[str, Any]:
    contact_list, contact = _list(call), _contact(call)
    contact.lists.add(contact_list)  # adding twice is a no-op: idempotent as documented
    return contact_data(contact)


def add_new_to_list(call: MCall) -> dict[str, Any]:
    contact_list = _list(call)
    body = call.body
    address = _email(body.get("emailAddress"))
    first, last = _name(body, "firstName"), _name(body, "lastName")
    with transaction.atomic():
        contact = SandboxContact.objects.filter(server=call.server, email_address=address).first()
        if contact is None:
            # Names count only for a new contact; an existing one keeps its own (§7).
            _check_contact_limit(call.server)
            contact = SandboxContact.objects.create(
                server=call.server, email_address=address, first_name=first or "", last_name=last or ""
            )
        contact.lists.add(contact_list)
    return contact_data(contact)


def remove_from_list(call: MCall) -> dict[str, Any]:
    contact_list = _list(call)
    address = _email(call.q("emailAddress"))
    contact = contact_list.contacts.filter(email_address=address).first()
    if contact is None:
        raise not_found(f"{address} is not on list {contact_list.pk}.")
    contact.lists.remove(contact_list)
    return contact_data(contact)


def unsubscribe_contact(call: MCall) -> dict[str, Any]:
    address = _email(call.body.get("emailAddress"))
    with transaction.atomic():
        contact = SandboxContact.objects.filter(server=call.server, email_address=address).first()
        if contact is None:
            _check_contact_limit(call.server)
            contact = SandboxContact.objects.create(server=call.server, email_address=address, unsubscribed=True)
        elif not contact.unsubscribed:
            contact.unsubscribed = True
            contact.save(update_fields=["unsubscribed"])
    return contact_data(contact)


def get_contacts(call: MCall) -> dict[str, Any]:
    return _paged(call, SandboxContact.objects.filter(server=call.server).order_by("id"), contact_data)


def get_contact(call: MCall) -> dict[str, Any]:
    return contact_data(_contact(call))


def update_contact(call: MCall) -> dict[str, Any]:
    contact, body = _contact(call), call.body
    if "emailAddress" in body:
        address = _email(body.get("emailAddress"))
        taken = SandboxContact.objects.filter(server=call.server, email_address=address).exclude(pk=contact.pk)
        if taken.exists():
            raise ApiError(409, [("Conflict", f"Another contact already has {address}.")])
        contact.email_address = address
    for api_name, attr in (("firstName", "first_name"), ("lastName", "last_name")):
        value = _name(body, api_name)
        if value is not None:
            setattr(contact, attr, value)
    contact.save()
    return contact_data(contact)


def delete_contact(call: MCall) -> dict[str, Any]:
    contact = _contact(call)
    data = contact_data(contact)
    contact.delete()
    return data


def get_custom_fields(call: MCall) -> dict[str, Any]:
    qs = SandboxCustomField.objects.filter(server=call.server).order_by("name")
    return _paged(call, qs, lambda f: {"id": f.pk, "name": f.name, "dataType": f.data_type})


def set_custom_fields(call: MCall) -> dict[str, Any]:
    contact = _contact(call)
    items = json_array_body(call.request)
    known = {f.name.lower(): f.name for f in SandboxCustomField.objects.filter(server=call.server)}
    errors: list[tuple[str, str]] = []
    changes: dict[str, str | None] = {}
    for position, item in enumerate(items):
        if not isinstance(item, CIMap) or "name" not in item:
            errors.append(("ValidationError", f"[{position}]: must be an object with name and value."))
            continue
        field_name = known.get(str(item["name"]).lower())
        value = item.get("value")
        if field_name is None:
            errors.append(("ValidationError", f"[{position}].name: {item['name']!r} is not a custom field."))
        elif isinstance(value, dict | list | CIMap):
            errors.append(("ValidationError", f"[{position}].value: must be text, a number or null."))
        else:
            changes[field_name] = None if value is None else str(value)
    if errors:
        raise ApiError(400, errors)
    values = dict(contact.custom_fields or {})
    for name, value in changes.items():
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value
    contact.custom_fields = values
    contact.save(update_fields=["custom_fields"])
    return contact_data(contact)


# --- the views ---------------------------------------------------------------------------------
lists = marketing_endpoint(GET=get_lists)
list_contact = marketing_endpoint(PUT=add_existing_to_list)
list_contacts = marketing_endpoint(PUT=add_new_to_list, DELETE=remove_from_list)
unsubscribe = marketing_endpoint(POST=unsubscribe_contact)
contacts = marketing_endpoint(GET=get_contacts)
contact = marketing_endpoint(GET=get_contact, PUT=update_contact, DELETE=delete_contact)
custom_fields = marketing_endpoint(GET=get_custom_fields)
contact_fields = marketing_endpoint(PUT=set_custom_fields)
