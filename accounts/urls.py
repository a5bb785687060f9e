from __future__ import annotations

from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("servers/add/", views.server_add, name="server_add"),
    path("servers/<int:server_id>/", views.server_detail, name="server_detail"),
    path("servers/<int:server_id>/edit/", views.server_edit, name="server_edit"),
    path("servers/<int:server_id>/test/", views.server_test, name="server_test"),
    path("servers/<int:server_id>/delete/", views.server_delete, name="server_delete"),
    path("servers/<int:server_id>/members/", views.server_member_set, name="server_member_set"),
    path(
        "servers/<int:server_id>/members/<int:user_id>/remove/",
        views.server_member_remove,
        name="server_member_remove",
    ),
    path("admin/users/", views.user_list, name="user_list"),
    path("admin/users/invite/", views.user_invite, name="user_invite"),
    path("admin/users/<int:user_id>/active/", views.user_set_active, name="user_set_active"),
    path("admin/security/", views.site_security, name="site_security"),
    path("admin/audit/", views.audit_log, name="audit_log"),
    path("profile/api-tokens/", views.api_tokens, name="api_tokens"),
    path("profile/api-tokens/<int:token_id>/revoke/", views.api_token_revoke, name="api_token_revoke"),
    path("health/", views.health, name="health"),
]
