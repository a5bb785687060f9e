"""Contacts pages: contacts (search, filters, segment builder, bulk actions, export), contact detail,
lists, segments, custom fields, the CSV import wizard and SocketLabs sync.

Everyone with access to a server reads; Marketing and Admin (Capability.MARKETING) change.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.core.cache import cache
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import access, audit
from accounts.http import AuthedRequest
from accounts.models import Server
from accounts.roles import Capability
from common.csvio import stream_csv
from marketing import imports, selectors, services, sync
from marketing.forms import (
    BulkForm,
    ContactForm,
    FieldEditForm,
    FieldForm,
    ImportOptionsForm,
    ListForm,
    MappingForm,
    SegmentForm,
    UploadForm,
    contact_initial,
)
from marketing.importer import progress_key
from marketing.models import (
    Contact,
    ContactList,
    CustomField,
    FieldType,
    ImportJob,
    JobStatus,
    Segment,
    SyncJob,
    SyncKind,
)
from marketing.segments import NO_VALUE, describe
from marketing.values import display


def _server(request: AuthedRequest, server_id: int, capability: str = Capability.READ) -> Server:
    return access.get_server_for_user(request.user, server_id, capability)


def _can_change(request: AuthedRequest, server: Server) -> bool:
    return access.user_can(request.user, server, Capability.MARKETING)


def _fields(server: Server) -> list[CustomField]:
    return list(CustomField.objects.filter(server=server).order_by("label", "id"))


def _lists(server: Server) -> list[ContactList]:
    return list(ContactList.objects.filter(server=server).order_by("name", "id"))


# --- contacts -----------------------------------------------------------------------------------
@require_GET
def contacts(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = _server(request, server_id)
    fields = _fields(server)
    lists = _lists(server)
    catalogue = services.segment_fields_from(fields, lists)
    filters = selectors.Filters.from_query(server, request.GET, catalogue)
    page = selectors.keyset_page(
        filters.queryset(server, catalogue), after=request.GET.get("after", ""), before=request.GET.get("before", "")
    )
    stats = services.stats_for(server)
    known_count, counted_at = None, None
    if not filters.is_filtered:
        known_count, counted_at = stats.total, stats.counted_at
    elif filters.only_list:
        chosen = next((lst for lst in lists if lst.pk == filters.list_id), None)
        if chosen is not None:
            known_count, counted_at = chosen.member_count, chosen.counted_at
    elif filters.only_segment and filters.segment is not None:
        known_count, counted_at = filters.segment.cached_count, filters.segment.counted_at
    shown_fields = fields[:4]
    context = {
        "server": server,
        "can_change": _can_change(request, server),
        "filters": filters,
        "querystring": filters.querystring(),
        "rows": [(c, [display(c.custom.get(f.key)) for f in shown_fields]) for c in page.rows],
        "shown_fields": shown_fields,
        "next_after": page.next_after,
        "prev_before": page.prev_before,
        "stats": stats,
        "known_count": known_count,
        "counted_at": counted_at,
        "lists": lists,
        "segments": Segment.objects.filter(server=server).order_by("name")[:200],
        "catalogue": catalogue,
        "condition_rows": _condition_rows(filters, catalogue),
        "filter_words": filters.describe({lst.pk: lst.name for lst in lists}),
        "segment_form": SegmentForm(initial={"name": filters.segment.name if filters.segment else ""}),
    }
    if request.htmx and request.htmx.target == "results":
        return render(request, "marketing/contacts.html#results", context)
    return render(request, "marketing/contacts.html", context)


def _condition_rows(filters: selectors.Filters, catalogue: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [_condition(index, row, catalogue) for index, row in enumerate(filters.rows)]
    rows.append(_condition(len(rows), {"field": "", "op": "", "value": ""}, catalogue))  # one empty row to add
    return rows


def _condition(index: int, row: dict[str, str], catalogue: dict[str, Any]) -> dict[str, Any]:
    info = catalogue.get(row.get("field", ""))
    operators = info.operators if info is not None else {}
    op = row.get("op", "") if row.get("op", "") in operators else next(iter(operators), "")
    input_type = "text"
    if info is not None:
        input_type = {
            FieldType.NUMBER: "number",
            FieldType.DATE: "date",
            FieldType.CHOICE: "select" if op != "in" else "text",
            "list": "select",
        }.get(info.type, "text")
    return {
        "index": index,
        "field": row.get("field", ""),
        "op": op,
        "value": row.get("value", ""),
        "info": info,
        "operators": operators,
        "needs_value": op not in NO_VALUE,
        "input_type": input_type,
    }


@require_GET
def condition_row(request: AuthedRequest, server_id: int) -> HttpResponse:
    """One row of the segment builder (HTMX): a new row, a row re-drawn for the chosen field, or none (removed)."""
    server = _server(request, server_id)
    if request.GET.get("remove"):
        return HttpResponse("")
    catalogue = services.segment_fields_from(_fields(server), _lists(server))
    try:
        index = min(max(int(request.GET.get("index", "0")), 0), selectors.MAX_ROWS - 1)
    except ValueError:
        index = 0
    row = {
        "field": request.GET.get(f"c-{index}-field", ""),
        "op": request.GET.get(f"c-{index}-op", ""),
        "value": request.GET.get(f"c-{index}-value", ""),
    }
    return render(
        request,
        "marketing/_condition_response.html",
        {
            "server": server,
            "row": _condition(index, row, catalogue),
            "catalogue": catalogue,
            "add": bool(request.GET.get("add")),
            "next_index": index + 1,
        },
    )


@require_GET
def contacts_count(request: AuthedRequest, server_id: int) -> HttpResponse:
    """How many contacts match the current filters (HTMX, on request: never on page load)."""
    server = _server(request, server_id)
    catalogue = services.segment_fields_from(_fields(server), _lists(server))
    filters = selectors.Filters.from_query(server, request.GET, catalogue)
    number = selectors.count(filters.queryset(server, catalogue))
    return render(request, "marketing/_count.html", {"number": number, "at": timezone.now()})


@require_GET
def contacts_export(request: AuthedRequest, server_id: int) -> StreamingHttpResponse:
    """The current filter's contacts as CSV, streamed (cells a spreadsheet would run are escaped)."""
    server = _server(request, server_id)
    fields = _fields(server)
    lists = _lists(server)
    catalogue = services.segment_fields_from(fields, lists)
    filters = selectors.Filters.from_query(server, request.GET, catalogue)
    what = filters.describe({lst.pk: lst.name for lst in lists})
    audit.record(action="contacts.export", request=request, server=server, target=what[:300])
    rows = selectors.export_rows(filters.queryset(server, catalogue), fields)
    response = StreamingHttpResponse(
        stream_csv(selectors.export_header(fields), rows), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="contacts-{server.socketlabs_id}-{stamp}.csv"'
    return response


@require_POST
def contacts_bulk(request: AuthedRequest, server_id: int) -> HttpResponse:
    """Add to a list, remove from a list or delete every contact matching the current filters."""
    server = _server(request, server_id, Capability.MARKETING)
    lists = _lists(server)
    catalogue = services.segment_fields_from(_fields(server), lists)
    filters = selectors.Filters.from_query(server, request.POST, catalogue)
    back = reverse("marketing:contacts", args=[server.pk]) + (f"?{filters.querystring()}" if filters.params() else "")
    form = BulkForm(request.POST)
    if not form.is_valid() or filters.problems:
        messages.error(request, "Choose what to do with the contacts (and fix the filter problems first).")
        return redirect(back)
    matching = filters.queryset(server, catalogue)
    action = form.cleaned_data["action"]
    what = filters.describe({lst.pk: lst.name for lst in lists})
    if action == "delete":
        if not filters.is_filtered and request.POST.get("confirm_all") != "yes":
            messages.error(request, "To delete every contact of the server, tick the confirmation box.")
            return redirect(back)
        deleted = services.bulk_delete(server=server, contacts=matching, actor=request.user, request=request, what=what)
        messages.success(request, f"Deleted {deleted:,} contact{'s' if deleted != 1 else ''} ({what}).")
        return redirect(reverse("marketing:contacts", args=[server.pk]))
    target = next((lst for lst in lists if lst.pk == form.cleaned_data.get("target_list")), None)
    if target is None:
        messages.error(request, "Choose a list.")
        return redirect(back)
    if action == "add":
        added = services.bulk_add_to_list(
            server=server, contacts=matching, contact_list=target, actor=request.user, request=request
        )
        messages.success(request, f"Added {added:,} contact{'s' if added != 1 else ''} to “{target.name}”.")
    else:
        removed = services.bulk_remove_from_list(
            server=server, contacts=matching, contact_list=target, actor=request.user, request=request
        )
        messages.success(request, f"Removed {removed:,} contact{'s' if removed != 1 else ''} from “{target.name}”.")
    return redirect(back)


@require_http_methods(["GET", "POST"])
def contact_new(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = _server(request, server_id, Capability.MARKETING)
    fields, lists = _fields(server), _lists(server)
    form = ContactForm(request.POST or None, fields=fields, lists=lists)
    if request.method == "POST" and form.is_valid():
        try:
            contact = services.create_contact(
                server=server,
                actor=request.user,
                data=form.service_data(),
                list_ids=[int(pk) for pk in form.cleaned_data.get("lists", [])],
                request=request,
            )
        except services.ContactError as exc:
            form.add_service_errors(exc.errors)
        else:
            messages.success(request, f"Added {contact.email}.")
            return redirect("marketing:contact_detail", server_id=server.pk, contact_id=contact.pk)
    return render(request, "marketing/contact_form.html", {"server": server, "form": form, "contact": None})


def _contact(request: AuthedRequest, server_id: int, contact_id: int, capability: str = Capability.READ) -> Contact:
    server = _server(request, server_id, capability)
    contact = get_object_or_404(Contact, pk=contact_id, server=server)
    contact.server = server
    return contact


@require_GET
def contact_detail(request: AuthedRequest, server_id: int, contact_id: int) -> HttpResponse:
    contact = _contact(request, server_id, contact_id)
    server = contact.server
    fields, lists = _fields(server), _lists(server)
    member_of = set(contact.memberships.values_list("contact_list_id", flat=True))
    return render(
        request,
        "marketing/contact_detail.html",
        {
            "server": server,
            "contact": contact,
            "can_change": _can_change(request, server),
            "values": [(f, display(contact.custom.get(f.key))) for f in fields],
            "lists": [(lst, lst.pk in member_of) for lst in lists],
            "history": selectors.history_for(contact),
        },
    )


@require_http_methods(["GET", "POST"])
def contact_edit(request: AuthedRequest, server_id: int, contact_id: int) -> HttpResponse:
    contact = _contact(request, server_id, contact_id, Capability.MARKETING)
    server = contact.server
    fields = _fields(server)
    form = ContactForm(request.POST or None, fields=fields, initial=contact_initial(contact, fields))
    if request.method == "POST" and form.is_valid():
        try:
            services.update_contact(contact=contact, actor=request.user, data=form.service_data(), request=request)
        except services.ContactError as exc:
            form.add_service_errors(exc.errors)
        else:
            messages.success(request, f"Saved {contact.email}.")
            return redirect("marketing:contact_detail", server_id=server.pk, contact_id=contact.pk)
    return render(request, "marketing/contact_form.html", {"server": server, "form": form, "contact": contact})


@require_POST
def contact_lists(request: AuthedRequest, server_id: int, contact_id: int) -> HttpResponse:
    contact = _contact(request, server_id, contact_id, Capability.MARKETING)
    try:
        ids = [int(pk) for pk in request.POST.getlist("lists")]
        added, removed = services.set_contact_lists(contact=contact, actor=request.user, list_ids=ids, request=request)
    except (ValueError, services.ContactError):
        messages.error(request, "One of the chosen lists does not belong to this server.")
    else:
        messages.success(request, f"Lists saved ({added} added, {removed} removed).")
    return redirect("marketing:contact_detail", server_id=contact.server.pk, contact_id=contact.pk)


@require_http_methods(["GET", "POST"])
def contact_delete(request: AuthedRequest, server_id: int, contact_id: int) -> HttpResponse:
    contact = _contact(request, server_id, contact_id, Capability.MARKETING)
    server = contact.server
    if request.method == "POST":
        email = contact.email
        services.delete_contact(contact=contact, actor=request.user, request=request)
        messages.success(request, f"Deleted {email} from {server.name}.")
        return redirect("marketing:contacts", server_id=server.pk)
    return render(request, "marketing/contact_delete.html", {"server": server, "contact": contact})


# --- lists ----------------------------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
def lists(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = _server(request, server_id)
    form = ListForm()
    if request.method == "POST":
        server = _server(request, server_id, Capability.MARKETING)
        form = ListForm(request.POST)
        if form.is_valid():
            try:
                created = services.create_list(
                    server=server,
                    actor=request.user,
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    request=request,
                )
            except services.ContactError as exc:
                for name, problems in exc.errors.items():
                    for problem in problems:
                        form.add_error(name if name in form.fields else None, problem)
            else:
                messages.success(request, f"Created the list “{created.name}”.")
                return redirect("marketing:lists", server_id=server.pk)
    return render(
        request,
        "marketing/lists.html",
        {
            "server": server,
            "lists": _lists(server),
            "form": form,
            "can_change": _can_change(request, server),
            "last_pull": SyncJob.objects.filter(server=server, kind=SyncKind.PULL_LISTS).first(),
        },
    )


def _list(request: AuthedRequest, server_id: int, list_id: int, capability: str) -> ContactList:
    server = _server(request, server_id, capability)
    found = get_object_or_404(ContactList, pk=list_id, server=server)
    found.server = server
    return found


@require_http_methods(["GET", "POST"])
def list_edit(request: AuthedRequest, server_id: int, list_id: int) -> HttpResponse:
    contact_list = _list(request, server_id, list_id, Capability.MARKETING)
    form = ListForm(request.POST or None, initial={"name": contact_list.name, "description": contact_list.description})
    if request.method == "POST" and form.is_valid():
        try:
            services.update_list(
                contact_list=contact_list,
                actor=request.user,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                request=request,
            )
        except services.ContactError as exc:
            for problems in exc.errors.values():
                for problem in problems:
                    form.add_error("name", problem)
        else:
            messages.success(request, f"Saved the list “{contact_list.name}”.")
            return redirect("marketing:lists", server_id=contact_list.server.pk)
    return render(
        request, "marketing/list_form.html", {"server": contact_list.server, "form": form, "contact_list": contact_list}
    )


@require_POST
def list_delete(request: AuthedRequest, server_id: int, list_id: int) -> HttpResponse:
    contact_list = _list(request, server_id, list_id, Capability.MARKETING)
    name = contact_list.name
    services.delete_list(contact_list=contact_list, actor=request.user, request=request)
    messages.success(request, f"Deleted the list “{name}” (its contacts were kept).")
    return redirect("marketing:lists", server_id=contact_list.server.pk)


# --- segments -------------------------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
def segments(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = _server(request, server_id)
    if request.method == "POST":
        return _save_segment(request, server_id)
    catalogue = services.segment_fields(server)
    saved = [(s, describe(s.definition, catalogue)) for s in Segment.objects.filter(server=server).order_by("name")]
    return render(
        request,
        "marketing/segments.html",
        {"server": server, "segments": saved, "can_change": _can_change(request, server)},
    )


def _save_segment(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = _server(request, server_id, Capability.MARKETING)
    catalogue = services.segment_fields(server)
    filters = selectors.Filters.from_query(server, request.POST, catalogue)
    form = SegmentForm(request.POST)
    back = reverse("marketing:contacts", args=[server.pk]) + (f"?{filters.querystring()}" if filters.params() else "")
    if not form.is_valid():
        messages.error(request, "Give the segment a name.")
        return redirect(back)
    existing = None
    if request.POST.get("replace") and filters.segment is not None:
        existing = filters.segment
    try:
        segment = services.save_segment(
            server=server,
            actor=request.user,
            name=form.cleaned_data["name"],
            definition={"match": filters.match, "conditions": filters.rows},
            segment=existing,
            request=request,
        )
    except services.ContactError as exc:
        messages.error(request, " ".join(p for problems in exc.errors.values() for p in problems))
        return redirect(back)
    services.count_segment(segment=segment)
    messages.success(request, f"Saved the segment “{segment.name}” ({segment.cached_count:,} contacts now).")
    return redirect(reverse("marketing:contacts", args=[server.pk]) + f"?segment={segment.pk}")


@require_POST
def segment_count(request: AuthedRequest, server_id: int, segment_id: int) -> HttpResponse:
    """Count a saved segment now and keep the figure (HTMX: answers with the figure only)."""
    server = _server(request, server_id)
    segment = get_object_or_404(Segment, pk=segment_id, server=server)
    segment.server = server
    services.count_segment(segment=segment)
    if request.htmx:
        return render(request, "marketing/_count.html", {"number": segment.cached_count, "at": segment.counted_at})
    return redirect("marketing:segments", server_id=server.pk)


@require_POST
def segment_delete(request: AuthedRequest, server_id: int, segment_id: int) -> HttpResponse:
    server = _server(request, server_id, Capability.MARKETING)
    segment = get_object_or_404(Segment, pk=segment_id, server=server)
    segment.server = server
    name = segment.name
    services.delete_segment(segment=segment, actor=request.user, request=request)
    messages.success(request, f"Deleted the segment “{name}” (no contact was changed).")
    return redirect("marketing:segments", server_id=server.pk)


# --- custom fields --------------------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
def fields(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = _server(request, server_id)
    form = FieldForm()
    if request.method == "POST":
        server = _server(request, server_id, Capability.MARKETING)
        form = FieldForm(request.POST)
        if form.is_valid():
            try:
                custom = services.create_field(
                    server=server,
                    actor=request.user,
                    label=form.cleaned_data["label"],
                    type=form.cleaned_data["type"],
                    choices=form.choice_list(),
                    request=request,
                )
            except services.ContactError as exc:
                for name, problems in exc.errors.items():
                    for problem in problems:
                        form.add_error(name if name in form.fields else "label", problem)
            else:
                messages.success(request, f"Created the field “{custom.label}” ({custom.key}).")
                return redirect("marketing:fields", server_id=server.pk)
    return render(
        request,
        "marketing/fields.html",
        {"server": server, "fields": _fields(server), "form": form, "can_change": _can_change(request, server)},
    )


def _field(request: AuthedRequest, server_id: int, field_id: int) -> CustomField:
    server = _server(request, server_id, Capability.MARKETING)
    custom = get_object_or_404(CustomField, pk=field_id, server=server)
    custom.server = server
    return custom


@require_http_methods(["GET", "POST"])
def field_edit(request: AuthedRequest, server_id: int, field_id: int) -> HttpResponse:
    custom = _field(request, server_id, field_id)
    form = FieldEditForm(request.POST or None, initial={"label": custom.label, "choices": ", ".join(custom.choices)})
    if custom.type != FieldType.CHOICE:
        del form.fields["choices"]
    if request.method == "POST" and form.is_valid():
        try:
            services.update_field(
                custom=custom,
                actor=request.user,
                label=form.cleaned_data["label"],
                choices=form.choice_list() if "choices" in form.fields else [],
                request=request,
            )
        except services.ContactError as exc:
            for name, problems in exc.errors.items():
                for problem in problems:
                    form.add_error(name if name in form.fields else "label", problem)
        else:
            messages.success(request, f"Saved the field “{custom.label}”.")
            return redirect("marketing:fields", server_id=custom.server.pk)
    return render(request, "marketing/field_form.html", {"server": custom.server, "form": form, "custom": custom})


@require_POST
def field_delete(request: AuthedRequest, server_id: int, field_id: int) -> HttpResponse:
    custom = _field(request, server_id, field_id)
    label = custom.label
    changed = services.delete_field(custom=custom, actor=request.user, request=request)
    messages.success(request, f"Deleted the field “{label}” and its value from {changed:,} contacts.")
    return redirect("marketing:fields", server_id=custom.server.pk)


# --- the import wizard ----------------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
def imports_index(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = _server(request, server_id)
    form = UploadForm()
    if request.method == "POST":
        server = _server(request, server_id, Capability.MARKETING)
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                job = imports.create_job(server=server, actor=request.user, upload=form.cleaned_data["file"])
            except imports.ImportRefused as exc:
                form.add_error("file", str(exc))
            else:
                return redirect("marketing:import_map", server_id=server.pk, job_id=job.pk)
    return render(
        request,
        "marketing/imports.html",
        {
            "server": server,
            "form": form,
            "jobs": ImportJob.objects.filter(server=server).select_related("created_by")[:50],
            "can_change": _can_change(request, server),
            "max_mb": imports.max_upload_bytes() // 1_048_576,
        },
    )


def _job(request: AuthedRequest, server_id: int, job_id: int, capability: str = Capability.READ) -> ImportJob:
    server = _server(request, server_id, capability)
    job = get_object_or_404(ImportJob, pk=job_id, server=server)
    job.server = server
    return job


@require_http_methods(["GET", "POST"])
def import_map(request: AuthedRequest, server_id: int, job_id: int) -> HttpResponse:
    job = _job(request, server_id, job_id, Capability.MARKETING)
    if job.status != JobStatus.UPLOADED:
        return redirect("marketing:import_detail", server_id=job.server.pk, job_id=job.pk)
    try:
        reader = imports.reader_for(job)
    except imports.ImportRefused as exc:
        messages.error(request, str(exc))
        return redirect("marketing:imports", server_id=job.server.pk)
    samples = [cells for _, cells in reader.sample_rows(3)]
    fields = _fields(job.server)
    form = MappingForm(request.POST or None, columns=imports.columns(job, samples), fields=fields)
    problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        problems = imports.save_mapping(job=job, targets=form.targets())
        if not problems:
            return redirect("marketing:import_preview", server_id=job.server.pk, job_id=job.pk)
    return render(
        request,
        "marketing/import_map.html",
        {"server": job.server, "job": job, "form": form, "problems": problems, "describe": reader.describe()},
    )


@require_http_methods(["GET", "POST"])
def import_preview(request: AuthedRequest, server_id: int, job_id: int) -> HttpResponse:
    job = _job(request, server_id, job_id, Capability.MARKETING)
    if job.status != JobStatus.UPLOADED:
        return redirect("marketing:import_detail", server_id=job.server.pk, job_id=job.pk)
    lists = _lists(job.server)
    form = ImportOptionsForm(request.POST or None, lists=lists)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            imports.queue(
                job=job,
                actor=request.user,
                update_existing=data["existing"] == "update",
                skip_invalid=data["invalid"] == "skip",
                new_status=data["new_status"],
                list_ids=[int(pk) for pk in data.get("lists", [])],
                create_fields=bool(data.get("create_fields")),
            )
        except imports.ImportRefused as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("marketing:import_detail", server_id=job.server.pk, job_id=job.pk)
    create = form.data.get("create_fields", "on") == "on" if form.is_bound else True
    try:
        shown = imports.preview(job, create_fields=create)
    except imports.ImportRefused as exc:
        messages.error(request, str(exc))
        return redirect("marketing:imports", server_id=job.server.pk)
    planned = imports.new_fields(job)
    return render(
        request,
        "marketing/import_preview.html",
        {
            "server": job.server,
            "job": job,
            "form": form,
            "preview": shown,
            "new_fields": list(planned.values()),
            "has_lists": bool(lists),
        },
    )


@require_GET
def import_detail(request: AuthedRequest, server_id: int, job_id: int) -> HttpResponse:
    job = _job(request, server_id, job_id)
    if job.status == JobStatus.UPLOADED and _can_change(request, job.server):
        return redirect("marketing:import_map", server_id=job.server.pk, job_id=job.pk)
    return render(request, "marketing/import_detail.html", _progress_context(request, job))


@require_GET
def import_progress(request: AuthedRequest, server_id: int, job_id: int) -> HttpResponse:
    """The progress bar, ETA and — once finished — the report (HTMX polls this every second)."""
    job = _job(request, server_id, job_id)
    return render(request, "marketing/import_detail.html#progress", _progress_context(request, job))


def _progress_context(request: AuthedRequest, job: ImportJob) -> dict[str, Any]:
    done, rows, phase = job.bytes_done, job.rows_read, job.phase
    if job.status == JobStatus.RUNNING:
        live = cache.get(progress_key(job.pk)) or {}
        if live.get("bytes_done", 0) >= done:
            done, rows, phase = live.get("bytes_done", done), live.get("rows_read", rows), live.get("phase", phase)
    percent = int(done * 100 / job.file_size) if job.file_size else 0
    eta = None
    if job.status == JobStatus.RUNNING and phase == "reading" and job.started_at and 0 < done < job.file_size:
        elapsed = (timezone.now() - job.started_at).total_seconds()
        # Contacts are written while the file is read (chunk by chunk), so the share read is the share done.
        eta = timedelta(seconds=round(elapsed * (job.file_size - done) / done) + 1)
    return {
        "server": job.server,
        "job": job,
        "percent": min(percent, 100),
        "rows": rows,
        "phase": phase,
        "eta": eta,
        "problems": imports.summary_problems(job),
        "can_change": _can_change(request, job.server),
    }


@require_GET
def import_report(request: AuthedRequest, server_id: int, job_id: int) -> FileResponse:
    job = _job(request, server_id, job_id)
    path = imports.report_path(job)
    if path is None or not path.exists():
        raise Http404("This import has no problem report.")
    return FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=f"import-{job.pk}-problems.csv",
        content_type="text/csv; charset=utf-8",
    )


@require_POST
def import_cancel(request: AuthedRequest, server_id: int, job_id: int) -> HttpResponse:
    job = _job(request, server_id, job_id, Capability.MARKETING)
    if imports.cancel(job=job, actor=request.user):
        messages.success(request, f"Cancelled the import of {job.file_name}.")
    else:
        messages.error(request, "This import has already started; it cannot be cancelled.")
    return redirect("marketing:imports", server_id=job.server.pk)


@require_POST
def import_retry(request: AuthedRequest, server_id: int, job_id: int) -> HttpResponse:
    job = _job(request, server_id, job_id, Capability.MARKETING)
    try:
        again = imports.retry_skipping_invalid(job=job, actor=request.user)
    except imports.ImportRefused as exc:
        messages.error(request, str(exc))
        return redirect("marketing:import_detail", server_id=job.server.pk, job_id=job.pk)
    return redirect("marketing:import_detail", server_id=job.server.pk, job_id=again.pk)


# --- sync with SocketLabs ---------------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
def sync_page(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = _server(request, server_id)
    if request.method == "POST":
        server = _server(request, server_id, Capability.MARKETING)
        try:
            job = sync.request_sync(
                server=server, kind=request.POST.get("kind", ""), actor=request.user, request=request
            )
        except sync.SyncRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{job.get_kind_display()}: queued. Progress shows below.")
        return redirect("marketing:sync", server_id=server.pk)
    return render(request, "marketing/sync.html", _sync_context(request, server))


@require_GET
def sync_progress(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = _server(request, server_id)
    return render(request, "marketing/sync.html#jobs", _sync_context(request, server))


def _sync_context(request: AuthedRequest, server: Server) -> dict[str, Any]:
    recent = list(SyncJob.objects.filter(server=server).select_related("created_by")[:20])
    last = sync.last_jobs(server)
    return {
        "server": server,
        "can_change": _can_change(request, server),
        "has_key": bool(server.marketing_key),
        "last_results": [(label, last[value]) for value, label in SyncKind.choices],
        "kinds": SyncKind.choices,
        "recent": recent,
        "active": any(job.is_active for job in recent),
        "pending": sync.pending_changes(server).count(),
        "refused": list(sync.refused_changes(server).order_by("id")[:50]),
        "refused_total": sync.refused_changes(server).count(),
        "linked_lists": ContactList.objects.filter(server=server, remote_id__isnull=False).count(),
    }


@require_POST
def sync_refused(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = _server(request, server_id, Capability.MARKETING)
    if request.POST.get("action") == "discard":
        count = sync.discard_refused(server=server, actor=request.user, request=request)
        messages.success(request, f"Discarded {count:,} refused change{'s' if count != 1 else ''}.")
    else:
        count = sync.retry_refused(server=server, actor=request.user, request=request)
        messages.success(request, f"{count:,} refused change{'s' if count != 1 else ''} will be pushed again.")
    return redirect("marketing:sync", server_id=server.pk)
