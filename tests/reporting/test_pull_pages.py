"""The report jobs pages (per server and across servers) and the schedule page: roles, input, audit, polling."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditLog, Membership, Server, User
from accounts.roles import Role
from reporting import pulls
from reporting.models import PullStatus, PullTrigger, ReportPull, ReportSettings

pytestmark = pytest.mark.django_db

AsUser = Callable[[User], Client]
HX = {"HX-Request": "true"}
TODAY = timezone.now().astimezone(UTC).date()
YESTERDAY = TODAY - timedelta(days=1)


def jobs_url(server: Server) -> str:
    return reverse("reports:jobs", args=[server.pk])


def make_pull(server: Server, status: str = PullStatus.QUEUED, **fields: Any) -> ReportPull:
    return ReportPull.objects.create(
        server=server, first_day=YESTERDAY, last_day=YESTERDAY, trigger=PullTrigger.MANUAL, status=status, **fields
    )


# --- reading ---------------------------------------------------------------------------------------------------
def test_everyone_with_access_reads_the_jobs_page_but_only_admins_see_the_forms(
    as_user: AsUser, admin: User, viewer: User, server: Server
) -> None:
    make_pull(server, PullStatus.DONE, days_total=1, days_done=1)

    page = as_user(viewer).get(jobs_url(server))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="pull-row"' in html and "Done" in html
    assert "Pull now" not in html and "Backfill" not in html

    html = as_user(admin).get(jobs_url(server)).content.decode()
    assert 'data-testid="pull-now-form"' in html and 'data-testid="backfill-form"' in html
    assert f'value="{YESTERDAY:%Y-%m-%d}"' in html  # yesterday by default


def test_an_outsider_gets_404_everywhere_on_the_server(as_user: AsUser, outsider: User, server: Server) -> None:
    pull = make_pull(server, PullStatus.FAILED)
    client = as_user(outsider)
    for url in (
        jobs_url(server),
        reverse("reports:schedule", args=[server.pk]),
        reverse("reports:pull", args=[server.pk, pull.pk]),
    ):
        assert client.get(url, headers=HX).status_code == 404, url
    for url in (
        reverse("reports:pull_now", args=[server.pk]),
        reverse("reports:backfill", args=[server.pk]),
        reverse("reports:pull_retry", args=[server.pk, pull.pk]),
        reverse("reports:schedule", args=[server.pk]),
    ):
        assert client.post(url).status_code == 404, url
    assert not ReportPull.objects.exclude(pk=pull.pk).exists()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPS, Role.MARKETING])
def test_only_admins_start_pulls_retry_them_or_change_the_schedule(
    as_user: AsUser, make_member: Callable[[str, str], User], server: Server, role: str
) -> None:
    client = as_user(make_member(f"{role}@example.com", role))
    pull = make_pull(server, PullStatus.FAILED, error="boom")

    assert client.post(reverse("reports:pull_now", args=[server.pk]), {"now-day": YESTERDAY}).status_code == 403
    backfill = {"backfill-first_day": YESTERDAY, "backfill-last_day": YESTERDAY}
    assert client.post(reverse("reports:backfill", args=[server.pk]), backfill).status_code == 403
    assert client.post(reverse("reports:pull_retry", args=[server.pk, pull.pk])).status_code == 403
    schedule = {"nightly_enabled": "", "pull_hour": "5"}
    assert client.post(reverse("reports:schedule", args=[server.pk]), schedule).status_code == 403

    assert ReportPull.objects.count() == 1 and ReportPull.objects.get().status == PullStatus.FAILED
    assert pulls.settings_for(server).pull_hour == 2
    assert AuditLog.objects.filter(action="access.denied").count() == 4


# --- starting pulls ---------------------------------------------------------------------------------------------
def test_an_admin_pulls_a_day_now_audited_and_queued_after_commit(
    as_user: AsUser, admin: User, server: Server, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        response = as_user(admin).post(reverse("reports:pull_now", args=[server.pk]), {"now-day": YESTERDAY})

    assert response.status_code == 302 and response["Location"] == jobs_url(server)
    pull = ReportPull.objects.get()
    assert (pull.first_day, pull.last_day, pull.trigger, pull.status) == (
        YESTERDAY,
        YESTERDAY,
        PullTrigger.MANUAL,
        PullStatus.QUEUED,
    )
    assert pull.created_by == admin and pull.days_total == 1
    assert len(callbacks) == 1
    entry = AuditLog.objects.get(action="reports.pull")
    assert entry.actor == admin and entry.server == server and f"{YESTERDAY:%Y-%m-%d}" in entry.target


def test_an_admin_back_fills_a_range(
    as_user: AsUser, admin: User, server: Server, django_capture_on_commit_callbacks: Any
) -> None:
    first = TODAY - timedelta(days=30)
    with django_capture_on_commit_callbacks() as callbacks:
        response = as_user(admin).post(
            reverse("reports:backfill", args=[server.pk]),
            {"backfill-first_day": first, "backfill-last_day": YESTERDAY},
            follow=True,
        )

    pull = ReportPull.objects.get()
    assert (pull.trigger, pull.days_total) == (PullTrigger.BACKFILL, 30)
    assert len(callbacks) == 1
    assert "Back-filling 30 days" in response.content.decode()
    assert AuditLog.objects.filter(action="reports.backfill", actor=admin).count() == 1


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        (YESTERDAY, YESTERDAY - timedelta(days=3), "is after the last day"),
        (TODAY, TODAY + timedelta(days=2), "is in the future"),
        (TODAY - timedelta(days=120), TODAY - timedelta(days=100), "SocketLabs keeps report data for 90 days"),
        ("2026-02-30", YESTERDAY, "Enter a valid date"),
        ("", YESTERDAY, "This field is required"),
    ],
)
def test_bad_backfill_ranges_are_refused_with_a_message_next_to_the_field(
    as_user: AsUser, admin: User, server: Server, first: Any, last: Any, message: str
) -> None:
    response = as_user(admin).post(
        reverse("reports:backfill", args=[server.pk]), {"backfill-first_day": first, "backfill-last_day": last}
    )

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ReportPull.objects.exists()
    assert not AuditLog.objects.filter(action="reports.backfill").exists()


def test_a_range_longer_than_a_pull_may_cover_is_refused(
    as_user: AsUser, admin: User, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pulls, "MAX_RANGE_DAYS", 7)
    response = as_user(admin).post(
        reverse("reports:backfill", args=[server.pk]),
        {"backfill-first_day": YESTERDAY - timedelta(days=7), "backfill-last_day": YESTERDAY},
    )
    assert response.status_code == 400
    assert "A pull covers at most 7 days; this range has 8." in response.content.decode()


def test_pull_now_refuses_a_future_day_and_keeps_what_was_typed(as_user: AsUser, admin: User, server: Server) -> None:
    tomorrow = TODAY + timedelta(days=1)
    response = as_user(admin).post(reverse("reports:pull_now", args=[server.pk]), {"now-day": tomorrow})

    assert response.status_code == 400
    html = response.content.decode()
    assert "is in the future" in html and f'value="{tomorrow:%Y-%m-%d}"' in html
    assert not ReportPull.objects.exists()


def test_a_failed_pull_is_retried_from_the_page(
    as_user: AsUser, admin: User, server: Server, django_capture_on_commit_callbacks: Any
) -> None:
    pull = make_pull(server, PullStatus.FAILED, error="SocketLabs refused the API key", attempts=4)

    with django_capture_on_commit_callbacks() as callbacks:
        response = as_user(admin).post(reverse("reports:pull_retry", args=[server.pk, pull.pk]))

    assert response.status_code == 302
    pull.refresh_from_db()
    assert (pull.status, pull.attempts, pull.error) == (PullStatus.QUEUED, 0, "")
    assert len(callbacks) == 1
    assert AuditLog.objects.filter(action="reports.pull_retry").count() == 1

    again = as_user(admin).post(reverse("reports:pull_retry", args=[server.pk, pull.pk]), follow=True)
    assert "Only a failed pull can be retried" in again.content.decode()


# --- progress and errors ---------------------------------------------------------------------------------------
def test_a_running_pulls_row_polls_every_two_seconds_and_stops_once_finished(
    as_user: AsUser, viewer: User, server: Server
) -> None:
    pull = make_pull(
        server, PullStatus.RUNNING, days_total=10, days_done=3, started_at=timezone.now() - timedelta(seconds=30)
    )
    client = as_user(viewer)
    row_url = reverse("reports:pull", args=[server.pk, pull.pk])

    html = client.get(jobs_url(server)).content.decode()
    assert f'hx-get="{row_url}"' in html and 'hx-trigger="every 2s"' in html
    fragment = client.get(row_url, headers=HX)
    body = fragment.content.decode()
    assert body.lstrip().startswith("<tr") and "<html" not in body
    assert "3 of 10 days, about 70 s left" in body and 'value="3"' in body and "every 2s" in body

    ReportPull.objects.filter(pk=pull.pk).update(status=PullStatus.DONE, days_done=10)
    body = client.get(row_url, headers=HX).content.decode()
    assert "Done" in body and "hx-trigger" not in body
    assert client.get(row_url).status_code == 302  # not HTMX: the jobs page


def test_a_failed_pull_shows_its_error_in_plain_words_and_a_retry_button_for_admins(
    as_user: AsUser, admin: User, viewer: User, server: Server
) -> None:
    error = (
        f"Acme-1, {YESTERDAY}: SocketLabs refused the API key for server 10001 (401). "
        "Check the key under Admin → Servers."
    )
    make_pull(server, PullStatus.FAILED, error=error)

    html = as_user(admin).get(jobs_url(server)).content.decode()
    assert "SocketLabs refused the API key for server 10001 (401)" in html and ">Retry</button>" in html
    html = as_user(viewer).get(jobs_url(server)).content.decode()
    assert "SocketLabs refused the API key for server 10001 (401)" in html and ">Retry</button>" not in html


def test_the_cross_server_jobs_page_lists_only_servers_the_user_can_see(
    as_user: AsUser, admin: User, server: Server, other_server: Server
) -> None:
    make_pull(server, PullStatus.FAILED, error="mine")
    make_pull(other_server, PullStatus.FAILED, error="theirs")
    third = Server.objects.create(name="Third-3", socketlabs_id=30003, api_key="k")
    Membership.objects.create(user=admin, server=third, role=Role.VIEWER)
    make_pull(third, PullStatus.FAILED, error="read only")

    response = as_user(admin).get(reverse("all_reports:jobs"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "mine" in html and "read only" in html and "theirs" not in html
    assert html.count(">Retry</button>") == 1  # Admin on Acme-1 only
    assert 'name="back" value="all"' in html


def test_the_cross_server_page_says_what_to_do_when_there_is_nothing(as_user: AsUser, viewer: User) -> None:
    html = as_user(viewer).get(reverse("all_reports:jobs")).content.decode()
    assert "No report pulls yet." in html


def test_the_jobs_pages_cost_the_same_queries_for_one_pull_or_twenty(
    as_user: AsUser, viewer: User, server: Server
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = as_user(viewer)
    make_pull(server, PullStatus.DONE, created_by=viewer)
    client.get(jobs_url(server))  # the first visit creates the report settings and warms the session
    counts = []
    for extra in (0, 19):
        for _ in range(extra):
            make_pull(server, PullStatus.FAILED, created_by=viewer)
        for url in (jobs_url(server), reverse("all_reports:jobs")):
            with CaptureQueriesContext(connection) as queries:
                assert client.get(url).status_code == 200
            counts.append(len(queries))
    assert counts[:2] == counts[2:]


def test_the_cross_server_jobs_page_costs_the_same_queries_for_two_servers_or_twelve(
    as_user: AsUser, ops: User, server: Server, other_server: Server
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = as_user(ops)
    Membership.objects.create(user=ops, server=other_server, role=Role.ADMIN)
    make_pull(server, PullStatus.FAILED)
    make_pull(other_server, PullStatus.FAILED)
    client.get(reverse("all_reports:jobs"))  # warms the session
    counts = []
    for extra in (0, 10):
        for n in range(extra):
            more = Server.objects.create(name=f"More-{n}", socketlabs_id=40000 + n, api_key="k")
            Membership.objects.create(user=ops, server=more, role=Role.ADMIN if n % 2 else Role.OPS)
            make_pull(more, PullStatus.FAILED)
        with CaptureQueriesContext(connection) as queries:
            html = client.get(reverse("all_reports:jobs")).content.decode()
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert html.count(">Retry</button>") == 1 + 5  # Admin on the other server and on every second new one


# --- schedule ---------------------------------------------------------------------------------------------------
def test_the_schedule_shows_the_time_zone_and_the_next_run_to_everyone(
    as_user: AsUser, viewer: User, server: Server
) -> None:
    Server.objects.filter(pk=server.pk).update(time_zone="Pacific/Auckland")
    with time_machine.travel(datetime(2026, 11, 25, 12, 0, tzinfo=UTC), tick=False):  # 01:00 on the 26th there
        html = as_user(viewer).get(reverse("reports:schedule", args=[server.pk])).content.decode()

    assert "Pacific/Auckland" in html
    assert "2026-11-26 02:00 NZDT" in html
    with time_machine.travel(datetime(2026, 11, 25, 14, 0, tzinfo=UTC), tick=False):  # 03:00 there, not yet run
        later = as_user(viewer).get(reverse("reports:schedule", args=[server.pk])).content.decode()
    assert "due now: it starts within five minutes" in later
    assert "Only an Admin of Acme-1 can change the schedule." in html
    assert 'data-testid="schedule-form"' not in html


def test_an_admin_changes_the_schedule_audited(as_user: AsUser, admin: User, server: Server) -> None:
    client = as_user(admin)
    response = client.post(reverse("reports:schedule", args=[server.pk]), {"pull_hour": "6"}, follow=True)

    assert response.status_code == 200 and "Schedule saved." in response.content.decode()
    report_settings = ReportSettings.objects.get(server=server)
    assert (report_settings.nightly_enabled, report_settings.pull_hour) == (False, 6)
    entry = AuditLog.objects.get(action="reports.schedule")
    assert entry.actor == admin and entry.after == {"nightly_enabled": False, "pull_hour": 6}
    assert "none: the nightly pull is off" in response.content.decode()
    Server.objects.filter(pk=server.pk).update(api_key="")
    client.post(reverse("reports:schedule", args=[server.pk]), {"nightly_enabled": "on", "pull_hour": "6"})
    html = client.get(reverse("reports:schedule", args=[server.pk])).content.decode()
    assert "none: the server has no API key" in html


@pytest.mark.parametrize("hour", ["24", "-1", "two", ""])
def test_a_bad_hour_is_refused(as_user: AsUser, admin: User, server: Server, hour: str) -> None:
    response = as_user(admin).post(
        reverse("reports:schedule", args=[server.pk]), {"nightly_enabled": "on", "pull_hour": hour}
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode() or "This field is required" in response.content.decode()
    assert pulls.settings_for(server).pull_hour == 2
    assert not AuditLog.objects.filter(action="reports.schedule").exists()


def test_forms_need_a_csrf_token(admin: User, server: Server) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    assert client.post(reverse("reports:pull_now", args=[server.pk]), {"now-day": YESTERDAY}).status_code == 403
    assert not ReportPull.objects.exists()


def test_dates_are_utc_days(as_user: AsUser, admin: User, server: Server) -> None:
    # 23:30 on the 25th in Los Angeles is already the 26th in UTC: "yesterday" is the 25th.
    Server.objects.filter(pk=server.pk).update(time_zone="America/Los_Angeles")
    with time_machine.travel(datetime(2026, 11, 26, 7, 30, tzinfo=UTC), tick=False):
        html = as_user(admin).get(jobs_url(server)).content.decode()
    assert f'value="{date(2026, 11, 25):%Y-%m-%d}"' in html
