"""Sending setup pages: API keys, sending domains, DKIM (with rotation), bounce and tracking domains, DNS health.

Every view fetches its server through the access helper (404 for no access, 403 for a role
that may not change things), binds a form, calls one service, and renders: the whole page, or
with HTMX only the part that changed (`page.html#panel`). Every action answers with a message.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from accounts import access
from accounts.http import AuthedRequest
from accounts.models import Server
from accounts.roles import Capability
from sending import dkim, forms, services
from sending.errors import SendingError
from sending.models import DkimSetup, DnsCheckJob, DnsCheckResult, DnsState, RecordKind, SetupStep


@dataclass
class Flash:
    ok: bool
    text: str


@dataclass
class Row:
    """A SocketLabs object with Mailroom's last DNS check of its record beside it."""

    item: Any
    dns: DnsCheckResult | None
    kind: str
    domain: str
    selector: str = ""
    extra: Any = None


def _server(request: AuthedRequest, server_id: int, capability: str = Capability.READ) -> Server:
    return access.get_server_for_user(request.user, server_id, capability)


def _can_change(request: AuthedRequest, server: Server) -> bool:
    return access.user_can(request.user, server, Capability.OPS)


def _results(server: Server, kind: str) -> dict[str, DnsCheckResult]:
    return {r.host: r for r in DnsCheckResult.objects.filter(server=server, kind=kind)}


def _load(fn: Callable[[], list[Any]]) -> tuple[list[Any], str | None]:
    try:
        return fn(), None
    except SendingError as exc:
        return [], exc.message


def _respond(
    request: AuthedRequest, *, template: str, context: dict[str, Any], flash: Flash | None, back: str, status: int = 200
) -> HttpResponse:
    """HTMX: the page's panel with the message in it. Otherwise: the message, then back to the page (PRG)."""
    if request.htmx:
        return render(request, f"{template}#panel", {**context, "flash": flash}, status=status)
    if flash:
        (messages.success if flash.ok else messages.error)(request, flash.text)
    return redirect(back)


def _render_form(request: AuthedRequest, template: str, context: dict[str, Any], status: int) -> HttpResponse:
    """A form's answer: the panel for HTMX (always 200, since htmx does not swap 4xx bodies), else the page."""
    if request.htmx:
        return render(request, f"{template}#panel", context)
    return render(request, template, context, status=status)


def _field_error(form: Any, exc: SendingError) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


@require_GET
def index(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = _server(request, server_id)
    return redirect("sending:domains", server.pk)


# --- API keys ----------------------------------------------------------------------------------------
def _api_keys_context(request: AuthedRequest, server: Server, form: Any = None) -> dict[str, Any]:
    can_manage = access.user_can(request.user, server, Capability.MANAGE_SERVER)
    keys, error = _load(lambda: services.list_api_keys(server=server))
    rows = [Row(item=k, dns=None, kind="", domain="", extra=services.key_in_use(server, k)) for k in keys]
    return {
        "server": server,
        "rows": rows,
        "load_error": error,
        "can_change": _can_change(request, server),
        "can_manage": can_manage,
        "form": form or forms.ApiKeyForm(can_manage=can_manage),
    }


@require_http_methods(["GET", "POST"])
def api_keys(request: AuthedRequest, server_id: int) -> HttpResponse:
    template = "sending/api_keys.html"
    if request.method == "GET":
        server = _server(request, server_id)
        return render(request, template, _api_keys_context(request, server))
    server = _server(request, server_id, Capability.OPS)
    can_manage = access.user_can(request.user, server, Capability.MANAGE_SERVER)
    form = forms.ApiKeyForm(request.POST, can_manage=can_manage)
    flash, new_key, status, stored = None, None, 200, False
    if form.is_valid():
        try:
            new_key = services.create_api_key(
                request=request,
                actor=request.user,
                server=server,
                name=form.cleaned_data["name"],
                permissions=form.cleaned_data["permissions"],
                use_for_mailroom=can_manage and form.cleaned_data.get("use_for_mailroom", False),
            )
        except SendingError as exc:
            _field_error(form, exc)
            flash, status = Flash(False, exc.message), 400
        else:
            stored = bool(form.cleaned_data.get("use_for_mailroom"))
            also = " Mailroom now uses it for this server." if stored else ""
            flash = Flash(True, f"Created the API key “{new_key.name}”.{also}")
            form = forms.ApiKeyForm(can_manage=can_manage)
    else:
        status = 400
    # The secret is in this one answer only: rendered, never redirected to, never in a URL.
    context = {**_api_keys_context(request, server, form), "new_key": new_key, "flash": flash, "stored": stored}
    return _render_form(request, template, context, status)


@require_POST
def api_key_revoke(request: AuthedRequest, server_id: int, key_id: str) -> HttpResponse:
    server = _server(request, server_id, Capability.OPS)
    try:
        services.revoke_api_key(request=request, actor=request.user, server=server, key_id=key_id)
        flash = Flash(True, "Revoked the API key. Anything using it can no longer send or call the API.")
    except SendingError as exc:
        flash = Flash(False, exc.message)
    return _respond(
        request,
        template="sending/api_keys.html",
        context=_api_keys_context(request, server),
        flash=flash,
        back=reverse("sending:api_keys", args=[server.pk]),
    )


# --- sending domains -------------------------------------------------------------------------------
def _domains_context(request: AuthedRequest, server: Server, form: Any = None) -> dict[str, Any]:
    domains, error = _load(lambda: services.list_sending_domains(server=server))
    results = _results(server, RecordKind.SENDING_DOMAIN)
    rows = [Row(d, results.get(d.domain.lower()), RecordKind.SENDING_DOMAIN, d.domain.lower()) for d in domains]
    return {
        "server": server,
        "rows": rows,
        "load_error": error,
        "can_change": _can_change(request, server),
        "form": form or forms.DomainForm(),
    }


@require_http_methods(["GET", "POST"])
def domains(request: AuthedRequest, server_id: int) -> HttpResponse:
    template = "sending/domains.html"
    if request.method == "GET":
        server = _server(request, server_id)
        return render(request, template, _domains_context(request, server))
    server = _server(request, server_id, Capability.OPS)
    form = forms.DomainForm(request.POST)
    flash, status = None, 400
    if form.is_valid():
        try:
            added = services.add_sending_domain(
                request=request, actor=request.user, server=server, domain=form.cleaned_data["domain"]
            )
        except SendingError as exc:
            _field_error(form, exc)
            flash = Flash(False, exc.message)
        else:
            flash, status, form = (
                Flash(True, f"Added {added.domain}. Publish its verification record, then verify."),
                200,
                forms.DomainForm(),
            )
    if not request.htmx and status == 200 and flash:
        messages.success(request, flash.text)
        return redirect("sending:domains", server.pk)
    context = {**_domains_context(request, server, form), "flash": flash}
    return _render_form(request, template, context, status)


@require_POST
def domain_verify(request: AuthedRequest, server_id: int, domain: str) -> HttpResponse:
    server = _server(request, server_id, Capability.OPS)
    try:
        result = services.verify_sending_domain(request=request, actor=request.user, server=server, domain=domain)
        flash = Flash(result.ok, result.message)
    except SendingError as exc:
        flash = Flash(False, exc.message)
    return _respond(
        request,
        template="sending/domains.html",
        context=_domains_context(request, server),
        flash=flash,
        back=reverse("sending:domains", args=[server.pk]),
    )


@require_POST
def domain_remove(request: AuthedRequest, server_id: int, domain: str) -> HttpResponse:
    server = _server(request, server_id, Capability.OPS)
    try:
        services.remove_sending_domain(request=request, actor=request.user, server=server, domain=domain)
        flash = Flash(True, f"Removed {domain} from the sending domains of {server.name}.")
    except SendingError as exc:
        flash = Flash(False, exc.message)
    return _respond(
        request,
        template="sending/domains.html",
        context=_domains_context(request, server),
        flash=flash,
        back=reverse("sending:domains", args=[server.pk]),
    )


# --- DKIM -------------------------------------------------------------------------------------------
def _dkim_context(request: AuthedRequest, server: Server, form: Any = None) -> dict[str, Any]:
    records, error = _load(lambda: services.list_dkim(server=server))
    results = _results(server, RecordKind.DKIM)
    rotating = set(DkimSetup.objects.open().filter(server=server).values_list("domain", "old_selector"))
    rows = []
    for record in records:
        host = services.dkim_host(record)
        row = Row(record, results.get(host), RecordKind.DKIM, record.domain.lower(), record.selector.lower())
        row.extra = {"host": host, "rotating": (record.domain.lower(), record.selector.lower()) in rotating}
        rows.append(row)
    # The add form suggests the server's sending domains; not worth a second error when the first call failed.
    sending_domains = [] if error else _load(lambda: services.list_sending_domains(server=server))[0]
    return {
        "server": server,
        "rows": rows,
        "load_error": error,
        "setups": DkimSetup.objects.open().filter(server=server).order_by("domain", "selector"),
        "can_change": _can_change(request, server),
        "form": form or forms.DkimForm(),
        "domain_choices": sorted({d.domain.lower() for d in sending_domains}),
    }


@require_http_methods(["GET", "POST"])
def dkim_list(request: AuthedRequest, server_id: int) -> HttpResponse:
    template = "sending/dkim.html"
    if request.method == "GET":
        server = _server(request, server_id)
        return render(request, template, _dkim_context(request, server))
    server = _server(request, server_id, Capability.OPS)
    form = forms.DkimForm(request.POST)
    flash = None
    if form.is_valid():
        try:
            setup = services.start_dkim(
                request=request,
                actor=request.user,
                server=server,
                domain=form.cleaned_data["domain"],
                selector=form.cleaned_data["selector"],
                private_key=form.cleaned_data["private_key"],
            )
        except SendingError as exc:
            _field_error(form, exc)
            flash = Flash(False, exc.message)
        else:
            url = reverse("sending:dkim_setup", args=[server.pk, setup.pk])
            messages.success(request, f"Publish this record at {setup.host}, then press Verify.")
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    context = {**_dkim_context(request, server, form), "flash": flash}
    return _render_form(request, template, context, 400)


def _setup(request: AuthedRequest, server_id: int, setup_id: int, capability: str = Capability.READ) -> DkimSetup:
    server = _server(request, server_id, capability)
    setup = get_object_or_404(DkimSetup, pk=setup_id, server=server)
    setup.server = server  # keep the role the access helper attached
    return setup


def _setup_context(request: AuthedRequest, setup: DkimSetup) -> dict[str, Any]:
    result = DnsCheckResult.objects.filter(server=setup.server, kind=RecordKind.DKIM, host=setup.host).first()
    old_result = (
        DnsCheckResult.objects.filter(server=setup.server, kind=RecordKind.DKIM, host=setup.old_host).first()
        if setup.old_host
        else None
    )
    value = setup.txt_value
    return {
        "server": setup.server,
        "setup": setup,
        "result": result,
        "old_result": old_result,
        "txt_value": value,
        "txt_strings": dkim.zone_strings(value),
        "zone_line": dkim.zone_line(setup.host, value),
        "string_count": len(dkim.split_txt(value)),
        "can_change": _can_change(request, setup.server),
        "steps": _steps(setup),
        "verified": services.is_verified(setup.socketlabs_status) and setup.step != SetupStep.PUBLISH,
    }


def _steps(setup: DkimSetup) -> list[dict[str, Any]]:
    """The guided flow for the page: which steps are done, and which one is next."""
    if setup.is_rotation:
        labels = ["Publish the new record", "Verify", "Switch signing", "Remove the old record"]
        position = {SetupStep.PUBLISH: 0, SetupStep.VERIFIED: 2, SetupStep.SWITCHED: 3}
    else:
        labels = ["Publish the record", "Verify"]
        position = {SetupStep.PUBLISH: 0}
    current = position.get(SetupStep(setup.step), len(labels))
    return [{"label": label, "done": i < current, "current": i == current} for i, label in enumerate(labels)]


@require_GET
def dkim_setup(request: AuthedRequest, server_id: int, setup_id: int) -> HttpResponse:
    setup = _setup(request, server_id, setup_id)
    return render(request, "sending/dkim_setup.html", _setup_context(request, setup))


def _setup_action(
    request: AuthedRequest, server_id: int, setup_id: int, action: Callable[..., services.StepResult | None]
) -> HttpResponse:
    setup = _setup(request, server_id, setup_id, Capability.OPS)
    try:
        result = action(request=request, actor=request.user, setup=setup)
        flash = Flash(result.ok, result.message) if result else Flash(True, f"Cancelled the key for {setup.host}.")
    except SendingError as exc:
        flash = Flash(False, exc.message)
    setup.refresh_from_db()
    if setup.step == SetupStep.CANCELLED:
        (messages.success if flash.ok else messages.error)(request, flash.text)
        url = reverse("sending:dkim", args=[setup.server.pk])
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    return _respond(
        request,
        template="sending/dkim_setup.html",
        context=_setup_context(request, setup),
        flash=flash,
        back=reverse("sending:dkim_setup", args=[setup.server.pk, setup.pk]),
    )


@require_POST
def dkim_verify(request: AuthedRequest, server_id: int, setup_id: int) -> HttpResponse:
    return _setup_action(request, server_id, setup_id, services.verify_dkim)


@require_POST
def dkim_switch(request: AuthedRequest, server_id: int, setup_id: int) -> HttpResponse:
    return _setup_action(request, server_id, setup_id, services.switch_dkim)


@require_POST
def dkim_finish(request: AuthedRequest, server_id: int, setup_id: int) -> HttpResponse:
    return _setup_action(request, server_id, setup_id, services.finish_rotation)


@require_POST
def dkim_cancel(request: AuthedRequest, server_id: int, setup_id: int) -> HttpResponse:
    return _setup_action(request, server_id, setup_id, services.cancel_dkim)


@require_http_methods(["GET", "POST"])
def dkim_rotate(request: AuthedRequest, server_id: int, domain: str, selector: str) -> HttpResponse:
    server = _server(request, server_id, Capability.OPS)
    form = forms.RotateForm(request.POST or None, initial={"selector": _next_selector(selector)})
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                setup = services.start_rotation(
                    request=request,
                    actor=request.user,
                    server=server,
                    domain=domain,
                    old_selector=selector,
                    new_selector=form.cleaned_data["selector"],
                    private_key=form.cleaned_data["private_key"],
                )
            except SendingError as exc:
                _field_error(form, exc)
            else:
                messages.success(
                    request, f"Publish the new record at {setup.host}; the old key keeps signing meanwhile."
                )
                url = reverse("sending:dkim_setup", args=[server.pk, setup.pk])
                return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    context = {
        "server": server,
        "form": form,
        "domain": domain,
        "selector": selector,
        "host": dkim.host_name(domain, selector),
    }
    return render(request, "sending/dkim_rotate.html", context, status=status)


def _next_selector(selector: str) -> str:
    """A suggestion: mr1 → mr2, s2024 → s2025, anything else → <name>-2."""
    head = selector.rstrip("0123456789")
    digits = selector[len(head) :]
    if digits:
        return f"{head}{int(digits) + 1}"
    return f"{selector}-2"


@require_POST
def dkim_remove(request: AuthedRequest, server_id: int, domain: str, selector: str) -> HttpResponse:
    server = _server(request, server_id, Capability.OPS)
    try:
        services.remove_dkim(request=request, actor=request.user, server=server, domain=domain, selector=selector)
        flash = Flash(True, f"Removed the DKIM key {dkim.host_name(domain, selector)} from {server.name}.")
    except SendingError as exc:
        flash = Flash(False, exc.message)
    return _respond(
        request,
        template="sending/dkim.html",
        context=_dkim_context(request, server),
        flash=flash,
        back=reverse("sending:dkim", args=[server.pk]),
    )


# --- bounce domains --------------------------------------------------------------------------------
def _bounce_context(request: AuthedRequest, server: Server, form: Any = None) -> dict[str, Any]:
    items, error = _load(lambda: services.list_bounce_domains(server=server))
    results = _results(server, RecordKind.BOUNCE)
    rows = [Row(b, results.get(b.domain.lower()), RecordKind.BOUNCE, b.domain.lower()) for b in items]
    return {
        "server": server,
        "rows": rows,
        "load_error": error,
        "can_change": _can_change(request, server),
        "form": form or forms.BounceForm(),
        "cname_target": services.dns.CNAME_TARGET,
    }


@require_http_methods(["GET", "POST"])
def bounce(request: AuthedRequest, server_id: int) -> HttpResponse:
    template = "sending/bounce.html"
    if request.method == "GET":
        server = _server(request, server_id)
        return render(request, template, _bounce_context(request, server))
    server = _server(request, server_id, Capability.OPS)
    form = forms.BounceForm(request.POST)
    flash, status = None, 400
    if form.is_valid():
        try:
            added = services.add_bounce_domain(
                request=request,
                actor=request.user,
                server=server,
                domain=form.cleaned_data["domain"],
                is_default=form.cleaned_data["is_default"],
            )
        except SendingError as exc:
            _field_error(form, exc)
            flash = Flash(False, exc.message)
        else:
            text = f"Added {added.domain}. Point its CNAME to {services.dns.CNAME_TARGET}, then check DNS."
            flash, status, form = Flash(True, text), 200, forms.BounceForm()
    if not request.htmx and status == 200 and flash:
        messages.success(request, flash.text)
        return redirect("sending:bounce", server.pk)
    context = {**_bounce_context(request, server, form), "flash": flash}
    return _render_form(request, template, context, status)


@require_POST
def bounce_default(request: AuthedRequest, server_id: int, domain: str) -> HttpResponse:
    server = _server(request, server_id, Capability.OPS)
    make_default = request.POST.get("is_default") == "1"
    try:
        services.set_default_bounce_domain(
            request=request, actor=request.user, server=server, domain=domain, is_default=make_default
        )
        text = f"{domain} is now the default bounce domain." if make_default else f"{domain} is no longer the default."
        flash = Flash(True, text)
    except SendingError as exc:
        flash = Flash(False, exc.message)
    return _respond(
        request,
        template="sending/bounce.html",
        context=_bounce_context(request, server),
        flash=flash,
        back=reverse("sending:bounce", args=[server.pk]),
    )


@require_POST
def bounce_remove(request: AuthedRequest, server_id: int, domain: str) -> HttpResponse:
    server = _server(request, server_id, Capability.OPS)
    try:
        services.remove_bounce_domain(request=request, actor=request.user, server=server, domain=domain)
        flash = Flash(True, f"Removed the bounce domain {domain} from {server.name}.")
    except SendingError as exc:
        flash = Flash(False, exc.message)
    return _respond(
        request,
        template="sending/bounce.html",
        context=_bounce_context(request, server),
        flash=flash,
        back=reverse("sending:bounce", args=[server.pk]),
    )


# --- tracking domains ------------------------------------------------------------------------------
def _tracking_context(request: AuthedRequest, server: Server, form: Any = None) -> dict[str, Any]:
    items, error = _load(lambda: services.list_tracking_domains(server=server))
    results = _results(server, RecordKind.TRACKING)
    rows = [Row(t, results.get(t.domain.lower()), RecordKind.TRACKING, t.domain.lower()) for t in items]
    return {
        "server": server,
        "rows": rows,
        "load_error": error,
        "can_change": _can_change(request, server),
        "form": form or forms.TrackingForm(),
        "cname_target": services.dns.CNAME_TARGET,
        "flag_labels": [
            ("opens_enabled", "Opens"),
            ("clicks_enabled", "Clicks"),
            ("unsubscribes_enabled", "Unsubscribes"),
            ("https_enabled", "HTTPS"),
            ("is_default", "Default"),
        ],
    }


@require_http_methods(["GET", "POST"])
def tracking(request: AuthedRequest, server_id: int) -> HttpResponse:
    template = "sending/tracking.html"
    if request.method == "GET":
        server = _server(request, server_id)
        return render(request, template, _tracking_context(request, server))
    server = _server(request, server_id, Capability.OPS)
    form = forms.TrackingForm(request.POST)
    flash, status = None, 400
    if form.is_valid():
        try:
            added = services.add_tracking_domain(
                request=request,
                actor=request.user,
                server=server,
                domain=form.cleaned_data["domain"],
                flags=form.flags(),
            )
        except SendingError as exc:
            _field_error(form, exc)
            flash = Flash(False, exc.message)
        else:
            text = f"Added {added.domain}. Point its CNAME to {services.dns.CNAME_TARGET}, then check DNS."
            flash, status, form = Flash(True, text), 200, forms.TrackingForm()
    if not request.htmx and status == 200 and flash:
        messages.success(request, flash.text)
        return redirect("sending:tracking", server.pk)
    context = {**_tracking_context(request, server, form), "flash": flash}
    return _render_form(request, template, context, status)


@require_POST
def tracking_update(request: AuthedRequest, server_id: int, domain: str) -> HttpResponse:
    server = _server(request, server_id, Capability.OPS)
    form = forms.TrackingFlagsForm(request.POST)
    form.is_valid()  # booleans: every input is valid
    try:
        services.update_tracking_domain(
            request=request, actor=request.user, server=server, domain=domain, flags=form.flags()
        )
        flash = Flash(True, f"Saved the tracking settings of {domain}.")
    except SendingError as exc:
        flash = Flash(False, exc.message)
    return _respond(
        request,
        template="sending/tracking.html",
        context=_tracking_context(request, server),
        flash=flash,
        back=reverse("sending:tracking", args=[server.pk]),
    )


@require_POST
def tracking_remove(request: AuthedRequest, server_id: int, domain: str) -> HttpResponse:
    server = _server(request, server_id, Capability.OPS)
    try:
        services.remove_tracking_domain(request=request, actor=request.user, server=server, domain=domain)
        flash = Flash(True, f"Removed the tracking domain {domain} from {server.name}.")
    except SendingError as exc:
        flash = Flash(False, exc.message)
    return _respond(
        request,
        template="sending/tracking.html",
        context=_tracking_context(request, server),
        flash=flash,
        back=reverse("sending:tracking", args=[server.pk]),
    )


# --- one record's DNS, checked in place --------------------------------------------------------------
@require_POST
def dns_check_record(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = _server(request, server_id, Capability.OPS)
    kind = request.POST.get("kind", "")
    domain = request.POST.get("domain", "")
    selector = request.POST.get("selector", "")
    if kind not in RecordKind.values:
        raise Http404("No such record kind.")
    error = None
    try:
        result: DnsCheckResult | None = services.check_record(
            server=server, kind=kind, domain=domain, selector=selector
        )
    except SendingError as exc:
        result, error = None, exc.message
    if request.htmx:
        row = Row(None, result, kind, domain, selector)
        return render(
            request,
            "sending/_dns_cell.html",
            {"server": server, "row": row, "can_change": True, "error": error, "checked_now": True},
        )
    if error:
        messages.error(request, error)
    elif result is not None:
        (messages.success if result.state == DnsState.OK else messages.error)(
            request, f"{result.host}: {result.detail}"
        )
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = reverse("sending:dns", args=[server.pk])
    return redirect(back)


# --- DNS health ----------------------------------------------------------------------------------------
def _filtered(results: Any, request: AuthedRequest) -> Any:
    query = request.GET.get("q", "").strip()
    state = request.GET.get("state", "")
    if query:
        results = results.filter(Q(domain__icontains=query) | Q(host__icontains=query))
    if state == "problems":
        results = results.exclude(state=DnsState.OK)
    elif state in DnsState.values:
        results = results.filter(state=state)
    return results


def _health_context(request: AuthedRequest, servers: list[Server], *, single: Server | None) -> dict[str, Any]:
    results = _filtered(
        DnsCheckResult.objects.filter(server__in=servers)
        .select_related("server")
        .order_by("server__name", "domain", "kind", "host"),
        request,
    )
    rows = list(results[:2000])
    changeable = [s for s in servers if access.user_can(request.user, s, Capability.OPS)]
    latest = (
        DnsCheckJob.objects.filter(server=single)
        if single
        else DnsCheckJob.objects.filter(requested_by=request.user, server=None)
    )
    job = latest.order_by("-created_at").first()
    return {
        "server": single,
        "servers": servers,
        "results": rows,
        "problems": sum(1 for r in rows if r.state != DnsState.OK),
        "q": request.GET.get("q", ""),
        "state": request.GET.get("state", ""),
        "states": DnsState.choices,
        "can_check": bool(changeable),
        "job": job if job and not job.finished else None,
        "last_job": job,
    }


def _csv(context: dict[str, Any], filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(
        ["server", "domain", "kind", "type", "host", "expected", "published", "state", "detail", "checked_at"]
    )
    for r in context["results"]:
        writer.writerow(
            [
                r.server.name,
                r.domain,
                r.get_kind_display(),
                r.rtype,
                r.host,
                r.expected,
                " | ".join(r.published),
                r.get_state_display(),
                r.detail,
                r.checked_at.isoformat(),
            ]
        )
    return response


@require_http_methods(["GET", "POST"])
def dns_health(request: AuthedRequest, server_id: int) -> HttpResponse:
    if request.method == "POST":
        server = _server(request, server_id, Capability.OPS)
        job = services.start_dns_job(request=request, actor=request.user, servers=[server], server=server)
        return _job_started(
            request, job, reverse("sending:dns", args=[server.pk]), reverse("sending:dns_job", args=[server.pk, job.pk])
        )
    server = _server(request, server_id)
    context = _health_context(request, [server], single=server)
    if request.GET.get("format") == "csv":
        return _csv(context, f"dns-health-{server.socketlabs_id}.csv")
    if request.htmx and request.GET.get("fragment") == "table":
        return render(request, "sending/dns_health.html#dns-table", context)
    return render(request, "sending/dns_health.html", context)


def _job_started(request: AuthedRequest, job: DnsCheckJob, back: str, poll: str) -> HttpResponse:
    if request.htmx:
        return render(request, "sending/_dns_job.html", {"job": job, "poll_url": poll})
    messages.success(request, "DNS check started. This page shows the progress; you may leave it meanwhile.")
    return redirect(back)


@require_GET
def dns_job(request: AuthedRequest, server_id: int, job_id: UUID) -> HttpResponse:
    server = _server(request, server_id)
    job = get_object_or_404(DnsCheckJob, pk=job_id, server=server)
    return _job_response(request, job, reverse("sending:dns_job", args=[server.pk, job.pk]))


def _job_response(request: AuthedRequest, job: DnsCheckJob, poll: str) -> HttpResponse:
    response = render(request, "sending/_dns_job.html", {"job": job, "poll_url": poll})
    if job.finished:
        trigger_client_event(response, "dnsChecked")
    return response


# --- DNS health across servers (/sending/dns/) ------------------------------------------------------------
@require_http_methods(["GET", "POST"])
def dns_health_all(request: AuthedRequest) -> HttpResponse:
    servers = list(Server.objects.for_user(request.user))
    if request.method == "POST":
        changeable = [s for s in servers if access.user_can(request.user, s, Capability.OPS)]
        if not changeable:
            raise PermissionDenied("Your roles do not allow DNS checks on any server.")
        job = services.start_dns_job(request=request, actor=request.user, servers=changeable)
        return _job_started(request, job, reverse("sending_dns:all"), reverse("sending_dns:job", args=[job.pk]))
    context = _health_context(request, servers, single=None)
    if request.GET.get("format") == "csv":
        return _csv(context, "dns-health.csv")
    if request.htmx and request.GET.get("fragment") == "table":
        return render(request, "sending/dns_health.html#dns-table", context)
    return render(request, "sending/dns_health.html", context)


@require_GET
def dns_job_all(request: AuthedRequest, job_id: UUID) -> HttpResponse:
    job = get_object_or_404(DnsCheckJob, pk=job_id, server=None)
    if job.requested_by_id != request.user.pk and not access.is_site_admin(request.user):
        raise Http404("No such job.")
    return _job_response(request, job, reverse("sending_dns:job", args=[job.pk]))
