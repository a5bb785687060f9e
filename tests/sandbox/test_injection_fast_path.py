"""The injection fast path (issue 7) gives what the plain code gave: templates, key lookup, ids, payloads."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from pytest_django import DjangoAssertNumQueries

from sandbox import simulation
from sandbox.injection import (
    Template,
    fold_keys,
    keys_with_server,
    reserve_and_check,
    substitute,
)
from sandbox.models import (
    EventType,
    Permission,
    SandboxApiKey,
    SandboxEvent,
    SandboxMessage,
    SandboxSuppression,
    key_hash,
)
from sandbox.simulation import Outbound, _JsonMemo
from tests.sandbox.conftest import SandboxKeys
from tests.sandbox.injection_support import merge_message, post_injection, request_body

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
VALUES = {"a": "1", "b": "two", "first.name": "dotted", "x-y": "dash", "pct": "%%a%%", "empty": ""}
TEXTS = [
    "",
    "no tokens at all",
    "%%a%%",
    "%%A%%%%b%%",
    "x %%a%% y %%B%% z",
    "%%%a%%",
    "%%a%%%",
    "100% and %%missing%% and %%",
    "%%first.name%% %%X-Y%%",
    "%%pct%% stays as given",
    "%%" + "n" * 129 + "%%",
    "%% a %%",
    "%%empty%%|%%b%%|",
    "ü %%b%% ü",
]


@pytest.mark.parametrize("text", TEXTS)
def test_a_template_renders_what_substitute_gives(text: str) -> None:
    assert Template(text).render(VALUES) == substitute(text, VALUES)


def test_a_template_without_tokens_is_the_text_itself() -> None:
    template = Template("plain")
    assert template.constant
    assert template.render({}) is template.text


def test_fold_keys_folds_every_key_and_keeps_every_value() -> None:
    data: dict[Any, Any] = {
        "ServerId": 1,
        "Messages": [{"MergeData": {"PerMessage": [[{"Field": "Name", "Value": "Ann"}]]}, "Tags": ["A", None]}],
        7: "seven",
    }
    assert fold_keys(data) == {
        "serverid": 1,
        "messages": [{"mergedata": {"permessage": [[{"field": "Name", "value": "Ann"}]]}, "tags": ["A", None]}],
        "7": "seven",
    }


# --- the key lookup -----------------------------------------------------------------------


def _orm_keys(server_id: int, hashes: list[str]) -> list[SandboxApiKey]:
    return list(
        SandboxApiKey.objects.select_related("server__account").filter(server__server_id=server_id, key_hash__in=hashes)
    )


def _fields(instance: Any) -> dict[str, Any]:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_the_key_lookup_loads_what_the_orm_loads(
    sandbox_server: SandboxKeys, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    hashes = [key_hash(sandbox_server.injection_key), key_hash(sandbox_server.api_key)]
    with django_assert_num_queries(1):
        found = keys_with_server(sandbox_server.server_id, hashes)
        accounts = [key.server.account for key in found]  # loaded with the key: no further query
    expected = _orm_keys(sandbox_server.server_id, hashes)
    assert [k.pk for k in found] == [k.pk for k in expected] and len(found) == 2
    for mine, theirs in zip(found, expected, strict=True):
        assert _fields(mine) == _fields(theirs)
        assert _fields(mine.server) == _fields(theirs.server)
        assert _fields(mine.server.account) == _fields(theirs.server.account)
        assert mine.permissions == theirs.permissions and isinstance(mine.permissions, list)
        assert mine._state.adding is False and mine._state.db == "default"
    assert accounts[0].pk == sandbox_server.account.pk


def test_the_key_lookup_is_oldest_first_and_only_for_its_server(
    sandbox_server: SandboxKeys, other_sandbox_server: SandboxKeys
) -> None:
    older = SandboxApiKey.objects.get(key_hash=key_hash(sandbox_server.injection_key))
    _, newer_raw = SandboxApiKey.issue(server=sandbox_server.server, name="newer", permissions=[Permission.INJECTION])
    SandboxApiKey.objects.filter(pk=older.pk).update(created_on=datetime(2030, 1, 1, tzinfo=UTC))
    hashes = [key_hash(sandbox_server.injection_key), key_hash(newer_raw), key_hash(other_sandbox_server.injection_key)]
    found = keys_with_server(sandbox_server.server_id, hashes)
    assert [k.name for k in found] == ["newer", "injection"]
    assert [k.pk for k in found] == [k.pk for k in _orm_keys(sandbox_server.server_id, hashes)]
    assert keys_with_server(999_999, hashes) == []


def test_a_key_whose_permission_is_removed_stops_opening_injection_at_once(
    client: Client, sandbox_server: SandboxKeys
) -> None:
    body = request_body(sandbox_server.server_id)
    assert post_injection(client, body, key=sandbox_server.injection_key).status_code == 200
    SandboxApiKey.objects.filter(key_hash=key_hash(sandbox_server.injection_key)).update(permissions=[])
    response = post_injection(client, body, key=sandbox_server.injection_key)
    assert response.status_code == 401
    assert json.loads(response.content)["ErrorCode"] == "InvalidAuthentication"


# --- ids and suppressions in one round trip --------------------------------------------------


def test_ids_and_suppressions_come_in_one_query_as_before(
    sandbox_server: SandboxKeys, other_sandbox_server: SandboxKeys, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    SandboxSuppression.objects.create(server=sandbox_server.server, email_address="ann@example.net", reason="Bounce")
    SandboxSuppression.objects.create(
        server=other_sandbox_server.server, email_address="bo@example.net", reason="Bounce"
    )
    addresses = {"ann@example.net", "bo@example.net", "cy@example.net"}
    assert connection.vendor == "postgresql"  # the one-query path, not the fallback
    with transaction.atomic():
        before = simulation.reserve_ids(SandboxMessage, 1)[0]
        with django_assert_num_queries(1):
            ids, suppressed = reserve_and_check(sandbox_server.server, 5, addresses)
        after = simulation.reserve_ids(SandboxMessage, 1)[0]
    assert ids == list(range(before + 1, before + 6)) and after == before + 6
    assert suppressed == {"ann@example.net"}
    orm = SandboxSuppression.objects.filter(server=sandbox_server.server, email_address__in=addresses)
    assert suppressed == set(orm.values_list("email_address", flat=True))


# --- stored JSON and planned events ---------------------------------------------------------


def test_the_json_memo_writes_what_json_dumps_writes() -> None:
    memo = _JsonMemo()
    shared = [{"key": "a", "value": "ü"}]
    values: list[Any] = [[], {}, shared, shared, [{"name": "x", "contentType": "t", "size": 3}], ["t1", "t2"], {"A": 1}]
    assert [memo(v) for v in values] == [json.dumps(v) for v in values]
    assert memo([1]) == "[1]" and memo([2]) == "[2]"  # equal shapes, distinct objects: never mixed up


def _outbound(pk: int, addresses: list[str]) -> Outbound:
    return Outbound(
        server_id=1, transaction_receipt="r", message_index=0, row_index=0, message_id="m", mailing_id="",
        from_address="news@example.com", from_name="", reply_to="",
        to=[{"emailAddress": a, "friendlyName": ""} for a in addresses], cc=[], bcc=[], subject="s",
        text_body="t", html_body='<a href="https://example.com/x">x</a>', amp_body="", api_template="",
        custom_headers=[], metadata=[], tags=[], attachments=[], size=10, client="c", created_on=NOW, pk=pk,
    )  # fmt: skip


def _reference_plan(server: Any, messages: list[Outbound]) -> list[tuple[Any, ...]]:
    """The events as planned before the fast path: a new `random.Random(seed + id)` per message."""
    planned = []
    for message in messages:
        rng = random.Random(server.seed + (message.pk or 0))
        url = ""
        for address in simulation.recipients(message):  # type: ignore[arg-type]
            kind = simulation.outcome_for(address, server=server, suppressed=set(), rng=rng)
            if kind in (simulation.CLICK, simulation.OPEN_CLICK) and not url:
                url = simulation.first_link(message.html_body)
            for event_type, due_at, payload in simulation.timeline(
                kind,
                address=address,
                from_address=message.from_address,
                size=message.size,
                start=NOW,
                delivery=timedelta(seconds=server.delivery_delay_seconds),
                tracking=timedelta(seconds=server.tracking_delay_seconds),
                rng=rng,
                url=url or "https://example.com/",
            ):
                planned.append((message.pk, event_type, address, due_at, payload))
    return planned


def test_planned_events_are_those_a_fresh_generator_per_message_gives(sandbox_server: SandboxKeys) -> None:
    server = sandbox_server.server
    server.open_rate, server.click_rate, server.bounce_rate, server.deferral_rate = 0.5, 0.3, 0.1, 0.1
    server.delivery_delay_seconds, server.tracking_delay_seconds = 3, 60
    messages = [_outbound(100 + i, [f"user{i}x{j}@example.net" for j in range(8)]) for i in range(12)]
    planned = simulation.plan_events(server=server, messages=messages, now=NOW, suppressed=set())
    assert [(e.outbound_id, e.type, e.address, e.due_at, e.payload) for e in planned] == _reference_plan(
        server, messages
    )
    assert {EventType.QUEUED, EventType.DELIVERED, EventType.TRACKING, EventType.FAILED} <= {e.type for e in planned}


def test_delivered_payloads_are_shared_per_domain_and_equal_to_a_fresh_one(sandbox_server: SandboxKeys) -> None:
    server = sandbox_server.server
    server.bounce_rate = server.deferral_rate = server.complaint_rate = 0.0
    messages = [_outbound(1, ["a@one.example", "b@one.example", "c@two.example"])]
    events = simulation.plan_events(server=server, messages=messages, now=NOW, suppressed=set())
    delivered = [e for e in events if e.type == EventType.DELIVERED]
    assert [e.address for e in delivered] == ["a@one.example", "b@one.example", "c@two.example"]
    assert [e.payload for e in delivered] == [simulation._delivered(e.address) for e in delivered]
    assert delivered[0].payload is delivered[1].payload and delivered[2].payload is not delivered[0].payload


# --- the whole request, at the size the engine sends -----------------------------------------


def test_a_full_merge_request_stores_every_row_as_substitution_gives(
    client: Client, sandbox_server: SandboxKeys
) -> None:
    SandboxSuppression.objects.create(server=sandbox_server.server, email_address="u3x7@example.net", reason="Bounce")
    rows = [
        [
            [
                {"Field": "DeliveryAddress", "Value": f"U{m}x{i}@Example.net"},
                {"Field": "RecipientName", "Value": f"User\t{m}-{i}"},
                {"Field": "FirstName", "Value": f"First{i}\\"},
                {"Field": "MailroomRecipientId", "Value": str(m * 50 + i)},
            ]
            for i in range(50)
        ]
        for m in range(10)
    ]
    messages = [
        merge_message(
            r,
            MessageId="send-%%MailroomRecipientId%%",
            MailingId="mailing",
            CustomHeaders=[{"Name": "X-Id", "Value": "%%mailroomrecipientid%%"}],
            Metadata=[{"Key": "send", "Value": "9"}],
            Tags=["news"],
        )
        for r in rows
    ]
    response = post_injection(
        client, request_body(sandbox_server.server_id, *messages), key=sandbox_server.injection_key
    )
    assert json.loads(response.content) == {"ErrorCode": "Success", "MessageResults": [], "TransactionReceipt": None}
    stored = list(SandboxMessage.objects.order_by("id"))
    assert [(m.message_index, m.row_index) for m in stored] == [(m, i) for m in range(10) for i in range(50)]
    for message in stored:
        fields = {f["Field"].casefold(): f["Value"] for f in rows[message.message_index][message.row_index]}
        values = {"motto": "be kind", **fields}
        assert message.to == [{"emailAddress": fields["deliveryaddress"], "friendlyName": fields["recipientname"]}]
        assert message.subject == substitute("Hello %%FirstName%%", values)
        assert message.text_body == substitute("Hi %%FirstName%%, %%Motto%%", values)
        assert message.message_id == f"send-{fields['mailroomrecipientid']}"
        assert message.custom_headers == [{"name": "X-Id", "value": fields["mailroomrecipientid"]}]
        assert (message.metadata, message.tags, message.cc, message.attachments) == (
            [{"key": "send", "value": "9"}],
            ["news"],
            [],
            [],
        )
    events = SandboxEvent.objects.filter(server=sandbox_server.server)
    assert events.filter(type=EventType.QUEUED).count() == 500
    failed = events.get(type=EventType.FAILED, address="U3x7@Example.net")
    assert failed.payload["FailureType"] == "Suppressed"
    assert events.filter(type=EventType.DELIVERED, address="U0x0@Example.net").get().payload == {
        "Response": "250 2.0.0 OK: queued",
        "LocalIp": simulation.LOCAL_IP,
        "RemoteMta": "mx.example.net",
    }
