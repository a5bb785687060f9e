"""Read-only sandbox pages for site administrators: simulated messages and events, servers, request log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.http import urlencode

from sandbox.gate import sandbox_page
from sandbox.models import SandboxApiKey, SandboxEvent, SandboxMessage, SandboxRequestLog, SandboxServer

PAGE_SIZE = 50
REQUEST_LOG_SIZE = 200
# URL names the injection side may give its inbound-simulation page; linked only when one exists.
INBOUND_PAGE_NAMES = (
    "sandbox:inbound_simulate",
    "sandbox:inbound-simulate",
    "sandbox:inbound_simulation",
    "sandbox:inbound",
)


def inbound_url() -> str | None:
    for name in INBOUND_PAGE_NAMES:
        try:
            return reverse(name)
        except NoReverseMatch:
            continue
    return None


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {
        "inbound_url": inbound_url(),
        "section": request.resolver_match.url_name if request.resolver_match else "",
        **extra,
    }


# --- messages --------------------------------------------------------------------------
@dataclass(frozen=True)
class Cursor:
    """Keyset position: the (created_on, id) of the last message shown."""

    created_on: datetime
    pk: int

    def encode(self) -> str:
        return f"{self.created_on.isoformat()}_{self.pk}"

    @classmethod
    def decode(cls, raw: str | None) -> Cursor | None:
        if not raw:
            return None
        stamp, _, pk = raw.rpartition("_")
        try:
            return cls(datetime.fromisoformat(stamp), int(pk))
        except ValueError:
            return None


def _messages(server_id: str, address: str) -> QuerySet[SandboxMessage]:
    qs = SandboxMessage.objects.select_related("server").order_by("-created_on", "-id")
    if server_id.isdigit():
        qs = qs.filter(server__server_id=int(server_id))
    if address:
        sent_to = SandboxEvent.objects.filter(address__iexact=address).values("outbound_id")
        qs = qs.filter(Q(pk__in=sent_to) | Q(from_address__iexact=address))
    return qs


@sandbox_page
def messages(request: HttpRequest) -> HttpResponse:
    server_id = (request.GET.get("server") or "").strip()
    address = (request.GET.get("address") or "").strip()
    qs = _messages(server_id, address)
    cursor = Cursor.decode(request.GET.get("after"))
    if cursor is not None:
        qs = qs.filter(Q(created_on__lt=cursor.created_on) | Q(created_on=cursor.created_on, id__lt=cursor.pk))
    events = SandboxEvent.objects.order_by("due_at", "id")
    page = list(qs.prefetch_related(Prefetch("events", queryset=events))[: PAGE_SIZE + 1])
    more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    next_url = None
    if more:
        last = page[-1]
        params = {k: v for k, v in (("server", server_id), ("address", address)) if v}
        next_url = "?" + urlencode({**params, "after": Cursor(last.created_on, last.pk).encode()})
    return render(
        request,
        "sandbox/messages.html",
        _context(
            request,
            messages_page=page,
            next_url=next_url,
            first_url="?" + urlencode({k: v for k, v in (("server", server_id), ("address", address)) if v}),
            paged=cursor is not None,
            servers=SandboxServer.objects.order_by("server_id"),
            server_filter=server_id,
            address_filter=address,
        ),
    )


# --- servers ------------------------------------------------------------------------------
@sandbox_page
def servers(request: HttpRequest) -> HttpResponse:
    keys = SandboxApiKey.objects.order_by("created_on", "id")
    rows = (
        SandboxServer.objects.select_related("account")
        .annotate(message_count=Count("messages", distinct=True))
        .prefetch_related(Prefetch("api_keys", queryset=keys))
        .order_by("server_id")
    )
    return render(request, "sandbox/servers.html", _context(request, servers=rows))


# --- request log ----------------------------------------------------------------------------
@sandbox_page
def request_log(request: HttpRequest) -> HttpResponse:
    api = (request.GET.get("api") or "").strip()
    server_id = (request.GET.get("server") or "").strip()
    qs = SandboxRequestLog.objects.order_by("-created_on", "-id")
    if api:
        qs = qs.filter(api=api)
    if server_id.isdigit():
        qs = qs.filter(server_id_value=int(server_id))
    apis = SandboxRequestLog.objects.order_by("api").values_list("api", flat=True).distinct()
    return render(
        request,
        "sandbox/request_log.html",
        _context(
            request,
            entries=qs[:REQUEST_LOG_SIZE],
            limit=REQUEST_LOG_SIZE,
            apis=list(apis),
            api_filter=api,
            server_filter=server_id,
        ),
    )
