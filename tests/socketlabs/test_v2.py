"""API v2: each call's method, path, query and body (§0a table, §3.2), envelopes, and lenient records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from responses import matchers

import socketlabs
from socketlabs import SocketLabsClient
from tests.socketlabs.conftest import API, BEARER_KEY, SERVER_ID

S = f"{API}/servers/{SERVER_ID}"
AUTH = matchers.header_matcher({"Authorization": f"Bearer {BEARER_KEY}", "Accept": "application/json"})


def q(**params: object) -> Callable[..., Any]:
    return matchers.query_param_matcher({k: str(v) for k, v in params.items()})


def body(data: object) -> Callable[..., Any]:
    return matchers.json_params_matcher(data)


# --- servers ------------------------------------------------------------------------------------------
def test_it_gets_this_server_with_the_bearer_key(client: SocketLabsClient, mocked) -> None:
    mocked.get(
        S, match=[AUTH], json={"data": {"serverId": SERVER_ID, "name": "Acme", "accountId": 9, "status": "Active"}}
    )

    info = client.get_server()

    assert info == socketlabs.ServerInfo(server_id=SERVER_ID, name="Acme", account_id=9, status="Active")


def test_it_fills_in_the_server_id_when_the_answer_leaves_it_out(client: SocketLabsClient, mocked) -> None:
    mocked.get(S, json={"data": {"name": "Acme"}})

    assert client.get_server().server_id == SERVER_ID


def test_it_lists_servers(client: SocketLabsClient, mocked) -> None:
    mocked.get(
        f"{API}/servers", json={"data": [{"serverId": 1, "name": "A"}, {"serverId": 2, "name": "B"}], "total": 2}
    )

    assert [s.server_id for s in client.servers.list()] == [1, 2]


def test_it_reads_records_leniently(client: SocketLabsClient, mocked) -> None:
    mocked.get(
        S,
        json={
            "DATA": {
                "ServerID": "12345",
                "Name": None,
                "accountid": "not-a-number",
                "status": "Active",
                "streamScore": 88,
            }
        },
    )

    info = client.get_server()

    assert info.server_id == SERVER_ID
    assert info.name == ""  # null takes the default
    assert info.account_id is None  # unreadable: default, raw value kept
    assert info.extra == {"accountid": "not-a-number", "streamScore": 88}


# --- API keys and credentials ----------------------------------------------------------------------------
def test_it_creates_an_api_key_and_keeps_the_secret_out_of_repr(client: SocketLabsClient, mocked) -> None:
    secret = "Q" * 20 + "." + "z" * 40
    mocked.post(
        f"{S}/api-keys",
        match=[AUTH, body({"name": "ci", "permissions": ["injection"]})],
        json={
            "data": {
                "id": 31,
                "name": "ci",
                "publicPart": "Q" * 20,
                "permissions": ["injection"],
                "createdOn": "2024-05-01T10:00:00Z",
                "lastUsedOn": None,
                "secret": secret,
            }
        },
    )

    key = client.api_keys.create(name="ci", permissions=[socketlabs.KeyPermission.INJECTION])

    assert key.id == "31"
    assert key.secret == secret
    assert key.created_on == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert key.permissions == ("injection",)
    assert secret not in repr(key)


def test_it_lists_and_deletes_api_keys(client: SocketLabsClient, mocked) -> None:
    mocked.get(f"{S}/api-keys", json={"data": [{"id": "k1", "name": "a", "publicPart": "p"}], "total": 1})
    mocked.delete(f"{S}/api-keys/k1", json={"data": {"id": "k1"}})

    (key,) = client.api_keys.list()
    assert key.secret is None
    client.api_keys.delete(key.id)


def test_it_reads_injection_credentials(client: SocketLabsClient, mocked) -> None:
    mocked.get(
        f"{S}/credentials/injection-api",
        json={"data": {"apiKey": "legacyKey", "gateway": "https://inject-cx.socketlabs.com/api/v1/email"}},
    )

    credentials = client.injection_credentials()

    assert credentials.gateway == "https://inject-cx.socketlabs.com/api/v1/email"
    assert credentials.api_key == "legacyKey"
    assert "legacyKey" not in repr(credentials)


# --- domains -------------------------------------------------------------------------------------------
DOMAIN = {
    "domain": "mail.example.com",
    "status": "Pending",
    "verificationRecord": "socketlabs-verify=abc",
    "createdOn": "2024-05-01T10:00:00.1234567Z",
    "verifiedOn": None,
}


def test_it_manages_sending_domains(client: SocketLabsClient, mocked) -> None:
    mocked.get(f"{S}/sending-domains", json={"data": [DOMAIN], "total": 1})
    mocked.post(f"{S}/sending-domains", match=[body({"domain": "mail.example.com"})], json={"data": DOMAIN})
    mocked.get(f"{S}/sending-domains/mail.example.com", json={"data": DOMAIN})
    mocked.post(f"{S}/sending-domains/mail.example.com/verify", json={"data": {**DOMAIN, "status": "Verified"}})
    mocked.delete(f"{S}/sending-domains/mail.example.com", json={"data": DOMAIN})

    assert client.sending_domains.list()[0].verification_record == "socketlabs-verify=abc"
    added = client.sending_domains.add("mail.example.com")
    assert added.created_on == datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert client.sending_domains.get("mail.example.com").status == "Pending"
    assert client.sending_domains.verify("mail.example.com").status == "Verified"
    client.sending_domains.delete("mail.example.com")


def test_it_quotes_path_values(client: SocketLabsClient, mocked) -> None:
    mocked.get(f"{S}/sending-domains/a%2Fb%3Fc", json={"data": {"domain": "a/b?c"}})

    assert client.sending_domains.get("a/b?c").domain == "a/b?c"


DKIM = {
    "domain": "example.com",
    "selector": "s1",
    "dnsHostName": "s1._domainkey.example.com",
    "dnsRecord": "v=DKIM1; k=rsa; p=MIIB",
    "publicKey": "MIIB",
    "validationStatus": "Valid",
}


def test_it_manages_dkim_with_selectors(client: SocketLabsClient, mocked) -> None:
    mocked.get(
        f"{S}/dkim/generate",
        match=[q(domain="example.com", selector="s1")],
        json={"data": {**DKIM, "privateKey": "-----BEGIN PRIVATE KEY-----"}},
    )
    mocked.get(f"{S}/dkim", json={"data": [DKIM], "total": 1})
    mocked.post(
        f"{S}/dkim", match=[body({"domain": "example.com", "selector": "s1", "privateKey": "PK"})], json={"data": DKIM}
    )
    mocked.put(
        f"{S}/dkim/example.com",
        match=[body({"domain": "example.com", "selector": "s2", "privateKey": "PK2"})],
        json={"data": DKIM},
    )
    mocked.delete(f"{S}/dkim/example.com", match=[q(selector="s1")], json={"data": DKIM})

    generated = client.dkim.generate(domain="example.com", selector="s1")
    assert generated.private_key == "-----BEGIN PRIVATE KEY-----"
    assert "PRIVATE KEY" not in repr(generated)
    assert client.dkim.list()[0].dns_host_name == "s1._domainkey.example.com"
    assert client.dkim.add(domain="example.com", selector="s1", private_key="PK").private_key is None
    client.dkim.update(domain="example.com", selector="s2", private_key="PK2")
    client.dkim.delete(domain="example.com", selector="s1")


def test_it_manages_bounce_domains(client: SocketLabsClient, mocked) -> None:
    record = {"domain": "bounce.example.com", "isDefault": "true", "validationStatus": "Pending"}
    mocked.get(f"{S}/bounce", json={"data": [record], "total": 1})
    mocked.post(f"{S}/bounce", match=[body({"domain": "bounce.example.com", "isDefault": True})], json={"data": record})
    mocked.put(
        f"{S}/bounce/bounce.example.com",
        match=[body({"domain": "bounce.example.com", "isDefault": False})],
        json={"data": {**record, "isDefault": False}},
    )
    mocked.delete(f"{S}/bounce/bounce.example.com", json={"data": record})

    assert client.bounce_domains.list()[0].is_default is True
    client.bounce_domains.add("bounce.example.com", is_default=True)
    assert client.bounce_domains.update("bounce.example.com", is_default=False).is_default is False
    client.bounce_domains.delete("bounce.example.com")


def test_it_manages_tracking_domains(client: SocketLabsClient, mocked) -> None:
    record = {"domain": "t.example.com", "opensEnabled": True, "clicksEnabled": False, "httpsEnabled": True}
    mocked.get(f"{S}/tracking", json={"data": [record], "total": 1})
    mocked.post(
        f"{S}/tracking",
        match=[body({"domain": "t.example.com", "opensEnabled": True, "clicksEnabled": False, "isDefault": True})],
        json={"data": record},
    )
    mocked.put(
        f"{S}/tracking/t.example.com",
        match=[body({"domain": "t.example.com", "httpsEnabled": True})],
        json={"data": record},
    )
    mocked.delete(f"{S}/tracking/t.example.com", json={"data": record})

    (domain,) = client.tracking_domains.list()
    assert (domain.opens_enabled, domain.clicks_enabled, domain.unsubscribes_enabled) == (True, False, None)
    client.tracking_domains.add("t.example.com", opens_enabled=True, clicks_enabled=False, is_default=True)
    client.tracking_domains.update("t.example.com", https_enabled=True)
    client.tracking_domains.delete("t.example.com")
    with pytest.raises(TypeError, match="bogus"):
        client.tracking_domains.add("t.example.com", bogus=True)


# --- suppressions -----------------------------------------------------------------------------------------
ENTRY = {
    "emailAddress": "ann@example.net",
    "reason": "Bounce",
    "suppressionLastUpdate": "2024-05-01T10:00:00Z",
    "source": "api",
}


def test_it_checks_one_address(client: SocketLabsClient, mocked) -> None:
    mocked.get(f"{S}/suppressions", match=[q(emailAddress="ann@example.net")], json={"data": ENTRY})
    mocked.get(
        f"{S}/suppressions",
        match=[q(emailAddress="bo@example.net")],
        status=404,
        json={"data": None, "errors": [{"errorType": "NotFound", "message": "Not suppressed."}]},
    )

    entry = client.suppressions.check("ann@example.net")
    assert entry is not None and entry.reason == socketlabs.SuppressionReason.BOUNCE
    assert client.suppressions.check("bo@example.net") is None


def test_it_adds_an_address_in_the_query_and_the_body(client: SocketLabsClient, mocked) -> None:
    mocked.post(
        f"{S}/suppressions",
        match=[
            q(emailAddress="ann@example.net"),
            body({"emailAddress": "ann@example.net", "reason": "CustomerRequest"}),
        ],
        json={"data": {**ENTRY, "reason": "CustomerRequest"}},
    )

    entry = client.suppressions.add("ann@example.net", reason=socketlabs.SuppressionReason.CUSTOMER_REQUEST)

    assert entry.reason == "CustomerRequest"


def test_it_removes_an_address_and_says_when_it_was_not_there(client: SocketLabsClient, mocked) -> None:
    mocked.delete(f"{S}/suppressions/remove", match=[q(emailAddress="ann@example.net")], json={"data": ENTRY})
    mocked.delete(
        f"{S}/suppressions/remove",
        match=[q(emailAddress="bo@example.net")],
        status=404,
        json={"data": None, "errors": [{"errorType": "NotFound", "message": "bo@example.net is not suppressed."}]},
    )

    client.suppressions.remove("ann@example.net")
    with pytest.raises(socketlabs.NotFoundError, match="not suppressed"):
        client.suppressions.remove("bo@example.net")


def test_it_searches_with_every_filter(client: SocketLabsClient, mocked) -> None:
    mocked.get(
        f"{S}/suppressions/search",
        match=[
            q(
                emailAddress="ann",
                domain="example.net",
                reason="Bounce",
                startDate="2024-05-01",
                endDate="2024-05-31",
                sortField="emailAddress",
                sortDirection="asc",
                pageNumber=2,
                pageSize=25,
            )
        ],
        json={"data": [ENTRY], "total": 51},
    )

    page = client.suppressions.search(
        email_address="ann",
        domain="example.net",
        reason=socketlabs.SuppressionReason.BOUNCE,
        start_date=date(2024, 5, 1),
        end_date=datetime(2024, 5, 31, 23, 59, tzinfo=UTC),
        sort_field="emailAddress",
        sort_direction="asc",
        page_number=2,
        page_size=25,
    )

    assert page.total == 51
    assert (page.page_number, page.page_size) == (2, 25)
    assert [e.email_address for e in page] == ["ann@example.net"]


def test_it_pages_through_a_search_until_the_total(client: SocketLabsClient, mocked) -> None:
    def rows(start: int, n: int) -> list[dict]:
        return [{"emailAddress": f"u{i}@example.net", "reason": "Bounce"} for i in range(start, start + n)]

    mocked.get(
        f"{S}/suppressions/search",
        match=[q(domain="example.net", pageNumber=0, pageSize=2)],
        json={"data": rows(0, 2), "total": 5},
    )
    mocked.get(
        f"{S}/suppressions/search",
        match=[q(domain="example.net", pageNumber=1, pageSize=2)],
        json={"data": rows(2, 2), "total": 5},
    )
    mocked.get(
        f"{S}/suppressions/search",
        match=[q(domain="example.net", pageNumber=2, pageSize=2)],
        json={"data": rows(4, 1), "total": 5},
    )

    found = [e.email_address for e in client.suppressions.iter_search(domain="example.net", page_size=2)]

    assert found == [f"u{i}@example.net" for i in range(5)]
    assert len(mocked.calls) == 3


def test_it_stops_paging_at_an_empty_page_even_if_the_total_says_more(client: SocketLabsClient, mocked) -> None:
    mocked.get(f"{S}/suppressions/search", json={"data": [ENTRY], "total": 10})
    mocked.get(f"{S}/suppressions/search", json={"data": [], "total": 10})

    assert len(list(client.suppressions.iter_search(page_size=1))) == 1
    assert len(mocked.calls) == 2


def test_it_stops_paging_at_a_short_page_when_there_is_no_total(client: SocketLabsClient, mocked) -> None:
    mocked.get(f"{S}/suppressions/search", json={"data": [ENTRY, ENTRY]})
    mocked.get(f"{S}/suppressions/search", json={"data": [ENTRY]})

    assert len(list(client.suppressions.iter_search(page_size=2))) == 3
    assert len(mocked.calls) == 2


# --- reports ---------------------------------------------------------------------------------------------
def test_it_reads_report_overviews_aggregates_and_lists(client: SocketLabsClient, mocked) -> None:
    mocked.get(
        f"{S}/reports/failed/overview",
        match=[q(startDate="2024-05-01", endDate="2024-05-31")],
        json={"data": {"total": 7, "unique": 6, "rate": "0.02"}},
    )
    mocked.get(
        f"{S}/reports/tracking/aggregate",
        match=[q(startDate="2024-05-01", endDate="2024-05-02", groupBy="domain")],
        json={"data": [{"key": "example.net", "count": 4}, {"key": "example.org", "count": 1}], "total": 2},
    )
    mocked.get(
        f"{S}/reports/complaints/list",
        match=[q(startDate="2024-05-01", endDate="2024-05-02", pageNumber=0, pageSize=50)],
        json={
            "data": [
                {
                    "type": "Complaint",
                    "dateTime": "2024-05-02T08:00:00Z",
                    "address": "ann@example.net",
                    "messageId": "m-1",
                    "fblType": "abuse",
                }
            ],
            "total": 1,
        },
    )

    overview = client.reports.overview("failed", start_date="2024-05-01", end_date="2024-05-31")
    assert (overview.total, overview.unique, overview.rate) == (7, 6, 0.02)
    rows = client.reports.aggregate(
        socketlabs.ReportKind.TRACKING,
        group_by=socketlabs.GroupBy.DOMAIN,
        start_date="2024-05-01",
        end_date="2024-05-02",
    )
    assert [(r.key, r.count) for r in rows] == [("example.net", 4), ("example.org", 1)]
    page = client.reports.list("complaints", start_date="2024-05-01", end_date="2024-05-02", page_size=50)
    (event,) = page.items
    assert (event.type, event.address, event.message_id) == ("Complaint", "ann@example.net", "m-1")
    assert event.extra == {"fblType": "abuse"}


def test_it_refuses_an_unknown_report_kind_before_any_call(client: SocketLabsClient, mocked) -> None:
    with pytest.raises(ValueError):
        client.reports.overview("opens")
    with pytest.raises(ValueError):
        client.reports.aggregate("failed", group_by="week")


def test_it_pages_through_a_report_list(client: SocketLabsClient, mocked) -> None:
    url = f"{S}/reports/delivered/list"
    mocked.get(
        url,
        match=[q(startDate="2024-05-01", endDate="2024-05-01", pageNumber=0, pageSize=2)],
        json={"data": [{"address": "a"}, {"address": "b"}], "total": 3},
    )
    mocked.get(
        url,
        match=[q(startDate="2024-05-01", endDate="2024-05-01", pageNumber=1, pageSize=2)],
        json={"data": [{"address": "c"}], "total": 3},
    )

    events = client.reports.iter_list("delivered", start_date="2024-05-01", end_date="2024-05-01", page_size=2)

    assert [e.address for e in events] == ["a", "b", "c"]


def test_it_reads_message_detail_and_recipient_search(client: SocketLabsClient, mocked) -> None:
    mocked.get(
        f"{S}/reports/messages/detail",
        match=[
            q(
                startDate="2024-05-01",
                endDate="2024-05-02",
                filters="mailingId:spring",
                sortField="to",
                sortDirection="asc",
                pageNumber=0,
                pageSize=10,
            )
        ],
        json={
            "data": [
                {
                    "messageId": "m-1",
                    "to": "ann@example.net",
                    "from": "shop@example.com",
                    "events": [
                        {"type": "Queued", "dateTime": "2024-05-01T10:00:00Z"},
                        {"type": "Delivered", "dateTime": "bad"},
                    ],
                }
            ],
            "total": 1,
        },
    )
    mocked.get(
        f"{S}/reports/recipient-search/",
        match=[
            q(
                toEmailAddress="ann@example.net",
                startDate="2024-05-01",
                endDate="2024-05-02",
                sortField="queuedTime",
                sortDirection="dsc",
                pageNumber=0,
                pageSize=100,
            )
        ],
        json={
            "data": [
                {
                    "from": "shop@example.com",
                    "to": "ann@example.net",
                    "subject": "Hi",
                    "status": "Delivered",
                    "statusDate": "2024-05-01T10:00:00Z",
                }
            ],
            "total": 1,
        },
    )

    detail = client.reports.message_detail(
        start_date="2024-05-01",
        end_date="2024-05-02",
        filters="mailingId:spring",
        sort_field="to",
        sort_direction="asc",
        page_size=10,
    )
    (message,) = detail.items
    assert message.from_address == "shop@example.com"
    assert [e.type for e in message.events] == ["Queued", "Delivered"]
    assert message.events[1].date_time is None and message.events[1].extra == {"dateTime": "bad"}
    (row,) = client.reports.recipient_search("ann@example.net", start_date="2024-05-01", end_date="2024-05-02").items
    assert (row.from_address, row.status) == ("shop@example.com", "Delivered")


def test_it_reads_streamscore(client: SocketLabsClient, mocked) -> None:
    mocked.get(
        f"{S}/streamscore",
        match=[q(startDate="2024-04-01", endDate="2024-04-30")],
        json={
            "data": {
                "score": 87,
                "rating": "Good",
                "history": [{"date": "2024-04-01", "score": 85}, {"date": "2024-04-02T00:00:00Z", "score": 86}],
            }
        },
    )

    score = client.reports.streamscore(start_date="2024-04-01", end_date="2024-04-30")

    assert (score.score, score.rating) == (87, "Good")
    assert [(p.day, p.score) for p in score.history] == [(date(2024, 4, 1), 85), (date(2024, 4, 2), 86)]


# --- push endpoints -----------------------------------------------------------------------------------------
def test_it_manages_event_webhooks(client: SocketLabsClient, mocked) -> None:
    hook = {
        "id": 5,
        "url": "https://mailroom.test/hooks/x/",
        "events": ["Delivered", "Failed"],
        "format": "json",
        "status": "Active",
    }
    mocked.get(f"{S}/event-webhooks", json={"data": [hook], "total": 1})
    mocked.post(
        f"{S}/event-webhooks",
        match=[
            body(
                {
                    "url": "https://mailroom.test/hooks/x/",
                    "secretKey": "whsec",
                    "events": ["Delivered", "Failed"],
                    "format": "json",
                }
            )
        ],
        json={"data": {**hook, "secretKey": "whsec"}},
    )
    mocked.delete(f"{S}/event-webhooks/5", json={"data": hook})

    assert client.event_webhooks.list()[0].events == ("Delivered", "Failed")
    created = client.event_webhooks.create(
        url="https://mailroom.test/hooks/x/", secret_key="whsec", events=["Delivered", "Failed"]
    )
    assert created.id == "5" and "whsec" not in repr(created)
    client.event_webhooks.delete(created.id)


def test_it_manages_inbound_parse_endpoints(client: SocketLabsClient, mocked) -> None:
    record = {
        "id": "ip-1",
        "domainOrAddress": "parse.example.com",
        "url": "https://mailroom.test/hooks/in/",
        "status": "Active",
    }
    mocked.get(f"{S}/inbound-parse", json={"data": [record], "total": 1})
    mocked.post(
        f"{S}/inbound-parse",
        match=[
            body(
                {
                    "domainOrAddress": "parse.example.com",
                    "url": "https://mailroom.test/hooks/in/",
                    "secretKey": "s",
                    "validationKey": "v",
                }
            )
        ],
        json={"data": record},
    )
    mocked.delete(f"{S}/inbound-parse/ip-1", json={"data": record})

    assert client.inbound_parse.list()[0].domain_or_address == "parse.example.com"
    client.inbound_parse.create(
        domain_or_address="parse.example.com", url="https://mailroom.test/hooks/in/", secret_key="s", validation_key="v"
    )
    client.inbound_parse.delete("ip-1")


def test_it_accepts_an_empty_answer_to_a_delete(client: SocketLabsClient, mocked) -> None:
    mocked.delete(f"{S}/event-webhooks/9", status=204, body="")

    client.event_webhooks.delete(9)


def test_it_works_against_a_base_url_with_a_port_and_a_prefix(make_client, mocked) -> None:
    client = make_client(api_url="http://127.0.0.1:54321/sandbox/api/v2/")
    mocked.get(f"http://127.0.0.1:54321/sandbox/api/v2/servers/{SERVER_ID}", json={"data": {"serverId": SERVER_ID}})

    assert client.get_server().server_id == SERVER_ID


def test_it_narrows_tracking_reports_by_type(client: SocketLabsClient, mocked) -> None:
    mocked.get(
        f"{S}/reports/tracking/overview",
        match=[q(startDate="2024-05-01", endDate="2024-05-02", trackingType="Click")],
        json={"data": {"total": 3}},
    )

    assert (
        client.reports.overview("tracking", start_date="2024-05-01", end_date="2024-05-02", tracking_type="Click").total
        == 3
    )


def test_it_writes_message_filters_given_as_a_mapping(client: SocketLabsClient, mocked) -> None:
    mocked.get(
        f"{S}/reports/messages/detail",
        match=[q(filters="mailingId:spring,to:ann@example.net", pageNumber=0, pageSize=100)],
        json={"data": [], "total": 0},
    )

    page = client.reports.message_detail(filters={"mailingId": "spring", "to": "ann@example.net"})

    assert page.items == () and page.total == 0
