"""Live activity and the recipient timeline: /servers/<id>/activity/…"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from reporting import views

app_name = "activity"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.activity, name="feed"),
    path("timeline/", views.timeline, name="timeline"),
]
