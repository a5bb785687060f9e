"""Template helpers for alert notices: the words of an alert, and whether this user may dismiss it."""

from __future__ import annotations

from typing import Any

from django import template

from accounts.models import Membership
from accounts.roles import Capability, role_allows
from reporting.alerts import NOTICE_GROUPS_SHOWN, AlertText, NoticeGroup, describe, notice_groups
from reporting.models import Alert

register = template.Library()

# Dismissing hides a notice for everyone on the server: any role that changes things, not viewers.
DISMISS_CAPABILITIES = (Capability.MANAGE_SERVER, Capability.OPS, Capability.MARKETING)


def may_dismiss(role: str | None) -> bool:
    return any(role_allows(role, capability) for capability in DISMISS_CAPABILITIES)


@register.filter
def alert_text(alert: Alert) -> AlertText:
    return describe(alert)


@register.filter
def can_dismiss(alert: Alert, request: Any) -> bool:
    """One membership query per request however many notices (cached on the request)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    roles = getattr(request, "_report_alert_roles", None)
    if roles is None:
        roles = dict(Membership.objects.filter(user=user).values_list("server_id", "role"))
        request._report_alert_roles = roles
    return may_dismiss(roles.get(alert.server_id))


@register.filter
def grouped_notices(alerts: Any) -> dict[str, Any]:
    """The notices to show (one per server and kind, at most a few) and how many more there are."""
    groups: list[NoticeGroup] = notice_groups(alerts or [])
    return {"shown": groups[:NOTICE_GROUPS_SHOWN], "more": max(0, len(groups) - NOTICE_GROUPS_SHOWN)}
