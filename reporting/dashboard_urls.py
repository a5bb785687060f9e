"""Report dashboards of one server, inside /servers/<id>/reports/ (namespace "reports")."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path, re_path

from reporting import dashboard_views as views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.overview, name="overview"),
    re_path(r"^(?P<kind>delivered|failed|complaints|tracking)/$", views.kind, name="kind"),
    path("streamscore/", views.streamscore, name="streamscore"),
    path("reconciliation/", views.reconciliation, name="reconciliation"),
    path("events/", views.events, name="events"),
    path("events/export/", views.events_export, name="events_export"),
    path("export/", views.export, name="export"),
]
