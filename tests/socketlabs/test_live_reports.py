"""Reports, message detail, recipient search and StreamScore, client → sandbox over real HTTP.

Events are made to happen the way the sandbox makes them: mail injected through the client to a
server with zero delays (and no random outcomes), then the due events dispatched. Every figure
is checked against the sandbox's event rows.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sandbox import webhooks
from sandbox.models import SandboxEvent, SandboxMessage, SandboxServer
from socketlabs import BasicMessage, SocketLabsClient
from tests.sandbox.conftest import SandboxKeys
from tests.socketlabs.conftest import LIVE_MARKS
from tests.socketlabs.test_live_coverage import covers

pytestmark = LIVE_MARKS

# The local part decides the outcome (§0a simulation).
SPRING = ["plain@example.net", "bounce@example.net", "complain@example.net", "open@example.net", "click@example.net"]
SUMMER = ["unsub@other.test", "plain2@other.test"]


def make_events_happen(client: SocketLabsClient, keys: SandboxKeys) -> None:
    SandboxServer.objects.filter(pk=keys.server.pk).update(
        bounce_rate=0, deferral_rate=0, complaint_rate=0, open_rate=0, click_rate=0, unsubscribe_rate=0
    )
    html = '<p>Spring sale: <a href="https://example.com/sale">see it</a></p>'
    spring = BasicMessage(
        from_address="shop@example.com",
        to=SPRING,
        subject="Spring sale",
        html_body=html,
        mailing_id="spring",
        message_id="msg-spring",
    )
    summer = BasicMessage(
        from_address="news@example.com",
        to=SUMMER,
        subject="Summer news",
        html_body=html,
        mailing_id="summer",
        message_id="msg-summer",
    )
    assert client.inject([spring, summer]).ok
    webhooks.dispatch_due()
    assert not SandboxEvent.objects.filter(happened=False).exists()


def happened(event_type: str, **filters: object) -> list[str]:
    return sorted(
        SandboxEvent.objects.filter(type=event_type, happened=True, **filters).values_list("address", flat=True)
    )


@covers("reports.events")
def test_it_reads_overview_aggregate_and_list_for_every_kind(
    live_client: SocketLabsClient, live_keys: SandboxKeys
) -> None:
    make_events_happen(live_client, live_keys)
    delivered, failed = happened("Delivered"), happened("Failed")
    complaints, tracking = happened("Complaint"), happened("Tracking")
    assert (len(delivered), failed, complaints) == (6, ["bounce@example.net"], ["complain@example.net"])
    assert tracking == ["click@example.net", "open@example.net", "unsub@other.test"]

    for kind, addresses in [
        ("delivered", delivered),
        ("failed", failed),
        ("complaints", complaints),
        ("tracking", tracking),
    ]:
        overview = live_client.reports.overview(kind)
        assert (overview.total, overview.unique) == (len(addresses), len(set(addresses))), kind
        listed = list(live_client.reports.iter_list(kind, page_size=2))
        assert sorted(e.address for e in listed) == addresses, kind
        assert sum(row.count for row in live_client.reports.aggregate(kind, group_by="day")) == len(addresses), kind
    assert live_client.reports.overview("delivered").rate == round(6 / 7, 4)
    assert live_client.reports.overview("failed").rate == round(1 / 7, 4)
    assert live_client.reports.overview("complaints").rate == round(1 / 6, 4)
    assert live_client.reports.overview("tracking", tracking_type="Click").total == 1

    today = datetime.now(UTC).date().isoformat()
    assert [(r.key, r.count) for r in live_client.reports.aggregate("delivered", group_by="day")] == [(today, 6)]
    by_domain = {r.key: r.count for r in live_client.reports.aggregate("delivered", group_by="domain")}
    assert by_domain == {"example.net": 4, "other.test": 2}
    by_mailing = {r.key: r.count for r in live_client.reports.aggregate("delivered", group_by="mailingId")}
    assert by_mailing == {"spring": 4, "summer": 2}

    (bounce,) = live_client.reports.list("failed").items
    stored = SandboxEvent.objects.get(type="Failed", address="bounce@example.net")
    assert (bounce.type, bounce.address, bounce.mailing_id, bounce.message_id) == (
        "Failed",
        "bounce@example.net",
        "spring",
        "msg-spring",
    )
    assert (bounce.failure_type, bounce.failure_code) == ("Permanent", stored.payload["FailureCode"])
    assert bounce.date_time == stored.due_at
    clicks = live_client.reports.list("tracking", tracking_type="Click").items
    assert [(e.address, e.tracking_type, e.url) for e in clicks] == [
        ("click@example.net", "Click", "https://example.com/sale")
    ]
    page = live_client.reports.list("delivered", page_size=4, page_number=1, sort_field="address", sort_direction="asc")
    assert (page.total, [e.address for e in page.items]) == (6, delivered[4:])


@covers("reports.message_detail", "reports.recipient_search", "streamscore.get")
def test_it_reads_message_detail_recipient_search_and_streamscore(
    live_client: SocketLabsClient, live_keys: SandboxKeys
) -> None:
    make_events_happen(live_client, live_keys)

    detail = live_client.reports.message_detail(filters={"mailingId": "spring"})

    stored = SandboxMessage.objects.get(mailing_id="spring")
    assert detail.total == 1
    (message,) = detail.items
    assert (message.message_id, message.mailing_id, message.from_address, message.subject) == (
        "msg-spring",
        "spring",
        "shop@example.com",
        "Spring sale",
    )
    assert message.queued_time == stored.created_on
    happened_events = SandboxEvent.objects.filter(outbound=stored, happened=True)
    assert sorted(e.type for e in message.events) == sorted(happened_events.values_list("type", flat=True))
    to_bounce = live_client.reports.message_detail(filters="to:bounce@example.net")
    assert [m.mailing_id for m in to_bounce.items] == ["spring"]

    found = live_client.reports.recipient_search("bounce@example.net")

    (row,) = found.items
    assert (row.to, row.from_address, row.subject, row.status) == (
        "bounce@example.net",
        "shop@example.com",
        "Spring sale",
        "Failed",
    )
    assert (row.mailing_id, row.message_id) == ("spring", "msg-spring")
    assert row.status_date == SandboxEvent.objects.get(type="Failed", address="bounce@example.net").due_at
    assert [r.status for r in live_client.reports.iter_recipient_search("plain2@other.test")] == ["Delivered"]
    assert live_client.reports.recipient_search("nobody@example.net").items == ()

    score = live_client.streamscore()

    # 6 delivered, 1 failed, 1 complaint: 100 - 200·(1/7) - 5000·(1/6), floored at 0.
    expected = max(0, min(100, round(100 - 200 * (1 / 7) - 5000 * (1 / 6))))
    assert (score.score, score.rating) == (expected, "Poor")
    today = datetime.now(UTC).date()
    assert [(p.day, p.score) for p in score.history] == [(today, expected)]
    assert live_client.reports.streamscore(start_date=today, end_date=today) == score


@covers("reports.message_detail")
def test_message_detail_names_the_recipients(live_client: SocketLabsClient, live_keys: SandboxKeys) -> None:
    message = BasicMessage(from_address="shop@example.com", to=SPRING[:2], subject="Hi", text_body="Hello")
    assert live_client.inject(message).ok

    (detail,) = live_client.reports.message_detail().items

    assert detail.to is not None and all(address in detail.to for address in SPRING[:2])
