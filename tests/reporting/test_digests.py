"""Digest e-mails: the rendered message, when they are due, and never two for one period."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from unittest import mock

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.db import connection, transaction

from accounts.models import Membership, Server, User
from reporting import digest_tasks, digests
from reporting.models import DigestDelivery, DigestFrequency, ReportSubscription
from tests.reporting.report_rows import put_day, put_score

pytestmark = pytest.mark.django_db

TUESDAY = date(2026, 11, 24)
WEDNESDAY_3AM = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
MONDAY = date(2026, 11, 23)
LAST_WEEK = [date(2026, 11, 16) + timedelta(days=i) for i in range(7)]  # Mon 16 … Sun 22


def subscribe(user: User, server: Server, digest: str = DigestFrequency.NIGHTLY) -> ReportSubscription:
    return ReportSubscription.objects.create(user=user, server=server, digest=digest)


def full_day(server: Server, day: date) -> None:
    put_day(server, day, delivered=900, failed=100, complaints=2, opens=300, clicks=40, unsubscribes=1)
    put_score(server, day, 72)


def run_at(moment: datetime) -> int:
    with time_machine.travel(moment, tick=False):
        return digests.send_due_digests()


def test_the_nightly_digest_has_subject_text_html_and_a_csv_of_the_day(server, admin, settings):
    settings.REPORTING_PUBLIC_BASE_URL = "https://mailroom.example.com"
    subscribe(admin, server)
    full_day(server, TUESDAY)

    assert run_at(WEDNESDAY_3AM) == 1

    (message,) = mail.outbox
    assert message.to == ["admin@example.com"]
    assert message.subject == "[Mailroom] Acme-1: nightly digest for Tue 2026-11-24"
    body = message.body
    assert "Report digest for server Acme-1 (10001)" in body
    assert "Period (UTC): Tue 2026-11-24" in body
    assert "Delivered:      900" in body
    assert "Failed:         100 (10.00 %)" in body
    assert "Complaints:     2 (0.22 %)" in body
    assert "StreamScore:    72 (Fair) on 2026-11-24" in body
    assert "missing" not in body
    assert f"Change or stop this digest: https://mailroom.example.com/servers/{server.pk}/reports/digests/" in body
    assert f"Report dashboard: https://mailroom.example.com/servers/{server.pk}/reports/\n" in body
    ((html, mimetype),) = message.alternatives
    assert mimetype == "text/html"
    assert "<h1" in html and "Report digest for Acme-1" in html
    assert "100 (10.00 %)" in html
    assert f'href="https://mailroom.example.com/servers/{server.pk}/reports/digests/"' in html
    ((filename, content, csv_type),) = message.attachments
    assert filename == "digest-acme-1-2026-11-24-2026-11-24.csv"
    assert csv_type == "text/csv"
    assert content.splitlines() == [
        "day,delivered,failed,complaints,opens,clicks,unsubscribes,failure_rate_percent,"
        "complaint_rate_percent,streamscore,data",
        "2026-11-24,900,100,2,300,40,1,10.00,0.22,72,pulled",
    ]
    delivery = DigestDelivery.objects.get()
    assert (delivery.period_start, delivery.period_end) == (TUESDAY, TUESDAY)
    assert delivery.sent_at is not None


def test_the_nightly_digest_waits_for_the_pull_until_the_cutoff(server, admin):
    subscribe(admin, server)
    assert run_at(WEDNESDAY_3AM) == 0
    assert run_at(datetime(2026, 11, 25, 8, 59, tzinfo=UTC)) == 0
    assert not DigestDelivery.objects.exists()

    assert run_at(datetime(2026, 11, 25, 9, 0, tzinfo=UTC)) == 1
    (message,) = mail.outbox
    assert message.subject == "[Mailroom] Acme-1: nightly digest for Tue 2026-11-24 (figures missing)"
    assert "Figures missing for: 2026-11-24." in message.body
    assert "Figures missing</strong> for 2026-11-24" in message.alternatives[0][0]
    assert message.attachments[0][1].splitlines()[1] == "2026-11-24,,,,,,,,,,missing"


def test_the_cutoff_hour_is_a_setting(server, admin, settings):
    settings.REPORTING_DIGEST_CUTOFF_HOUR = 2
    subscribe(admin, server)
    assert run_at(WEDNESDAY_3AM) == 1


def test_a_period_is_never_mailed_twice(server, admin):
    subscribe(admin, server)
    full_day(server, TUESDAY)
    assert run_at(WEDNESDAY_3AM) == 1
    assert run_at(WEDNESDAY_3AM + timedelta(minutes=15)) == 0
    assert run_at(datetime(2026, 11, 25, 23, 45, tzinfo=UTC)) == 0
    assert len(mail.outbox) == 1
    assert DigestDelivery.objects.count() == 1


def test_the_next_night_brings_the_next_day(server, admin):
    subscribe(admin, server)
    full_day(server, TUESDAY)
    full_day(server, TUESDAY + timedelta(days=1))
    run_at(WEDNESDAY_3AM)
    run_at(WEDNESDAY_3AM + timedelta(days=1))
    assert [m.subject.rsplit(" ", 1)[-1] for m in mail.outbox] == ["2026-11-24", "2026-11-25"]


def test_a_claim_left_by_a_crashed_run_is_sent_by_the_next_run_once(server, admin):
    subscription = subscribe(admin, server)
    full_day(server, TUESDAY)
    # A run created the claim and died before sending (no sent_at).
    DigestDelivery.objects.create(subscription=subscription, period_start=TUESDAY, period_end=TUESDAY)
    assert run_at(WEDNESDAY_3AM) == 1
    assert run_at(WEDNESDAY_3AM + timedelta(minutes=15)) == 0
    assert len(mail.outbox) == 1
    assert DigestDelivery.objects.get().sent_at is not None


def test_a_failed_send_is_kept_with_its_error_and_retried(server, admin):
    subscribe(admin, server)
    full_day(server, TUESDAY)
    with mock.patch("django.core.mail.EmailMultiAlternatives.send", side_effect=OSError("SMTP is down")):
        assert run_at(WEDNESDAY_3AM) == 0
    delivery = DigestDelivery.objects.get()
    assert delivery.sent_at is None
    assert delivery.error == "OSError: SMTP is down"
    assert run_at(WEDNESDAY_3AM + timedelta(minutes=15)) == 1
    delivery.refresh_from_db()
    assert (delivery.sent_at is not None, delivery.error) == (True, "")
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("day", [date(2026, 11, 22), date(2026, 11, 24), date(2026, 11, 27)])
def test_weekly_digests_go_out_only_on_mondays(server, admin, day):
    subscribe(admin, server, DigestFrequency.WEEKLY)
    for past in range(10):
        full_day(server, day - timedelta(days=past + 1))
    assert run_at(datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)) == 0
    assert mail.outbox == []


def test_the_weekly_digest_on_monday_covers_the_previous_monday_to_sunday(server, admin):
    subscribe(admin, server, DigestFrequency.WEEKLY)
    for day in LAST_WEEK:
        full_day(server, day)
    assert run_at(datetime(2026, 11, 23, 4, 0, tzinfo=UTC)) == 1
    assert run_at(datetime(2026, 11, 23, 22, 0, tzinfo=UTC)) == 0

    (message,) = mail.outbox
    assert message.subject == "[Mailroom] Acme-1: weekly (mondays) digest for Mon 2026-11-16 – Sun 2026-11-22"
    assert "Delivered:      6,300" in message.body
    assert "Failed:         700 (10.00 %)" in message.body
    assert "Sun 2026-11-22: 900 / 100 / 2" in message.body
    rows = message.attachments[0][1].splitlines()
    assert len(rows) == 8
    assert [row.split(",")[0] for row in rows[1:]] == [d.isoformat() for d in LAST_WEEK]
    delivery = DigestDelivery.objects.get()
    assert (delivery.period_start, delivery.period_end) == (LAST_WEEK[0], LAST_WEEK[-1])


def test_the_weekly_digest_names_the_days_still_missing_after_the_cutoff(server, admin):
    subscribe(admin, server, DigestFrequency.WEEKLY)
    for day in LAST_WEEK[:5]:
        full_day(server, day)
    assert run_at(datetime(2026, 11, 23, 8, 0, tzinfo=UTC)) == 0  # Sunday not pulled yet
    assert run_at(datetime(2026, 11, 23, 10, 0, tzinfo=UTC)) == 1
    assert "Figures missing for: 2026-11-21, 2026-11-22." in mail.outbox[0].body


def test_only_subscribers_who_still_have_access_get_digests(server, admin, viewer, marketing, ops, site_admin):
    full_day(server, TUESDAY)
    subscribe(admin, server)
    subscribe(viewer, server)
    subscribe(site_admin, server)
    subscribe(ops, server, DigestFrequency.NONE)
    subscribe(marketing, server)
    Membership.objects.filter(user=marketing).delete()
    assert run_at(WEDNESDAY_3AM) == 3
    assert sorted(m.to[0] for m in mail.outbox) == ["admin@example.com", "root@example.com", "viewer@example.com"]


def test_a_user_who_lost_access_after_the_claim_is_not_mailed(server, viewer):
    subscription = subscribe(viewer, server)
    full_day(server, TUESDAY)
    DigestDelivery.objects.create(subscription=subscription, period_start=TUESDAY, period_end=TUESDAY)
    Membership.objects.filter(user=viewer).delete()
    assert run_at(WEDNESDAY_3AM) == 0
    assert mail.outbox == []


def test_each_server_waits_for_its_own_pull(server, other_server, admin):
    Membership.objects.create(user=admin, server=other_server, role="admin")
    subscribe(admin, server)
    subscribe(admin, other_server)
    full_day(server, TUESDAY)
    assert run_at(WEDNESDAY_3AM) == 1
    assert "Acme-1" in mail.outbox[0].subject


def test_the_beat_task_sends_due_digests_and_retries_alert_mails(server, admin):
    subscribe(admin, server)
    full_day(server, TUESDAY)
    with time_machine.travel(WEDNESDAY_3AM, tick=False), mock.patch("reporting.alerts.notify_pending") as retry:
        assert digest_tasks.send_due_digests.apply().get() == 1
    retry.assert_called_once_with()


def test_a_preview_is_mailed_now_and_is_not_a_delivery(server, viewer):
    subscribe(viewer, server, DigestFrequency.WEEKLY)
    for day in LAST_WEEK:
        full_day(server, day)
    with time_machine.travel(datetime(2026, 11, 26, 15, 0, tzinfo=UTC), tick=False):
        digest = digests.send_preview(user=viewer, server=server, frequency=DigestFrequency.WEEKLY)
    assert (digest.period_start, digest.period_end) == (LAST_WEEK[0], LAST_WEEK[-1])
    (message,) = mail.outbox
    assert message.subject.startswith("[Preview] [Mailroom] Acme-1: weekly (mondays) digest for Mon 2026-11-16")
    assert "This is a preview you asked for" in message.body
    assert not DigestDelivery.objects.exists()


@pytest.mark.parametrize(
    ("frequency", "now", "expected"),
    [
        # Nightly, before today's digest went out: today's, covering yesterday.
        ("nightly", datetime(2026, 11, 25, 3, 0, tzinfo=UTC), (TUESDAY, TUESDAY, datetime(2026, 11, 25, 9, 0))),
        # Nightly, past today's cutoff but not sent yet (a new subscriber): today's, due now.
        ("nightly", datetime(2026, 11, 25, 12, 0, tzinfo=UTC), (TUESDAY, TUESDAY, datetime(2026, 11, 25, 9, 0))),
        # Weekly on a Thursday: next Monday, covering this Monday to Sunday.
        (
            "weekly",
            datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
            (date(2026, 11, 23), date(2026, 11, 29), datetime(2026, 11, 30, 9, 0)),
        ),
    ],
)
def test_the_next_send_is_shown_for_the_subscription(server, viewer, frequency, now, expected):
    subscription = subscribe(viewer, server, frequency)
    found = digests.next_send(subscription, now)
    assert found is not None
    assert (found.period_start, found.period_end, found.at_latest) == (
        expected[0],
        expected[1],
        expected[2].replace(tzinfo=UTC),
    )
    assert found.overdue is (now >= found.at_latest)


def test_the_next_send_skips_a_period_already_sent(server, viewer):
    subscription = subscribe(viewer, server)
    DigestDelivery.objects.create(
        subscription=subscription, period_start=TUESDAY, period_end=TUESDAY, sent_at=WEDNESDAY_3AM
    )
    found = digests.next_send(subscription, WEDNESDAY_3AM + timedelta(minutes=5))
    assert found is not None and found.period_end == date(2026, 11, 25)
    assert found.at_latest == datetime(2026, 11, 26, 9, 0, tzinfo=UTC) and not found.overdue
    assert digests.next_send(ReportSubscription(user=viewer, server=server), WEDNESDAY_3AM) is None


@pytest.mark.django_db(transaction=True)
def test_a_claim_locked_by_a_running_send_is_left_alone(server, admin):
    """Two beat runs at once: the second finds the row locked by the first and sends nothing."""
    subscription = subscribe(admin, server)
    full_day(server, TUESDAY)
    delivery = DigestDelivery.objects.create(subscription=subscription, period_start=TUESDAY, period_end=TUESDAY)
    locked, release = threading.Event(), threading.Event()

    def first_run() -> None:
        try:
            with transaction.atomic():
                DigestDelivery.objects.select_for_update().get(pk=delivery.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=first_run)
    holder.start()
    try:
        assert locked.wait(10)
        assert digests.deliver(delivery.pk) is False
    finally:
        release.set()
        holder.join(10)
    assert mail.outbox == []
    assert digests.deliver(delivery.pk) is True
    assert digests.deliver(delivery.pk) is False
    assert len(mail.outbox) == 1


def test_the_command_sends_what_beat_would_and_nothing_twice(server, admin):
    subscribe(admin, server)
    full_day(server, TUESDAY)
    out = StringIO()
    with time_machine.travel(WEDNESDAY_3AM, tick=False):
        call_command("send_report_digests", stdout=out)
        call_command("send_report_digests", stdout=out)
    assert out.getvalue().splitlines() == [
        "Sent 1 digest(s) and 0 alert e-mail(s).",
        "Sent 0 digest(s) and 0 alert e-mail(s).",
    ]
    assert len(mail.outbox) == 1


def test_a_new_subscriber_after_the_cutoff_gets_yesterdays_digest_with_the_next_run(server, admin):
    full_day(server, TUESDAY)
    noon = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    subscription = subscribe(admin, server)
    assert digests.next_send(subscription, noon).overdue
    assert run_at(noon + timedelta(minutes=15)) == 1
    assert mail.outbox[0].subject.endswith("Tue 2026-11-24")


def test_beat_runs_the_digest_task_every_quarter_hour(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["reports-send-digests"]
    assert entry["task"] == digest_tasks.send_due_digests.name == "reporting.digest_tasks.send_due_digests"
    assert entry["schedule"] == 900.0 and entry["options"]["expires"] < 900
