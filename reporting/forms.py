from __future__ import annotations

import ipaddress
from typing import Any

from django import forms

from common.netguard import BlockedTarget, check_public_url
from reporting.models import EventType, WebhookFormat


class EndpointForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="A label for you, e.g. “production”.")
    allowed_networks = forms.CharField(
        label="Allowed source networks",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "142.0.176.0/20\n52.152.150.178/32"}),
        help_text="One CIDR range per line; posts from elsewhere are refused with 403. Empty accepts any source. "
        "SocketLabs posts from 142.0.176.0/20 and validates from 52.152.150.178.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean_allowed_networks(self) -> list[str]:
        networks: list[str] = []
        for line_number, line in enumerate(self.cleaned_data["allowed_networks"].replace(",", "\n").splitlines(), 1):
            text = line.strip()
            if not text:
                continue
            try:
                networks.append(str(ipaddress.ip_network(text, strict=False)))
            except ValueError as exc:
                raise forms.ValidationError(
                    f"Line {line_number}: “{text}” is not a network such as 142.0.176.0/20."
                ) from exc
        return networks


class ActivityFilterForm(forms.Form):
    type = forms.ChoiceField(choices=[("", "All types"), *EventType.choices], required=False)
    address = forms.CharField(required=False, max_length=320, label="Address contains")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class TimelineForm(forms.Form):
    FIELDS = [("auto", "Any"), ("address", "Recipient address"), ("message", "Message id"), ("mailing", "Mailing id")]
    q = forms.CharField(required=False, max_length=320, label="Search")
    field = forms.ChoiceField(choices=FIELDS, required=False, initial="auto", label="In")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class RequestLogFilterForm(forms.Form):
    OUTCOMES = [("", "All"), ("errors", "Errors only")]
    show = forms.ChoiceField(choices=OUTCOMES, required=False, label="Show")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=320, label="Search subject, sender or recipient")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class RegisterForm(forms.Form):
    format = forms.ChoiceField(
        choices=WebhookFormat.choices,
        initial=WebhookFormat.JSON,
        label="Body format",
        help_text="JSON unless something in between only understands the legacy form-encoded posts.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class ForwardingForm(forms.Form):
    forward_url = forms.URLField(
        label="Forward to URL",
        required=False,
        max_length=2000,
        assume_scheme="https",
        help_text="Each parsed message is POSTed here as JSON. Leave empty to stop forwarding.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean_forward_url(self) -> str:
        url: str = self.cleaned_data["forward_url"]
        if url and not url.lower().startswith(("http://", "https://")):
            raise forms.ValidationError(f"“{url}” must start with http:// or https://.")
        if url:
            try:
                check_public_url(url)
            except BlockedTarget as exc:
                raise forms.ValidationError(str(exc)) from exc
        return url
