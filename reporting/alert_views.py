"""Pages for report alerts and digests of one server: /servers/<id>/reports/alerts/ and …/digests/.

Everyone with access reads alerts and subscribes themselves; Admins (MANAGE_SERVER) set the
thresholds; every role but Viewer dismisses an alert (it hides the notice for everyone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts import access, audit
from accounts.http import AuthedRequest
from accounts.models import Server
from accounts.roles import Capability
from reporting import alerts as alert_service
from reporting import digests
from reporting.alert_forms import AlertSettingsForm, SubscriptionForm
from reporting.models import Alert, DigestFrequency, ReportSubscription
from reporting.templatetags.report_alerts import may_dismiss

HISTORY_ROWS = 100


@dataclass(frozen=True)
class Flash:
    ok: bool
    text: str


def _render_panel(request: AuthedRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    """HTMX gets the page's panel (always 200: htmx swaps no 4xx bodies); a plain POST the page."""
    if request.htmx:
        return render(request, f"{template}#panel", context)
    return render(request, template, context, status=status)


def _settings_form(server: Server) -> AlertSettingsForm:
    current = alert_service.settings_for(server)
    return AlertSettingsForm(initial={name: getattr(current, name) for name in alert_service.SETTINGS_FIELDS})


def _alerts_context(request: AuthedRequest, server: Server, form: AlertSettingsForm | None = None) -> dict[str, Any]:
    report_settings = alert_service.settings_for(server)
    return {
        "server": server,
        "report_settings": report_settings,
        "form": form or _settings_form(server),
        "can_configure": access.user_can(request.user, server, Capability.MANAGE_SERVER),
        "alerts": list(alert_service.open_alerts([server])),
        "history": [
            alert_service.describe(a)
            for a in Alert.objects.filter(server=server).order_by("-day", "kind")[:HISTORY_ROWS]
        ],
    }


@require_http_methods(["GET", "POST"])
def alerts(request: AuthedRequest, server_id: int) -> HttpResponse:
    template = "reporting/reports/alerts.html"
    if request.method == "GET":
        server = access.get_server_for_user(request.user, server_id)
        return render(request, template, _alerts_context(request, server))
    server = access.get_server_for_user(request.user, server_id, Capability.MANAGE_SERVER)
    form = AlertSettingsForm(request.POST)
    if not form.is_valid():
        flash = Flash(False, "The thresholds were not saved: correct the fields marked below.")
        return _render_panel(request, template, {**_alerts_context(request, server, form), "flash": flash}, 400)
    alert_service.update_settings(
        report_settings=alert_service.settings_for(server), data=form.cleaned_data, actor=request.user, request=request
    )
    flash = Flash(True, f"Saved the alert thresholds of {server.name}. They apply to days pulled from now on.")
    return _render_panel(request, template, {**_alerts_context(request, server), "flash": flash})


@require_POST
def alert_dismiss(request: AuthedRequest, server_id: int, alert_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id)
    role = getattr(server, "user_role", None)
    if not may_dismiss(role):
        audit.record(
            action="access.denied", request=request, server=server, target=f"server {server_id}: dismiss alert"
        )
        raise PermissionDenied("Viewers cannot dismiss alerts; ask an Admin, Ops or Marketing user.")
    alert = get_object_or_404(Alert.objects.select_related("server"), pk=alert_id, server=server)
    text = alert_service.describe(alert)
    done = alert_service.dismiss(alert=alert, actor=request.user, request=request)
    words = f"the {text.label} alert of {server.name} on {alert.day:%Y-%m-%d}"
    flash = Flash(True, f"Dismissed {words}." if done else f"{words[0].upper()}{words[1:]} was already dismissed.")
    if request.htmx:
        return render(request, "reporting/reports/alerts_dismissed.html", {"flash": flash, "alert": alert})
    messages.success(request, flash.text)
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=False):
        return redirect(back)
    return redirect("reports:alerts", server_id=server.pk)


def _subscription(request: AuthedRequest, server: Server) -> ReportSubscription:
    found = ReportSubscription.objects.filter(user=request.user, server=server).first()
    return found or ReportSubscription(user=request.user, server=server)


def _subscriptions_context(
    request: AuthedRequest, server: Server, subscription: ReportSubscription, form: SubscriptionForm | None = None
) -> dict[str, Any]:
    return {
        "server": server,
        "subscription": subscription,
        "form": form or SubscriptionForm(initial={"digest": subscription.digest, "alerts": subscription.alerts}),
        "next_send": digests.next_send(subscription),
        "deliveries": list(subscription.deliveries.all()[:10]) if subscription.pk else [],
        "cutoff_hour": digests.cutoff_hour(),
    }


@require_http_methods(["GET", "POST"])
def subscriptions(request: AuthedRequest, server_id: int) -> HttpResponse:
    """Digests: each user subscribes themselves (any role with access)."""
    template = "reporting/reports/subscriptions.html"
    server = access.get_server_for_user(request.user, server_id)
    subscription = _subscription(request, server)
    if request.method == "GET":
        return render(request, template, _subscriptions_context(request, server, subscription))
    form = SubscriptionForm(request.POST)
    if not form.is_valid():
        flash = Flash(False, "Your subscription was not saved: correct the fields marked below.")
        context = {**_subscriptions_context(request, server, subscription, form), "flash": flash}
        return _render_panel(request, template, context, 400)
    subscription = digests.subscribe(
        user=request.user,
        server=server,
        digest=form.cleaned_data["digest"],
        alerts=form.cleaned_data["alerts"],
        request=request,
    )
    flash = Flash(True, digests.subscription_summary(subscription))
    return _render_panel(request, template, {**_subscriptions_context(request, server, subscription), "flash": flash})


@require_POST
def subscription_preview(request: AuthedRequest, server_id: int) -> HttpResponse:
    """Mail the digest to the signed-in user now (the frequency chosen, or weekly without one)."""
    template = "reporting/reports/subscriptions.html"
    server = access.get_server_for_user(request.user, server_id)
    subscription = _subscription(request, server)
    frequency = request.POST.get("digest") or subscription.digest
    if frequency not in DigestFrequency.values or frequency == DigestFrequency.NONE:
        frequency = DigestFrequency.WEEKLY
    try:
        digest = digests.send_preview(user=request.user, server=server, frequency=frequency)
    except Exception as exc:  # the mail server refused or is down: say so, in words
        flash = Flash(False, f"The preview could not be sent to {request.user.email}: {type(exc).__name__}: {exc}")
    else:
        flash = Flash(True, f"Sent a preview of the digest for {digest.period_label} to {request.user.email}.")
    context = {**_subscriptions_context(request, server, subscription), "flash": flash}
    if request.htmx:
        return render(request, f"{template}#panel", context)
    (messages.success if flash.ok else messages.error)(request, flash.text)
    return redirect("reports:subscriptions", server_id=server.pk)
