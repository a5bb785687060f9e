"""Forms for sending setup: they check what a person typed; the services check again and do the work."""

from __future__ import annotations

from typing import Any

from django import forms

from sending import dkim
from sending.validators import normalize_domain


class NoColon(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


def _clean_domain(value: str) -> str:
    try:
        return normalize_domain(value)
    except ValueError as exc:
        raise forms.ValidationError(str(exc)) from exc


class ApiKeyForm(NoColon):
    name = forms.CharField(max_length=100, help_text="What will use it, e.g. “Shop checkout”.")
    permissions = forms.MultipleChoiceField(
        choices=[("injection", "Injection (send mail)"), ("api", "API (manage the server)")],
        widget=forms.CheckboxSelectMultiple,
        initial=["injection"],
        error_messages={"required": "Choose at least one permission."},
    )
    use_for_mailroom = forms.BooleanField(
        required=False,
        label="Use this key for Mailroom",
        help_text="Store it (encrypted) as this server's key in Mailroom, replacing the current one.",
    )

    def __init__(self, *args: Any, can_manage: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not can_manage:
            del self.fields["use_for_mailroom"]


class DomainForm(NoColon):
    domain = forms.CharField(
        max_length=300, widget=forms.TextInput(attrs={"placeholder": "example.com", "autocomplete": "off"})
    )

    def clean_domain(self) -> str:
        return _clean_domain(self.cleaned_data["domain"])


def _clean_selector(value: str) -> str:
    try:
        return dkim.normalize_selector(value)
    except ValueError as exc:
        raise forms.ValidationError(str(exc)) from exc


def _clean_private_key(value: str) -> str:
    if value.strip():
        try:
            dkim.parse_private_key(value)
        except dkim.InvalidPrivateKey as exc:
            raise forms.ValidationError(str(exc)) from exc
    return value


def _private_key_field() -> forms.CharField:
    return forms.CharField(
        required=False,
        label="Your own private key (optional)",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autocomplete": "off"}),
        help_text=(
            "Leave empty and SocketLabs generates a 2048-bit key pair. Otherwise paste an unencrypted RSA key (PEM)."
        ),
    )


class DkimForm(DomainForm):
    selector = forms.CharField(
        max_length=63,
        help_text="A name for this key, e.g. “mr2025”. The record goes at selector._domainkey.domain.",
    )
    private_key = _private_key_field()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["domain"].widget.attrs["list"] = "dkim-domains"

    def clean_selector(self) -> str:
        return _clean_selector(self.cleaned_data["selector"])

    def clean_private_key(self) -> str:
        return _clean_private_key(self.cleaned_data.get("private_key") or "")


class RotateForm(NoColon):
    selector = forms.CharField(max_length=63, label="New selector", help_text="Must differ from the current one.")
    private_key = _private_key_field()

    def clean_selector(self) -> str:
        return _clean_selector(self.cleaned_data["selector"])

    def clean_private_key(self) -> str:
        return _clean_private_key(self.cleaned_data.get("private_key") or "")


class BounceForm(DomainForm):
    is_default = forms.BooleanField(required=False, label="Make it the default bounce domain")


class TrackingForm(DomainForm):
    opens_enabled = forms.BooleanField(required=False, initial=True, label="Track opens")
    clicks_enabled = forms.BooleanField(required=False, initial=True, label="Track clicks")
    unsubscribes_enabled = forms.BooleanField(required=False, initial=True, label="Unsubscribe links")
    https_enabled = forms.BooleanField(required=False, initial=True, label="HTTPS")
    is_default = forms.BooleanField(required=False, label="Make it the default tracking domain")

    FLAGS = ("opens_enabled", "clicks_enabled", "unsubscribes_enabled", "https_enabled", "is_default")

    def flags(self) -> dict[str, bool]:
        return {name: bool(self.cleaned_data.get(name)) for name in self.FLAGS}


class TrackingFlagsForm(NoColon):
    """One row's toggles, changed in place."""

    opens_enabled = forms.BooleanField(required=False)
    clicks_enabled = forms.BooleanField(required=False)
    unsubscribes_enabled = forms.BooleanField(required=False)
    https_enabled = forms.BooleanField(required=False)
    is_default = forms.BooleanField(required=False)

    def flags(self) -> dict[str, bool]:
        return {name: bool(self.cleaned_data.get(name)) for name in TrackingForm.FLAGS}
