"""Report pulls and the nightly schedule of one server (included by `report_urls`, namespace "reports")."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from reporting import pull_views

urlpatterns: list[URLPattern | URLResolver] = [
    path("jobs/", pull_views.jobs, name="jobs"),
    path("jobs/pull/", pull_views.pull_now, name="pull_now"),
    path("jobs/backfill/", pull_views.backfill, name="backfill"),
    path("jobs/<int:pull_id>/", pull_views.pull_row, name="pull"),
    path("jobs/<int:pull_id>/retry/", pull_views.pull_retry, name="pull_retry"),
    path("schedule/", pull_views.schedule, name="schedule"),
]
