"""Report data over REST: mounted at /api/v1/servers/<server_id>/reports/ (config/api_urls.py)."""

from __future__ import annotations

from django.urls import URLPattern

from accounts.api import login_not_required_view

urlpatterns: list[URLPattern] = []
# DRF authenticates inside the view (token or session), so the login middleware steps aside.
for _pattern in urlpatterns:
    _pattern.callback = login_not_required_view(_pattern.callback)
