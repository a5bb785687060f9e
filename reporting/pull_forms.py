"""Forms of the report jobs and schedule pages."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms

from reporting import pulls

DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class _Form(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def _check(self, first_day: date, last_day: date) -> None:
        try:
            pulls.check_range(first_day, last_day)
        except pulls.PullError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)


class PullNowForm(_Form):
    day = forms.DateField(label="Day (UTC)", widget=DATE_WIDGET, help_text="SocketLabs counts days in UTC.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["day"].initial = pulls.utc_today() - timedelta(days=1)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        day = data.get("day")
        if day is not None:
            try:
                pulls.check_range(day, day)
            except pulls.PullError as exc:
                self.add_error("day", exc.message)
        return data


class BackfillForm(_Form):
    first_day = forms.DateField(label="From (UTC)", widget=DATE_WIDGET)
    last_day = forms.DateField(label="To (UTC)", widget=DATE_WIDGET)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        yesterday = pulls.utc_today() - timedelta(days=1)
        self.fields["first_day"].initial = yesterday - timedelta(days=6)
        self.fields["last_day"].initial = yesterday

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        first_day, last_day = data.get("first_day"), data.get("last_day")
        if first_day is not None and last_day is not None:
            self._check(first_day, last_day)
        return data


class ScheduleForm(_Form):
    nightly_enabled = forms.BooleanField(label="Pull reports every night", required=False)
    pull_hour = forms.TypedChoiceField(
        label="After this hour (server time)",
        choices=[(h, f"{h:02d}:00") for h in range(24)],
        coerce=int,
        help_text="The pull for the previous UTC day runs within five minutes after this local hour.",
    )
