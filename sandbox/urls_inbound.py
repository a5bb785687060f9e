"""The inbound simulation page: /sandbox/inbound/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from sandbox import inbound_views

urlpatterns: list[URLPattern | URLResolver] = [
    path("inbound/", inbound_views.inbound_simulate, name="inbound_simulate"),
]
