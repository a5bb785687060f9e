"""Reports across every server the user can see: /reports/… (namespace "all_reports")."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

app_name = "all_reports"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", include("reporting.dashboard_global_urls")),
    path("", include("reporting.pull_global_urls")),
]
