"""Report dashboards across every server the user can see, inside /reports/ (namespace "all_reports")."""

from __future__ import annotations

from reporting.dashboard_urls import urlpatterns as urlpatterns  # the same pages; views take server_id=None
