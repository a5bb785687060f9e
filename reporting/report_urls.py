"""Reports of one server: /servers/<id>/reports/… (namespace "reports").

Three parts, each in its own module: the dashboards (`dashboard_urls`), pulls and schedules
(`pull_urls`), alerts and digests (`alert_urls`).
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

app_name = "reports"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", include("reporting.dashboard_urls")),
    path("", include("reporting.pull_urls")),
    path("", include("reporting.alert_urls")),
]
