"""One server's suppression list, mounted at /servers/<server_id>/suppressions/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from suppression import views

app_name = "suppression"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.index, name="index"),
    path("check/", views.check, name="check"),
    path("add/", views.add, name="add"),
    path("remove/", views.remove, name="remove"),
    path("verify/", views.verify, name="verify"),
    path("sync/", views.sync, name="sync"),
    path("status/", views.status, name="status"),
    path("export.csv", views.export, name="export"),
    path("import/", views.import_upload, name="import"),
    path("writes/<int:write_id>/retry/", views.write_retry, name="write_retry"),
    path("writes/<int:write_id>/discard/", views.write_discard, name="write_discard"),
]
