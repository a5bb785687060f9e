"""Compose and send pages: templates with a live preview, the send wizard, progress and history.

Marketing and Admin compose and send; every member reads. Each view fetches its server through
the access helper (404 for no access, 403 for a role that may not send).
"""

from __future__ import annotations

import html
import re
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.html import strip_tags
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRefresh

from accounts import access, audit
from accounts.http import AuthedRequest
from accounts.models import Server
from accounts.roles import Capability
from sending import audience, composer, engine
from sending.models import AudienceState, RecipientState, Send, SendRecipient, SendStatus, Template
from sending.send_forms import PreviewForm, RetryForm, SendForm, SendSettingsForm, TemplateForm, TestSendForm


def _server(request: AuthedRequest, server_id: int, capability: str = Capability.READ) -> Server:
    return access.get_server_for_user(request.user, server_id, capability)


def _can_send(request: AuthedRequest, server: Server) -> bool:
    return access.user_can(request.user, server, Capability.MARKETING)


def text_from_html(body: str) -> str:
    """A plain-text body from HTML: block ends become line breaks, tags go, entities are decoded."""
    body = re.sub(r"(?i)<br\s*/?>|</(p|div|h[1-6]|li|tr)>", "\n", body)
    text = html.unescape(strip_tags(body))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.strip() for line in text.splitlines())).strip()


# --- templates -----------------------------------------------------------------------------------
@require_GET
def template_list(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = _server(request, server_id)
    return render(
        request,
        "sending/sends/templates.html",
        {"server": server, "templates": Template.objects.filter(server=server), "can_send": _can_send(request, server)},
    )


@require_http_methods(["GET", "POST"])
def template_edit(request: AuthedRequest, server_id: int, template_id: int | None = None) -> HttpResponse:
    server = _server(request, server_id, Capability.MARKETING)
    template = get_object_or_404(Template, server=server, pk=template_id) if template_id else None
    form = TemplateForm(request.POST or None, instance=template)
    if request.method == "POST" and form.is_valid():
        item = form.save(commit=False)
        if form.cleaned_data.get("generate_text"):
            item.text_body = text_from_html(item.html_body)
        item.server = server
        item.updated_at = timezone.now()
        if item.pk is None:
            item.created_by = request.user
        item.save()
        audit.record(
            action="send_template.update" if template else "send_template.create",
            request=request,
            server=server,
            target=f"template {item.pk} {item.name}",
        )
        messages.success(request, f"Template “{item.name}” saved.")
        return redirect("sending:send_template_edit", server.pk, item.pk)
    preview = composer.preview(
        subject=form["subject"].value() or "",
        html_body=form["html_body"].value() or "",
        text_body=form["text_body"].value() or "",
        row={},
    )
    return render(
        request,
        "sending/sends/template_edit.html",
        {
            "server": server,
            "form": form,
            "template": template,
            "preview": preview,
            "row_text": "",
            "test_form": TestSendForm(),
        },
    )


@require_POST
def template_preview(request: AuthedRequest, server_id: int) -> HttpResponse:
    """HTMX: the preview for the pasted row. Values are substituted as plain text and shown escaped."""
    server = _server(request, server_id)
    form = PreviewForm(request.POST)
    error = ""
    row: dict[str, str] = {}
    if form.is_valid():
        row = form.cleaned_data["row"]
    else:
        error = " ".join(str(e) for errs in form.errors.values() for e in errs)
    data = form.cleaned_data if form.is_valid() else {}
    preview = composer.preview(
        subject=data.get("subject", request.POST.get("subject", "")),
        html_body=data.get("html_body", request.POST.get("html_body", "")),
        text_body=data.get("text_body", request.POST.get("text_body", "")),
        row=row,
    )
    return render(
        request, "sending/sends/_preview.html", {"server": server, "preview": preview, "preview_error": error}
    )


@require_POST
def template_test_send(request: AuthedRequest, server_id: int, template_id: int) -> HttpResponse:
    """Send the saved template once to the signed-in user, merged with the given row."""
    server = _server(request, server_id, Capability.MARKETING)
    template = get_object_or_404(Template, server=server, pk=template_id)
    form = TestSendForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errs in form.errors.values() for e in errs))
        return redirect("sending:send_template_edit", server.pk, template.pk)
    outcome = composer.test_send(
        server=server,
        template=template,
        to=request.user.email,
        from_address=form.cleaned_data["from_address"],
        row=form.cleaned_data["row"],
    )
    audit.record(
        action="send_template.test",
        request=request,
        server=server,
        target=f"template {template.pk} to {request.user.email}",
        after={"ok": outcome.ok, "detail": outcome.message},
    )
    (messages.success if outcome.ok else messages.error)(request, outcome.message)
    return redirect("sending:send_template_edit", server.pk, template.pk)


# --- sends ---------------------------------------------------------------------------------------
@require_GET
def send_list(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = _server(request, server_id)
    page = Paginator(Send.objects.filter(server=server).select_related("created_by"), 25).get_page(
        request.GET.get("page")
    )
    sends = list(page.object_list)
    counts = engine.history_counts(sends)
    events = engine.event_counts(server, sends)
    rows = [(send, counts[send.pk], events[send.pk]) for send in sends]
    can_manage = access.user_can(request.user, server, Capability.MANAGE_SERVER)
    settings_form = SendSettingsForm(initial={"approval_threshold": engine.approval_threshold(server)})
    return render(
        request,
        "sending/sends/list.html",
        {
            "server": server,
            "page": page,
            "rows": rows,
            "can_send": _can_send(request, server),
            "can_manage": can_manage,
            "settings_form": settings_form,
        },
    )


@require_POST
def send_settings(request: AuthedRequest, server_id: int) -> HttpResponse:
    """Admins: the recipient count above which a send needs a second Admin's approval."""
    server = _server(request, server_id, Capability.MANAGE_SERVER)
    form = SendSettingsForm(request.POST)
    if form.is_valid():
        threshold = form.cleaned_data["approval_threshold"]
        engine.set_approval_threshold(server, threshold, actor=request.user, request=request)
        messages.success(
            request,
            f"Sends to more than {threshold:,} recipients now need a second Admin's approval."
            if threshold is not None
            else "Sends no longer need approval.",
        )
    else:
        messages.error(
            request, "Approval threshold: " + " ".join(str(e) for e in form.errors.get("approval_threshold") or [])
        )
    return redirect("sending:send_list", server.pk)


def _audience_rows(form: SendForm, send: Send) -> None:
    """Pasted addresses expand now; a list, segment or CSV expands now when small, else in the background."""
    data = form.cleaned_data
    kind = data["audience"]
    if kind == "pasted":
        engine.add_recipients(send, composer.pasted_rows(data["addresses"]))
    elif kind == "csv":
        audience.prepare(send, kind="csv", upload=data["csv_file"])
    elif kind == "segment":
        audience.prepare(send, kind="segment", segment_id=int(data["segment"]))
    else:
        audience.prepare(send, kind="lists", list_ids=[int(i) for i in data["lists"]])


def _describe(form: SendForm) -> str:
    kind = form.cleaned_data["audience"]
    if kind == "csv":
        return f"CSV file {form.cleaned_data['csv_file'].name}"
    if kind == "lists":
        names = dict(form.fields["lists"].choices)  # type: ignore[attr-defined]
        return "Lists: " + ", ".join(str(names.get(i, i)) for i in form.cleaned_data["lists"])
    if kind == "segment":
        segments = dict(form.fields["segment"].choices)  # type: ignore[attr-defined]
        return f"Segment: {segments.get(form.cleaned_data['segment'], '')}"
    return "Pasted addresses"


@require_http_methods(["GET", "POST"])
def send_new(request: AuthedRequest, server_id: int) -> HttpResponse:
    """Step 1: audience, template and settings. Creates a draft with its recipients, then the summary."""
    server = _server(request, server_id, Capability.MARKETING)
    form = SendForm(request.POST or None, request.FILES or None, server=server)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                send = engine.create_send(
                    server=server,
                    actor=request.user,
                    template=data["template"],
                    name=data["name"],
                    from_address=data["from_address"],
                    from_name=data["from_name"],
                    reply_to=data["reply_to"],
                    cc=data["cc"],
                    bcc=data["bcc"],
                    mailing_id=data["mailing_id"],
                    message_id_prefix=data["message_id_prefix"],
                    tags=data["tags"],
                    metadata=data["metadata"],
                    custom_headers=data["custom_headers"],
                    global_fields=data["global_fields"],
                    audience=_describe(form),
                    request=request,
                )
                if data.get("attachment"):
                    upload = data["attachment"]
                    engine.attach(
                        send,
                        name=upload.name,
                        content=upload.read(engine.MAX_ATTACHMENT_BYTES + 1),
                        content_type=upload.content_type or "application/octet-stream",
                    )
                _audience_rows(form, send)
        except (engine.SendError, composer.AudienceError) as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("sending:send_detail", server.pk, send.pk)
    return render(request, "sending/sends/new.html", {"server": server, "form": form})


def _detail_context(request: AuthedRequest, server: Server, send: Send) -> dict[str, Any]:
    progress = engine.progress(send)
    used = engine.merge_fields_in(send.subject, send.html_body, send.text_body)
    sample = SendRecipient.objects.filter(send=send, state=RecipientState.PENDING).values_list("fields", flat=True)[
        :200
    ]
    available = {k for fields in sample for k in fields} | set(send.global_fields)
    skipped = SendRecipient.objects.filter(send=send, state=RecipientState.SKIPPED).order_by("pk")[:20]
    return {
        "server": server,
        "send": send,
        "progress": progress,
        "can_send": _can_send(request, server),
        "unused_fields": composer.unused_fields(used, sorted(available)) if send.status == SendStatus.DRAFT else [],
        "estimate": engine.estimated_seconds(progress.total),
        "skipped_rows": skipped,
        "retry_form": RetryForm(),
        "finished": send.status in (SendStatus.DONE, SendStatus.CANCELLED),
        "can_approve": send.status == SendStatus.AWAITING_APPROVAL and engine.can_approve(send, request.user),
        "audience_percent": (
            min(100, int(100 * send.audience_done / send.audience_expected)) if send.audience_expected else None
        ),
    }


@require_GET
def send_detail(request: AuthedRequest, server_id: int, send_id: int) -> HttpResponse:
    server = _server(request, server_id)
    send = get_object_or_404(Send, server=server, pk=send_id)
    return render(request, "sending/sends/detail.html", _detail_context(request, server, send))


@require_GET
def send_progress(request: AuthedRequest, server_id: int, send_id: int) -> HttpResponse:
    """HTMX: the progress card; it polls itself until the send stops (or the audience is prepared:
    then the whole page reloads, since the summary and the skipped list change)."""
    server = _server(request, server_id)
    send = get_object_or_404(Send, server=server, pk=send_id)
    if request.GET.get("audience") and send.audience_state != AudienceState.EXPANDING:
        return HttpResponseClientRefresh()
    return render(request, "sending/sends/_progress.html", _detail_context(request, server, send))


@require_POST
def send_action(request: AuthedRequest, server_id: int, send_id: int, action: str) -> HttpResponse:
    server = _server(request, server_id, Capability.MARKETING)
    send = get_object_or_404(Send, server=server, pk=send_id)
    try:
        if action == "start":
            engine.start(send, actor=request.user, request=request)
            messages.success(request, f"Sending to {send.total:,} recipients.")
        elif action == "pause":
            ok = engine.pause(send, actor=request.user, request=request)
            (messages.success if ok else messages.error)(
                request, "Paused." if ok else "Only a queued or sending send can be paused."
            )
        elif action == "resume":
            ok = engine.resume(send, actor=request.user, request=request)
            (messages.success if ok else messages.error)(request, "Resumed." if ok else "Only a paused send resumes.")
        elif action == "cancel":
            ok = engine.cancel(send, actor=request.user, request=request)
            (messages.success if ok else messages.error)(
                request, "Cancelled." if ok else "This send has already finished."
            )
        elif action == "approve":
            engine.approve(send, actor=request.user, request=request)
            messages.success(request, f"Approved: sending to {send.total:,} recipients.")
        elif action == "retry":
            form = RetryForm(request.POST)
            form.is_valid()
            count = engine.retry_failed(
                send,
                actor=request.user,
                include_unknown=bool(form.cleaned_data.get("include_unknown")),
                request=request,
            )
            (messages.success if count else messages.error)(
                request, f"Re-sending to {count:,} recipients." if count else "There is nobody to retry."
            )
        else:
            return HttpResponse(status=404)
    except engine.SendError as exc:
        messages.error(request, str(exc))
    return redirect("sending:send_detail", server.pk, send.pk)
