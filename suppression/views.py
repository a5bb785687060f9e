"""Suppression pages: one server's list, cross-server checks, and bulk import jobs."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import access
from accounts.http import AuthedRequest
from accounts.models import Server
from accounts.roles import Capability
from common.csvio import stream_csv
from suppression import imports, services
from suppression.forms import AddForm, ApplyForm, CheckForm, ImportForm, RemoveForm, SearchForm
from suppression.models import Action, ImportJob, JobKind, JobStatus, MirrorState, PendingWrite, Suppression


def _context(request: AuthedRequest, server: Server, **extra: Any) -> dict[str, Any]:
    state = services.state_for(server)
    can_change = access.user_can(request.user, server, Capability.OPS)
    return {
        "server": server,
        "state": state,
        "can_change": can_change,
        "actions_allowed": can_change and not state.plan_lacks_suppression,
        **extra,
    }


# --- one server --------------------------------------------------------------------------------
@require_GET
def index(request: AuthedRequest, server_id: int) -> HttpResponse:
    """Check, search (keyset pages, no counts), add, and the mirror's freshness."""
    server = access.get_server_for_user(request.user, server_id)
    form = SearchForm(request.GET or None)
    filters = form.filters()
    page = services.search(server=server, filters=filters, cursor=request.GET.get("after"))
    query = filters.as_dict()
    context = _context(
        request,
        server,
        search_form=form,
        page=page,
        first_page_query=urlencode(query),
        next_page_query=urlencode({**query, "after": page.next_cursor}) if page.next_cursor else "",
        is_later_page=bool(request.GET.get("after")),
        export_query=urlencode(query),
        check_form=CheckForm(),
        add_form=AddForm(),
        writes=services.open_writes(server),
    )
    if request.htmx and request.htmx.target == "results":
        return render(request, "suppression/index.html#results", context)
    return render(request, "suppression/index.html", context)


@require_GET
def check(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id)
    form = CheckForm(request.GET or None)
    rows = None
    if form.is_valid():
        rows = services.check_one(servers=[server], address=form.cleaned_data["address"])
    context = _context(request, server, check_form=form, check_rows=rows)
    if request.htmx:
        return render(request, "suppression/index.html#check-result", context)
    return redirect_to_index(server, address=request.GET.get("address", ""))


def redirect_to_index(server: Server, **query: str) -> HttpResponse:
    url = reverse("suppression:index", args=[server.pk])
    query = {k: v for k, v in query.items() if v}
    return redirect(f"{url}?{urlencode(query)}" if query else url)


@require_POST
def add(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id, Capability.OPS)
    form = AddForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect_to_index(server)
    result = services.add(
        server=server,
        address=form.cleaned_data["address"],
        reason=form.cleaned_data["reason"],
        actor=request.user,
        request=request,
    )
    _say(request, result)
    return redirect_to_index(server, address=form.cleaned_data["address"], match="exact")


def _say(request: AuthedRequest, result: services.WriteResult) -> None:
    if result.ok:
        messages.success(request, result.message)
    elif result.queued:
        messages.warning(request, result.message)
    else:
        messages.error(request, result.message)


@require_http_methods(["GET", "POST"])
def remove(request: AuthedRequest, server_id: int) -> HttpResponse:
    """GET: the confirmation naming the address and the server; POST: remove it."""
    server = access.get_server_for_user(request.user, server_id, Capability.OPS)
    form = RemoveForm(request.POST or request.GET or None)
    if not form.is_valid():
        messages.error(request, "Say which address to remove.")
        return redirect_to_index(server)
    address = form.cleaned_data["address"].strip().lower()
    if request.method == "GET":
        entry = Suppression.objects.filter(server=server, address=address).first()
        return render(
            request, "suppression/remove_confirm.html", _context(request, server, address=address, entry=entry)
        )
    result = services.remove(server=server, address=address, actor=request.user, request=request)
    _say(request, result)
    return redirect_to_index(server)


@require_POST
def verify(request: AuthedRequest, server_id: int) -> HttpResponse:
    """Ask SocketLabs about one address now and correct the mirror if it differs."""
    server = access.get_server_for_user(request.user, server_id)
    form = CheckForm(request.POST)
    if form.is_valid():
        _say(request, services.verify_live(server=server, address=form.cleaned_data["address"]))
        return redirect_to_index(server, address=form.cleaned_data["address"], match="exact")
    messages.error(request, "Say which address to verify.")
    return redirect_to_index(server)


@require_POST
def sync(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id, Capability.OPS)
    if services.request_sync(server=server, actor=request.user, request=request):
        messages.success(request, f"A full pull of {server.name}'s list from SocketLabs is queued.")
    else:
        messages.info(request, f"A pull of {server.name}'s list is already queued or running.")
    if request.htmx:
        return render(request, "suppression/index.html#status", _context(request, server))
    return redirect_to_index(server)


@require_GET
def status(request: AuthedRequest, server_id: int) -> HttpResponse:
    """The mirror's freshness (polled while a pull runs)."""
    server = access.get_server_for_user(request.user, server_id)
    return render(request, "suppression/index.html#status", _context(request, server))


@require_GET
def export(request: AuthedRequest, server_id: int) -> StreamingHttpResponse:
    """The current search as CSV, streamed from a server-side cursor (cells safe for spreadsheets)."""
    server = access.get_server_for_user(request.user, server_id)
    filters = SearchForm(request.GET or None).filters()
    services.record_export(server=server, filters=filters, actor=request.user, request=request)
    rows = services.export_rows(server=server, filters=filters)
    response = StreamingHttpResponse(stream_csv(services.EXPORT_HEADER, rows), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="suppressions-{server.socketlabs_id}-{stamp}.csv"'
    return response


@require_POST
def write_retry(request: AuthedRequest, server_id: int, write_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id, Capability.OPS)
    write = get_object_or_404(PendingWrite, pk=write_id, server=server)
    _say(request, services.retry_write(write=write, actor=request.user, request=request))
    return redirect_to_index(server)


@require_POST
def write_discard(request: AuthedRequest, server_id: int, write_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id, Capability.OPS)
    write = get_object_or_404(PendingWrite, pk=write_id, server=server)
    if services.discard_write(write=write, actor=request.user, request=request):
        messages.success(request, f"Discarded the change to {write.address}; SocketLabs was not changed.")
    return redirect_to_index(server)


@require_http_methods(["GET", "POST"])
def import_upload(request: AuthedRequest, server_id: int) -> HttpResponse:
    """Upload a file to add or remove in bulk, on this server and optionally others."""
    server = access.get_server_for_user(request.user, server_id, Capability.OPS)
    others = Server.objects.for_user(request.user).exclude(pk=server.pk)
    allowed = [s.pk for s in others if access.user_can(request.user, s, Capability.OPS)]
    refused_plans = MirrorState.objects.filter(server_id__in=allowed, plan_enabled=False).values("server_id")
    form = ImportForm(
        request.POST or None,
        request.FILES or None,
        others=Server.objects.filter(pk__in=allowed).exclude(pk__in=refused_plans),
    )
    context = _context(request, server, form=form)
    if context["state"].plan_lacks_suppression:
        return render(request, "suppression/import.html", context)
    if request.method == "POST" and form.is_valid():
        targets = [server, *form.cleaned_data.get("also", [])]
        try:
            job = imports.create_job(
                actor=request.user,
                kind=form.cleaned_data["kind"],
                upload=form.cleaned_data["file"],
                servers=targets,
                default_reason=form.cleaned_data["reason"],
                request=request,
            )
        except imports.ImportRefused as exc:
            form.add_error("file", str(exc))
        else:
            return redirect("suppressions:job", job_id=job.pk)
    return render(request, "suppression/import.html", context)


# --- across servers ----------------------------------------------------------------------------
@require_GET
def check_all(request: AuthedRequest) -> HttpResponse:
    """One address on every server the user can see, with reason and date per server."""
    servers = list(Server.objects.for_user(request.user))
    form = CheckForm(request.GET or None)
    rows = services.check_one(servers=servers, address=form.cleaned_data["address"]) if form.is_valid() else None
    context = {"check_form": form, "check_rows": rows, "servers": servers}
    if request.htmx:
        return render(request, "suppression/check_all.html#all-results", context)
    return render(request, "suppression/check_all.html", context)


@require_GET
def job_list(request: AuthedRequest) -> HttpResponse:
    jobs = imports.jobs_for_user(request.user).order_by("-created_at")[:100]
    return render(request, "suppression/job_list.html", {"jobs": jobs})


def _job_context(request: AuthedRequest, job: ImportJob, **extra: Any) -> dict[str, Any]:
    targets = list(job.targets.select_related("server"))
    can_apply = all(access.user_can(request.user, t.server, Capability.OPS) for t in targets)
    if job.status == JobStatus.READY:
        for t in targets:
            t.sample_change = imports.sample_entries(t, Action.CHANGE)  # type: ignore[attr-defined]
            t.sample_unchanged = imports.sample_entries(t, Action.UNCHANGED)  # type: ignore[attr-defined]
    return {
        "job": job,
        "targets": targets,
        "problems": job.problems.all()[:100],
        "progress": imports.progress(job),
        "can_apply": can_apply,
        "apply_form": extra.pop("apply_form", ApplyForm()),
        "is_add": job.kind == JobKind.ADD,
        "polling": job.status in (JobStatus.VALIDATING, JobStatus.APPLYING),
        **extra,
    }


@require_GET
def job_detail(request: AuthedRequest, job_id: str) -> HttpResponse:
    job = imports.get_job_for_user(request.user, job_id)
    return render(request, "suppression/job_detail.html", _job_context(request, job))


@require_GET
def job_progress(request: AuthedRequest, job_id: str) -> HttpResponse:
    """The progress fragment, polled every second while the job runs; 286 stops htmx polling when it ends."""
    job = imports.get_job_for_user(request.user, job_id)
    context = _job_context(request, job)
    if job.status not in (JobStatus.VALIDATING, JobStatus.APPLYING) and request.htmx:
        # The job has moved on: reload the whole page (diff or report) instead of the fragment.
        response = HttpResponse(status=200)
        response["HX-Refresh"] = "true"
        return response
    return render(request, "suppression/job_detail.html#progress", context)


@require_POST
def job_apply(request: AuthedRequest, job_id: str) -> HttpResponse:
    job = imports.get_job_for_user(request.user, job_id, Capability.OPS)
    form = ApplyForm(request.POST)
    form.is_valid()
    try:
        imports.request_apply(
            job=job, actor=request.user, skip_invalid=form.cleaned_data.get("skip_invalid", False), request=request
        )
    except imports.ImportRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Applying: the progress is shown below; you may leave this page.")
    return redirect("suppressions:job", job_id=job.pk)


@require_POST
def job_cancel(request: AuthedRequest, job_id: str) -> HttpResponse:
    job = imports.get_job_for_user(request.user, job_id, Capability.OPS)
    if imports.cancel(job=job, actor=request.user, request=request):
        messages.success(request, "Cancelled. What was applied so far is listed in the report; nothing else will be.")
    else:
        messages.info(request, "This import had already ended.")
    return redirect("suppressions:job", job_id=job.pk)


@require_GET
def job_report(request: AuthedRequest, job_id: str) -> StreamingHttpResponse:
    job = imports.get_job_for_user(request.user, job_id)
    response = StreamingHttpResponse(
        stream_csv(imports.REPORT_HEADER, imports.report_rows(job)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="suppression-import-{job.pk}.csv"'
    return response
