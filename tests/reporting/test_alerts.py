"""Report alerts: thresholds at their edges, one alert and one mail per server/day/kind, who is mailed."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.core import mail

from accounts.models import AuditLog, Membership, Server, User
from reporting import alerts
from reporting.models import Alert, AlertKind, ReportSettings, ReportSubscription
from tests.reporting.report_rows import put_day, put_score

pytestmark = pytest.mark.django_db
DAY = date(2026, 11, 24)


def subscribe(user: User, server: Server, *, alerts_on: bool = True) -> ReportSubscription:
    return ReportSubscription.objects.create(user=user, server=server, alerts=alerts_on)


def evaluate(capture: Any, server: Server, *days: date) -> list[Alert]:
    """Run the evaluation and the mail that follows the commit."""
    with capture(execute=True):
        return alerts.evaluate_days(server, days or [DAY])


@pytest.mark.parametrize(
    ("failed", "delivered", "expected"),
    [(5, 95, False), (500, 9500, False), (501, 9499, True), (6, 94, True), (0, 100, False)],
)
def test_the_failure_rate_alerts_only_above_the_threshold(server, failed, delivered, expected):
    put_day(server, DAY, delivered=delivered, failed=failed)
    found = alerts.evaluate_days(server, [DAY])
    kinds = [a.kind for a in found]
    assert (AlertKind.FAILURE_RATE in kinds) is expected
    assert Alert.objects.filter(server=server, kind=AlertKind.FAILURE_RATE).exists() is expected


def test_the_failure_rate_is_failed_over_delivered_plus_failed(server):
    put_day(server, DAY, delivered=90, failed=10)
    (alert,) = alerts.evaluate_days(server, [DAY])
    assert alert.kind == AlertKind.FAILURE_RATE
    assert alert.value == pytest.approx(10.0)
    assert alert.threshold == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("complaints", "delivered", "expected"),
    [(1, 1000, False), (10, 10000, False), (11, 10000, True), (2, 1000, True), (0, 1000, False)],
)
def test_the_complaint_rate_alerts_only_above_one_tenth_of_a_percent(server, complaints, delivered, expected):
    put_day(server, DAY, delivered=delivered, failed=0, complaints=complaints)
    alerts.evaluate_days(server, [DAY])
    assert Alert.objects.filter(server=server, kind=AlertKind.COMPLAINT_RATE).exists() is expected


def test_the_complaint_rate_is_complaints_over_delivered(server):
    put_day(server, DAY, delivered=500, failed=500, complaints=1)
    alerts.evaluate_days(server, [DAY])
    alert = Alert.objects.get(server=server, kind=AlertKind.COMPLAINT_RATE)
    assert alert.value == pytest.approx(0.2)  # 1 / 500, not 1 / 1000


@pytest.mark.parametrize(("score", "expected"), [(70, False), (71, False), (69, True), (0, True)])
def test_streamscore_alerts_only_below_the_threshold(server, score, expected):
    put_score(server, DAY, score)
    alerts.evaluate_days(server, [DAY])
    assert Alert.objects.filter(server=server, kind=AlertKind.STREAMSCORE).exists() is expected


def test_a_day_without_mail_has_no_rate_to_compare(server):
    put_day(server, DAY, delivered=0, failed=0, complaints=0)
    assert alerts.evaluate_days(server, [DAY]) == []
    put_day(server, DAY, delivered=0, failed=3)
    kinds = {a.kind for a in alerts.evaluate_days(server, [DAY])}
    assert kinds == {AlertKind.FAILURE_RATE}  # no complaint rate without a delivered message


def test_the_servers_own_thresholds_apply(server):
    ReportSettings.objects.create(
        server=server, streamscore_threshold=90, failure_rate_threshold=Decimal("20"), complaint_rate_threshold=1
    )
    put_day(server, DAY, delivered=85, failed=15, complaints=1)  # 15 % failed, 1.18 % complaints
    put_score(server, DAY, 85)
    kinds = {a.kind for a in alerts.evaluate_days(server, [DAY])}
    assert kinds == {AlertKind.STREAMSCORE, AlertKind.COMPLAINT_RATE}


def test_alerts_switched_off_record_nothing(server):
    ReportSettings.objects.create(server=server, alerts_enabled=False)
    put_day(server, DAY, delivered=50, failed=50)
    assert alerts.evaluate_days(server, [DAY]) == []
    assert not Alert.objects.exists()


def test_settings_are_created_with_the_defaults_when_first_needed(server):
    assert not ReportSettings.objects.filter(server=server).exists()
    alerts.evaluate_days(server, [DAY])
    created = ReportSettings.objects.get(server=server)
    assert (created.streamscore_threshold, created.failure_rate_threshold, created.complaint_rate_threshold) == (
        70,
        Decimal("5"),
        Decimal("0.1"),
    )
    assert created.alerts_enabled


def test_only_the_days_asked_for_are_evaluated(server):
    put_day(server, DAY, delivered=50, failed=50)
    put_day(server, date(2026, 11, 23), delivered=50, failed=50)
    alerts.evaluate_days(server, [DAY])
    assert list(Alert.objects.values_list("day", flat=True)) == [DAY]


def test_evaluating_twice_makes_one_alert_and_one_mail(server, admin, django_capture_on_commit_callbacks):
    subscribe(admin, server)
    put_day(server, DAY, delivered=90, failed=10)
    evaluate(django_capture_on_commit_callbacks, server)
    evaluate(django_capture_on_commit_callbacks, server)
    assert Alert.objects.count() == 1
    assert len(mail.outbox) == 1
    assert Alert.objects.get().notified_at is not None


def test_a_repull_with_new_figures_updates_the_value_without_mailing_again(
    server, admin, django_capture_on_commit_callbacks
):
    subscribe(admin, server)
    put_day(server, DAY, delivered=90, failed=10)
    evaluate(django_capture_on_commit_callbacks, server)
    put_day(server, DAY, delivered=80, failed=20)
    (alert,) = evaluate(django_capture_on_commit_callbacks, server)
    assert alert.value == pytest.approx(20.0)
    assert Alert.objects.get().value == pytest.approx(20.0)
    assert len(mail.outbox) == 1


def test_figures_that_no_longer_cross_the_threshold_close_the_notice(server):
    put_day(server, DAY, delivered=90, failed=10)
    alerts.evaluate_days(server, [DAY])
    put_day(server, DAY, delivered=99, failed=1)
    assert alerts.evaluate_days(server, [DAY]) == []
    alert = Alert.objects.get()
    assert alert.dismissed_at is not None
    assert alert.value == pytest.approx(1.0)
    assert list(alerts.open_alerts([server])) == []


def test_only_subscribed_users_who_still_have_access_are_mailed(
    server, other_server, admin, ops, viewer, marketing, site_admin, outsider, django_capture_on_commit_callbacks
):
    subscribe(admin, server)
    subscribe(viewer, server)
    subscribe(site_admin, server)  # sees every server
    subscribe(ops, server, alerts_on=False)
    subscribe(outsider, server)  # a subscription left over from access that is gone
    subscribe(marketing, server)
    Membership.objects.filter(user=marketing, server=server).delete()  # lost access since
    inactive = User.objects.create_user("gone@example.com", "x")
    Membership.objects.create(user=inactive, server=server, role="viewer")
    subscribe(inactive, server)
    User.objects.filter(pk=inactive.pk).update(is_active=False)
    subscribe(admin, other_server)  # subscribed elsewhere only counts there

    put_day(server, DAY, delivered=90, failed=10)
    evaluate(django_capture_on_commit_callbacks, server)

    recipients = sorted(address for message in mail.outbox for address in message.to)
    assert recipients == ["admin@example.com", "root@example.com", "viewer@example.com"]
    assert all(len(message.to) == 1 for message in mail.outbox)  # nobody sees the others' addresses


def test_the_alert_mail_says_what_crossed_which_threshold_with_links(
    server, admin, settings, django_capture_on_commit_callbacks
):
    settings.REPORTING_PUBLIC_BASE_URL = "https://mailroom.example.com/"
    subscribe(admin, server)
    put_day(server, DAY, delivered=90, failed=10, complaints=0)
    evaluate(django_capture_on_commit_callbacks, server)
    (message,) = mail.outbox
    assert message.subject == "[Mailroom] Acme-1: Failure rate above threshold on 2026-11-24"
    assert "Tue 2026-11-24 (UTC): Failure rate 10.00 %, above the threshold of 5.00 %" in message.body
    assert f"https://mailroom.example.com/servers/{server.pk}/reports/alerts/" in message.body
    assert f"https://mailroom.example.com/servers/{server.pk}/reports/digests/" in message.body
    ((html, mimetype),) = message.alternatives
    assert mimetype == "text/html"
    assert "<strong>10.00 %</strong>" in html
    assert f'href="https://mailroom.example.com/servers/{server.pk}/reports/alerts/"' in html


def test_several_alerts_of_one_pull_go_out_in_one_mail(server, admin, django_capture_on_commit_callbacks):
    subscribe(admin, server)
    put_day(server, DAY, delivered=90, failed=10, complaints=5)
    put_score(server, DAY, 40)
    evaluate(django_capture_on_commit_callbacks, server)
    (message,) = mail.outbox
    assert message.subject == "[Mailroom] Acme-1: 3 report alerts"
    for words in ("StreamScore 40, below the threshold of 70", "Complaint rate 5.56 %", "Failure rate 10.00 %"):
        assert words in message.body


def test_no_mail_before_the_pulls_transaction_commits(server, admin, django_capture_on_commit_callbacks):
    subscribe(admin, server)
    put_day(server, DAY, delivered=90, failed=10)
    with django_capture_on_commit_callbacks() as callbacks:
        alerts.evaluate_days(server, [DAY])
        assert mail.outbox == []
    assert len(callbacks) == 1


def test_a_failed_mail_is_retried_later_and_then_sent_once(server, admin, django_capture_on_commit_callbacks):
    subscribe(admin, server)
    put_day(server, DAY, delivered=90, failed=10)
    with mock.patch("django.core.mail.EmailMultiAlternatives.send", side_effect=OSError("connection refused")):
        evaluate(django_capture_on_commit_callbacks, server)
    assert mail.outbox == []
    assert Alert.objects.get().notified_at is None

    assert alerts.notify_pending() == 1
    assert alerts.notify_pending() == 0
    assert len(mail.outbox) == 1


def test_open_alerts_leave_out_dismissed_ones_and_other_servers(server, other_server, admin):
    put_day(server, DAY, delivered=90, failed=10, complaints=5)
    put_day(other_server, DAY, delivered=90, failed=10)
    alerts.evaluate_days(server, [DAY])
    alerts.evaluate_days(other_server, [DAY])
    failure = Alert.objects.get(server=server, kind=AlertKind.FAILURE_RATE)
    alerts.dismiss(alert=failure, actor=admin)
    assert [(a.server, a.kind) for a in alerts.open_alerts([server])] == [(server, AlertKind.COMPLAINT_RATE)]


def test_dismissing_is_audited_once(server, admin):
    put_day(server, DAY, delivered=90, failed=10)
    (alert,) = alerts.evaluate_days(server, [DAY])
    assert alerts.dismiss(alert=alert, actor=admin) is True
    assert alerts.dismiss(alert=alert, actor=admin) is False
    entry = AuditLog.objects.get(action="reports.alert_dismissed")
    assert entry.server == server
    assert entry.target == "Failure rate on 2026-11-24: 10.00 % above 5.00 %"


def test_a_dismissed_alert_is_not_mailed_even_if_still_unnotified(server, admin, django_capture_on_commit_callbacks):
    subscribe(admin, server)
    put_day(server, DAY, delivered=90, failed=10)
    (alert,) = alerts.evaluate_days(server, [DAY])  # callbacks not run: no mail yet
    alerts.dismiss(alert=alert, actor=admin)
    assert alerts.notify([alert.pk]) == 0
    assert mail.outbox == []
