from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from marketing import views

app_name = "marketing"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.contacts, name="contacts"),
    path("count/", views.contacts_count, name="contacts_count"),
    path("condition/", views.condition_row, name="condition_row"),
    path("export/", views.contacts_export, name="contacts_export"),
    path("bulk/", views.contacts_bulk, name="contacts_bulk"),
    path("new/", views.contact_new, name="contact_new"),
    path("<int:contact_id>/", views.contact_detail, name="contact_detail"),
    path("<int:contact_id>/edit/", views.contact_edit, name="contact_edit"),
    path("<int:contact_id>/lists/", views.contact_lists, name="contact_lists"),
    path("<int:contact_id>/delete/", views.contact_delete, name="contact_delete"),
    path("lists/", views.lists, name="lists"),
    path("lists/<int:list_id>/edit/", views.list_edit, name="list_edit"),
    path("lists/<int:list_id>/delete/", views.list_delete, name="list_delete"),
    path("segments/", views.segments, name="segments"),
    path("segments/<int:segment_id>/count/", views.segment_count, name="segment_count"),
    path("segments/<int:segment_id>/delete/", views.segment_delete, name="segment_delete"),
    path("fields/", views.fields, name="fields"),
    path("fields/<int:field_id>/edit/", views.field_edit, name="field_edit"),
    path("fields/<int:field_id>/delete/", views.field_delete, name="field_delete"),
    path("imports/", views.imports_index, name="imports"),
    path("imports/<int:job_id>/", views.import_detail, name="import_detail"),
    path("imports/<int:job_id>/map/", views.import_map, name="import_map"),
    path("imports/<int:job_id>/preview/", views.import_preview, name="import_preview"),
    path("imports/<int:job_id>/progress/", views.import_progress, name="import_progress"),
    path("imports/<int:job_id>/report.csv", views.import_report, name="import_report"),
    path("imports/<int:job_id>/cancel/", views.import_cancel, name="import_cancel"),
    path("imports/<int:job_id>/retry/", views.import_retry, name="import_retry"),
    path("sync/", views.sync_page, name="sync"),
    path("sync/progress/", views.sync_progress, name="sync_progress"),
    path("sync/refused/", views.sync_refused, name="sync_refused"),
]
