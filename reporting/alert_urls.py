"""Alerts and digests of one server (namespace "reports", mounted at /servers/<id>/reports/)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from reporting import alert_views

urlpatterns: list[URLPattern | URLResolver] = [
    path("alerts/", alert_views.alerts, name="alerts"),
    path("alerts/<int:alert_id>/dismiss/", alert_views.alert_dismiss, name="alert_dismiss"),
    path("digests/", alert_views.subscriptions, name="subscriptions"),
    path("digests/preview/", alert_views.subscription_preview, name="subscription_preview"),
]
