"""A bad fortnight is one notice per server and kind, not one per day; dismissing it closes the earlier days."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.urls import reverse

from accounts.models import AuditLog
from reporting import alerts
from reporting.models import Alert, AlertKind
from tests.reporting.report_rows import put_day

pytestmark = pytest.mark.django_db
LAST = date(2026, 11, 24)
HTMX = {"HX-Request": "true"}


def bad_days(server, count: int) -> list[date]:
    days = [LAST - timedelta(days=n) for n in range(count)]
    for day in days:
        put_day(server, day, delivered=90, failed=10)  # failure rate 10 %: above 5 %, no complaints
    alerts.evaluate_days(server, days)
    return days


def test_fourteen_bad_days_are_one_notice_naming_the_latest_day_and_the_rest(as_user, server, other_server, site_admin):
    bad_days(server, 14)
    bad_days(other_server, 1)

    page = as_user(site_admin).get(reverse("all_reports:overview")).content.decode()

    assert page.count('data-testid="alert-notice"') == 2
    assert "Tue 2026-11-24 (UTC): Failure rate <strong>10.00 %</strong>" in page
    assert "Also on 13 earlier days since 2026-11-11." in page
    assert 'data-testid="more-alerts"' not in page


def test_notices_beyond_the_first_few_are_counted_not_listed(server, admin):
    from reporting.templatetags.report_alerts import grouped_notices

    rows = [
        Alert(server=server, day=LAST - timedelta(days=n), kind=AlertKind.FAILURE_RATE, value=9, threshold=5)
        for n in range(3)
    ]
    assert [g.days for g in grouped_notices(rows)["shown"]] == [3]
    from accounts.models import Server

    servers = [Server(pk=1000 + n, name=f"S{n}") for n in range(4)]
    many = [Alert(server=s, day=LAST, kind=kind, value=1, threshold=0) for s in servers for kind in AlertKind]
    notices = grouped_notices(many)
    assert (len(notices["shown"]), notices["more"]) == (alerts.NOTICE_GROUPS_SHOWN, 12 - alerts.NOTICE_GROUPS_SHOWN)


def test_dismissing_the_notice_closes_the_earlier_days_of_that_kind_only(as_user, server, ops):
    bad_days(server, 5)
    put_day(server, LAST, delivered=90, failed=10, complaints=5)  # adds a complaint alert on the last day
    alerts.evaluate_days(server, [LAST])
    latest = Alert.objects.get(server=server, kind=AlertKind.FAILURE_RATE, day=LAST)

    response = as_user(ops).post(reverse("reports:alert_dismiss", args=[server.pk, latest.pk]), headers=HTMX)

    assert response.status_code == 200
    open_kinds = list(alerts.open_alerts([server]).values_list("kind", flat=True))
    assert open_kinds == [AlertKind.COMPLAINT_RATE]
    entry = AuditLog.objects.get(action="reports.alert_dismissed")
    assert entry.target.endswith("(and 4 earlier days)")


def test_dismissing_an_older_day_leaves_the_later_days_open(server, admin):
    days = bad_days(server, 3)
    middle = Alert.objects.get(server=server, day=days[1])

    assert alerts.dismiss(alert=middle, actor=admin) is True

    assert set(alerts.open_alerts([server]).values_list("day", flat=True)) == {days[0]}
