"""The inbound simulation page: "receive" a message (from fields or an .eml) on a sandbox server."""

from __future__ import annotations

import mimetypes
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts import audit
from sandbox import inbound
from sandbox.gate import sandbox_page
from sandbox.models import SandboxInboundEndpoint, SandboxInboundPost

RECENT_POSTS = 20


class EndpointChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"Server {obj.server.server_id} · {obj.domain_or_address} → {obj.url}"


class InboundForm(forms.Form):
    endpoint = EndpointChoice(
        queryset=SandboxInboundEndpoint.objects.select_related("server").order_by("server__server_id", "id"),
        label="Inbound parse endpoint",
        empty_label=None,
    )
    eml = forms.FileField(
        label="Message file (.eml)",
        required=False,
        help_text="Upload a whole message, or leave empty and fill in the fields below.",
    )
    from_ = forms.CharField(label="From", required=False, max_length=320, help_text="e.g. Ann <ann@example.org>")
    to = forms.CharField(
        label="To", required=False, max_length=320, help_text="With an .eml: overrides the envelope recipient."
    )
    subject = forms.CharField(label="Subject", required=False, max_length=998)
    text = forms.CharField(label="Text body", required=False, widget=forms.Textarea(attrs={"rows": 5}))
    html = forms.CharField(label="HTML body", required=False, widget=forms.Textarea(attrs={"rows": 5}))
    attachment = forms.FileField(label="Attachment", required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        eml = data.get("eml")
        if eml is not None and eml.size > inbound.MAX_EML_BYTES:
            self.add_error("eml", "The file is larger than 50 MB, the Inbound Parse limit.")
        if eml is None:
            if not data.get("from_"):
                self.add_error("from_", "Give a sender, or upload an .eml file.")
            if not data.get("to"):
                self.add_error("to", "Give a recipient, or upload an .eml file.")
            if not (data.get("subject") or data.get("text") or data.get("html")):
                self.add_error("subject", "Give a subject or a body, or upload an .eml file.")
        return data


@sandbox_page
def inbound_simulate(request: HttpRequest) -> HttpResponse:
    form = InboundForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        attachments = []
        upload = data.get("attachment")
        if upload is not None:
            content_type = upload.content_type or mimetypes.guess_type(upload.name)[0] or "application/octet-stream"
            attachments.append(inbound.InboundAttachment(upload.name, upload.read(), content_type))
        eml = data.get("eml")
        try:
            post = inbound.receive(
                data["endpoint"],
                from_=data["from_"],
                to=data["to"],
                subject=data["subject"],
                text=data["text"],
                html=data["html"],
                attachments=attachments,
                eml_bytes=eml.read() if eml is not None else None,
            )
        except inbound.InboundError as exc:
            form.add_error(None, str(exc))
        else:
            audit.record(
                action="sandbox.inbound.receive",
                request=request,
                target=f"inbound endpoint {post.endpoint_id}",
                after={"status_code": post.status_code, "validated": post.validated},
            )
            if post.status_code is not None and 200 <= post.status_code < 300:
                messages.success(
                    request,
                    f"Posted to {post.endpoint.url}: HTTP {post.status_code}; "
                    + (
                        "the answer contained the validation key."
                        if post.validated
                        else "no validation key in the answer."
                    ),
                )
            else:
                messages.error(request, f"Posting to {post.endpoint.url} failed: {post.error}.")
            return redirect(reverse("sandbox:inbound_simulate"))
    posts = SandboxInboundPost.objects.select_related("endpoint__server").order_by("-created_on", "-id")[:RECENT_POSTS]
    return render(
        request,
        "sandbox/inbound.html",
        {
            "form": form,
            "posts": posts,
            "has_endpoints": SandboxInboundEndpoint.objects.exists(),
            "inbound_url": reverse("sandbox:inbound_simulate"),
            "section": "inbound_simulate",
        },
    )
