"""The Injection API under /sandbox/inject/ (contract §0a): POST /sandbox/inject/api/v1/email."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from sandbox import inject_views

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/email", inject_views.inject_email, name="inject_email"),
]
