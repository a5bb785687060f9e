"""API v2 reports, message detail (R1), recipient search (R2) and StreamScore, from seeded events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from sandbox import reports
from sandbox.models import EventType, SandboxEvent, SandboxMessage
from tests.sandbox.conftest import SandboxKeys
from tests.sandbox.test_v2_domains import Api

pytestmark = pytest.mark.django_db

RANGE = "startDate=2024-05-01&endDate=2024-05-02"
DELIVERED = {"Response": "250 2.0.0 OK", "LocalIp": "10.0.0.5", "RemoteMta": "mx.example"}
PERMANENT = {"FailureType": "Permanent", "FailureCode": 2001, "Reason": "550 5.1.1 user unknown", "SecretKey": "s3"}
SUPPRESSED = {"FailureType": "Suppressed", "FailureCode": 9999, "Reason": "NA"}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 5, day, hour, minute, tzinfo=UTC)


def send(keys: SandboxKeys, to: str, when: datetime, *, mailing: str = "", subject: str = "Hi") -> SandboxMessage:
    return SandboxMessage.objects.create(
        server=keys.server,
        transaction_receipt="r-" + to,
        message_index=0,
        message_id=f"msg-{to}-{when:%d%H}",
        mailing_id=mailing,
        from_address="shop@example.com",
        to=[{"emailAddress": to, "friendlyName": ""}],
        subject=subject,
        created_on=when,
    )


def event(
    message: SandboxMessage, kind: str, when: datetime, payload: dict[str, Any] | None = None, *, happened: bool = True
) -> SandboxEvent:
    return SandboxEvent.objects.create(
        server=message.server,
        outbound=message,
        type=kind,
        address=message.to[0]["emailAddress"],
        message_id=message.message_id,
        mailing_id=message.mailing_id,
        due_at=when,
        happened=happened,
        payload=payload or {},
    )


@pytest.fixture
def traffic(sandbox_server: SandboxKeys) -> SandboxKeys:
    """Two days of traffic; see each test for the numbers it expects."""
    m1 = send(sandbox_server, "a@x.com", at(1, 9), mailing="spring")
    event(m1, EventType.QUEUED, at(1, 9))
    event(m1, EventType.DELIVERED, at(1, 10), DELIVERED)
    event(m1, EventType.TRACKING, at(1, 11), {"TrackingType": "Open", "ClientIp": "203.0.113.1"})
    event(m1, EventType.TRACKING, at(1, 11, 30), {"TrackingType": "Click", "Url": "https://example.com/p"})
    m2 = send(sandbox_server, "b@y.com", at(1, 9, 5), mailing="spring")
    event(m2, EventType.FAILED, at(1, 10, 5), PERMANENT)
    m3 = send(sandbox_server, "c@x.com", at(1, 9, 10))
    event(m3, EventType.DELIVERED, at(1, 10, 10), DELIVERED)
    event(m3, EventType.COMPLAINT, at(1, 12), {"FblType": "abuse"})
    m4 = send(sandbox_server, "d@z.com", at(1, 9, 20))
    event(m4, EventType.FAILED, at(1, 10, 20), SUPPRESSED)
    m5 = send(sandbox_server, "a@x.com", at(2, 8), mailing="summer")
    event(m5, EventType.DELIVERED, at(2, 9), DELIVERED)
    event(m5, EventType.TRACKING, at(2, 9, 30), {"TrackingType": "Open"}, happened=False)
    m6 = send(sandbox_server, "e@x.com", at(2, 8, 30))
    event(m6, EventType.DEFERRED, at(2, 9), {"DeferralCode": 4001})
    event(m6, EventType.DELIVERED, at(2, 10), DELIVERED, happened=False)
    # Outside the range and on another day: never counted with RANGE.
    m7 = send(sandbox_server, "late@x.com", at(3, 8))
    event(m7, EventType.DELIVERED, at(3, 9), DELIVERED)
    return sandbox_server


@pytest.fixture
def api(client: Client, traffic: SandboxKeys) -> Api:
    return Api(client, traffic)


def data(response: Any) -> Any:
    assert response.status_code == 200, response.content
    return response.json()["data"]


# --- overview / aggregate / list ----------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("delivered", {"total": 3, "unique": 2, "rate": 0.6}),
        ("failed", {"total": 2, "unique": 2, "rate": 0.4}),
        ("complaints", {"total": 1, "unique": 1, "rate": 0.3333}),
        ("tracking", {"total": 2, "unique": 1, "rate": 0.3333}),
    ],
)
def test_it_computes_overviews_from_happened_events(api: Api, kind: str, expected: dict[str, Any]) -> None:
    assert data(api("get", f"/reports/{kind}/overview?{RANGE}")) == expected


def test_it_filters_tracking_by_type(api: Api) -> None:
    assert data(api("get", f"/reports/tracking/overview?{RANGE}&trackingType=click"))["total"] == 1
    assert api("get", f"/reports/delivered/overview?{RANGE}&trackingType=click").status_code == 422


def test_its_overview_counts_in_the_database_not_in_python(api: Api, django_assert_max_num_queries: Any) -> None:
    with django_assert_max_num_queries(8):  # auth + key touch + two aggregates + the request log
        api("get", f"/reports/delivered/overview?{RANGE}")


@pytest.mark.parametrize(
    ("kind", "group_by", "expected"),
    [
        ("delivered", "day", [{"key": "2024-05-01", "count": 2}, {"key": "2024-05-02", "count": 1}]),
        (
            "delivered",
            "hour",
            [{"key": "2024-05-01T10:00:00Z", "count": 2}, {"key": "2024-05-02T09:00:00Z", "count": 1}],
        ),
        ("delivered", "domain", [{"key": "x.com", "count": 3}]),
        ("failed", "domain", [{"key": "y.com", "count": 1}, {"key": "z.com", "count": 1}]),
        (
            "delivered",
            "mailingId",
            [{"key": "", "count": 1}, {"key": "spring", "count": 1}, {"key": "summer", "count": 1}],
        ),
    ],
)
def test_it_aggregates_by_day_hour_domain_and_mailing(
    api: Api, kind: str, group_by: str, expected: list[dict[str, Any]]
) -> None:
    response = api("get", f"/reports/{kind}/aggregate?{RANGE}&groupBy={group_by}")
    assert data(response) == expected
    assert response.json()["total"] == len(expected)


def test_it_rejects_an_unknown_grouping(api: Api) -> None:
    response = api("get", f"/reports/delivered/aggregate?{RANGE}&groupBy=week")
    assert response.status_code == 422
    assert response.json()["errors"][0]["message"].startswith("groupBy:")


def test_it_lists_events_shaped_like_webhooks_in_camel_case(api: Api) -> None:
    response = api("get", f"/reports/failed/list?{RANGE}&sortDirection=asc")
    rows = data(response)
    assert response.json()["total"] == 2
    assert rows[0] == {
        "type": "Failed",
        "dateTime": "2024-05-01T10:05:00Z",
        "serverId": 17001,
        "address": "b@y.com",
        "mailingId": "spring",
        "messageId": "msg-b@y.com-0109",
        "failureType": "Permanent",
        "failureCode": 2001,
        "reason": "550 5.1.1 user unknown",
    }
    assert "secretKey" not in rows[0]
    assert rows[1]["failureType"] == "Suppressed"


def test_it_pages_event_lists_newest_first(api: Api) -> None:
    first = data(api("get", f"/reports/delivered/list?{RANGE}&pageSize=2&pageNumber=0"))
    second = data(api("get", f"/reports/delivered/list?{RANGE}&pageSize=2&pageNumber=1"))
    assert [r["dateTime"] for r in first] == ["2024-05-02T09:00:00Z", "2024-05-01T10:10:00Z"]
    assert [r["dateTime"] for r in second] == ["2024-05-01T10:00:00Z"]
    assert first[0]["response"] == "250 2.0.0 OK"


def test_it_reports_the_last_30_days_by_default(api: Api, traffic: SandboxKeys) -> None:
    assert data(api("get", "/reports/delivered/overview"))["total"] == 0
    recent = send(traffic, "now@x.com", timezone.now())
    event(recent, EventType.DELIVERED, timezone.now() - timedelta(minutes=1), DELIVERED)
    assert data(api("get", "/reports/delivered/overview"))["total"] == 1


def test_it_rejects_bad_dates(api: Api) -> None:
    response = api("get", "/reports/delivered/list?startDate=2024-05-03&endDate=2024-05-01&pageSize=x")
    assert response.status_code == 422
    assert {e["message"].split(":")[0] for e in response.json()["errors"]} == {"startDate", "pageSize"}
    assert api("get", "/reports/delivered/overview?startDate=yesterday").status_code == 422


# --- message detail (R1) -------------------------------------------------------------------------
def test_it_gives_message_detail_with_all_happened_events(api: Api) -> None:
    response = api(
        "get", f"/reports/messages/detail?{RANGE}&filters=mailingId:spring&sortField=sentTime&sortDirection=asc"
    )
    rows = data(response)
    assert response.json()["total"] == 2
    assert [r["to"][0]["emailAddress"] for r in rows] == ["a@x.com", "b@y.com"]
    assert [e["type"] for e in rows[0]["events"]] == ["Queued", "Delivered", "Tracking", "Tracking"]
    assert rows[0]["queuedTime"] == "2024-05-01T09:00:00Z"
    assert rows[0]["subject"] == "Hi"


def test_it_filters_message_detail_by_plain_parameters(api: Api) -> None:
    assert api("get", f"/reports/messages/detail?{RANGE}&to=A@X.com").json()["total"] == 2
    assert api("get", f"/reports/messages/detail?{RANGE}&messageId=msg-c@x.com-0109").json()["total"] == 1
    bad = api("get", f"/reports/messages/detail?{RANGE}&filters=colour:red")
    assert bad.status_code == 422


def test_it_leaves_events_still_to_come_out_of_message_detail(api: Api) -> None:
    rows = data(api("get", "/reports/messages/detail?startDate=2024-05-02&endDate=2024-05-02&to=e@x.com"))
    assert [e["type"] for e in rows[0]["events"]] == ["Deferred"]


# --- recipient search (R2) ------------------------------------------------------------------------
def test_it_finds_a_recipients_messages_with_their_latest_status(api: Api) -> None:
    response = api("get", "/reports/recipient-search/?toEmailAddress=A@x.com&sortField=queuedTime&sortDirection=dsc")
    rows = data(response)
    assert response.json()["total"] == 2
    assert rows[0] == {
        "from": "shop@example.com",
        "to": "a@x.com",
        "subject": "Hi",
        "status": "Delivered",
        "statusDate": "2024-05-02T09:00:00Z",
        "queuedTime": "2024-05-02T08:00:00Z",
        "messageId": "msg-a@x.com-0208",
        "mailingId": "summer",
    }
    assert rows[1]["statusDate"] == "2024-05-01T10:00:00Z"


@pytest.mark.parametrize(
    ("address", "status"), [("d@z.com", "Suppressed"), ("b@y.com", "Failed"), ("e@x.com", "Deferred")]
)
def test_it_names_suppressed_failed_and_deferred_recipients(api: Api, address: str, status: str) -> None:
    assert data(api("get", f"/reports/recipient-search?toEmailAddress={address}"))[0]["status"] == status


def test_it_needs_an_address_to_search(api: Api) -> None:
    assert api("get", "/reports/recipient-search/").status_code == 422
    assert api("get", "/reports/recipient-search/?toEmailAddress=nobody@x.com").json() == {"data": [], "total": 0}


# --- StreamScore ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("delivered", "failed", "complaints", "score", "rating"),
    [
        (0, 0, 0, 100, "Good"),
        (1000, 0, 0, 100, "Good"),
        (980, 20, 1, 91, "Good"),  # 2% failures, 0.1% complaints
        (900, 100, 0, 80, "Good"),
        (950, 50, 5, 64, "Fair"),
        (800, 200, 2, 48, "Poor"),
        (10, 90, 5, 0, "Poor"),
    ],
)
def test_its_streamscore_formula(delivered: int, failed: int, complaints: int, score: int, rating: str) -> None:
    assert reports.score_for(delivered, failed, complaints) == score
    assert reports.rating_for(score) == rating


def test_it_scores_the_stream_per_day_ignoring_suppressed_failures(api: Api) -> None:
    result = data(api("get", f"/streamscore?{RANGE}"))
    # Day 1: 2 delivered, 1 real failure (+1 suppressed, ignored), 1 complaint → 0. Day 2: clean → 100.
    assert result == {
        "score": 0,
        "rating": "Poor",
        "history": [{"date": "2024-05-01", "score": 0}, {"date": "2024-05-02", "score": 100}],
    }
    clean = data(api("get", "/streamscore?startDate=2024-05-02&endDate=2024-05-02"))
    assert clean == {"score": 100, "rating": "Good", "history": [{"date": "2024-05-02", "score": 100}]}


def test_a_stream_without_traffic_scores_100(client: Client, sandbox_server: SandboxKeys) -> None:
    result = Api(client, sandbox_server)("get", "/streamscore").json()["data"]
    assert result == {"score": 100, "rating": "Good", "history": []}
