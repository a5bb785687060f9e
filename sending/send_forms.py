"""Forms for templates and sends: they check what a person typed; the engine checks again and does the work."""

from __future__ import annotations

from typing import Any

from django import forms

from accounts.models import Server
from common.emails import InvalidAddress, normalise_email
from sending.composer import AudienceError, parse_fields
from sending.engine import BASIC_MAX_ADDRESSES
from sending.models import Template

MAX_UPLOAD_BYTES = 50 * 1024 * 1024


class NoColon(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


def _fields_text(value: str, label: str) -> dict[str, str]:
    try:
        return parse_fields(value)
    except AudienceError as exc:
        raise forms.ValidationError(f"{label}: {exc}") from None


class TemplateForm(forms.ModelForm):
    class Meta:
        model = Template
        fields = ("name", "subject", "html_body", "text_body")
        labels = {"html_body": "HTML body", "text_body": "Text body"}
        help_texts = {
            "subject": "Merge fields are written %%FirstName%%.",
            "text_body": "Leave empty and tick “generate” to make it from the HTML.",
        }
        widgets = {
            "html_body": forms.Textarea(attrs={"rows": 10}),
            "text_body": forms.Textarea(attrs={"rows": 6}),
        }

    generate_text = forms.BooleanField(required=False, label="Generate the text body from the HTML")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not (data.get("html_body", "").strip() or data.get("text_body", "").strip()):
            raise forms.ValidationError("Write an HTML body, a text body, or both.")
        return data


class PreviewForm(NoColon):
    subject = forms.CharField(required=False)
    html_body = forms.CharField(required=False)
    text_body = forms.CharField(required=False)
    row = forms.CharField(
        required=False,
        label="Preview for",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One “Field: value” per line, e.g. FirstName: Ann",
    )

    def clean_row(self) -> dict[str, str]:
        return _fields_text(self.cleaned_data.get("row", ""), "Preview row")


AUDIENCE_CHOICES = [
    ("pasted", "Pasted addresses"),
    ("csv", "Uploaded CSV"),
    ("lists", "Contact lists"),
    ("segment", "Saved segment"),
]


BASIC_HELP = (
    "Basic sends only: with Cc or Bcc the send is one message to the pasted addresses (To), Cc and Bcc — "
    "at most 50 addresses in all, no per-recipient merge fields. A mail merge to a list, segment or CSV "
    "cannot have Cc/Bcc. One address per line or comma-separated."
)


def _addresses(value: str, label: str) -> list[str]:
    found = []
    for part in value.replace(";", ",").replace("\n", ",").split(","):
        if not part.strip():
            continue
        try:
            found.append(normalise_email(part))
        except InvalidAddress as exc:
            raise forms.ValidationError(f"{label}: “{part.strip()[:320]}”: {exc}.") from None
    return found


class SendForm(NoColon):
    template = forms.ModelChoiceField(queryset=Template.objects.none(), empty_label=None)
    name = forms.CharField(max_length=200, required=False, help_text="For the history; blank: the template's name.")
    from_address = forms.CharField(label="From address", max_length=254)
    from_name = forms.CharField(label="From name", max_length=200, required=False)
    reply_to = forms.CharField(label="Reply-To", max_length=254, required=False)
    cc = forms.CharField(
        label="Cc",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=BASIC_HELP,
    )
    bcc = forms.CharField(
        label="Bcc",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Same rule as Cc.",
    )
    mailing_id = forms.CharField(label="Mailing id", max_length=100, required=False)
    message_id_prefix = forms.CharField(
        label="Message id prefix",
        max_length=100,
        required=False,
        help_text="Each message's id is <prefix>-<recipient id>; blank: mailroom-<send id>.",
    )
    tags = forms.CharField(required=False, help_text="Comma-separated.")
    metadata = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="“Key: value” per line."
    )
    custom_headers = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Custom headers",
        help_text="“X-Header: value” per line.",
    )
    global_fields = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Global merge fields",
        help_text="“Field: value” per line; a recipient's own value wins.",
    )
    audience = forms.ChoiceField(choices=AUDIENCE_CHOICES, initial="pasted", widget=forms.RadioSelect)
    addresses = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="One address per line, or CSV with a header row (email, then merge fields).",
    )
    csv_file = forms.FileField(required=False, label="CSV file", help_text="A header row names the merge fields.")
    attachment = forms.FileField(required=False, label="Attachment", help_text="Sent with every message; at most 2 MB.")
    lists = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple, label="Contact lists")
    segment = forms.ChoiceField(required=False, label="Segment")

    def __init__(self, *args: Any, server: Server, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = Template.objects.filter(server=server)  # type: ignore[attr-defined]
        from marketing.models import ContactList

        self.fields["lists"].choices = [  # type: ignore[attr-defined]
            (str(pk), name) for pk, name in ContactList.objects.filter(server=server).values_list("pk", "name")
        ]
        from marketing.models import Segment

        self.fields["segment"].choices = [  # type: ignore[attr-defined]
            ("", "—"),
            *((str(pk), name) for pk, name in Segment.objects.filter(server=server).values_list("pk", "name")),
        ]

    def clean_metadata(self) -> dict[str, str]:
        return _fields_text(self.cleaned_data.get("metadata", ""), "Metadata")

    def clean_custom_headers(self) -> dict[str, str]:
        headers = _fields_text(self.cleaned_data.get("custom_headers", ""), "Custom headers")
        for name in headers:
            if not name.replace("-", "").isalnum():
                raise forms.ValidationError(f"Custom headers: “{name}” is not a header name (letters, digits, -).")
        return headers

    def clean_global_fields(self) -> dict[str, str]:
        return _fields_text(self.cleaned_data.get("global_fields", ""), "Global merge fields")

    def clean_cc(self) -> list[str]:
        return _addresses(self.cleaned_data.get("cc", ""), "Cc")

    def clean_bcc(self) -> list[str]:
        return _addresses(self.cleaned_data.get("bcc", ""), "Bcc")

    def clean_tags(self) -> list[str]:
        return [t.strip() for t in self.cleaned_data.get("tags", "").split(",") if t.strip()]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("audience")
        if kind == "pasted" and not data.get("addresses", "").strip():
            self.add_error("addresses", "Paste at least one address.")
        elif kind == "csv":
            upload = data.get("csv_file")
            if not upload:
                self.add_error("csv_file", "Choose a CSV file.")
            elif upload.size > MAX_UPLOAD_BYTES:
                self.add_error("csv_file", f"The file is over {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
        elif kind == "lists" and not data.get("lists"):
            self.add_error("lists", "Choose at least one list.")
        elif kind == "segment" and not data.get("segment"):
            self.add_error("segment", "Choose a segment.")
        copies = len({*data.get("cc", []), *data.get("bcc", [])})
        if copies and kind != "pasted":
            self.add_error(
                "cc" if data.get("cc") else "bcc",
                "Cc/Bcc apply only to a basic send to pasted addresses: a list, segment or CSV is a mail merge "
                "(one message per recipient), where every copy would go to the Cc/Bcc addresses again.",
            )
        elif copies and kind == "pasted":
            to = sum(1 for line in data.get("addresses", "").splitlines() if line.strip())
            if to + copies > BASIC_MAX_ADDRESSES:
                self.add_error(
                    "cc" if data.get("cc") else "bcc",
                    f"With Cc/Bcc the send is one message: at most {BASIC_MAX_ADDRESSES} addresses in To, Cc and "
                    f"Bcc together; there are {to} pasted and {copies} Cc/Bcc.",
                )
        return data


class RetryForm(NoColon):
    include_unknown = forms.BooleanField(
        required=False,
        label="Also re-send recipients whose outcome is unknown (they may get the message twice)",
    )


class SendSettingsForm(NoColon):
    approval_threshold = forms.IntegerField(
        required=False,
        min_value=0,
        label="Approval above",
        help_text="Sends to more recipients than this need a second Admin's approval. Empty: never.",
    )


class TestSendForm(NoColon):
    from_address = forms.EmailField(label="From address")
    row = forms.CharField(
        required=False,
        label="Fields for the test",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One “Field: value” per line.",
    )

    def clean_row(self) -> dict[str, str]:
        return _fields_text(self.cleaned_data.get("row", ""), "Fields for the test")
