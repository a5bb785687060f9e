from __future__ import annotations

from typing import Any

from django import forms

from accounts.models import Server
from common.emails import InvalidAddress, normalise_email
from suppression.models import JobKind, Reason
from suppression.services import ORDERS, SearchFilters


class AddressField(forms.CharField):
    """An e-mail address, trimmed and lower-cased, with the reason it is refused in plain words."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 320)
        kwargs.setdefault("label", "E-mail address")
        super().__init__(**kwargs)
        self.widget.attrs.setdefault("autocomplete", "off")
        self.widget.attrs.setdefault("spellcheck", "false")

    def clean(self, value: Any) -> str:
        text = super().clean(value)
        if not text:
            return text
        try:
            return normalise_email(text)
        except InvalidAddress as exc:
            raise forms.ValidationError(f"Not an e-mail address: {exc}.") from None


class _Prefixed(forms.Form):
    """Several of these forms share a page: distinct element ids keep every label tied to its own input."""

    id_prefix = "id"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", f"{self.id_prefix}_%s")
        super().__init__(*args, **kwargs)


class CheckForm(_Prefixed):
    id_prefix = "check"
    address = AddressField(label="Check an address")


class AddForm(_Prefixed):
    id_prefix = "add"
    address = AddressField(label="Address to suppress")
    reason = forms.ChoiceField(choices=Reason.choices, initial=Reason.CUSTOMER_REQUEST)


class RemoveForm(forms.Form):
    address = forms.CharField(max_length=320, widget=forms.HiddenInput)


class SearchForm(_Prefixed):
    id_prefix = "search"
    address = forms.CharField(label="Address", required=False, max_length=320)
    match = forms.ChoiceField(
        label="Match", choices=[("prefix", "Starts with"), ("exact", "Exactly")], required=False, initial="prefix"
    )
    domain = forms.CharField(label="Domain", required=False, max_length=255)
    reason = forms.ChoiceField(label="Reason", choices=[("", "Any reason"), *Reason.choices], required=False)
    since = forms.DateField(label="Updated from", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="Updated to", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    order = forms.ChoiceField(label="Order", choices=list(ORDERS.items()), required=False, initial="address")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        return data

    def filters(self) -> SearchFilters:
        if not self.is_bound or not self.is_valid():
            return SearchFilters()
        data = self.cleaned_data
        return SearchFilters(
            address=data["address"].strip(),
            match=data["match"] or "prefix",
            domain=data["domain"].strip(),
            reason=data["reason"],
            since=data["since"],
            until=data["until"],
            order=data["order"] or "address",
        )


class ImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8; comma, semicolon or tab separated; one column named “email” (or only addresses).",
    )
    kind = forms.ChoiceField(label="What to do", choices=JobKind.choices, initial=JobKind.ADD)
    reason = forms.ChoiceField(
        label="Reason for new entries",
        choices=Reason.choices,
        initial=Reason.CUSTOMER_REQUEST,
        help_text="Used when the file has no “reason” column.",
    )
    also = forms.ModelMultipleChoiceField(
        label="Also apply to",
        queryset=Server.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Other servers whose lists you may change.",
    )

    def __init__(self, *args: Any, others: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if others is not None:
            self.fields["also"].queryset = others  # type: ignore[attr-defined]
        if not self.fields["also"].queryset.exists():  # type: ignore[attr-defined]
            del self.fields["also"]


class ApplyForm(forms.Form):
    skip_invalid = forms.BooleanField(label="Skip the invalid rows", required=False)


class BulkCheckForm(forms.Form):
    addresses = forms.CharField(
        label="Addresses",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One per line, up to 10,000.",
    )
