"""Report pulls across every server the user can see (included by `report_global_urls`, namespace "all_reports")."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from reporting import pull_views

urlpatterns: list[URLPattern | URLResolver] = [
    path("jobs/", pull_views.jobs_all, name="jobs"),
]
