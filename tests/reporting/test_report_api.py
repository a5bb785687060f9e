"""REST API for report data: days, breakdowns, StreamScore and alerts; read-only, 404 for outsiders."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.test import Client

from accounts.models import ApiToken, Server, User
from reporting import alerts
from reporting.models import ReportBreakdown, ReportDimension, ReportKind
from tests.reporting.report_rows import put_day, put_score

pytestmark = pytest.mark.django_db
D1, D2, D3 = date(2026, 11, 22), date(2026, 11, 23), date(2026, 11, 24)


def api(user: User) -> Client:
    _token, raw = ApiToken.issue(user=user, name="script")
    return Client(headers={"Authorization": f"Bearer {raw}"})


def url(server: Server, what: str) -> str:
    return f"/api/v1/servers/{server.pk}/reports/{what}/"


@pytest.fixture
def reports(server: Server, other_server: Server) -> None:
    for day, failed in ((D1, 1), (D2, 2), (D3, 30)):
        put_day(server, day, delivered=100, failed=failed, complaints=0, opens=10)
        put_score(server, day, 90 - failed)
    put_day(other_server, D3, delivered=5)
    for key, count in (("example.com", 70), ("example.net", 30)):
        ReportBreakdown.objects.create(
            server=server, day=D3, kind=ReportKind.DELIVERED, dimension=ReportDimension.DOMAIN, key=key, count=count
        )
    ReportBreakdown.objects.create(
        server=server, day=D2, kind=ReportKind.FAILED, dimension=ReportDimension.FAILURE_CODE, key="2001", count=2
    )
    alerts.evaluate_days(server, [D1, D2, D3])


def test_a_viewer_reads_report_days_newest_first_with_a_token(viewer, server, reports):
    response = api(viewer).get(url(server, "days"))
    assert response.status_code == 200
    rows = response.json()["results"]
    assert len(rows) == 12  # 3 days × 4 kinds, nothing of the other server
    assert rows[0]["day"] == "2026-11-24"
    assert {(r["kind"], r["total"]) for r in rows if r["day"] == "2026-11-24"} == {
        ("delivered", 100),
        ("failed", 30),
        ("complaints", 0),
        ("opens", 10),
    }
    assert set(rows[0]) == {"day", "kind", "total", "unique", "pulled_at"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"kind": "failed"}, [("2026-11-24", 30), ("2026-11-23", 2), ("2026-11-22", 1)]),
        ({"kind": "failed", "from": "2026-11-23"}, [("2026-11-24", 30), ("2026-11-23", 2)]),
        ({"kind": "failed", "to": "2026-11-22"}, [("2026-11-22", 1)]),
        ({"kind": "failed", "from": "2026-11-23", "to": "2026-11-23"}, [("2026-11-23", 2)]),
        ({"kind": "clicks"}, []),
    ],
)
def test_report_days_filter_by_kind_and_range(as_user, viewer, server, reports, query, expected):
    rows = as_user(viewer).get(url(server, "days"), query).json()["results"]
    assert [(r["day"], r["total"]) for r in rows] == expected


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"kind": "bounces"}, "kind", "Unknown kind “bounces”; one of delivered, failed, complaints, opens, clicks"),
        ({"from": "24/11/2026"}, "from", "“24/11/2026” is not a date in the form YYYY-MM-DD."),
        ({"to": "yesterday"}, "to", "“yesterday” is not a date in the form YYYY-MM-DD."),
        ({"from": "2026-11-24", "to": "2026-11-01"}, "from", "“from” (2026-11-24) is after “to” (2026-11-01)."),
    ],
)
def test_bad_filters_get_a_400_naming_the_parameter(as_user, viewer, server, reports, query, field, message):
    response = as_user(viewer).get(url(server, "days"), query)
    assert response.status_code == 400
    assert message in response.json()[field]


def test_breakdowns_filter_by_kind_dimension_and_range(as_user, viewer, server, reports):
    client = as_user(viewer)
    rows = client.get(url(server, "breakdowns"), {"dimension": "domain"}).json()["results"]
    assert {(r["key"], r["count"]) for r in rows} == {("example.com", 70), ("example.net", 30)}
    rows = client.get(url(server, "breakdowns"), {"kind": "failed"}).json()["results"]
    assert rows == [{"day": "2026-11-23", "kind": "failed", "dimension": "failure_code", "key": "2001", "count": 2}]
    assert client.get(url(server, "breakdowns"), {"to": "2026-11-22"}).json()["results"] == []
    bad = client.get(url(server, "breakdowns"), {"dimension": "country"})
    assert bad.status_code == 400 and "Unknown dimension “country”" in bad.json()["dimension"]


def test_streamscore_lists_days_with_ratings(as_user, viewer, server, reports):
    rows = as_user(viewer).get(url(server, "streamscore"), {"from": "2026-11-23"}).json()["results"]
    assert [(r["day"], r["score"], r["rating"]) for r in rows] == [
        ("2026-11-24", 60, "Fair"),
        ("2026-11-23", 88, "Good"),
    ]


def test_alerts_list_with_open_and_kind_filters(as_user, viewer, admin, server, reports):
    client = as_user(viewer)
    rows = client.get(url(server, "alerts")).json()["results"]
    assert [(r["day"], r["kind"], r["open"]) for r in rows] == [
        ("2026-11-24", "streamscore", True),
        ("2026-11-24", "failure_rate", True),
    ]
    failure = next(r for r in rows if r["kind"] == "failure_rate")
    assert failure["value"] == pytest.approx(100 * 30 / 130)
    assert failure["threshold"] == 5.0
    alerts.dismiss(alert=alerts.open_alerts([server]).get(kind="failure_rate"), actor=admin)
    assert [r["kind"] for r in client.get(url(server, "alerts"), {"open": "true"}).json()["results"]] == ["streamscore"]
    assert [r["kind"] for r in client.get(url(server, "alerts"), {"open": "false"}).json()["results"]] == [
        "failure_rate"
    ]
    assert [r["kind"] for r in client.get(url(server, "alerts"), {"kind": "failure_rate"}).json()["results"]] == [
        "failure_rate"
    ]
    assert client.get(url(server, "alerts"), {"open": "maybe"}).status_code == 400


@pytest.mark.parametrize("what", ["days", "breakdowns", "streamscore", "alerts"])
def test_outsiders_get_404_and_anonymous_callers_401(outsider, server, reports, what):
    assert api(outsider).get(url(server, what)).status_code == 404
    assert Client().get(url(server, what)).status_code == 401


@pytest.mark.parametrize("what", ["days", "breakdowns", "streamscore", "alerts"])
def test_the_report_api_is_read_only_even_for_admins(admin, server, reports, what):
    client = api(admin)
    for method in ("post", "put", "patch", "delete"):
        assert getattr(client, method)(url(server, what)).status_code == 405


def test_long_lists_are_paged_by_cursor(as_user, viewer, server):
    start = date(2026, 1, 1)
    for offset in range(150):
        put_score(server, start + timedelta(days=offset), 80)
    client = as_user(viewer)
    first = client.get(url(server, "streamscore"), {"page_size": 100}).json()
    assert len(first["results"]) == 100 and first["next"]
    second = client.get(first["next"]).json()
    days = [r["day"] for r in first["results"] + second["results"]]
    assert len(days) == 150 == len(set(days))
    assert days == sorted(days, reverse=True)


def test_the_schema_documents_the_report_endpoints(as_user, viewer):
    schema = as_user(viewer).get("/api/schema/?format=json").json()
    for what in ("days", "breakdowns", "streamscore", "alerts"):
        assert f"/api/v1/servers/{{server_id}}/reports/{what}/" in schema["paths"]
    components = schema["components"]["schemas"]
    assert components["ReportKindEnum"]["enum"] == [k.value for k in ReportKind]
    assert components["AlertKindEnum"]["enum"] == ["streamscore", "failure_rate", "complaint_rate"]
