"""Forms of the alerts and digests pages: thresholds (Admin) and one's own subscription."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms

from reporting.models import DigestFrequency


class AlertSettingsForm(forms.Form):
    alerts_enabled = forms.BooleanField(
        label="Alerts on", required=False, help_text="Off: no new alerts are recorded or mailed for this server."
    )
    streamscore_threshold = forms.IntegerField(
        label="StreamScore below",
        min_value=0,
        max_value=100,
        help_text="0–100. An alert when a day's StreamScore is under this (SocketLabs rates 80+ Good, 50+ Fair).",
        error_messages={
            "min_value": "StreamScore runs from 0 to 100: enter 0 or more.",
            "max_value": "StreamScore runs from 0 to 100: enter 100 or less.",
            "invalid": "Enter a whole number from 0 to 100.",
        },
    )
    failure_rate_threshold = forms.DecimalField(
        label="Failure rate above (%)",
        min_value=Decimal("0"),
        max_value=Decimal("100"),
        max_digits=6,
        decimal_places=3,
        help_text="Percent of attempted messages that failed, e.g. 5.",
        error_messages={
            "min_value": "A rate is a percentage from 0 to 100: enter 0 or more.",
            "max_value": "A rate is a percentage from 0 to 100: enter 100 or less.",
            "invalid": "Enter a percentage such as 5 or 2.5.",
            "max_decimal_places": "Use at most 3 decimal places.",
        },
    )
    complaint_rate_threshold = forms.DecimalField(
        label="Complaint rate above (%)",
        min_value=Decimal("0"),
        max_value=Decimal("100"),
        max_digits=6,
        decimal_places=3,
        help_text="Percent of delivered messages reported as spam, e.g. 0.1.",
        error_messages={
            "min_value": "A rate is a percentage from 0 to 100: enter 0 or more.",
            "max_value": "A rate is a percentage from 0 to 100: enter 100 or less.",
            "invalid": "Enter a percentage such as 0.1.",
            "max_decimal_places": "Use at most 3 decimal places.",
        },
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class SubscriptionForm(forms.Form):
    digest = forms.ChoiceField(
        label="Digest",
        choices=DigestFrequency.choices,
        help_text="Nightly covers yesterday (UTC); weekly covers Monday to Sunday and is sent on Mondays.",
    )
    alerts = forms.BooleanField(label="E-mail me alerts", required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
