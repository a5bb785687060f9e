"""Mounted at /api/v1/servers/<server_id>/ (config/api_urls.py)."""

from __future__ import annotations

from django.urls import URLPattern, path

from accounts.api import login_not_required_view
from reporting import api

urlpatterns: list[URLPattern] = [
    path("events/", api.EventListView.as_view(), name="api-events"),
    path("inbound-messages/", api.InboundMessageListView.as_view(), name="api-inbound-messages"),
    path("inbound-messages/<int:pk>/", api.InboundMessageDetailView.as_view(), name="api-inbound-message"),
]
# DRF authenticates inside the view (token or session), so the login middleware steps aside.
for _pattern in urlpatterns:
    _pattern.callback = login_not_required_view(_pattern.callback)
