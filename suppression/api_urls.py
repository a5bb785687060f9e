"""Mounted at /api/v1/servers/<server_id>/suppressions/ (config/api_urls.py)."""

from __future__ import annotations

from django.urls import URLPattern, path

from accounts.api import login_not_required_view
from suppression import api

urlpatterns: list[URLPattern] = [
    path("", api.SuppressionListView.as_view(), name="api-suppressions"),
    path("check/", api.SuppressionCheckView.as_view(), name="api-suppressions-check"),
    path("remove/", api.SuppressionRemoveView.as_view(), name="api-suppressions-remove"),
    path("imports/<uuid:job_id>/", api.ImportJobView.as_view(), name="api-suppressions-import"),
]
# DRF authenticates inside the view (token or session), so the login middleware steps aside.
for _pattern in urlpatterns:
    _pattern.callback = login_not_required_view(_pattern.callback)
