from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from reporting import views

app_name = "reporting"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.index, name="index"),
    path("endpoints/<slug:kind>/", views.endpoints, name="endpoints"),
    path("endpoints/<slug:kind>/<int:pk>/", views.endpoint_detail, name="endpoint_detail"),
    path("endpoints/<slug:kind>/<int:pk>/rotate/", views.endpoint_rotate, name="endpoint_rotate"),
    path("endpoints/<slug:kind>/<int:pk>/register/", views.endpoint_register, name="endpoint_register"),
    path("endpoints/<slug:kind>/<int:pk>/delete/", views.endpoint_delete, name="endpoint_delete"),
    path("endpoints/inbound/<int:pk>/routes/", views.route_add, name="route_add"),
    path("endpoints/inbound/<int:pk>/routes/<int:route_id>/check/", views.route_check, name="route_check"),
    path("endpoints/inbound/<int:pk>/routes/<int:route_id>/delete/", views.route_delete, name="route_delete"),
    path(
        "endpoints/inbound/<int:pk>/routes/<int:route_id>/forwarding/", views.route_forwarding, name="route_forwarding"
    ),
    path(
        "endpoints/inbound/<int:pk>/routes/<int:route_id>/forwarding/rotate/",
        views.route_forward_rotate,
        name="route_forward_rotate",
    ),
    path("requests/", views.request_log, name="request_log"),
    path("requests/replay/", views.replay, name="replay"),
    path("raw/<int:pk>/", views.raw_event, name="raw_event"),
    path("dead-letters/", views.dead_letters, name="dead_letters"),
    path("dead-letters/replay/", views.dead_letter_replay, name="dead_letter_replay"),
    path("inbound/", views.inbound_messages, name="inbound_messages"),
    path("inbound/<int:pk>/", views.inbound_message, name="inbound_message"),
    path("inbound/<int:pk>/html/", views.inbound_message_html, name="inbound_message_html"),
    path("inbound/<int:pk>/forward/", views.inbound_forward_retry, name="inbound_forward_retry"),
    path("inbound/attachments/<int:pk>/", views.inbound_attachment, name="inbound_attachment"),
]
