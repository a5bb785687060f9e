"""Report dashboard pages: access, range picker, cross-server scope, exports, drill-down, reconciliation."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditLog, Membership, Server, User
from accounts.roles import Role
from reporting.dashboard_forms import utc_today
from reporting.models import Alert, EventDayTotal, ReportDay, StreamScoreDay
from tests.reporting.test_dashboards import breakdown, event, report

TODAY = utc_today()
D1 = TODAY - timedelta(days=2)
D2 = TODAY - timedelta(days=1)


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def body(response: Any) -> str:
    if isinstance(response, StreamingHttpResponse):
        return b"".join(response.streaming_content).decode()  # type: ignore[arg-type]
    return response.content.decode()


def csv_rows(response: Any) -> list[list[str]]:
    assert response.status_code == 200, body(response)
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    return list(csv.reader(io.StringIO(body(response))))


@pytest.fixture
def data(server: Server, other_server: Server) -> None:
    report(server, D1, delivered=1500, failed=500, complaints=3, opens=(400, 300), clicks=(50, 40))
    report(server, D2, delivered=100)
    report(other_server, D1, delivered=7777, failed=1)
    breakdown(server, D1, "failed", "failure_code", **{"5001": 400, "2001": 100})
    breakdown(server, D1, "failed", "reason", **{"=HYPERLINK(evil)": 9})
    breakdown(server, D1, "delivered", "domain", **{"example.net": 1200, "example.org": 300})
    breakdown(other_server, D1, "delivered", "domain", **{"secret-other.example": 7777})
    StreamScoreDay.objects.create(server=server, day=D1, score=73, rating="Fair")


def url(name: str, server: Server | None = None, *args: Any) -> str:
    if server is None:
        return reverse(f"all_reports:{name}", args=args)
    return reverse(f"reports:{name}", args=[server.pk, *args])


# --- access ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("persona", ["site_admin", "admin", "ops", "marketing", "viewer"])
def test_everyone_with_access_reads_every_report_page(
    request: pytest.FixtureRequest, as_user: Callable[[User], Client], server: Server, data: None, persona: str
) -> None:
    client = as_user(request.getfixturevalue(persona))
    for page in [
        url("overview", server),
        url("kind", server, "delivered"),
        url("kind", server, "failed"),
        url("kind", server, "complaints"),
        url("kind", server, "tracking"),
        url("streamscore", server),
        url("reconciliation", server),
        url("events", server),
        url("overview"),
        url("streamscore"),
    ]:
        response = client.get(page)
        assert response.status_code == 200, page
    assert client.get(url("export", server) + "?table=volume").status_code == 200


def test_an_outsider_gets_404_on_another_servers_reports(
    as_user: Callable[[User], Client], outsider: User, server: Server, data: None
) -> None:
    client = as_user(outsider)
    for page in [url("overview", server), url("events", server), url("export", server) + "?table=volume"]:
        assert client.get(page).status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(client: Client, server: Server) -> None:
    response = client.get(url("overview", server))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_cross_server_page_shows_only_servers_the_user_can_see(
    as_user: Callable[[User], Client], viewer: User, server: Server, other_server: Server, data: None
) -> None:
    response = as_user(viewer).get(url("overview"))
    html = body(response)
    assert "Acme-1" in html and "Other-2" not in html
    assert "1,600" in html  # delivered on Acme-1 only, not Other-2's 7,777
    assert "7,777" not in html and "secret-other.example" not in html

    refused = as_user(viewer).get(url("overview"), {"server": other_server.pk})
    assert f"Server {other_server.pk} is not one you can see." in body(refused)
    assert "7,777" not in body(refused)


def test_a_site_admin_sees_every_server_and_may_narrow_to_some(
    as_user: Callable[[User], Client], site_admin: User, server: Server, other_server: Server, data: None
) -> None:
    client = as_user(site_admin)
    everything = body(client.get(url("overview")))
    assert "9,377" in everything  # 1,600 + 7,777 delivered
    narrowed = client.get(url("overview"), {"server": other_server.pk})
    assert narrowed.context["totals"].delivered == 7777
    rows = csv_rows(client.get(url("export"), {"table": "servers"}))
    assert rows[0] == ["Server", "Delivered", "Failed", "Complaints", "Delivery rate", "Complaint rate", "StreamScore"]
    assert rows[1][:3] == ["Acme-1", "1600", "500"] and rows[2][:2] == ["Other-2", "7777"]


# --- the dashboard ---------------------------------------------------------------------------------------
def test_the_overview_shows_formatted_figures_rates_charts_and_tables(
    as_user: Callable[[User], Client], viewer: User, server: Server, data: None
) -> None:
    response = as_user(viewer).get(url("overview", server))
    html = body(response)
    assert "1,600" in html  # delivered, thousands separator
    assert "76.2 %" in html  # delivery rate 1,600 / 2,100
    assert "0.2 %" in html  # complaint rate 3 / 1,600
    assert "73 Fair" in html  # StreamScore
    assert "UTC days" in html
    for name in ("volume", "rates", "streamscore", "failure_code", "reason", "delivered_domain"):
        assert f'data-chart="chart-{name}"' in html or name in ("reason",)
        assert f'id="table-{name}"' in html
        assert f"table={name}" in html  # its export
    assert 'id="chart-volume" type="application/json"' in html
    assert "<script>" not in html  # no inline scripts: charts read json_script data from charts.js
    assert "js/charts.js" in html and "vendor/chart.js/chart.umd.min.js" in html


def test_every_count_links_to_its_events(
    as_user: Callable[[User], Client], viewer: User, server: Server, data: None
) -> None:
    response = as_user(viewer).get(url("overview", server), {"range": "7"})
    tiles = {t["label"]: t for t in response.context["tiles"]}
    events = url("events", server)
    first = (TODAY - timedelta(days=6)).isoformat()
    assert tiles["Delivered"]["href"] == f"{events}?range=custom&from={first}&to={TODAY.isoformat()}&type=delivered"
    assert tiles["Delivered"]["text"] == "1,600"
    codes = next(t for t, _html in response.context["tables"] if t.name == "failure_code")
    assert "code=5001" in codes.rows[0][1].href and "type=failed" in codes.rows[0][1].href


def test_the_range_picker_changes_the_figures(
    as_user: Callable[[User], Client], viewer: User, server: Server, data: None
) -> None:
    client = as_user(viewer)
    one_day = client.get(url("overview", server), {"range": "custom", "from": str(D2), "to": str(D2)})
    assert one_day.context["totals"].delivered == 100
    assert one_day.context["day_range"].days == 1
    week = client.get(url("overview", server), {"range": "7"})
    assert week.context["totals"].delivered == 1600 and week.context["day_range"].days == 7


def test_a_bad_range_shows_the_error_and_the_default_range(
    as_user: Callable[[User], Client], viewer: User, server: Server, data: None
) -> None:
    response = as_user(viewer).get(url("overview", server), {"range": "custom", "from": str(D2), "to": str(D1)})
    html = body(response)
    assert "The last day must be on or after the first day." in html
    assert "showing the last 30 days" in html
    assert response.context["day_range"].days == 30


def test_an_empty_server_says_to_pull_reports(as_user: Callable[[User], Client], viewer: User, server: Server) -> None:
    html = body(as_user(viewer).get(url("overview", server)))
    assert "No report data yet — pull reports under Jobs" in html
    assert 'data-chart="' not in html


def test_open_alerts_show_on_the_overview(
    as_user: Callable[[User], Client], viewer: User, server: Server, data: None
) -> None:
    Alert.objects.create(server=server, day=D1, kind="failure_rate", value=23.8, threshold=5)
    response = as_user(viewer).get(url("overview", server))
    assert [a.kind for a in response.context["alerts"]] == ["failure_rate"]


@pytest.mark.parametrize("kind", ["delivered", "failed", "complaints", "tracking"])
def test_kind_pages_show_their_own_tables(
    as_user: Callable[[User], Client], viewer: User, server: Server, data: None, kind: str
) -> None:
    response = as_user(viewer).get(url("kind", server, kind))
    names = [t.name for t, _html in response.context["tables"]]
    assert names[0] == f"{kind}_days"
    if kind == "failed":
        assert names == ["failed_days", "failure_code", "reason", "failed_domain", "failed_mailing"]
        assert "23.8 %" in body(response)  # failure rate 500 / 2,100


def test_an_unknown_report_kind_is_404(as_user: Callable[[User], Client], viewer: User, server: Server) -> None:
    assert as_user(viewer).get(f"/servers/{server.pk}/reports/bounces/").status_code == 404


SIGN_IN_TABLES = ("django_session", "accounts_user", "usersessions_usersession", "SAVEPOINT")


def page_queries(client: Client, page: str) -> list[str]:
    """The queries one request makes, without those of the session and sign-in middleware."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(page).status_code == 200
    return [q["sql"] for q in captured.captured_queries if not any(t in q["sql"] for t in SIGN_IN_TABLES)]


def test_the_dashboards_need_few_queries_whatever_the_data(
    as_user: Callable[[User], Client], site_admin: User, server: Server, other_server: Server, data: None
) -> None:
    client = as_user(site_admin)
    client.get(url("overview"))
    # servers (filter), the pulled-days stamp (cache key), report days, top keys, StreamScore,
    # alerts, and the sidebar's server list
    assert len(page_queries(client, url("overview"))) <= 7
    assert len(page_queries(client, url("overview", server))) <= 8  # + the membership check
    assert len(page_queries(client, url("kind", server, "failed"))) <= 7
    for day in range(1, 20):
        report(server, TODAY - timedelta(days=day + 3), delivered=10, failed=1)
        breakdown(server, TODAY - timedelta(days=day + 3), "failed", "reason", timeout=1, full=2)
    assert len(page_queries(client, url("overview"))) <= 7


def test_the_whole_overview_request_stays_within_its_pinned_query_count(
    as_user: Callable[[User], Client],
    site_admin: User,
    server: Server,
    other_server: Server,
    data: None,
    django_assert_max_num_queries: Any,
) -> None:
    client = as_user(site_admin)
    client.get(url("overview"))
    with django_assert_max_num_queries(17):  # 6 of them are the session and sign-in middleware's
        assert client.get(url("overview")).status_code == 200


# --- exports ---------------------------------------------------------------------------------------------
def test_a_table_exports_the_same_rows_as_csv(
    as_user: Callable[[User], Client], viewer: User, server: Server, data: None
) -> None:
    response = as_user(viewer).get(
        url("export", server), {"table": "volume", "range": "custom", "from": str(D1), "to": str(D2)}
    )
    rows = csv_rows(response)
    assert rows == [
        ["Day (UTC)", "Delivered", "Failed", "Complaints", "Unique opens", "Unique clicks", "Unsubscribes"],
        [D1.isoformat(), "1500", "500", "3", "300", "40", "0"],
        [D2.isoformat(), "100", "0", "0", "0", "0", "0"],
    ]
    assert f"report-volume-{server.socketlabs_id}-" in response["Content-Disposition"]


def test_exports_escape_cells_a_spreadsheet_would_run(
    as_user: Callable[[User], Client], viewer: User, server: Server, data: None
) -> None:
    rows = csv_rows(as_user(viewer).get(url("export", server), {"table": "reason"}))
    assert rows[1] == ["'=HYPERLINK(evil)", "9", "100.0"]


def test_rates_export_as_percent_numbers(
    as_user: Callable[[User], Client], viewer: User, server: Server, data: None
) -> None:
    rows = csv_rows(as_user(viewer).get(url("export", server), {"table": "rates", "range": "7"}))
    by_day = {r[0]: r for r in rows[1:]}
    assert by_day[D1.isoformat()][1:4] == ["75.0", "25.0", "0.2"]
    assert by_day[TODAY.isoformat()][1] == ""  # nothing sent: unknown, not 0


def test_export_refuses_unknown_tables_and_bad_ranges(
    as_user: Callable[[User], Client], viewer: User, server: Server
) -> None:
    client = as_user(viewer)
    unknown = client.get(url("export", server), {"table": "passwords"})
    assert unknown.status_code == 400 and "no table called 'passwords'" in body(unknown)
    bad = client.get(url("export", server), {"table": "volume", "range": "custom", "from": "yesterday"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in body(bad)
    assert client.get(url("export", server), {"table": "servers"}).status_code == 400  # cross-server only


# --- drill-down ------------------------------------------------------------------------------------------
@pytest.fixture
def events(server: Server, other_server: Server) -> None:
    event(server, "delivered", at(D1, 1), "ann@example.net", mailing_id="spring")
    event(server, "delivered", at(D1, 2), "bob@example.org", mailing_id="autumn")
    event(server, "failed", at(D1, 3), "cat@example.net", failure_code=5001, reason="mailbox full")
    event(server, "failed", at(D2, 3), "dan@example.net", failure_code=2001, reason="=cmd|calc")
    event(server, "delivered", at(TODAY - timedelta(days=40)), "old@example.net")
    event(other_server, "delivered", at(D1), "hidden@example.net")
    for day in (D1, D2):
        EventDayTotal.objects.create(server=server, day=day, type="delivered", count=1)


def drill(client: Client, server: Server | None, **params: Any) -> list[str]:
    query: dict[str, Any] = {"range": "custom", "from": str(D1), "to": str(D2), **params}
    response = client.get(url("events", server), query)
    assert response.status_code == 200
    return [e.address for e in response.context["events"]]


def test_the_drill_down_filters_by_type_day_domain_mailing_and_code(
    as_user: Callable[[User], Client], viewer: User, server: Server, events: None
) -> None:
    client = as_user(viewer)
    assert drill(client, server) == ["dan@example.net", "cat@example.net", "bob@example.org", "ann@example.net"]
    assert drill(client, server, type="delivered") == ["bob@example.org", "ann@example.net"]
    assert drill(client, server, type="failed", to=str(D1)) == ["cat@example.net"]
    assert drill(client, server, domain="example.org") == ["bob@example.org"]
    assert drill(client, server, domain="@EXAMPLE.ORG") == ["bob@example.org"]
    assert drill(client, server, mailing="spring") == ["ann@example.net"]
    assert drill(client, server, code="2001") == ["dan@example.net"]
    assert drill(client, server, reason="mailbox full") == ["cat@example.net"]


def test_the_cross_server_drill_down_leaves_out_servers_the_user_cannot_see(
    as_user: Callable[[User], Client], viewer: User, site_admin: User, server: Server, events: None
) -> None:
    assert "hidden@example.net" not in drill(as_user(viewer), None)
    assert "hidden@example.net" in drill(as_user(site_admin), None)


def test_the_drill_down_pages_by_keyset(
    as_user: Callable[[User], Client], viewer: User, server: Server, settings: Any, monkeypatch: Any
) -> None:
    from reporting import dashboard_views

    monkeypatch.setattr(dashboard_views, "EVENTS_PER_PAGE", 2)
    for n in range(5):
        event(server, "delivered", at(D1, n), f"u{n}@example.net")
    client = as_user(viewer)
    first = client.get(url("events", server), {"range": "custom", "from": str(D1), "to": str(D1)})
    assert [e.address for e in first.context["events"]] == ["u4@example.net", "u3@example.net"]
    second = client.get(f"{url('events', server)}?{first.context['next_query']}")
    assert [e.address for e in second.context["events"]] == ["u2@example.net", "u1@example.net"]
    third = client.get(f"{url('events', server)}?{second.context['next_query']}")
    assert [e.address for e in third.context["events"]] == ["u0@example.net"]
    assert third.context["next_query"] == ""


def test_the_drill_down_says_when_webhook_events_do_not_cover_the_range(
    as_user: Callable[[User], Client], viewer: User, server: Server, events: None
) -> None:
    client = as_user(viewer)
    covered = body(client.get(url("events", server), {"range": "custom", "from": str(D1), "to": str(D2)}))
    assert 'data-testid="coverage-note"' not in covered
    partial = body(client.get(url("events", server), {"range": "7"}))
    assert "Webhook events cover only 2 of the 7 days in this range" in partial
    none = body(client.get(url("events", server), {"range": "custom", "from": "2020-01-01", "to": "2020-01-02"}))
    assert "No webhook events were received for these days" in none


def test_a_bad_drill_down_filter_says_so(as_user: Callable[[User], Client], viewer: User, server: Server) -> None:
    html = body(as_user(viewer).get(url("events", server), {"code": "abc"}))
    assert "A failure code is a number." in html


def test_the_events_export_streams_the_filtered_events_and_is_audited(
    as_user: Callable[[User], Client], viewer: User, server: Server, events: None
) -> None:
    response = as_user(viewer).get(
        url("events_export", server), {"range": "custom", "from": str(D1), "to": str(D2), "type": "failed"}
    )
    rows = csv_rows(response)
    assert rows[0][:4] == ["Occurred (UTC)", "Server", "Type", "Address"]
    assert [(r[1], r[2], r[3], r[7], r[8]) for r in rows[1:]] == [
        ("Acme-1", "failed", "dan@example.net", "2001", "'=cmd|calc"),
        ("Acme-1", "failed", "cat@example.net", "5001", "mailbox full"),
    ]
    assert rows[2][0] == f"{D1.isoformat()} 03:00:00"
    entry = AuditLog.objects.get(action="reports.events_export")
    assert entry.server_id == server.pk and entry.actor_id == viewer.pk


# --- reconciliation -------------------------------------------------------------------------------------
def test_reconciliation_highlights_the_difference(
    as_user: Callable[[User], Client], viewer: User, server: Server
) -> None:
    report(server, D1, delivered=100, failed=4)
    EventDayTotal.objects.create(server=server, day=D1, type="delivered", count=97)
    EventDayTotal.objects.create(server=server, day=D1, type="failed", count=4)
    client = as_user(viewer)

    response = client.get(url("reconciliation", server), {"range": "7"})
    html = body(response)
    assert "1 of 2 compared days and kinds differ." in html
    assert 'class="num flag-diff"' in html and "-3" in html

    only = client.get(url("reconciliation", server), {"range": "7", "only": "diff"})
    assert [c.text for c in only.context["table"].rows[0]] == [D1.isoformat(), "Delivered", "100", "97", "-3"]
    assert len(only.context["table"].rows) == 1

    rows = csv_rows(client.get(url("export", server), {"table": "reconciliation", "range": "7"}))
    assert rows[0][2:] == ["Pulled (SocketLabs)", "Webhook events", "Difference (webhook − pulled)"]
    assert [D1.isoformat(), "delivered", "100", "97", "-3"] in rows


def test_reconciliation_without_webhook_events_says_so(
    as_user: Callable[[User], Client], viewer: User, server: Server
) -> None:
    report(server, D1, delivered=100)
    html = body(as_user(viewer).get(url("reconciliation", server)))
    assert "No webhook events were ingested for this range" in html
    assert "not pulled" not in html and "no events" in html


# --- navigation -----------------------------------------------------------------------------------------
def test_the_sidebar_has_the_reports_section(as_user: Callable[[User], Client], viewer: User, server: Server) -> None:
    client = as_user(viewer)
    on_server = body(client.get(url("kind", server, "failed")))
    assert f'href="{url("kind", server, "failed")}" aria-current="page"' in on_server
    assert f'href="{url("reconciliation", server)}"' in on_server
    everywhere = body(client.get(reverse("dashboard")))
    assert f'href="{url("overview")}"' in everywhere


def test_membership_of_another_role_added_later_still_reads(
    as_user: Callable[[User], Client], other_server: Server, server: Server, data: None
) -> None:
    user = User.objects.create_user("late@example.com", "pw-123456789-abc")
    Membership.objects.create(user=user, server=other_server, role=Role.VIEWER)
    client = as_user(user)
    assert client.get(url("overview", other_server)).status_code == 200
    assert client.get(url("overview", server)).status_code == 404


# --- caching ----------------------------------------------------------------------------------------------
def test_a_repeat_view_is_cached_and_a_new_pull_shows_at_once(
    as_user: Callable[[User], Client], viewer: User, server: Server, data: None
) -> None:
    client = as_user(viewer)
    assert client.get(url("overview", server)).context["totals"].delivered == 1600
    # From the cache: the stamp, not the days, top keys or StreamScore.
    assert len(page_queries(client, url("overview", server))) <= 5

    # A pull rewrites the day and stamps pulled_at (reporting.pulls.store_day): the next view shows it.
    ReportDay.objects.filter(server=server, day=D2, kind="delivered").update(total=900, pulled_at=timezone.now())
    assert client.get(url("overview", server)).context["totals"].delivered == 2400


def test_the_cache_never_mixes_users_with_different_servers(
    as_user: Callable[[User], Client], viewer: User, site_admin: User, server: Server, data: None
) -> None:
    assert as_user(site_admin).get(url("overview")).context["totals"].delivered == 9377
    assert as_user(viewer).get(url("overview")).context["totals"].delivered == 1600


def test_cross_server_exports_and_links_keep_the_chosen_servers(
    as_user: Callable[[User], Client], site_admin: User, server: Server, other_server: Server, data: None
) -> None:
    client = as_user(site_admin)
    response = client.get(url("overview"), {"server": other_server.pk, "range": "7"})
    html = body(response)
    assert f"server={other_server.pk}&amp;table=volume" in html  # the export link keeps the choice
    tiles = {t["label"]: t for t in response.context["tiles"]}
    assert f"&server={other_server.pk}&type=delivered" in tiles["Delivered"]["href"]

    rows = csv_rows(client.get(url("export"), {"table": "volume", "range": "7", "server": other_server.pk}))
    assert sum(int(r[1]) for r in rows[1:]) == 7777
    assert 'data-testid="table-volume"' in html
