"""Compose and send, under /servers/<server_id>/sending/sends/ (names live in the `sending` namespace)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from sending import send_views as views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.send_list, name="send_list"),
    path("new/", views.send_new, name="send_new"),
    path("settings/", views.send_settings, name="send_settings"),
    path("templates/", views.template_list, name="send_templates"),
    path("templates/new/", views.template_edit, name="send_template_new"),
    path("templates/preview/", views.template_preview, name="send_template_preview"),
    path("templates/<int:template_id>/", views.template_edit, name="send_template_edit"),
    path("templates/<int:template_id>/test/", views.template_test_send, name="send_template_test"),
    path("<int:send_id>/", views.send_detail, name="send_detail"),
    path("<int:send_id>/progress/", views.send_progress, name="send_progress"),
    path("<int:send_id>/<str:action>/", views.send_action, name="send_action"),
]
