"""Report pulls and schedules: the jobs pages (per server and across servers) and the schedule page.

Everyone with access to a server reads; starting pulls and backfills, retrying and editing the schedule
need the Admin role (`Capability.MANAGE_SERVER`).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import access
from accounts.http import AuthedRequest
from accounts.models import Server
from accounts.roles import Capability
from reporting import pulls
from reporting.models import PullStatus, PullTrigger, ReportPull
from reporting.pull_forms import BackfillForm, PullNowForm, ScheduleForm

ADMIN = Capability.MANAGE_SERVER
LISTED = 50
ACTIVE = (PullStatus.QUEUED, PullStatus.RUNNING, PullStatus.RETRYING)


def _jobs_page(
    request: AuthedRequest,
    server: Server,
    *,
    pull_form: PullNowForm | None = None,
    backfill_form: BackfillForm | None = None,
    status: int = 200,
) -> HttpResponse:
    can_start = access.user_can(request.user, server, ADMIN)
    items = list(pulls.pulls_for([server])[:LISTED])
    for pull in items:
        pull.can_retry = can_start  # type: ignore[attr-defined]
        pull.eta = pulls.eta_seconds(pull)  # type: ignore[attr-defined]
    return render(
        request,
        "reporting/reports/pulls.html",
        {
            "server": server,
            "pulls": items,
            "can_start": can_start,
            "pull_form": pull_form or PullNowForm(prefix="now"),
            "backfill_form": backfill_form or BackfillForm(prefix="backfill"),
            "settings": pulls.settings_for(server),
            "retention_days": pulls.RETENTION_DAYS,
            "max_range_days": pulls.MAX_RANGE_DAYS,
            "oldest_day": pulls.oldest_pullable_day(),
        },
        status=status,
    )


@require_GET
def jobs(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id)
    return _jobs_page(request, server)


@require_POST
def pull_now(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id, ADMIN)
    form = PullNowForm(request.POST, prefix="now")
    if not form.is_valid():
        return _jobs_page(request, server, pull_form=form, status=400)
    day = form.cleaned_data["day"]
    try:
        pulls.create_pull(server, day, day, PullTrigger.MANUAL, request.user, request=request)
    except pulls.PullError as exc:  # the day aged out between the check and now
        form.add_error("day", exc.message)
        return _jobs_page(request, server, pull_form=form, status=400)
    messages.success(request, f"Pulling the reports of {day:%Y-%m-%d} for {server.name}. Progress shows below.")
    return redirect("reports:jobs", server_id=server.pk)


@require_POST
def backfill(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id, ADMIN)
    form = BackfillForm(request.POST, prefix="backfill")
    if not form.is_valid():
        return _jobs_page(request, server, backfill_form=form, status=400)
    first_day, last_day = form.cleaned_data["first_day"], form.cleaned_data["last_day"]
    try:
        pull = pulls.create_pull(server, first_day, last_day, PullTrigger.BACKFILL, request.user, request=request)
    except pulls.PullError as exc:
        form.add_error(None, exc.message)
        return _jobs_page(request, server, backfill_form=form, status=400)
    messages.success(
        request,
        f"Back-filling {pull.days_total} day{'s' if pull.days_total != 1 else ''} "
        f"({first_day:%Y-%m-%d} to {last_day:%Y-%m-%d}) for {server.name}. Progress shows below.",
    )
    return redirect("reports:jobs", server_id=server.pk)


def _row_context(request: AuthedRequest, pull: ReportPull, *, show_server: bool) -> dict[str, Any]:
    return {
        "pull": pull,
        "show_server": show_server,
        "can_retry": access.user_can(request.user, pull.server, ADMIN),
    }


@require_GET
def pull_row(request: AuthedRequest, server_id: int, pull_id: int) -> HttpResponse:
    """One row of the jobs table: what the row polls while its pull is not finished."""
    server = access.get_server_for_user(request.user, server_id)
    pull = get_object_or_404(ReportPull.objects.select_related("server", "created_by"), pk=pull_id, server=server)
    if not request.htmx:
        return redirect("reports:jobs", server_id=server.pk)
    pull.eta = pulls.eta_seconds(pull)  # type: ignore[attr-defined]
    context = _row_context(request, pull, show_server=request.GET.get("servers") == "1")
    return render(request, "reporting/reports/pulls_row.html", context)


@require_POST
def pull_retry(request: AuthedRequest, server_id: int, pull_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id, ADMIN)
    pull = get_object_or_404(ReportPull.objects.select_related("server"), pk=pull_id, server=server)
    if pulls.retry_pull(pull, user=request.user, request=request):
        messages.success(request, f"Trying the pull of {pull.first_day:%Y-%m-%d} to {pull.last_day:%Y-%m-%d} again.")
    else:
        messages.error(request, "Only a failed pull can be retried; this one is not failed.")
    if request.POST.get("back") == "all":
        return redirect("all_reports:jobs")
    return redirect("reports:jobs", server_id=server.pk)


@require_GET
def jobs_all(request: AuthedRequest) -> HttpResponse:
    servers = list(Server.objects.for_user(request.user))
    items = list(pulls.pulls_for(servers)[:LISTED])
    admin_of = access.servers_allowing(request.user, servers, ADMIN)
    for pull in items:
        pull.can_retry = pull.server_id in admin_of  # type: ignore[attr-defined]
        pull.eta = pulls.eta_seconds(pull)  # type: ignore[attr-defined]
    return render(request, "reporting/reports/pulls_all.html", {"pulls": items, "servers": servers})


@require_http_methods(["GET", "POST"])
def schedule(request: AuthedRequest, server_id: int) -> HttpResponse:
    if request.method == "POST":
        server = access.get_server_for_user(request.user, server_id, ADMIN)
        form = ScheduleForm(request.POST)
        if form.is_valid():
            pulls.update_schedule(
                server,
                nightly_enabled=form.cleaned_data["nightly_enabled"],
                pull_hour=form.cleaned_data["pull_hour"],
                user=request.user,
                request=request,
            )
            messages.success(request, "Schedule saved.")
            return redirect("reports:schedule", server_id=server.pk)
        status = 400
    else:
        server = access.get_server_for_user(request.user, server_id)
        form = None
        status = 200
    report_settings = pulls.settings_for(server)
    if form is None:
        form = ScheduleForm(
            initial={"nightly_enabled": report_settings.nightly_enabled, "pull_hour": report_settings.pull_hour}
        )
    now = timezone.now()
    last_nightly = ReportPull.objects.filter(server=server, trigger=PullTrigger.NIGHTLY).first()
    next_run = pulls.next_nightly_run(server, report_settings, now=now)
    return render(
        request,
        "reporting/reports/schedule.html",
        {
            "server": server,
            "form": form,
            "settings": report_settings,
            "can_edit": access.user_can(request.user, server, ADMIN),
            "next_run": next_run,
            "due_now": next_run is not None and next_run <= now,
            "server_now": now.astimezone(server.zone),
            "last_nightly": last_nightly,
            "backfill_days": pulls.NIGHTLY_BACKFILL_DAYS,
        },
        status=status,
    )
