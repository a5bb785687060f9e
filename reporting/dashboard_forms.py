"""The date-range picker and the drill-down filters of the report dashboards (days are UTC days)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from accounts.models import Server
from reporting.models import EventType

PRESETS = (("7", "Last 7 days"), ("30", "Last 30 days"), ("90", "Last 90 days"), ("custom", "Custom range"))
DEFAULT_DAYS = 30
MAX_DAYS = 731  # pulled history outlives SocketLabs' 90 days; two years keeps a page readable


def utc_today() -> date:
    return timezone.now().astimezone(UTC).date()


@dataclass(frozen=True)
class DayRange:
    first: date
    last: date
    preset: str

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def query(self) -> dict[str, str]:
        """The GET parameters that select this range again."""
        if self.preset == "custom":
            return {"range": "custom", "from": self.first.isoformat(), "to": self.last.isoformat()}
        return {"range": self.preset}


def preset_range(days: int, *, today: date | None = None) -> DayRange:
    today = today or utc_today()
    return DayRange(today - timedelta(days=days - 1), today, str(days))


class RangeForm(forms.Form):
    range = forms.ChoiceField(label="Range", choices=PRESETS, required=False)
    from_ = forms.DateField(
        label="From (UTC day)",
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter the first day as YYYY-MM-DD."},
    )
    to = forms.DateField(
        label="To (UTC day)",
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter the last day as YYYY-MM-DD."},
    )

    def __init__(self, *args: Any, today: date | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today or utc_today()
        # "from" is a Python keyword: the field is named from_ but reads and writes the "from" parameter.
        self.fields["from"] = self.fields.pop("from_")
        self.fields["range"].error_messages["invalid_choice"] = "Choose 7, 30 or 90 days, or a custom range."

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        preset = data.get("range") or ""
        first, last = data.get("from"), data.get("to")
        if not preset:
            preset = "custom" if (first or last) else str(DEFAULT_DAYS)
            data["range"] = preset
        if preset != "custom":
            return data
        if self.errors:
            return data
        if first is None:
            self.add_error("from", "Enter the first day of the range.")
        if last is None:
            self.add_error("to", "Enter the last day of the range.")
        if first is None or last is None:
            return data
        if first > last:
            self.add_error("to", "The last day must be on or after the first day.")
        elif last > self.today:
            self.add_error("to", f"The last day cannot be after today ({self.today.isoformat()}, UTC).")
        elif (last - first).days + 1 > MAX_DAYS:
            self.add_error("from", f"Choose at most {MAX_DAYS} days.")
        return data

    def day_range(self) -> DayRange:
        """The chosen range, or the last 30 days when the form is invalid (the errors are shown)."""
        if not self.is_bound:
            return preset_range(DEFAULT_DAYS, today=self.today)
        if not self.is_valid():
            return preset_range(DEFAULT_DAYS, today=self.today)
        preset = self.cleaned_data["range"]
        if preset == "custom":
            return DayRange(self.cleaned_data["from"], self.cleaned_data["to"], "custom")
        return preset_range(int(preset), today=self.today)


def range_form(params: Any, *, today: date | None = None) -> RangeForm:
    """Bound when the request names a range, so the default needs no parameters."""
    bound = any(params.get(k) for k in ("range", "from", "to"))
    return RangeForm(params if bound else None, today=today, initial={"range": str(DEFAULT_DAYS)})


class ServerFilterForm(forms.Form):
    """Which of the servers the user can see a cross-server page covers (none chosen = all)."""

    server = forms.TypedMultipleChoiceField(
        label="Servers",
        required=False,
        coerce=int,
        widget=forms.SelectMultiple(attrs={"size": 4}),
        error_messages={"invalid_choice": "Server %(value)s is not one you can see."},
    )

    def __init__(self, *args: Any, servers: list[Server], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["server"].choices = [(s.pk, s.name) for s in servers]  # type: ignore[attr-defined]


class EventFilterForm(forms.Form):
    """The drill-down: which events, besides the range and servers."""

    type = forms.ChoiceField(label="Type", choices=[("", "Any type"), *EventType.choices], required=False)
    domain = forms.CharField(label="Recipient domain", max_length=255, required=False)
    mailing = forms.CharField(label="Mailing id", max_length=255, required=False)
    code = forms.IntegerField(
        label="Failure code", required=False, min_value=0, error_messages={"invalid": "A failure code is a number."}
    )
    reason = forms.CharField(label="Failure reason", max_length=2000, required=False)
    url = forms.CharField(label="Clicked URL", max_length=2000, required=False)
    after = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def clean_domain(self) -> str:
        return str(self.cleaned_data.get("domain") or "").strip().lower().lstrip("@")

    def filters(self) -> dict[str, Any]:
        if not self.is_valid():
            return {}
        return {k: v for k, v in self.cleaned_data.items() if k != "after" and v not in ("", None)}
