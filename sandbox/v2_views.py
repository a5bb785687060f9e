"""The sandbox's SocketLabs API v2: the paths of contract §0a, under /sandbox/api/v2/.

Each endpoint is a small handler taking a `Call` (authenticated key + server); `v2_endpoint`
in api_common does auth, method dispatch, errors and the request log. Handlers raise
`ApiError` for anything that is not a success.

Simulated verification (documented for testers): a sending domain, DKIM key, bounce or tracking
domain is "Verified" unless its name contains the marker `settings.SANDBOX_UNVERIFIED_MARKER`
(default "unverified"), in which case it is "Failed". Domains start "Pending" until verified;
DKIM, bounce and tracking domains are checked when added.
"""

from __future__ import annotations

import csv
import importlib
import importlib.util
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone

from sandbox import dkim, reports
from sandbox.api_common import (
    MAX_PAGE_SIZE,
    Call,
    Invalid,
    conflict,
    date_range,
    gateway_url,
    injection_credential,
    iso,
    not_found,
    ok,
    ok_list,
    paging,
    sort_order,
    suppression_plan_required,
    v2_endpoint,
    valid_domain,
    valid_email,
)
from sandbox.casefold import CIMap
from sandbox.models import (
    Permission,
    SandboxApiKey,
    SandboxBounceDomain,
    SandboxDkim,
    SandboxEventWebhook,
    SandboxInboundEndpoint,
    SandboxSendingDomain,
    SandboxServer,
    SandboxSuppression,
    SandboxTrackingDomain,
    SuppressionReason,
    VerificationStatus,
    WebhookFormat,
    random_alnum,
)

log = logging.getLogger(__name__)


def verification_outcome(name: str) -> str:
    marker = str(getattr(settings, "SANDBOX_UNVERIFIED_MARKER", "unverified")).lower()
    return VerificationStatus.FAILED if marker and marker in name.lower() else VerificationStatus.VERIFIED


def _page(call: Call, qs: QuerySet[Any], invalid: Invalid, *, default_size: int = MAX_PAGE_SIZE) -> list[Any]:
    page = paging(call.request, invalid, default_size=default_size)
    invalid.raise_if_any()
    return list(qs[page.slice()])


def _bool(body: CIMap, name: str, invalid: Invalid, default: bool | None = None) -> bool | None:
    if name not in body:
        return default
    value = body[name]
    if not isinstance(value, bool):
        invalid.add(name, "must be true or false.")
        return default
    return value


def _domain_field(body: CIMap, invalid: Invalid, name: str = "domain") -> str:
    value = body.get(name)
    if value in (None, ""):
        invalid.add(name, "is required.")
        return ""
    if not valid_domain(value):
        invalid.add(name, f"{value!r} is not a valid domain name.")
        return ""
    return str(value).lower()


# --- servers ------------------------------------------------------------------------
def server_data(server: SandboxServer) -> dict[str, Any]:
    return {
        "serverId": server.server_id,
        "name": server.name,
        "accountId": server.account.account_id,
        "status": server.status,
    }


def list_servers(call: Call) -> HttpResponse:
    # Keys are issued per server, so a key sees exactly its own server.
    return ok_list([server_data(call.key.server)], 1)


def get_server(call: Call) -> HttpResponse:
    return ok(server_data(call.srv))


# --- API keys -------------------------------------------------------------------------
def key_data(key: SandboxApiKey) -> dict[str, Any]:
    return {
        "id": key.pk,
        "name": key.name,
        "publicPart": key.public_part,
        "permissions": key.permissions,
        "createdOn": iso(key.created_on),
        "lastUsedOn": iso(key.last_used_on),
    }


def list_keys(call: Call) -> HttpResponse:
    qs = SandboxApiKey.objects.filter(server=call.srv).order_by("created_on", "id")
    return ok_list([key_data(k) for k in _page(call, qs, Invalid())], qs.count())


def create_key(call: Call) -> HttpResponse:
    body, invalid = call.body, Invalid()
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        invalid.add("name", "is required.")
    elif len(name) > 100:
        invalid.add("name", "must be at most 100 characters.")
    permissions = body.get("permissions")
    known = {p.value for p in Permission}
    chosen: list[str] = []
    if not isinstance(permissions, list) or not permissions:
        invalid.add("permissions", f"must be a non-empty list of {', '.join(sorted(known))}.")
    else:
        for item in permissions:
            value = str(item).lower()
            if value not in known:
                invalid.add("permissions", f"{item!r} is not one of {', '.join(sorted(known))}.")
            elif value not in chosen:
                chosen.append(value)
    invalid.raise_if_any()
    key, secret = SandboxApiKey.issue(server=call.srv, name=str(name).strip(), permissions=chosen)
    return ok({**key_data(key), "secret": secret})


def delete_key(call: Call) -> HttpResponse:
    key = SandboxApiKey.objects.filter(server=call.srv, pk=call.kwargs["key_id"]).first()
    if key is None:
        raise not_found(f"Server {call.srv.server_id} has no API key {call.kwargs['key_id']}.")
    data = key_data(key)
    key.delete()
    return ok(data)


def injection_credentials(call: Call) -> HttpResponse:
    return ok({"apiKey": injection_credential(call.srv), "gateway": gateway_url(call.request)})


# --- sending domains ---------------------------------------------------------------------
def sending_domain_data(d: SandboxSendingDomain) -> dict[str, Any]:
    return {
        "domain": d.domain,
        "status": d.status,
        "verificationRecord": d.verification_record,
        "createdOn": iso(d.created_on),
        "verifiedOn": iso(d.verified_on),
    }


def _sending_domain(call: Call) -> SandboxSendingDomain:
    found = SandboxSendingDomain.objects.filter(server=call.srv, domain__iexact=call.kwargs["domain"]).first()
    if found is None:
        raise not_found(f"{call.kwargs['domain']} is not a sending domain of server {call.srv.server_id}.")
    return found


def list_sending_domains(call: Call) -> HttpResponse:
    qs = SandboxSendingDomain.objects.filter(server=call.srv).order_by("domain")
    return ok_list([sending_domain_data(d) for d in _page(call, qs, Invalid())], qs.count())


def add_sending_domain(call: Call) -> HttpResponse:
    invalid = Invalid()
    domain = _domain_field(call.body, invalid)
    invalid.raise_if_any()
    if SandboxSendingDomain.objects.filter(server=call.srv, domain=domain).exists():
        raise conflict(f"{domain} is already a sending domain of server {call.srv.server_id}.")
    created = SandboxSendingDomain.objects.create(
        server=call.srv, domain=domain, verification_record=f"socketlabs-verification={random_alnum(32)}"
    )
    return ok(sending_domain_data(created))


def get_sending_domain(call: Call) -> HttpResponse:
    return ok(sending_domain_data(_sending_domain(call)))


def delete_sending_domain(call: Call) -> HttpResponse:
    found = _sending_domain(call)
    data = sending_domain_data(found)
    found.delete()
    return ok(data)


def verify_sending_domain(call: Call) -> HttpResponse:
    found = _sending_domain(call)
    found.status = verification_outcome(found.domain)
    found.verified_on = timezone.now() if found.status == VerificationStatus.VERIFIED else None
    found.save(update_fields=["status", "verified_on"])
    return ok(sending_domain_data(found))


# --- DKIM -------------------------------------------------------------------------------------
def dkim_data(d: SandboxDkim) -> dict[str, Any]:
    return {
        "domain": d.domain,
        "selector": d.selector,
        "dnsHostName": dkim.dns_host_name(d.domain, d.selector),
        "dnsRecord": dkim.dns_record(d.public_key),
        "publicKey": d.public_key,
        "validationStatus": d.validation_status,
        "createdOn": iso(d.created_on),
        "updatedOn": iso(d.updated_on),
    }


def _selector(value: Any, invalid: Invalid) -> str:
    if value in (None, ""):
        invalid.add("selector", "is required.")
        return ""
    text = str(value).lower()
    if not valid_domain(f"{text}.example.com") or len(text) > 63:
        invalid.add("selector", f"{value!r} is not a valid DKIM selector.")
        return ""
    return text


def _private_key(value: Any, invalid: Invalid) -> dkim.DkimKeyPair | None:
    try:
        return dkim.parse_private_key(value)
    except dkim.InvalidPrivateKey as exc:
        invalid.add("privateKey", str(exc))
        return None


def generate_dkim(call: Call) -> HttpResponse:
    invalid = Invalid()
    query = CIMap({"domain": call.q("domain"), "selector": call.q("selector")})
    domain = _domain_field(query, invalid)
    selector = _selector(query.get("selector"), invalid)
    invalid.raise_if_any()
    pair = dkim.generate()
    return ok(
        {
            "dnsHostName": dkim.dns_host_name(domain, selector),
            "domain": domain,
            "selector": selector,
            "dnsRecord": pair.dns_record(),
            "publicKey": pair.public_b64,
            "privateKey": pair.private_pem,
        }
    )


def list_dkim(call: Call) -> HttpResponse:
    qs = SandboxDkim.objects.filter(server=call.srv).order_by("domain", "selector")
    if call.q("domain"):
        qs = qs.filter(domain__iexact=call.q("domain"))
    if call.q("selector"):
        qs = qs.filter(selector__iexact=call.q("selector"))
    return ok_list([dkim_data(d) for d in _page(call, qs, Invalid())], qs.count())


def add_dkim(call: Call) -> HttpResponse:
    body, invalid = call.body, Invalid()
    domain = _domain_field(body, invalid)
    selector = _selector(body.get("selector"), invalid)
    pair = _private_key(body.get("privateKey"), invalid)
    invalid.raise_if_any()
    assert pair is not None
    if SandboxDkim.objects.filter(server=call.srv, domain=domain, selector=selector).exists():
        raise conflict(f"A DKIM key for {selector}._domainkey.{domain} already exists.")
    created = SandboxDkim.objects.create(
        server=call.srv,
        domain=domain,
        selector=selector,
        private_key=pair.private_pem,
        public_key=pair.public_b64,
        validation_status=verification_outcome(domain),
    )
    return ok(dkim_data(created))


def _dkim_entry(call: Call, selector: str) -> SandboxDkim:
    found = SandboxDkim.objects.filter(
        server=call.srv, domain__iexact=call.kwargs["domain"], selector__iexact=selector
    ).first()
    if found is None:
        raise not_found(
            f"No DKIM key for {selector}._domainkey.{call.kwargs['domain']} on server {call.srv.server_id}."
        )
    return found


def update_dkim(call: Call) -> HttpResponse:
    body, invalid = call.body, Invalid()
    selector = _selector(call.q("selector") or body.get("selector"), invalid)
    pair = _private_key(body.get("privateKey"), invalid)
    invalid.raise_if_any()
    assert pair is not None
    found = _dkim_entry(call, selector)
    found.private_key, found.public_key = pair.private_pem, pair.public_b64
    found.validation_status = verification_outcome(found.domain)
    found.updated_on = timezone.now()
    found.save(update_fields=["private_key", "public_key", "validation_status", "updated_on"])
    return ok(dkim_data(found))


def delete_dkim(call: Call) -> HttpResponse:
    invalid = Invalid()
    selector = _selector(call.q("selector"), invalid)
    invalid.raise_if_any()
    found = _dkim_entry(call, selector)
    data = dkim_data(found)
    found.delete()
    return ok(data)


# --- custom bounce domains -----------------------------------------------------------------
def bounce_data(d: SandboxBounceDomain) -> dict[str, Any]:
    return {
        "domain": d.domain,
        "isDefault": d.is_default,
        "validationStatus": d.validation_status,
        "createdOn": iso(d.created_on),
        "updatedOn": iso(d.updated_on),
    }


def _bounce(call: Call) -> SandboxBounceDomain:
    found = SandboxBounceDomain.objects.filter(server=call.srv, domain__iexact=call.kwargs["domain"]).first()
    if found is None:
        raise not_found(f"{call.kwargs['domain']} is not a bounce domain of server {call.srv.server_id}.")
    return found


def list_bounce(call: Call) -> HttpResponse:
    qs = SandboxBounceDomain.objects.filter(server=call.srv).order_by("domain")
    return ok_list([bounce_data(d) for d in _page(call, qs, Invalid())], qs.count())


def add_bounce(call: Call) -> HttpResponse:
    body, invalid = call.body, Invalid()
    domain = _domain_field(body, invalid)
    is_default = _bool(body, "isDefault", invalid, default=False)
    invalid.raise_if_any()
    if SandboxBounceDomain.objects.filter(server=call.srv, domain=domain).exists():
        raise conflict(f"{domain} is already a bounce domain of server {call.srv.server_id}.")
    with transaction.atomic():
        if is_default:
            SandboxBounceDomain.objects.filter(server=call.srv, is_default=True).update(
                is_default=False, updated_on=timezone.now()
            )
        created = SandboxBounceDomain.objects.create(
            server=call.srv, domain=domain, is_default=bool(is_default), validation_status=verification_outcome(domain)
        )
    return ok(bounce_data(created))


def update_bounce(call: Call) -> HttpResponse:
    invalid = Invalid()
    if "isDefault" not in call.body:
        invalid.add("isDefault", "is required.")
    is_default = _bool(call.body, "isDefault", invalid)
    invalid.raise_if_any()
    found = _bounce(call)
    with transaction.atomic():
        if is_default:
            SandboxBounceDomain.objects.filter(server=call.srv, is_default=True).exclude(pk=found.pk).update(
                is_default=False, updated_on=timezone.now()
            )
        found.is_default = bool(is_default)
        found.updated_on = timezone.now()
        found.save(update_fields=["is_default", "updated_on"])
    return ok(bounce_data(found))


def delete_bounce(call: Call) -> HttpResponse:
    found = _bounce(call)
    data = bounce_data(found)
    found.delete()
    return ok(data)


# --- engagement tracking domains --------------------------------------------------------------
TRACKING_FLAGS = {
    "opensEnabled": "opens_enabled",
    "clicksEnabled": "clicks_enabled",
    "unsubscribesEnabled": "unsubscribes_enabled",
    "automaticTrackingEnabled": "automatic_tracking_enabled",
    "googleAnalyticsEnabled": "google_analytics_enabled",
    "httpsEnabled": "https_enabled",
    "isDefault": "is_default",
}


def tracking_data(d: SandboxTrackingDomain) -> dict[str, Any]:
    data: dict[str, Any] = {"domain": d.domain}
    data.update({api: getattr(d, attr) for api, attr in TRACKING_FLAGS.items()})
    data.update(
        {"validationStatus": d.validation_status, "createdOn": iso(d.created_on), "updatedOn": iso(d.updated_on)}
    )
    return data


def _tracking(call: Call) -> SandboxTrackingDomain:
    found = SandboxTrackingDomain.objects.filter(server=call.srv, domain__iexact=call.kwargs["domain"]).first()
    if found is None:
        raise not_found(f"{call.kwargs['domain']} is not a tracking domain of server {call.srv.server_id}.")
    return found


def _tracking_flags(body: CIMap, invalid: Invalid) -> dict[str, bool]:
    flags: dict[str, bool] = {}
    for api, attr in TRACKING_FLAGS.items():
        value = _bool(body, api, invalid)
        if value is not None:
            flags[attr] = value
    return flags


def _save_tracking(call: Call, domain: SandboxTrackingDomain, flags: dict[str, bool]) -> None:
    with transaction.atomic():
        if flags.get("is_default"):
            SandboxTrackingDomain.objects.filter(server=call.srv, is_default=True).exclude(pk=domain.pk).update(
                is_default=False, updated_on=timezone.now()
            )
        for attr, value in flags.items():
            setattr(domain, attr, value)
        domain.updated_on = timezone.now()
        domain.save()


def list_tracking(call: Call) -> HttpResponse:
    qs = SandboxTrackingDomain.objects.filter(server=call.srv).order_by("domain")
    return ok_list([tracking_data(d) for d in _page(call, qs, Invalid())], qs.count())


def add_tracking(call: Call) -> HttpResponse:
    invalid = Invalid()
    domain = _domain_field(call.body, invalid)
    flags = _tracking_flags(call.body, invalid)
    invalid.raise_if_any()
    if SandboxTrackingDomain.objects.filter(server=call.srv, domain=domain).exists():
        raise conflict(f"{domain} is already a tracking domain of server {call.srv.server_id}.")
    created = SandboxTrackingDomain(server=call.srv, domain=domain, validation_status=verification_outcome(domain))
    _save_tracking(call, created, flags)
    return ok(tracking_data(created))


def update_tracking(call: Call) -> HttpResponse:
    invalid = Invalid()
    flags = _tracking_flags(call.body, invalid)
    invalid.raise_if_any()
    found = _tracking(call)
    _save_tracking(call, found, flags)
    return ok(tracking_data(found))


def delete_tracking(call: Call) -> HttpResponse:
    found = _tracking(call)
    data = tracking_data(found)
    found.delete()
    return ok(data)


# --- suppressions (S1–S5) --------------------------------------------------------------------
SUPPRESSION_SORT = {
    "suppressionLastUpdate": "last_update",
    "emailAddress": "email_address",
    "reason": "reason",
    "source": "source",
}
CSV_HEADER = ["serverId", "suppressionLastUpdate", "reason", "emailAddress", "source"]  # address is 4th


def suppression_data(s: SandboxSuppression) -> dict[str, Any]:
    return {
        "emailAddress": s.email_address,
        "reason": s.reason,
        "suppressionLastUpdate": iso(s.last_update),
        "source": s.source,
    }


def _reason(value: Any, invalid: Invalid, *, default: str | None) -> str | None:
    if value in (None, ""):
        return default
    by_name = {r.value.lower(): r.value for r in SuppressionReason}
    found = by_name.get(str(value).lower())
    if found is None:
        invalid.add("reason", f"{value!r} is not one of {', '.join(r.value for r in SuppressionReason)}.")
    return found


def _address_param(call: Call, invalid: Invalid, *, from_body: bool = False) -> str:
    value = call.q("emailAddress")
    if value in (None, "") and from_body:
        value = call.body.get("emailAddress")
    if value in (None, ""):
        invalid.add("emailAddress", "is required.")
        return ""
    if not valid_email(value):
        invalid.add("emailAddress", f"{value!r} is not a valid e-mail address.")
        return ""
    return str(value).strip().lower()


def check_suppression(call: Call) -> HttpResponse:
    suppression_plan_required(call)
    invalid = Invalid()
    address = _address_param(call, invalid)
    invalid.raise_if_any()
    found = SandboxSuppression.objects.filter(server=call.srv, email_address=address).first()
    if found is None:
        raise not_found(f"{address} is not on the suppression list of server {call.srv.server_id}.")
    return ok(suppression_data(found))


def add_suppression(call: Call) -> HttpResponse:
    suppression_plan_required(call)
    invalid = Invalid()
    address = _address_param(call, invalid, from_body=True)
    reason = _reason(call.q("reason") or call.body.get("reason"), invalid, default=SuppressionReason.CUSTOMER_REQUEST)
    invalid.raise_if_any()
    if SandboxSuppression.objects.filter(server=call.srv, email_address=address).exists():
        raise conflict(f"{address} is already on the suppression list of server {call.srv.server_id}.")
    created = SandboxSuppression.objects.create(
        server=call.srv, email_address=address, reason=str(reason), source="api"
    )
    return ok(suppression_data(created))


def remove_suppression(call: Call) -> HttpResponse:
    suppression_plan_required(call)
    invalid = Invalid()
    address = _address_param(call, invalid)
    invalid.raise_if_any()
    found = SandboxSuppression.objects.filter(server=call.srv, email_address=address).first()
    if found is None:
        raise not_found(f"{address} is not on the suppression list of server {call.srv.server_id}.")
    data = suppression_data(found)
    found.delete()
    return ok(data)


def _suppressions(call: Call, invalid: Invalid) -> QuerySet[SandboxSuppression]:
    qs = SandboxSuppression.objects.filter(server=call.srv)
    prefix = call.q("emailAddress")
    if prefix:
        qs = qs.filter(email_address__startswith=prefix.strip().lower())
    domain = call.q("domain")
    if domain:
        qs = qs.filter(email_address__endswith="@" + domain.strip().lower().lstrip("@"))
    reason = _reason(call.q("reason"), invalid, default=None)
    if reason:
        qs = qs.filter(reason=reason)
    start, end = date_range(call.request, invalid, default_days=None)
    if start:
        qs = qs.filter(last_update__gte=start)
    if end:
        qs = qs.filter(last_update__lt=end)
    return qs.order_by(*sort_order(call.request, invalid, SUPPRESSION_SORT, default="suppressionLastUpdate"))


def search_suppressions(call: Call) -> HttpResponse:
    suppression_plan_required(call)
    invalid = Invalid()
    qs = _suppressions(call, invalid)
    page = paging(call.request, invalid)
    invalid.raise_if_any()
    return ok_list([suppression_data(s) for s in qs[page.slice()]], qs.count())


class _Echo:
    """A file-like object whose write() hands the line back, so csv.writer can feed a stream."""

    def write(self, value: str) -> str:
        return value


def _csv_lines(server_id: int, qs: QuerySet[SandboxSuppression]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    rows = qs.values_list("last_update", "reason", "email_address", "source")
    for last_update, reason, address, source in rows.iterator(chunk_size=2000):
        yield writer.writerow([server_id, iso(last_update), reason, address, source])


def download_suppressions(call: Call) -> HttpResponseBase:
    suppression_plan_required(call)
    invalid = Invalid()
    qs = _suppressions(call, invalid)
    invalid.raise_if_any()
    response = StreamingHttpResponse(_csv_lines(call.srv.server_id, qs), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="suppressions-{call.srv.server_id}.csv"'
    return response


# --- reports ---------------------------------------------------------------------------
REPORT_VIEWS = ("overview", "aggregate", "list")
EVENT_SORT = {"dateTime": "due_at", "address": "address"}


def _tracking_type(call: Call, kind: str, invalid: Invalid) -> str | None:
    value = call.q("trackingType")
    if not value:
        return None
    if kind != "tracking" or value.lower() not in reports.TRACKING_TYPES:
        invalid.add("trackingType", "must be Open, Click or Unsubscribe, on tracking reports only.")
        return None
    return value


def report(call: Call) -> HttpResponse:
    kind, view = call.kwargs["kind"], call.kwargs["view"]
    if kind not in reports.REPORT_KINDS or view not in REPORT_VIEWS:
        raise not_found(f"No report {kind}/{view}.")
    invalid = Invalid()
    start, end = date_range(call.request, invalid, default_days=30)
    tracking_type = _tracking_type(call, kind, invalid)
    if view == "overview":
        invalid.raise_if_any()
        return ok(reports.overview(call.srv, kind, start, end, tracking_type=tracking_type))
    if view == "aggregate":
        group_by = call.q("groupBy") or "day"
        matched = next((g for g in reports.GROUP_BY if g.lower() == group_by.lower()), None)
        if matched is None:
            invalid.add("groupBy", f"must be one of {', '.join(reports.GROUP_BY)}.")
        invalid.raise_if_any()
        rows = reports.aggregate(call.srv, kind, start, end, str(matched), tracking_type=tracking_type)
        return ok_list(rows, len(rows))
    qs = reports.events_of(call.srv, kind, start, end, tracking_type=tracking_type)
    qs = qs.order_by(*sort_order(call.request, invalid, EVENT_SORT, default="dateTime"))
    page = paging(call.request, invalid)
    invalid.raise_if_any()
    rows = [reports.event_row(e, call.srv.server_id) for e in qs[page.slice()]]
    return ok_list(rows, qs.count())


MESSAGE_SORT = {
    "sentTime": "created_on",
    "queuedTime": "created_on",
    "subject": "subject",
    "from": "from_address",
    "to": "to",
    "mailingId": "mailing_id",
    "messageId": "message_id",
}
FILTER_FIELDS = {
    "mailingid": "mailing_id",
    "messageid": "message_id",
    "to": "to",
    "from": "sender",
    "subject": "subject",
}


def _message_filters(call: Call, invalid: Invalid) -> reports.MessageFilters:
    """Filters from plain query parameters or `filters=field:value,field:value` (the docs truncate the syntax)."""
    values: dict[str, str] = {}
    raw = call.q("filters") or ""
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, sep, value = part.partition(":")
        target = FILTER_FIELDS.get(name.strip().lower())
        if not sep or target is None:
            invalid.add(
                "filters", f"{part!r} is not field:value with field one of mailingId, messageId, to, from, subject."
            )
            continue
        values[target] = value.strip()
    for api_name, target in FILTER_FIELDS.items():
        param = call.q(api_name) or (call.q("toEmailAddress") if api_name == "to" else None)
        if param:
            values[target] = param
    return reports.MessageFilters(**values)


def message_detail(call: Call) -> HttpResponse:
    invalid = Invalid()
    start, end = date_range(call.request, invalid, default_days=30)
    filters = _message_filters(call, invalid)
    order = sort_order(call.request, invalid, MESSAGE_SORT, default="sentTime")
    page = paging(call.request, invalid)
    invalid.raise_if_any()
    qs = reports.messages(call.srv, start, end, filters).order_by(*order)
    rows = [reports.message_row(m, call.srv.server_id) for m in reports.with_events(qs[page.slice()])]
    return ok_list(rows, qs.count())


def recipient_search(call: Call) -> HttpResponse:
    invalid = Invalid()
    address = call.q("toEmailAddress") or ""
    if not address:
        invalid.add("toEmailAddress", "is required.")
    start, end = date_range(call.request, invalid, default_days=None)
    order = sort_order(call.request, invalid, {"queuedTime": "created_on", "subject": "subject"}, default="queuedTime")
    page = paging(call.request, invalid)
    invalid.raise_if_any()
    qs = reports.recipient_search(call.srv, address.strip(), start, end).order_by(*order)
    rows = [reports.recipient_row(m, address.strip().lower()) for m in qs[page.slice()]]
    return ok_list(rows, qs.count())


def streamscore(call: Call) -> HttpResponse:
    invalid = Invalid()
    start, end = date_range(call.request, invalid, default_days=30)
    invalid.raise_if_any()
    return ok(reports.streamscore(call.srv, start, end))


# --- event webhooks and inbound parse ------------------------------------------------------
def _url(body: CIMap, invalid: Invalid) -> str:
    value = body.get("url")
    if not isinstance(value, str) or not value.strip():
        invalid.add("url", "is required.")
        return ""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or len(value) > 500:
        invalid.add("url", f"{value!r} is not an http(s) URL of at most 500 characters.")
        return ""
    return value.strip()


def _secret(body: CIMap, name: str, invalid: Invalid, *, required: bool = True) -> str:
    value = body.get(name)
    if value in (None, ""):
        if required:
            invalid.add(name, "is required.")
        return ""
    if not isinstance(value, str) or len(value) > 200:
        invalid.add(name, "must be text of at most 200 characters.")
        return ""
    return value


def webhook_data(w: SandboxEventWebhook) -> dict[str, Any]:
    return {
        "id": w.pk,
        "url": w.url,
        "events": w.events,
        "format": w.format,
        "status": w.status,
        "createdOn": iso(w.created_on),
    }


def list_webhooks(call: Call) -> HttpResponse:
    qs = SandboxEventWebhook.objects.filter(server=call.srv).order_by("created_on", "id")
    return ok_list([webhook_data(w) for w in _page(call, qs, Invalid())], qs.count())


def _validate_endpoint(endpoint: SandboxEventWebhook) -> None:
    """Post the `Validation` event the way SocketLabs does, when the injection side provides it."""
    if importlib.util.find_spec("sandbox.webhooks") is None:
        return
    validator = getattr(importlib.import_module("sandbox.webhooks"), "validate_endpoint", None)
    if validator is None:
        return
    try:
        validator(endpoint)
    except Exception:
        log.exception("validating webhook endpoint %s failed", endpoint.pk)
        SandboxEventWebhook.objects.filter(pk=endpoint.pk).update(status="Failed")
    endpoint.refresh_from_db()


def create_webhook(call: Call) -> HttpResponse:
    body, invalid = call.body, Invalid()
    url = _url(body, invalid)
    secret = _secret(body, "secretKey", invalid)
    events_in = body.get("events", [])
    by_name = {e.lower(): e for e in SandboxEventWebhook.ALL_EVENTS}
    events: list[str] = []
    if not isinstance(events_in, list):
        invalid.add("events", f"must be a list of {', '.join(SandboxEventWebhook.ALL_EVENTS)}.")
    else:
        for item in events_in:
            name = by_name.get(str(item).lower())
            if name is None:
                invalid.add("events", f"{item!r} is not one of {', '.join(SandboxEventWebhook.ALL_EVENTS)}.")
            elif name not in events:
                events.append(name)
    fmt = str(body.get("format") or WebhookFormat.JSON).lower()
    if fmt not in WebhookFormat.values:
        invalid.add("format", "must be json or form.")
    invalid.raise_if_any()
    endpoint = SandboxEventWebhook.objects.create(
        server=call.srv, url=url, secret_key=secret, events=events, format=fmt, status="Active"
    )
    _validate_endpoint(endpoint)
    return ok(webhook_data(endpoint))


def delete_webhook(call: Call) -> HttpResponse:
    found = SandboxEventWebhook.objects.filter(server=call.srv, pk=call.kwargs["item_id"]).first()
    if found is None:
        raise not_found(f"Server {call.srv.server_id} has no event webhook {call.kwargs['item_id']}.")
    data = webhook_data(found)
    found.delete()
    return ok(data)


def inbound_data(e: SandboxInboundEndpoint) -> dict[str, Any]:
    # The secret key is write-only; the validation key is what the customer's endpoint must echo.
    return {
        "id": e.pk,
        "domainOrAddress": e.domain_or_address,
        "url": e.url,
        "validationKey": e.validation_key,
        "status": e.status,
        "createdOn": iso(e.created_on),
    }


def list_inbound(call: Call) -> HttpResponse:
    qs = SandboxInboundEndpoint.objects.filter(server=call.srv).order_by("created_on", "id")
    return ok_list([inbound_data(e) for e in _page(call, qs, Invalid())], qs.count())


def create_inbound(call: Call) -> HttpResponse:
    body, invalid = call.body, Invalid()
    target = body.get("domainOrAddress")
    if target in (None, ""):
        invalid.add("domainOrAddress", "is required.")
    elif not (valid_domain(target) or valid_email(target)):
        invalid.add("domainOrAddress", f"{target!r} is neither a domain nor an e-mail address.")
    url = _url(body, invalid)
    secret = _secret(body, "secretKey", invalid)
    validation_key = _secret(body, "validationKey", invalid, required=False) or random_alnum(24)
    invalid.raise_if_any()
    if SandboxInboundEndpoint.objects.filter(server=call.srv, domain_or_address__iexact=str(target)).exists():
        raise conflict(f"{target} already has an inbound parse endpoint on server {call.srv.server_id}.")
    endpoint = SandboxInboundEndpoint.objects.create(
        server=call.srv,
        domain_or_address=str(target).lower(),
        url=url,
        secret_key=secret,
        validation_key=validation_key,
    )
    return ok(inbound_data(endpoint))


def delete_inbound(call: Call) -> HttpResponse:
    found = SandboxInboundEndpoint.objects.filter(server=call.srv, pk=call.kwargs["item_id"]).first()
    if found is None:
        raise not_found(f"Server {call.srv.server_id} has no inbound parse endpoint {call.kwargs['item_id']}.")
    data = inbound_data(found)
    found.delete()
    return ok(data)


# --- the views, one per path -----------------------------------------------------------------
servers = v2_endpoint(server=False, GET=list_servers)
server_detail = v2_endpoint(GET=get_server)
api_keys = v2_endpoint(GET=list_keys, POST=create_key)
api_key_detail = v2_endpoint(DELETE=delete_key)
credentials = v2_endpoint(GET=injection_credentials)
sending_domains = v2_endpoint(GET=list_sending_domains, POST=add_sending_domain)
sending_domain_detail = v2_endpoint(GET=get_sending_domain, DELETE=delete_sending_domain)
sending_domain_verify = v2_endpoint(POST=verify_sending_domain)
dkim_keys = v2_endpoint(GET=list_dkim, POST=add_dkim)
dkim_generate = v2_endpoint(GET=generate_dkim)
dkim_detail = v2_endpoint(PUT=update_dkim, DELETE=delete_dkim)
bounce_domains = v2_endpoint(GET=list_bounce, POST=add_bounce)
bounce_detail = v2_endpoint(PUT=update_bounce, DELETE=delete_bounce)
tracking_domains = v2_endpoint(GET=list_tracking, POST=add_tracking)
tracking_detail = v2_endpoint(PUT=update_tracking, DELETE=delete_tracking)
suppressions = v2_endpoint(GET=check_suppression, POST=add_suppression)
suppressions_remove = v2_endpoint(DELETE=remove_suppression)
suppressions_search = v2_endpoint(GET=search_suppressions)
suppressions_download = v2_endpoint(GET=download_suppressions)
reports_view = v2_endpoint(GET=report)
messages_detail = v2_endpoint(GET=message_detail)
recipients = v2_endpoint(GET=recipient_search)
stream_score = v2_endpoint(GET=streamscore)
event_webhooks = v2_endpoint(GET=list_webhooks, POST=create_webhook)
event_webhook_detail = v2_endpoint(DELETE=delete_webhook)
inbound_parse = v2_endpoint(GET=list_inbound, POST=create_inbound)
inbound_parse_detail = v2_endpoint(DELETE=delete_inbound)
