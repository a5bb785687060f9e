"""Forms for the contacts pages. They only check and shape input; the services do the work."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms

from accounts.forms import NoColonLabels
from marketing import mapping
from marketing.models import ContactList, CustomField, FieldType, Status
from marketing.values import display


class ContactForm(NoColonLabels, forms.Form):
    """E-mail, names, status and one input per custom field (typed by the field)."""

    email = forms.CharField(label="E-mail address", max_length=254)
    first_name = forms.CharField(label="First name", max_length=100, required=False)
    last_name = forms.CharField(label="Last name", max_length=100, required=False)
    status = forms.ChoiceField(label="Status", choices=Status.choices, initial=Status.SUBSCRIBED)

    def __init__(self, *args: Any, fields: Sequence[CustomField], lists: Sequence[ContactList] = (), **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.custom_fields = list(fields)
        for custom in self.custom_fields:
            self.fields[f"custom_{custom.key}"] = _custom_input(custom)
        if lists:
            self.fields["lists"] = forms.MultipleChoiceField(
                label="Lists",
                required=False,
                choices=[(str(lst.pk), lst.name) for lst in lists],
                widget=forms.CheckboxSelectMultiple,
            )

    @property
    def custom_bound_fields(self) -> list[forms.BoundField]:
        return [self[f"custom_{c.key}"] for c in self.custom_fields]

    def service_data(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "email": data["email"],
            "first_name": data.get("first_name", ""),
            "last_name": data.get("last_name", ""),
            "status": data["status"],
            "custom": {c.key: data.get(f"custom_{c.key}") or None for c in self.custom_fields},
        }

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        for name, messages in errors.items():
            target = name if name in self.fields else None
            for message in messages:
                self.add_error(target, message)


def _custom_input(custom: CustomField) -> forms.Field:
    label = custom.label
    if custom.type == FieldType.NUMBER:
        return forms.CharField(label=label, required=False, widget=forms.TextInput(attrs={"inputmode": "decimal"}))
    if custom.type == FieldType.DATE:
        return forms.CharField(label=label, required=False, widget=forms.DateInput(attrs={"type": "date"}))
    if custom.type == FieldType.BOOLEAN:
        return forms.ChoiceField(label=label, required=False, choices=[("", "—"), ("true", "Yes"), ("false", "No")])
    if custom.type == FieldType.CHOICE:
        return forms.ChoiceField(
            label=label, required=False, choices=[("", "—"), *((str(c), str(c)) for c in custom.choices)]
        )
    return forms.CharField(label=label, required=False, max_length=500)


def contact_initial(contact: Any, fields: Sequence[CustomField]) -> dict[str, Any]:
    initial: dict[str, Any] = {
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "status": contact.status,
    }
    for custom in fields:
        value = contact.custom.get(custom.key)
        if isinstance(value, bool):
            initial[f"custom_{custom.key}"] = "true" if value else "false"
        else:
            initial[f"custom_{custom.key}"] = display(value)
    return initial


class ListForm(NoColonLabels, forms.Form):
    name = forms.CharField(label="Name", max_length=200)
    description = forms.CharField(label="Description", max_length=500, required=False)


class FieldForm(NoColonLabels, forms.Form):
    label = forms.CharField(label="Name", max_length=100)
    type = forms.ChoiceField(label="Type", choices=FieldType.choices)
    choices = forms.CharField(
        label="Choices",
        required=False,
        help_text="For a choice field: the allowed values, separated by commas.",
        widget=forms.TextInput(),
    )

    def choice_list(self) -> list[str]:
        return [c.strip() for c in self.cleaned_data.get("choices", "").split(",") if c.strip()]


class FieldEditForm(NoColonLabels, forms.Form):
    label = forms.CharField(label="Name", max_length=100)
    choices = forms.CharField(label="Choices", required=False, help_text="Separated by commas.")

    def choice_list(self) -> list[str]:
        return [c.strip() for c in self.cleaned_data.get("choices", "").split(",") if c.strip()]


class UploadForm(NoColonLabels, forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8, separated by commas, semicolons or tabs, with a header row. One contact per row.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,text/csv"}),
    )


class MappingForm(NoColonLabels, forms.Form):
    """One select per column of the file."""

    def __init__(self, *args: Any, columns: Sequence[Any], fields: Sequence[CustomField], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = mapping.target_choices(fields)
        self.columns = list(columns)
        for column in self.columns:
            self.fields[f"col_{column.index}"] = forms.ChoiceField(
                label=column.label or f"Column {column.index + 1}",
                choices=choices,
                required=False,
                initial=column.target,
            )

    def rows(self) -> list[tuple[Any, forms.BoundField]]:
        return [(c, self[f"col_{c.index}"]) for c in self.columns]

    def targets(self) -> list[str]:
        return [self.cleaned_data.get(f"col_{c.index}", "") or "" for c in self.columns]


class ImportOptionsForm(NoColonLabels, forms.Form):
    existing = forms.ChoiceField(
        label="Contacts that already exist",
        choices=[
            ("update", "Update them with the file's values (empty cells keep what is stored)"),
            ("skip", "Leave them as they are (they are still added to the lists chosen below)"),
        ],
        initial="update",
        widget=forms.RadioSelect,
    )
    invalid = forms.ChoiceField(
        label="Rows with problems",
        choices=[
            ("strict", "Import nothing if any row has a problem (the report lists them)"),
            ("skip", "Skip invalid rows and import the rest"),
        ],
        initial="strict",
        widget=forms.RadioSelect,
    )
    new_status = forms.ChoiceField(label="Status of new contacts", choices=Status.choices, initial=Status.SUBSCRIBED)
    create_fields = forms.BooleanField(label="Create the new custom fields", required=False, initial=True)

    def __init__(self, *args: Any, lists: Sequence[ContactList], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["lists"] = forms.MultipleChoiceField(
            label="Add every contact in the file to these lists",
            required=False,
            choices=[(str(lst.pk), lst.name) for lst in lists],
            widget=forms.CheckboxSelectMultiple,
        )


class SegmentForm(NoColonLabels, forms.Form):
    name = forms.CharField(label="Segment name", max_length=200)


class BulkForm(NoColonLabels, forms.Form):
    action = forms.ChoiceField(
        choices=[("add", "Add to list"), ("remove", "Remove from list"), ("delete", "Delete the contacts")]
    )
    target_list = forms.IntegerField(required=False)
