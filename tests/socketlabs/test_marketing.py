"""Marketing API (§7, §0a): Basic auth with ServerId : key, lists, contacts, custom fields, index/count paging."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from responses import matchers

from socketlabs import SocketLabsClient
from tests.socketlabs.conftest import MARKETING, MARKETING_KEY, SERVER_ID

BASIC = "Basic " + base64.b64encode(f"{SERVER_ID}:{MARKETING_KEY}".encode()).decode()
AUTH = matchers.header_matcher({"Authorization": BASIC, "Accept": "application/json"})


def q(**params: object) -> Callable[..., Any]:
    return matchers.query_param_matcher({k: str(v) for k, v in params.items()})


def envelope(items: list[dict], total: int) -> dict:
    return {
        "timestamp": "2024-05-01T10:00:00Z",
        "totalCount": total,
        "totalPages": 1,
        "count": len(items),
        "collection": items,
    }


CONTACT = {
    "id": 7,
    "emailAddress": "ann@example.net",
    "firstName": "Ann",
    "lastName": "A.",
    "customFields": [{"name": "Plan", "value": "gold"}],
}


def test_it_uses_basic_auth_with_the_server_id_and_marketing_key(client: SocketLabsClient, mocked) -> None:
    mocked.get(f"{MARKETING}/lists", match=[AUTH, q(index=0, count=500)], json=envelope([{"id": 1, "name": "News"}], 1))

    page = client.marketing.lists.list()

    assert [(x.id, x.name) for x in page] == [(1, "News")]
    assert page.total == 1
    assert "Bearer" not in mocked.calls[0].request.headers["Authorization"]


def test_it_adds_contacts_to_a_list_by_address_and_by_id(client: SocketLabsClient, mocked) -> None:
    mocked.put(
        f"{MARKETING}/lists/3/contacts",
        match=[AUTH, matchers.json_params_matcher({"emailAddress": "ann@example.net", "firstName": "Ann"})],
        json=CONTACT,
    )
    mocked.put(f"{MARKETING}/lists/3/contacts/7", match=[AUTH], body="")

    contact = client.marketing.lists.add_contact(3, email_address="ann@example.net", first_name="Ann")
    client.marketing.lists.add_existing_contact(3, 7)

    assert contact is not None and contact.id == 7
    assert contact.custom_field("plan") == "gold"


def test_it_removes_a_contact_from_a_list_and_unsubscribes(client: SocketLabsClient, mocked) -> None:
    mocked.delete(f"{MARKETING}/lists/3/contacts/", match=[AUTH, q(emailAddress="ann@example.net")], body="")
    mocked.post(
        f"{MARKETING}/contacts/unsubscribe/",
        match=[AUTH, matchers.json_params_matcher({"emailAddress": "ann@example.net"})],
        json={},
    )

    client.marketing.lists.remove_contact(3, email_address="ann@example.net")
    client.marketing.contacts.unsubscribe("ann@example.net")

    assert mocked.calls[0].request.url == f"{MARKETING}/lists/3/contacts/?emailAddress=ann%40example.net"


def test_it_pages_through_contacts_by_index_and_count(client: SocketLabsClient, mocked) -> None:
    def contacts(start: int, n: int) -> list[dict]:
        return [{"id": i, "emailAddress": f"u{i}@example.net"} for i in range(start, start + n)]

    mocked.get(f"{MARKETING}/contacts", match=[q(index=0, count=2)], json=envelope(contacts(0, 2), 5))
    mocked.get(f"{MARKETING}/contacts", match=[q(index=2, count=2)], json=envelope(contacts(2, 2), 5))
    mocked.get(f"{MARKETING}/contacts", match=[q(index=4, count=2)], json=envelope(contacts(4, 1), 5))

    ids = [c.id for c in client.marketing.contacts.iter_all(count=2)]

    assert ids == [0, 1, 2, 3, 4]
    assert len(mocked.calls) == 3


def test_it_pages_through_lists_too(client: SocketLabsClient, mocked) -> None:
    mocked.get(f"{MARKETING}/lists", match=[q(index=0, count=1)], json=envelope([{"id": 1, "name": "A"}], 2))
    mocked.get(f"{MARKETING}/lists", match=[q(index=1, count=1)], json=envelope([{"id": 2, "name": "B"}], 2))

    assert [x.name for x in client.marketing.lists.iter_all(count=1)] == ["A", "B"]


def test_it_gets_updates_and_deletes_a_contact(client: SocketLabsClient, mocked) -> None:
    mocked.get(f"{MARKETING}/contacts/7", match=[AUTH], json={**CONTACT, "EmailAddress": "ignored-duplicate"})
    mocked.put(
        f"{MARKETING}/contacts/7",
        match=[AUTH, matchers.json_params_matcher({"firstName": "Annie"})],
        json={**CONTACT, "firstName": "Annie"},
    )
    mocked.delete(f"{MARKETING}/contacts/7", match=[AUTH], body="")

    contact = client.marketing.contacts.get(7)
    assert contact.email_address == "ann@example.net"  # first spelling wins
    updated = client.marketing.contacts.update(7, first_name="Annie")
    assert updated is not None and updated.first_name == "Annie"
    client.marketing.contacts.delete(7)


def test_it_reads_pascal_case_contacts(client: SocketLabsClient, mocked) -> None:
    mocked.get(
        f"{MARKETING}/contacts/8",
        json={
            "Id": 8,
            "EmailAddress": "bo@example.net",
            "CustomFields": [{"Name": "Plan", "Value": "free"}],
            "Score": 3,
        },
    )

    contact = client.marketing.contacts.get(8)

    assert (contact.id, contact.email_address, contact.custom_field("Plan")) == (8, "bo@example.net", "free")
    assert contact.extra == {"Score": 3}


def test_it_lists_custom_fields_and_sets_values(client: SocketLabsClient, mocked) -> None:
    mocked.get(f"{MARKETING}/customfields", match=[AUTH], json=envelope([{"id": 1, "name": "Plan", "type": "Text"}], 1))
    mocked.put(
        f"{MARKETING}/contacts/7/customfields",
        match=[
            AUTH,
            matchers.json_params_matcher([{"name": "Plan", "value": "gold"}, {"name": "City", "value": None}]),
        ],
        body="",
    )

    assert [(f.name, f.type) for f in client.marketing.custom_fields.list()] == [("Plan", "Text")]
    client.marketing.contacts.set_custom_fields(7, {"Plan": "gold", "City": None})
