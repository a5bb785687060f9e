"""Suppression pages across servers, mounted at /suppressions/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from suppression import views

app_name = "suppressions"
urlpatterns: list[URLPattern | URLResolver] = [
    path("check/", views.check_all, name="check"),
    path("jobs/", views.job_list, name="jobs"),
    path("jobs/<uuid:job_id>/", views.job_detail, name="job"),
    path("jobs/<uuid:job_id>/progress/", views.job_progress, name="job_progress"),
    path("jobs/<uuid:job_id>/apply/", views.job_apply, name="job_apply"),
    path("jobs/<uuid:job_id>/cancel/", views.job_cancel, name="job_cancel"),
    path("jobs/<uuid:job_id>/report.csv", views.job_report, name="job_report"),
]
