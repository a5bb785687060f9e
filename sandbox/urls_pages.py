"""Sandbox pages for site administrators, under /sandbox/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from sandbox import page_views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", page_views.messages, name="page-messages"),
    path("servers/", page_views.servers, name="page-servers"),
    path("requests/", page_views.request_log, name="page-requests"),
]
