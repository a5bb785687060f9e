"""Sending setup for one server, under /servers/<server_id>/sending/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

from sending import views

app_name = "sending"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.index, name="index"),
    path("api-keys/", views.api_keys, name="api_keys"),
    path("api-keys/<str:key_id>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path("domains/", views.domains, name="domains"),
    path("domains/<str:domain>/verify/", views.domain_verify, name="domain_verify"),
    path("domains/<str:domain>/remove/", views.domain_remove, name="domain_remove"),
    path("dkim/", views.dkim_list, name="dkim"),
    path("dkim/keys/<int:setup_id>/", views.dkim_setup, name="dkim_setup"),
    path("dkim/keys/<int:setup_id>/verify/", views.dkim_verify, name="dkim_verify"),
    path("dkim/keys/<int:setup_id>/switch/", views.dkim_switch, name="dkim_switch"),
    path("dkim/keys/<int:setup_id>/finish/", views.dkim_finish, name="dkim_finish"),
    path("dkim/keys/<int:setup_id>/cancel/", views.dkim_cancel, name="dkim_cancel"),
    path("dkim/<str:domain>/<str:selector>/rotate/", views.dkim_rotate, name="dkim_rotate"),
    path("dkim/<str:domain>/<str:selector>/remove/", views.dkim_remove, name="dkim_remove"),
    path("bounce/", views.bounce, name="bounce"),
    path("bounce/<str:domain>/default/", views.bounce_default, name="bounce_default"),
    path("bounce/<str:domain>/remove/", views.bounce_remove, name="bounce_remove"),
    path("tracking/", views.tracking, name="tracking"),
    path("tracking/<str:domain>/", views.tracking_update, name="tracking_update"),
    path("tracking/<str:domain>/remove/", views.tracking_remove, name="tracking_remove"),
    path("dns/", views.dns_health, name="dns"),
    path("dns/check/", views.dns_check_record, name="dns_check_record"),
    path("dns/jobs/<uuid:job_id>/", views.dns_job, name="dns_job"),
    path("sends/", include("sending.send_urls")),
]
