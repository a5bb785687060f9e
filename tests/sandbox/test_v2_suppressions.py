"""API v2 suppressions S1–S5: check, add, remove, search with filters and paging, CSV download, plan flag."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from django.http import StreamingHttpResponse
from django.test import Client

from sandbox.models import SandboxSuppression
from tests.sandbox.conftest import SandboxKeys
from tests.sandbox.test_v2_domains import Api

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client: Client, sandbox_server: SandboxKeys) -> Api:
    return Api(client, sandbox_server)


def suppress(keys: SandboxKeys, address: str, reason: str, day: int, source: str = "api") -> None:
    SandboxSuppression.objects.create(
        server=keys.server,
        email_address=address,
        reason=reason,
        source=source,
        last_update=datetime(2024, 5, day, 12, 0, tzinfo=UTC),
    )


@pytest.fixture
def listed(sandbox_server: SandboxKeys) -> SandboxKeys:
    suppress(sandbox_server, "ann@example.net", "Bounce", 1)
    suppress(sandbox_server, "andy@example.net", "Complaint", 2)
    suppress(sandbox_server, "bob@example.org", "Unsubscribe", 3)
    suppress(sandbox_server, "bea@example.org", "Bounce", 4)
    suppress(sandbox_server, "carl@example.com", "CustomerRequest", 5)
    return sandbox_server


def addresses(response: Any) -> list[str]:
    return [row["emailAddress"] for row in response.json()["data"]]


# --- S1–S3 ---------------------------------------------------------------------------------
def test_it_checks_one_address_case_insensitively(api: Api, listed: SandboxKeys) -> None:
    response = api("get", "/suppressions?EmailAddress=Ann@Example.NET")
    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "emailAddress": "ann@example.net",
            "reason": "Bounce",
            "suppressionLastUpdate": "2024-05-01T12:00:00Z",
            "source": "api",
        }
    }
    assert api("get", "/suppressions?emailAddress=nobody@example.net").status_code == 404
    assert api("get", "/suppressions").status_code == 422


def test_it_adds_by_query_string_with_customer_request_as_default_reason(api: Api) -> None:
    response = api("post", "/suppressions?emailAddress=New@Example.com")
    assert response.status_code == 200
    assert response.json()["data"]["reason"] == "CustomerRequest"
    assert SandboxSuppression.objects.get().email_address == "new@example.com"


def test_it_adds_by_json_body_with_a_reason(api: Api) -> None:
    response = api("post", "/suppressions", {"EmailAddress": "x@example.com", "reason": "complaint"})
    assert response.json()["data"] == {
        "emailAddress": "x@example.com",
        "reason": "Complaint",
        "suppressionLastUpdate": response.json()["data"]["suppressionLastUpdate"],
        "source": "api",
    }


def test_it_refuses_duplicates_bad_addresses_and_unknown_reasons(api: Api) -> None:
    api("post", "/suppressions?emailAddress=x@example.com")
    dup = api("post", "/suppressions?emailAddress=X@example.com")
    assert dup.status_code == 409 and dup.json()["errors"][0]["errorType"] == "Conflict"
    bad = api("post", "/suppressions", {"emailAddress": "not-an-address", "reason": "Because"})
    assert bad.status_code == 422
    assert [e["message"].split(":")[0] for e in bad.json()["errors"]] == ["emailAddress", "reason"]
    assert SandboxSuppression.objects.count() == 1


def test_it_removes_an_address_and_404s_when_absent(api: Api, listed: SandboxKeys) -> None:
    response = api("delete", "/suppressions/remove?emailAddress=bob@example.org")
    assert response.status_code == 200
    assert response.json()["data"]["emailAddress"] == "bob@example.org"
    assert not SandboxSuppression.objects.filter(email_address="bob@example.org").exists()
    missing = api("delete", "/suppressions/remove?emailAddress=bob@example.org")
    assert missing.status_code == 404 and missing.json()["errors"][0]["errorType"] == "NotFound"


# --- S4 search --------------------------------------------------------------------------------
def test_it_searches_newest_first_by_default(api: Api, listed: SandboxKeys) -> None:
    body = api("get", "/suppressions/search").json()
    assert body["total"] == 5
    assert addresses_of(body) == [
        "carl@example.com",
        "bea@example.org",
        "bob@example.org",
        "andy@example.net",
        "ann@example.net",
    ]


def addresses_of(body: dict[str, Any]) -> list[str]:
    return [row["emailAddress"] for row in body["data"]]


def test_it_pages_from_zero_and_keeps_the_total(api: Api, listed: SandboxKeys) -> None:
    pages = [
        addresses(
            api("get", f"/suppressions/search?pageSize=2&pageNumber={n}&sortField=emailAddress&sortDirection=asc")
        )
        for n in range(4)
    ]
    assert pages == [
        ["andy@example.net", "ann@example.net"],
        ["bea@example.org", "bob@example.org"],
        ["carl@example.com"],
        [],
    ]
    assert api("get", "/suppressions/search?pageSize=2&pageNumber=2").json()["total"] == 5


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("emailAddress=AN", ["andy@example.net", "ann@example.net"]),
        ("domain=example.org", ["bea@example.org", "bob@example.org"]),
        ("domain=@EXAMPLE.org", ["bea@example.org", "bob@example.org"]),
        ("reason=bounce", ["ann@example.net", "bea@example.org"]),
        ("startDate=2024-05-02&endDate=2024-05-03", ["andy@example.net", "bob@example.org"]),
        ("endDate=2024-05-01", ["ann@example.net"]),
        ("domain=example.net&reason=Complaint", ["andy@example.net"]),
    ],
)
def test_it_filters_searches(api: Api, listed: SandboxKeys, query: str, expected: list[str]) -> None:
    body = api("get", f"/suppressions/search?{query}&sortField=emailAddress&sortDirection=asc").json()
    assert addresses_of(body) == expected
    assert body["total"] == len(expected)


def test_it_sorts_descending_with_dsc(api: Api, listed: SandboxKeys) -> None:
    found = addresses(api("get", "/suppressions/search?sortField=EMAILADDRESS&sortDirection=dsc&pageSize=2"))
    assert found == ["carl@example.com", "bob@example.org"]


def test_it_rejects_bad_search_parameters_one_error_each(api: Api, listed: SandboxKeys) -> None:
    response = api(
        "get",
        "/suppressions/search?pageSize=0&pageNumber=-1&sortField=colour&sortDirection=up&startDate=May&reason=x",
    )
    assert response.status_code == 422
    fields = [e["message"].split(":")[0] for e in response.json()["errors"]]
    assert sorted(fields) == sorted(["pageSize", "pageNumber", "sortField", "sortDirection", "startDate", "reason"])


# --- S5 download ------------------------------------------------------------------------------
def test_it_streams_a_csv_with_the_address_in_the_fourth_column(api: Api, listed: SandboxKeys, client: Client) -> None:
    response = api("get", "/suppressions/download?sortField=suppressionLastUpdate&sortDirection=dsc")
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["serverId", "suppressionLastUpdate", "reason", "emailAddress", "source"]
    assert [r[3] for r in rows[1:]] == [
        "carl@example.com",
        "bea@example.org",
        "bob@example.org",
        "andy@example.net",
        "ann@example.net",
    ]
    assert rows[1] == ["17001", "2024-05-05T12:00:00Z", "CustomerRequest", "carl@example.com", "api"]


def test_its_download_honours_the_search_filters(api: Api, listed: SandboxKeys) -> None:
    response = api("get", "/suppressions/download?domain=example.org&sortField=emailAddress&sortDirection=asc")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r[3] for r in rows[1:]] == ["bea@example.org", "bob@example.org"]


def test_its_download_of_an_empty_list_is_just_the_header(api: Api) -> None:
    response = api("get", "/suppressions/download")
    assert b"".join(response.streaming_content).decode().splitlines() == [
        "serverId,suppressionLastUpdate,reason,emailAddress,source"
    ]


# --- the plan flag ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "rest"),
    [
        ("get", "/suppressions?emailAddress=ann@example.net"),
        ("post", "/suppressions?emailAddress=new@example.net"),
        ("delete", "/suppressions/remove?emailAddress=ann@example.net"),
        ("get", "/suppressions/search"),
        ("get", "/suppressions/download"),
    ],
)
def test_every_suppression_path_is_403_without_the_plan_feature(
    api: Api, listed: SandboxKeys, method: str, rest: str
) -> None:
    listed.server.suppression_enabled = False
    listed.server.save()
    response = api(method, rest)
    assert response.status_code == 403
    assert response.json()["data"] is None
    assert response.json()["errors"][0]["errorType"] == "FeatureNotEnabled"
    assert SandboxSuppression.objects.count() == 5
