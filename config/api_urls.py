from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from accounts.api import login_not_required_view
from accounts.views import api_docs

urlpatterns = [
    path("v1/servers/<int:server_id>/", include("reporting.api_urls")),
    path("v1/servers/<int:server_id>/reports/", include("reporting.report_api_urls")),
    path("v1/servers/<int:server_id>/suppressions/", include("suppression.api_urls")),
    path("v1/servers/<int:server_id>/contacts/", include("marketing.api_urls")),
    path("v1/", include("accounts.api_urls")),
    path("v1/", include("sending.api_urls")),
    path("schema/", login_not_required_view(SpectacularAPIView.as_view()), name="api_schema"),
    path("docs/", api_docs, name="api_docs"),
]
