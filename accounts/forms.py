from __future__ import annotations

from typing import Any

from django import forms

from accounts.models import Server
from accounts.roles import Role


class NoColonLabels:
    """Labels sit above their inputs in our layout, so Django's trailing colon is dropped."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class SecretInput(forms.PasswordInput):
    """Write-only: never renders the stored value back into the page."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(render_value=False, attrs={"autocomplete": "off", **kwargs.pop("attrs", {})}, **kwargs)


class ServerForm(NoColonLabels, forms.ModelForm):
    api_key = forms.CharField(
        label="API key (v2)",
        required=False,
        widget=SecretInput(),
        help_text="Used for management, suppressions and reports.",
    )
    injection_key = forms.CharField(
        label="Injection API key",
        required=False,
        widget=SecretInput(),
        help_text="Used to send mail.",
    )
    marketing_key = forms.CharField(
        label="Marketing API key",
        required=False,
        widget=SecretInput(),
        help_text="Used to sync contacts.",
    )

    class Meta:
        model = Server
        # The secrets are declared above and kept out of Meta.fields on purpose: a ModelForm
        # would otherwise copy an empty input onto the instance and wipe the stored key.
        fields = [
            "name",
            "socketlabs_id",
            "account_id",
            "subaccount_id",
            "time_zone",
            "api_url",
            "inject_url",
            "marketing_url",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            for field in Server.SECRET_FIELDS:
                stored = self.instance.masked(field)
                if stored:
                    # Append, so the field still says what the key is for.
                    self.fields[field].help_text += f" Stored: {stored}. Leave empty to keep it."
        for field in ("api_key", "injection_key", "marketing_key"):
            self.initial.pop(field, None)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for field in Server.SECRET_FIELDS:
            value = (data.get(field) or "").strip()
            if any(ch.isspace() for ch in value):
                self.add_error(field, "An API key has no spaces or line breaks; check what was pasted.")
            data[field] = value
        return data

    def service_data(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in self.fields}


class InviteForm(NoColonLabels, forms.Form):
    email = forms.EmailField(label="E-mail address")
    server = forms.ModelChoiceField(queryset=Server.objects.none(), required=False, empty_label="(no server yet)")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)

    def __init__(self, *args: Any, servers: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["server"].queryset = servers  # type: ignore[attr-defined]


class MembershipForm(NoColonLabels, forms.Form):
    # An address, not a list of users: a server's Admin must not see who else uses this site.
    email = forms.EmailField(
        label="E-mail address",
        help_text="Someone without an account yet gets a one-time link to choose a password.",
    )
    # The least access by default: giving Admin should be a deliberate choice.
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class AuditFilterForm(NoColonLabels, forms.Form):
    server = forms.ModelChoiceField(queryset=Server.objects.none(), required=False, empty_label="All servers")
    action = forms.CharField(required=False)
    actor = forms.CharField(required=False, label="Who")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, servers: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["server"].queryset = servers  # type: ignore[attr-defined]


class ApiTokenForm(NoColonLabels, forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. “nightly export script”.")
