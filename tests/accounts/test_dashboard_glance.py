"""The main dashboard at a glance: latest StreamScore, today's volume, open alerts, in a fixed number of queries."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Membership, Server
from reporting import alerts
from reporting.models import DailyRollup, EventType
from tests.reporting.report_rows import put_day, put_score

pytestmark = pytest.mark.django_db
# 23:30 UTC on the 25th is already the 26th in Tokyo.
NOW = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)


def rollup(server: Server, day: date, kind: str, count: int, domain: str = "example.com") -> None:
    DailyRollup.objects.create(server=server, day=day, type=kind, recipient_domain=domain, count=count)


def row_of(page: str, server: Server) -> str:
    start = page.index(f'href="/servers/{server.pk}/"')
    return page[start : page.index("</tr>", start)]


def test_each_server_shows_its_latest_streamscore_with_its_rating(as_user, server, admin):
    put_score(server, date(2026, 11, 23), 91)
    put_score(server, date(2026, 11, 24), 45)
    page = as_user(admin).get(reverse("dashboard")).content.decode()
    row = row_of(page, server)
    assert ">45</span>" in row and '<span class="badge status-error">Poor</span>' in row
    assert "StreamScore of 2026-11-24 (UTC)" in row


def test_a_server_without_a_score_shows_a_dash(as_user, server, admin):
    row = row_of(as_user(admin).get(reverse("dashboard")).content.decode(), server)
    assert '<td class="num" data-testid="glance-score"><span class="muted">–</span></td>' in row


def test_todays_volume_is_delivered_plus_failed_of_the_servers_local_day(as_user, server, other_server, site_admin):
    Server.objects.filter(pk=server.pk).update(time_zone="Asia/Tokyo")
    tokyo_today, utc_today = date(2026, 11, 26), date(2026, 11, 25)
    rollup(server, tokyo_today, EventType.DELIVERED, 1200)
    rollup(server, tokyo_today, EventType.DELIVERED, 34, domain="example.net")
    rollup(server, tokyo_today, EventType.FAILED, 5)
    rollup(server, tokyo_today, EventType.OPEN, 999)  # not volume
    rollup(server, utc_today, EventType.DELIVERED, 777)  # Tokyo's yesterday
    rollup(other_server, utc_today, EventType.DELIVERED, 40)
    rollup(other_server, tokyo_today, EventType.DELIVERED, 8)  # UTC server: tomorrow
    with time_machine.travel(NOW, tick=False):
        page = as_user(site_admin).get(reverse("dashboard")).content.decode()
    assert 'title="2026-11-26, Asia/Tokyo">1,239</td>' in row_of(page, server)
    assert 'title="2026-11-25, UTC">40</td>' in row_of(page, other_server)


def test_open_alerts_are_counted_and_shown_as_notices(as_user, server, other_server, ops):
    put_day(server, date(2026, 11, 24), delivered=90, failed=10, complaints=5)
    alerts.evaluate_days(server, [date(2026, 11, 24)])
    put_day(other_server, date(2026, 11, 24), delivered=90, failed=10)
    alerts.evaluate_days(other_server, [date(2026, 11, 24)])  # ops cannot see this server
    page = as_user(ops).get(reverse("dashboard")).content.decode()
    assert f'<a href="/servers/{server.pk}/reports/alerts/" class="badge status-error">2 open</a>' in row_of(
        page, server
    )
    assert page.count('data-testid="alert-notice"') == 2
    assert "Other-2" not in page
    assert "Complaint rate <strong>5.56 %</strong>, above the threshold of 0.10 %." in page
    assert page.count(">Dismiss<") == 2  # ops may dismiss


def test_a_viewer_sees_the_notices_without_dismiss_buttons(as_user, server, viewer):
    put_day(server, date(2026, 11, 24), delivered=90, failed=10)
    alerts.evaluate_days(server, [date(2026, 11, 24)])
    page = as_user(viewer).get(reverse("dashboard")).content.decode()
    assert page.count('data-testid="alert-notice"') == 1
    assert ">Dismiss<" not in page
    assert "1 open</a>" in page


def queries_for(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("dashboard")).status_code == 200
    return len(captured)


def test_the_query_count_does_not_grow_with_the_servers(as_user, server, admin):
    client = as_user(admin)
    put_score(server, date(2026, 11, 24), 50)
    put_day(server, date(2026, 11, 24), delivered=90, failed=10)
    alerts.evaluate_days(server, [date(2026, 11, 24)])
    with time_machine.travel(NOW, tick=False):
        rollup(server, date(2026, 11, 25), EventType.DELIVERED, 3)
        queries_for(client)  # the first request also fills caches (site settings, session)
        one = queries_for(client)
        for number in range(6):
            more = Server.objects.create(
                name=f"More-{number}", socketlabs_id=30000 + number, api_key="k" * 20, time_zone="Asia/Tokyo"
            )
            Membership.objects.create(user=admin, server=more, role="admin")
            put_score(more, date(2026, 11, 24), 40 + number)
            put_day(more, date(2026, 11, 24), delivered=90, failed=10)
            alerts.evaluate_days(more, [date(2026, 11, 24)])
            rollup(more, date(2026, 11, 26), EventType.FAILED, number + 1)
        seven = queries_for(client)
    assert seven == one
