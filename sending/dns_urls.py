"""DNS health across every server the user can see, under /sending/dns/."""

from __future__ import annotations

from django.urls import URLPattern, path

from sending import views

app_name = "sending_dns"
urlpatterns: list[URLPattern] = [
    path("", views.dns_health_all, name="all"),
    path("jobs/<uuid:job_id>/", views.dns_job_all, name="job"),
]
