"""Pages for event webhooks and inbound parse: endpoints, health, request log, dead letters,
live activity, recipient timeline, inbound message browser.

Everyone with access to a server reads; Ops and Admin (Capability.OPS) change endpoints and replay.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.csp import CSP
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

import socketlabs
from accounts import access
from accounts.http import AuthedRequest
from accounts.models import Server
from accounts.roles import Capability
from reporting import forwarding, inbound, routes, selectors, services
from reporting.forms import (
    ActivityFilterForm,
    EndpointForm,
    ForwardingForm,
    RegisterForm,
    RequestLogFilterForm,
    SearchForm,
    TimelineForm,
)
from reporting.models import (
    DeadLetter,
    EndpointBase,
    EventEndpoint,
    InboundAttachment,
    InboundEndpoint,
    InboundMessage,
    InboundRoute,
    MxStatus,
    RawEvent,
)

KINDS: dict[str, type[EventEndpoint] | type[InboundEndpoint]] = {"events": EventEndpoint, "inbound": InboundEndpoint}
KIND_LABELS = {"events": "Event webhook", "inbound": "Inbound parse"}


def _model(kind: str) -> type[EventEndpoint] | type[InboundEndpoint]:
    try:
        return KINDS[kind]
    except KeyError as exc:
        raise Http404("No such endpoint kind.") from exc


def _can_change(request: AuthedRequest, server: Server) -> bool:
    return access.user_can(request.user, server, Capability.OPS)


def _endpoint(request: AuthedRequest, server_id: int, kind: str, pk: int, capability: str = Capability.READ) -> Any:
    server = access.get_server_for_user(request.user, server_id, capability)
    endpoint = get_object_or_404(_model(kind), pk=pk, server=server)
    return server, endpoint


def _ids(values: list[str]) -> list[int]:
    return [int(v) for v in values if v.isdigit()][:1000]


@require_GET
def index(request: AuthedRequest, server_id: int) -> HttpResponse:
    access.get_server_for_user(request.user, server_id)
    return redirect("reporting:endpoints", server_id=server_id, kind="events")


# --- Endpoints -----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def endpoints(request: AuthedRequest, server_id: int, kind: str) -> HttpResponse:
    model = _model(kind)
    if request.method == "POST":
        server = access.get_server_for_user(request.user, server_id, Capability.OPS)
        form = EndpointForm(request.POST)
        if form.is_valid():
            endpoint, secret = services.create_endpoint(
                model=model,
                server=server,
                name=form.cleaned_data["name"],
                allowed_networks=form.cleaned_data["allowed_networks"],
                request=request,
                actor=request.user,
            )
            messages.success(request, "Endpoint created. Copy its secret now: it is shown only this once.")
            return _detail(request, server, kind, endpoint, new_secret=secret)
        status = 400
    else:
        server = access.get_server_for_user(request.user, server_id)
        form = EndpointForm()
        status = 200
    items = list(model.objects.filter(server=server).order_by("-created_at"))
    return render(
        request,
        "reporting/endpoints.html",
        {
            "server": server,
            "kind": kind,
            "kind_label": KIND_LABELS[kind],
            "endpoints": items,
            "form": form,
            "can_change": _can_change(request, server),
            "backlog": selectors.backlog(server) if kind == "events" else None,
        },
        status=status,
    )


def _detail(
    request: AuthedRequest,
    server: Server,
    kind: str,
    endpoint: EndpointBase,
    *,
    new_secret: str | None = None,
    form: EndpointForm | None = None,
    status: int = 200,
    forward_secret: tuple[InboundRoute, str] | None = None,
    forward_errors: tuple[int, ForwardingForm] | None = None,
) -> HttpResponse:
    can_change = _can_change(request, server)
    if form is None:
        form = EndpointForm(
            initial={"name": endpoint.name, "allowed_networks": "\n".join(endpoint.allowed_networks or [])}
        )
    return render(
        request,
        "reporting/endpoint_detail.html",
        {
            "server": server,
            "kind": kind,
            "kind_label": KIND_LABELS[kind],
            "endpoint": endpoint,
            "endpoint_url": request.build_absolute_uri(endpoint.path),
            "new_secret": new_secret,
            "form": form,
            "can_change": can_change,
            "health": selectors.health(endpoint),
            "recent": selectors.request_logs_for(endpoint).order_by("-received_at", "-id")[:20],
            "routes": _routes_with_forms(endpoint, forward_errors),
            "register_form": RegisterForm(initial={"format": getattr(endpoint, "webhook_format", "json")}),
            "forward_secret": forward_secret,
        },
        status=status,
    )


def _routes_with_forms(endpoint: EndpointBase, errors: tuple[int, ForwardingForm] | None) -> list[InboundRoute]:
    if not isinstance(endpoint, InboundEndpoint):
        return []
    items = list(endpoint.routes.all())
    for route in items:
        if errors and errors[0] == route.pk:
            route.forward_form = errors[1]  # type: ignore[attr-defined]
        else:
            route.forward_form = ForwardingForm(  # type: ignore[attr-defined]
                initial={"forward_url": route.forward_url}, prefix=f"route-{route.pk}"
            )
    return items


@require_http_methods(["GET", "POST"])
def endpoint_detail(request: AuthedRequest, server_id: int, kind: str, pk: int) -> HttpResponse:
    if request.method == "POST":
        server, endpoint = _endpoint(request, server_id, kind, pk, Capability.OPS)
        form = EndpointForm(request.POST)
        if not form.is_valid():
            return _detail(request, server, kind, endpoint, form=form, status=400)
        services.update_endpoint(
            endpoint=endpoint,
            name=form.cleaned_data["name"],
            allowed_networks=form.cleaned_data["allowed_networks"],
            request=request,
            actor=request.user,
        )
        messages.success(request, "Saved.")
        return redirect("reporting:endpoint_detail", server_id=server.pk, kind=kind, pk=endpoint.pk)
    server, endpoint = _endpoint(request, server_id, kind, pk)
    if request.htmx and request.GET.get("part") == "health":
        return render(
            request,
            "reporting/endpoint_detail.html#endpoint-health",
            {"server": server, "kind": kind, "endpoint": endpoint, "health": selectors.health(endpoint)},
        )
    return _detail(request, server, kind, endpoint)


@require_POST
def endpoint_rotate(request: AuthedRequest, server_id: int, kind: str, pk: int) -> HttpResponse:
    server, endpoint = _endpoint(request, server_id, kind, pk, Capability.OPS)
    secret = services.rotate_secret(endpoint=endpoint, request=request, actor=request.user)
    if isinstance(endpoint, EventEndpoint) and endpoint.socketlabs_webhook_id:
        try:
            services.register_event_endpoint(
                endpoint=endpoint, url=_public_url(request, endpoint.path), request=request, actor=request.user
            )
        except socketlabs.SocketLabsError as exc:
            messages.error(request, f"New secret in force, but SocketLabs did not take it: {exc.message}")
        else:
            messages.success(request, "New secret in force and registered at SocketLabs.")
            return _detail(request, server, kind, endpoint, new_secret=secret)
    if isinstance(endpoint, InboundEndpoint) and endpoint.routes.exists():
        failed = routes.reregister_routes(endpoint=endpoint, url=_public_url(request, endpoint.path))
        if failed:
            messages.error(request, f"New secret in force, but SocketLabs did not take it for: {', '.join(failed)}.")
        else:
            messages.success(request, "New secret in force and registered at SocketLabs for every route.")
        return _detail(request, server, kind, endpoint, new_secret=secret)
    messages.warning(request, "New secret in force now. Give it to SocketLabs: posts with the old one get 401.")
    return _detail(request, server, kind, endpoint, new_secret=secret)


def _public_url(request: AuthedRequest, path: str) -> str:
    base = getattr(settings, "REPORTING_PUBLIC_BASE_URL", "")
    return base.rstrip("/") + path if base else request.build_absolute_uri(path)


@require_POST
def endpoint_register(request: AuthedRequest, server_id: int, kind: str, pk: int) -> HttpResponse:
    """Register (or re-register after a rotation) the endpoint at SocketLabs through API v2."""
    if kind != "events":
        raise Http404("Only event endpoints are registered through the API here.")
    server, endpoint = _endpoint(request, server_id, kind, pk, Capability.OPS)
    form = RegisterForm(request.POST or {"format": endpoint.webhook_format})
    if not form.is_valid():
        messages.error(request, "Choose a body format: JSON or form-encoded.")
        return redirect("reporting:endpoint_detail", server_id=server.pk, kind=kind, pk=endpoint.pk)
    try:
        webhook_id = services.register_event_endpoint(
            endpoint=endpoint,
            url=_public_url(request, endpoint.path),
            format=form.cleaned_data["format"],
            request=request,
            actor=request.user,
        )
    except socketlabs.SocketLabsError as exc:
        messages.error(request, f"SocketLabs did not register the endpoint: {exc.message}")
    else:
        label = endpoint.get_webhook_format_display()
        messages.success(request, f"Registered at SocketLabs (webhook {webhook_id}, {label}); it validated this URL.")
    return redirect("reporting:endpoint_detail", server_id=server.pk, kind=kind, pk=endpoint.pk)


def _route(request: AuthedRequest, server_id: int, pk: int, route_id: int) -> tuple[Server, Any, InboundRoute]:
    server, endpoint = _endpoint(request, server_id, "inbound", pk, Capability.OPS)
    return server, endpoint, get_object_or_404(InboundRoute, pk=route_id, endpoint=endpoint)


def _back_to(server: Server, endpoint: Any) -> HttpResponse:
    return redirect("reporting:endpoint_detail", server_id=server.pk, kind="inbound", pk=endpoint.pk)


@require_POST
def route_add(request: AuthedRequest, server_id: int, pk: int) -> HttpResponse:
    server, endpoint = _endpoint(request, server_id, "inbound", pk, Capability.OPS)
    value = request.POST.get("domain_or_address", "")
    try:
        route = routes.add_route(
            endpoint=endpoint,
            domain_or_address=value,
            url=_public_url(request, endpoint.path),
            request=request,
            actor=request.user,
        )
    except routes.RouteError as exc:
        messages.error(request, str(exc))
    except socketlabs.SocketLabsError as exc:
        messages.error(request, f"SocketLabs did not add the route for “{value}”: {exc.message}")
    else:
        level = messages.success if route.mx_status == MxStatus.OK else messages.warning
        level(request, f"SocketLabs now parses mail for {route}. {route.get_mx_status_display()}: {route.mx_detail}")
    return _back_to(server, endpoint)


@require_POST
def route_check(request: AuthedRequest, server_id: int, pk: int, route_id: int) -> HttpResponse:
    server, endpoint, route = _route(request, server_id, pk, route_id)
    routes.check_mx(route)
    level = messages.success if route.mx_status == MxStatus.OK else messages.warning
    level(request, f"{route}: {route.get_mx_status_display()}. {route.mx_detail}")
    return _back_to(server, endpoint)


@require_POST
def route_forwarding(request: AuthedRequest, server_id: int, pk: int, route_id: int) -> HttpResponse:
    server, endpoint, route = _route(request, server_id, pk, route_id)
    form = ForwardingForm(request.POST, prefix=f"route-{route.pk}")
    if not form.is_valid():
        return _detail(request, server, "inbound", endpoint, status=400, forward_errors=(route.pk, form))
    secret = routes.set_forwarding(
        route=route, url=form.cleaned_data["forward_url"], request=request, actor=request.user
    )
    if secret:
        messages.success(request, f"Messages for {route} are now forwarded. Copy the forwarding secret now.")
        return _detail(request, server, "inbound", endpoint, forward_secret=(route, secret))
    if route.forward_url:
        messages.success(request, f"Messages for {route} are now forwarded to the new URL (same secret).")
    else:
        messages.success(request, f"Messages for {route} are no longer forwarded.")
    return _back_to(server, endpoint)


@require_POST
def route_forward_rotate(request: AuthedRequest, server_id: int, pk: int, route_id: int) -> HttpResponse:
    server, endpoint, route = _route(request, server_id, pk, route_id)
    try:
        secret = routes.rotate_forward_secret(route=route, request=request, actor=request.user)
    except routes.RouteError as exc:
        messages.error(request, str(exc))
        return _back_to(server, endpoint)
    messages.success(request, f"New forwarding secret for {route}, sent from the next attempt on. Copy it now.")
    return _detail(request, server, "inbound", endpoint, forward_secret=(route, secret))


@require_POST
def route_delete(request: AuthedRequest, server_id: int, pk: int, route_id: int) -> HttpResponse:
    server, endpoint, route = _route(request, server_id, pk, route_id)
    label = str(route)
    if routes.remove_route(route=route, request=request, actor=request.user):
        messages.success(request, f"Removed the route for {label}.")
    else:
        messages.warning(request, f"Removed the route for {label} here; SocketLabs could not be told, remove it there.")
    return _back_to(server, endpoint)


@require_http_methods(["GET", "POST"])
def endpoint_delete(request: AuthedRequest, server_id: int, kind: str, pk: int) -> HttpResponse:
    server, endpoint = _endpoint(request, server_id, kind, pk, Capability.OPS)
    if request.method == "POST":
        label = str(endpoint)
        if isinstance(endpoint, EventEndpoint) and not services.unregister_event_endpoint(endpoint=endpoint):
            messages.warning(request, "SocketLabs could not be told; remove the webhook there by hand.")
        if isinstance(endpoint, InboundEndpoint):
            for route in list(endpoint.routes.all()):
                if not routes.remove_route(route=route, request=request, actor=request.user):
                    messages.warning(request, f"SocketLabs could not be told to stop parsing {route}; remove it there.")
        services.delete_endpoint(endpoint=endpoint, request=request, actor=request.user)
        messages.success(request, f"Deleted the endpoint “{label}”. Stored events and messages are kept.")
        target = reverse("reporting:endpoints", kwargs={"server_id": server.pk, "kind": kind})
        if request.htmx:
            return HttpResponseClientRedirect(target)
        return redirect(target)
    return render(
        request,
        "reporting/endpoint_confirm_delete.html",
        {"server": server, "kind": kind, "kind_label": KIND_LABELS[kind], "endpoint": endpoint},
    )


# --- Request log and replay ----------------------------------------------------------------------


@require_GET
def request_log(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id)
    form = RequestLogFilterForm(request.GET or None)
    logs = selectors.server_request_logs(server).select_related("endpoint", "inbound_endpoint")
    if form.is_valid() and form.cleaned_data.get("show") == "errors":
        logs = logs.filter(status__gte=400)
    page = Paginator(logs.order_by("-received_at", "-id"), 50).get_page(request.GET.get("page"))
    context = {"server": server, "form": form, "page": page, "can_change": _can_change(request, server)}
    template = "reporting/request_log.html#log-table" if request.htmx else "reporting/request_log.html"
    return render(request, template, context)


@require_POST
def replay(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id, Capability.OPS)
    ids = _ids([request.POST["only"]] if request.POST.get("only") else request.POST.getlist("raw_id"))
    if not ids:
        messages.error(request, "Choose at least one request to replay.")
    else:
        count = services.replay_raw_events(server=server, raw_ids=ids, request=request, actor=request.user)
        messages.success(
            request,
            f"Replaying {count} event(s). Events already recorded are not counted twice.",
        )
    return redirect(request.POST.get("next") or reverse("reporting:request_log", kwargs={"server_id": server.pk}))


@require_GET
def dead_letters(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id)
    show_all = request.GET.get("show") == "all"
    letters = DeadLetter.objects.filter(server=server).select_related("raw")
    if not show_all:
        letters = letters.filter(replayed_at__isnull=True)
    page = Paginator(letters.order_by("-created_at", "-id"), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "reporting/dead_letters.html",
        {"server": server, "page": page, "show_all": show_all, "can_change": _can_change(request, server)},
    )


@require_POST
def dead_letter_replay(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id, Capability.OPS)
    ids = _ids([request.POST["only"]] if request.POST.get("only") else request.POST.getlist("dead_letter_id"))
    count = services.replay_dead_letters(server=server, dead_letter_ids=ids, request=request, actor=request.user)
    if count:
        messages.success(request, f"Replaying {count} event(s). Those still not understood come back here.")
    else:
        messages.error(request, "Choose at least one open dead letter to replay.")
    return redirect("reporting:dead_letters", server_id=server.pk)


# --- Activity and timeline -----------------------------------------------------------------------


@require_GET
def activity(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id)
    form = ActivityFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    events = selectors.activity(server, type=filters.get("type", ""), address=filters.get("address", ""))
    context = {
        "server": server,
        "form": form,
        "events": events,
        "query": request.GET.urlencode(),
        "backlog": selectors.backlog(server),
    }
    template = "reporting/activity.html#feed" if request.htmx else "reporting/activity.html"
    return render(request, template, context)


@require_GET
def timeline(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id)
    form = TimelineForm(request.GET or None)
    events: list[Any] = []
    searched = False
    if form.is_valid() and form.cleaned_data.get("q"):
        searched = True
        events = selectors.timeline(server, q=form.cleaned_data["q"], field=form.cleaned_data.get("field") or "auto")
    context = {"server": server, "form": form, "events": events, "searched": searched}
    template = "reporting/timeline.html#timeline-results" if request.htmx else "reporting/timeline.html"
    return render(request, template, context)


# --- Inbound messages ----------------------------------------------------------------------------


@require_GET
def inbound_messages(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id)
    form = SearchForm(request.GET or None)
    found = InboundMessage.objects.filter(server=server).defer("text_body", "html_body", "payload")
    query = form.cleaned_data.get("q", "").strip() if form.is_valid() else ""
    if query:
        found = found.filter(
            Q(subject__icontains=query)
            | Q(from_address__icontains=query)
            | Q(rcpt_to__icontains=query)
            | Q(mail_from__icontains=query)
        )
    page = Paginator(found.order_by("-received_at", "-id"), 50).get_page(request.GET.get("page"))
    context = {"server": server, "form": form, "page": page, "q": query}
    template = "reporting/inbound_messages.html#message-list" if request.htmx else "reporting/inbound_messages.html"
    return render(request, template, context)


def _message(request: AuthedRequest, server_id: int, pk: int) -> tuple[Server, InboundMessage]:
    server = access.get_server_for_user(request.user, server_id)
    return server, get_object_or_404(InboundMessage, pk=pk, server=server)


@require_GET
def inbound_message(request: AuthedRequest, server_id: int, pk: int) -> HttpResponse:
    server, message = _message(request, server_id, pk)
    return render(
        request,
        "reporting/inbound_message.html",
        {
            "server": server,
            "message": message,
            "attachments": list(message.attachments.all()),
            "can_change": _can_change(request, server),
        },
    )


@require_POST
def inbound_forward_retry(request: AuthedRequest, server_id: int, pk: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id, Capability.OPS)
    message = get_object_or_404(InboundMessage.objects.select_related("route", "server"), pk=pk, server=server)
    if forwarding.retry(message=message, request=request, actor=request.user):
        messages.success(request, f"Forwarding again to {message.route.forward_url if message.route else ''}.")
    elif message.route is None or not message.route.forward_url:
        messages.error(request, "This message's route does not forward any more: set a forwarding URL first.")
    else:
        messages.info(request, "This message is already waiting to be forwarded.")
    return redirect("reporting:inbound_message", server_id=server.pk, pk=message.pk)


FRAME_CSP: dict[str, list[str]] = {
    "default-src": [CSP.NONE],
    "img-src": ["data:"],
    "style-src": [CSP.UNSAFE_INLINE],
    "frame-ancestors": [CSP.SELF],
}


@require_GET
@csp_override(FRAME_CSP)
@xframe_options_sameorigin
def inbound_message_html(request: AuthedRequest, server_id: int, pk: int) -> HttpResponse:
    """The message's HTML, sanitised, for the sandboxed frame only: this view's CSP forbids scripts and remote loads."""
    _server, message = _message(request, server_id, pk)
    return render(request, "reporting/inbound_frame.html", {"html": inbound.safe_html(message)})


@require_GET
def inbound_attachment(request: AuthedRequest, server_id: int, pk: int) -> FileResponse:
    server = access.get_server_for_user(request.user, server_id)
    attachment = get_object_or_404(InboundAttachment, pk=pk, message__server=server)
    try:
        handle = inbound.attachment_path(attachment).open("rb")
    except OSError as exc:
        raise Http404("The attachment's file is missing.") from exc
    # Always a download of opaque bytes: never rendered, sniffed or run by the browser.
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=attachment.name or f"attachment-{attachment.pk}",
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
def raw_event(request: AuthedRequest, server_id: int, pk: int) -> HttpResponse:
    """The stored payload of one raw event (SecretKey was never stored)."""
    server = access.get_server_for_user(request.user, server_id)
    raw = get_object_or_404(RawEvent, pk=pk, server=server)
    return render(
        request,
        "reporting/raw_event.html",
        {
            "server": server,
            "raw": raw,
            "pretty": json.dumps(raw.payload, indent=2, ensure_ascii=False),
            "event": getattr(raw, "event", None) if hasattr(raw, "event") else None,
            "letters": raw.dead_letters.order_by("-created_at"),
            "can_change": _can_change(request, server),
        },
    )
