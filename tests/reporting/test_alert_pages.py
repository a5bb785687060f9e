"""The Alerts and Digests pages: who reads, who configures, who dismisses; bad input; previews."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from accounts.models import AuditLog
from reporting import alerts
from reporting.models import Alert, AlertKind, DigestFrequency, ReportSettings, ReportSubscription
from tests.reporting.report_rows import put_day, put_score

pytestmark = pytest.mark.django_db
DAY = date(2026, 11, 24)
HTMX = {"HX-Request": "true"}


def alerts_url(server) -> str:
    return reverse("reports:alerts", args=[server.pk])


def digests_url(server) -> str:
    return reverse("reports:subscriptions", args=[server.pk])


def make_alert(server, kind=AlertKind.FAILURE_RATE) -> Alert:
    put_day(server, DAY, delivered=90, failed=10, complaints=5)
    put_score(server, DAY, 40)
    alerts.evaluate_days(server, [DAY])
    return Alert.objects.get(server=server, kind=kind)


THRESHOLDS = {
    "alerts_enabled": "on",
    "streamscore_threshold": "60",
    "failure_rate_threshold": "2.5",
    "complaint_rate_threshold": "0.05",
}


# --- Alerts page -------------------------------------------------------------------------------


def test_everyone_with_access_reads_the_alerts_and_thresholds(as_user, server, viewer):
    make_alert(server)
    response = as_user(viewer).get(alerts_url(server))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Failure rate <strong>10.00 %</strong>, above the threshold of 5.00 %." in page
    assert 'data-testid="thresholds"' in page  # read-only facts
    assert "Save thresholds" not in page
    assert "Dismiss" not in page  # viewers do not dismiss


def test_an_outsider_gets_404_on_the_alerts_page(as_user, server, outsider):
    assert as_user(outsider).get(alerts_url(server)).status_code == 404
    assert as_user(outsider).post(alerts_url(server), THRESHOLDS).status_code == 404


def test_an_admin_sees_the_threshold_form_with_the_defaults(as_user, server, admin):
    page = as_user(admin).get(alerts_url(server)).content.decode()
    assert "Save thresholds" in page
    assert 'name="streamscore_threshold" value="70"' in page
    assert 'name="failure_rate_threshold" value="5.000"' in page
    assert 'name="complaint_rate_threshold" value="0.100"' in page


def test_an_admin_saves_thresholds_and_the_change_is_audited(as_user, server, admin):
    response = as_user(admin).post(alerts_url(server), {**THRESHOLDS, "alerts_enabled": ""}, headers=HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="panel">')  # only the panel
    assert "Saved the alert thresholds of Acme-1." in body
    saved = ReportSettings.objects.get(server=server)
    assert (
        saved.streamscore_threshold,
        saved.failure_rate_threshold,
        saved.complaint_rate_threshold,
        saved.alerts_enabled,
    ) == (60, Decimal("2.5"), Decimal("0.05"), False)
    entry = AuditLog.objects.get(action="reports.alert_settings_changed")
    assert entry.server == server and entry.actor == admin
    assert entry.before["streamscore_threshold"] == "70" and entry.after["streamscore_threshold"] == "60"
    assert entry.after["alerts_enabled"] == "False"


@pytest.mark.parametrize("persona", ["ops", "marketing", "viewer"])
def test_only_admins_change_thresholds(request, as_user, server, persona):
    user = request.getfixturevalue(persona)
    response = as_user(user).post(alerts_url(server), THRESHOLDS)
    assert response.status_code == 403
    assert not ReportSettings.objects.filter(server=server, streamscore_threshold=60).exists()
    assert not AuditLog.objects.filter(action="reports.alert_settings_changed").exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("streamscore_threshold", "101", "StreamScore runs from 0 to 100: enter 100 or less."),
        ("streamscore_threshold", "-1", "StreamScore runs from 0 to 100: enter 0 or more."),
        ("streamscore_threshold", "seventy", "Enter a whole number from 0 to 100."),
        ("failure_rate_threshold", "150", "A rate is a percentage from 0 to 100: enter 100 or less."),
        ("failure_rate_threshold", "-0.5", "A rate is a percentage from 0 to 100: enter 0 or more."),
        ("complaint_rate_threshold", "0.0001", "Use at most 3 decimal places."),
        ("complaint_rate_threshold", "lots", "Enter a percentage such as 0.1."),
        ("failure_rate_threshold", "", "This field is required."),
    ],
)
def test_a_threshold_out_of_range_is_refused_next_to_its_field(as_user, server, admin, field, value, message):
    response = as_user(admin).post(alerts_url(server), {**THRESHOLDS, field: value})
    assert response.status_code == 400
    form = response.context["form"]
    assert form.errors[field] == [message]
    page = response.content.decode()
    assert "The thresholds were not saved" in page
    assert f'id="id_{field}_error"' in page  # the error sits with its field (aria-describedby)
    assert not ReportSettings.objects.filter(server=server, streamscore_threshold=60).exists()


def test_an_htmx_form_error_comes_back_in_the_panel_with_what_was_typed(as_user, server, admin):
    response = as_user(admin).post(alerts_url(server), {**THRESHOLDS, "streamscore_threshold": "101"}, headers=HTMX)
    assert response.status_code == 200  # htmx swaps only 2xx bodies
    body = response.content.decode()
    assert "enter 100 or less" in body
    assert 'value="101"' in body


def test_the_history_lists_dismissed_and_open_alerts(as_user, server, admin):
    failure = make_alert(server)
    alerts.dismiss(alert=failure, actor=admin)
    page = as_user(admin).get(alerts_url(server)).content.decode()
    history = page.split('data-testid="alert-history"')[1]
    assert history.count("Dismissed") == 1
    assert history.count(">Open<") == 2


# --- Dismissing --------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["admin", "ops", "marketing"])
def test_roles_that_change_things_dismiss_an_alert_in_place(request, as_user, server, persona):
    user = request.getfixturevalue(persona)
    alert = make_alert(server)
    url = reverse("reports:alert_dismiss", args=[server.pk, alert.pk])
    response = as_user(user).post(url, headers=HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.startswith(f'<div class="message success" id="alert-notice-{alert.pk}"')
    assert "Dismissed the Failure rate alert of Acme-1 on 2026-11-24." in body
    alert.refresh_from_db()
    assert alert.dismissed_at is not None
    assert AuditLog.objects.filter(action="reports.alert_dismissed", actor=user, server=server).count() == 1


def test_a_viewer_cannot_dismiss(as_user, server, viewer):
    alert = make_alert(server)
    response = as_user(viewer).post(reverse("reports:alert_dismiss", args=[server.pk, alert.pk]))
    assert response.status_code == 403
    alert.refresh_from_db()
    assert alert.dismissed_at is None
    assert AuditLog.objects.filter(action="access.denied", actor=viewer).exists()


def test_an_alert_of_another_server_is_404(as_user, server, other_server, admin):
    foreign = make_alert(other_server)
    response = as_user(admin).post(reverse("reports:alert_dismiss", args=[server.pk, foreign.pk]))
    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.dismissed_at is None


def test_dismissing_without_htmx_goes_back_to_the_page_it_came_from(as_user, server, ops):
    alert = make_alert(server)
    url = reverse("reports:alert_dismiss", args=[server.pk, alert.pk])
    client = as_user(ops)
    response = client.post(url, {"next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    again = make_alert(server, AlertKind.STREAMSCORE)
    response = client.post(
        reverse("reports:alert_dismiss", args=[server.pk, again.pk]), {"next": "https://evil.example/"}
    )
    assert response["Location"] == alerts_url(server)  # never an outside address


def test_dismissing_twice_says_so(as_user, server, ops):
    alert = make_alert(server)
    url = reverse("reports:alert_dismiss", args=[server.pk, alert.pk])
    as_user(ops).post(url, headers=HTMX)
    body = as_user(ops).post(url, headers=HTMX).content.decode()
    assert "The Failure rate alert of Acme-1 on 2026-11-24 was already dismissed." in body
    assert AuditLog.objects.filter(action="reports.alert_dismissed").count() == 1


def test_dismiss_is_post_only(as_user, server, admin):
    alert = make_alert(server)
    assert as_user(admin).get(reverse("reports:alert_dismiss", args=[server.pk, alert.pk])).status_code == 405


# --- Digests page ------------------------------------------------------------------------------


def test_a_viewer_subscribes_themselves_and_sees_the_next_send(as_user, server, viewer):
    page = as_user(viewer).get(digests_url(server)).content.decode()
    assert "You get no digest for Acme-1." in page

    with time_machine.travel(datetime(2026, 11, 25, 3, 0, tzinfo=UTC), tick=False):
        response = as_user(viewer).post(digests_url(server), {"digest": "nightly", "alerts": "on"}, headers=HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Saved: viewer@example.com gets a nightly digest and alert e-mails for Acme-1." in body
    assert "Covers Tue 2026-11-24 (UTC). Sent on Wed 2026-11-25 as soon as that day's reports are pulled" in body
    assert "by 09:00 UTC at the latest" in body
    with time_machine.travel(datetime(2026, 11, 25, 10, 0, tzinfo=UTC), tick=False):
        later = as_user(viewer).get(digests_url(server)).content.decode()  # a fresh session: the idle limit
    assert "Due now: it goes out with the next run, within 15 minutes" in later
    subscription = ReportSubscription.objects.get(user=viewer, server=server)
    assert (subscription.digest, subscription.alerts) == (DigestFrequency.NIGHTLY, True)
    entry = AuditLog.objects.get(action="reports.subscription_changed")
    assert entry.before is None and entry.after == {"digest": "nightly", "alerts": True}


def test_changing_a_subscription_updates_the_one_row(as_user, server, ops):
    client = as_user(ops)
    client.post(digests_url(server), {"digest": "weekly"})
    client.post(digests_url(server), {"digest": "none", "alerts": "on"})
    (subscription,) = ReportSubscription.objects.filter(user=ops)
    assert (subscription.digest, subscription.alerts) == ("none", True)
    assert AuditLog.objects.filter(action="reports.subscription_changed").order_by("pk").last().before == {
        "digest": "weekly",
        "alerts": False,
    }


def test_a_subscription_is_one_users_own(as_user, server, viewer, admin):
    ReportSubscription.objects.create(user=admin, server=server, digest="weekly")
    as_user(viewer).post(digests_url(server), {"digest": "nightly"})
    assert ReportSubscription.objects.get(user=admin).digest == "weekly"


def test_an_unknown_frequency_is_refused_next_to_the_field(as_user, server, viewer):
    response = as_user(viewer).post(digests_url(server), {"digest": "hourly"})
    assert response.status_code == 400
    assert response.context["form"].errors["digest"] == [
        "Select a valid choice. hourly is not one of the available choices."
    ]
    assert "Your subscription was not saved" in response.content.decode()
    assert not ReportSubscription.objects.exists()


def test_an_outsider_cannot_subscribe(as_user, server, outsider):
    assert as_user(outsider).get(digests_url(server)).status_code == 404
    assert as_user(outsider).post(digests_url(server), {"digest": "nightly"}).status_code == 404
    preview = reverse("reports:subscription_preview", args=[server.pk])
    assert as_user(outsider).post(preview).status_code == 404
    assert not ReportSubscription.objects.exists()
    assert mail.outbox == []


def test_send_me_a_preview_mails_the_signed_in_user_now(as_user, server, viewer):
    put_day(server, DAY, delivered=10, failed=0)
    ReportSubscription.objects.create(user=viewer, server=server, digest="nightly")
    preview = reverse("reports:subscription_preview", args=[server.pk])
    response = as_user(viewer).post(preview, {"digest": "nightly"}, headers=HTMX)
    assert response.status_code == 200
    assert "Sent a preview of the digest for" in response.content.decode()
    (message,) = mail.outbox
    assert message.to == ["viewer@example.com"]
    assert message.subject.startswith("[Preview] [Mailroom] Acme-1: nightly digest for")
    assert message.attachments[0][0].endswith(".csv")


def test_a_preview_without_a_subscription_covers_last_week(as_user, server, viewer):
    response = as_user(viewer).post(reverse("reports:subscription_preview", args=[server.pk]))
    assert response.status_code == 302
    assert "weekly (mondays) digest for Mon" in mail.outbox[0].subject


def test_a_preview_that_cannot_be_sent_says_why(as_user, server, viewer, monkeypatch):
    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send", refuse)
    response = as_user(viewer).post(reverse("reports:subscription_preview", args=[server.pk]), headers=HTMX)
    body = response.content.decode()
    assert "The preview could not be sent to viewer@example.com: ConnectionRefusedError: connection refused" in body


def test_the_dashboard_notice_partial_renders_for_a_cross_server_user(as_user, server, other_server, site_admin):
    make_alert(server)
    make_alert(other_server)
    page = as_user(site_admin).get(reverse("dashboard")).content.decode()
    assert page.count('data-testid="alert-notice"') == 6
    assert "<strong>Other-2</strong>" in page and "<strong>Acme-1</strong>" in page
