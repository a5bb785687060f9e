from __future__ import annotations

from django.urls import URLPattern, URLResolver

app_name = "sending"
urlpatterns: list[URLPattern | URLResolver] = []
