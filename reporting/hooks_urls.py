"""Public receivers for SocketLabs pushes (event webhooks, inbound parse): /hooks/…"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
