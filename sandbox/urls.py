"""The sandbox serves the SocketLabs paths under /sandbox/ (contract §0a)."""

from __future__ import annotations

from django.urls import include, path

app_name = "sandbox"
urlpatterns = [
    # Injection API: /sandbox/inject/api/v1/email
    path("inject/", include("sandbox.urls_injection")),
    # API v2 and the Marketing API: /sandbox/api/v2/..., /sandbox/marketing/v1/...
    path("", include("sandbox.urls_api")),
    # Pages for people: /sandbox/ (messages, events, inbound simulation)
    path("", include("sandbox.urls_pages")),
    # The inbound simulation page: /sandbox/inbound/
    path("", include("sandbox.urls_inbound")),
]
