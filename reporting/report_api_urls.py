"""Report data over REST: mounted at /api/v1/servers/<server_id>/reports/ (config/api_urls.py)."""

from __future__ import annotations

from django.urls import URLPattern, path

from accounts.api import login_not_required_view
from reporting import report_api

urlpatterns: list[URLPattern] = [
    path("days/", report_api.ReportDayListView.as_view(), name="api-report-days"),
    path("breakdowns/", report_api.ReportBreakdownListView.as_view(), name="api-report-breakdowns"),
    path("streamscore/", report_api.StreamScoreListView.as_view(), name="api-report-streamscore"),
    path("alerts/", report_api.AlertListView.as_view(), name="api-report-alerts"),
]
# DRF authenticates inside the view (token or session), so the login middleware steps aside.
for _pattern in urlpatterns:
    _pattern.callback = login_not_required_view(_pattern.callback)
