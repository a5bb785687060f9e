from __future__ import annotations

from django import template

from sending import services

register = template.Library()


@register.filter
def sl_badge(status: str | None) -> str:
    """The CSS class of a SocketLabs verification status: green only for Verified."""
    return services.status_badge(status)


@register.filter
def attr_of(obj: object, name: str) -> object:
    """`{{ domain|attr_of:"opens_enabled" }}`: a field named in a loop variable."""
    return getattr(obj, name, None)
