"""Public receivers for SocketLabs pushes (event webhooks, inbound parse): /hooks/…"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from reporting import receivers

urlpatterns: list[URLPattern | URLResolver] = [
    path("socketlabs/events/<uuid:endpoint_uuid>/", receivers.event_hook, name="hook_socketlabs_events"),
    path("socketlabs/inbound/<uuid:endpoint_uuid>/", receivers.inbound_hook, name="hook_socketlabs_inbound"),
]
