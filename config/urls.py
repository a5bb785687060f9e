from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("accounts/", include("allauth.urls")),
    path("api/", include("config.api_urls")),
    path("sandbox/", include("sandbox.urls")),
    path("hooks/", include("reporting.hooks_urls")),
    path("servers/<int:server_id>/sending/", include("sending.urls")),
    path("sending/dns/", include("sending.dns_urls")),
    path("servers/<int:server_id>/suppressions/", include("suppression.urls")),
    path("suppressions/", include("suppression.global_urls")),
    path("servers/<int:server_id>/contacts/", include("marketing.urls")),
    path("servers/<int:server_id>/webhooks/", include("reporting.urls")),
    path("servers/<int:server_id>/reports/", include("reporting.report_urls")),
    path("reports/", include("reporting.report_global_urls")),
    path("servers/<int:server_id>/activity/", include("reporting.activity_urls")),
    path("", include("accounts.urls")),
]
