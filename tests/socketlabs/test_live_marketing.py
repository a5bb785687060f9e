"""The Marketing API (lists, contacts, custom fields), client → sandbox over real HTTP.

The Marketing API cannot create lists or custom fields, so those are written straight into the
sandbox; everything else goes through the client and is checked against the sandbox's rows.
"""

from __future__ import annotations

import pytest

import socketlabs
from sandbox.models import SandboxContact, SandboxContactList, SandboxCustomField
from socketlabs import SocketLabsClient
from tests.sandbox.conftest import SandboxKeys
from tests.socketlabs.conftest import LIVE_MARKS
from tests.socketlabs.test_live_coverage import covers

pytestmark = LIVE_MARKS


@covers("marketing.lists.list", "marketing.lists.add_contact", "marketing.lists.add_existing_contact")
def test_it_pages_lists_and_adds_contacts_to_them(live_client: SocketLabsClient, live_keys: SandboxKeys) -> None:
    lists = [SandboxContactList.objects.create(server=live_keys.server, name=f"List {n}") for n in range(5)]

    every = list(live_client.marketing.lists.iter_all(count=2))  # index 0, 2, 4

    assert [(c.id, c.name) for c in every] == [(lst.pk, lst.name) for lst in lists]
    middle = live_client.marketing.lists.list(index=2, count=2)
    assert (middle.total, middle.index, [c.name for c in middle.items]) == (5, 2, ["List 2", "List 3"])

    added = live_client.marketing.lists.add_contact(
        lists[0].pk, email_address="Ann@Example.net", first_name="Ann", last_name="Lee"
    )

    stored = SandboxContact.objects.get(server=live_keys.server)
    assert added is not None
    assert (added.id, added.email_address, added.first_name, added.last_name) == (
        stored.pk,
        "ann@example.net",
        "Ann",
        "Lee",
    )
    assert list(stored.lists.all()) == [lists[0]]
    # An existing address keeps its own names (§7) and joins the second list.
    again = live_client.marketing.lists.add_contact(lists[1].pk, email_address="ann@example.net", first_name="X")
    assert again is not None and (again.id, again.first_name) == (stored.pk, "Ann")

    live_client.marketing.lists.add_existing_contact(lists[2].pk, stored.pk)
    live_client.marketing.lists.add_existing_contact(lists[2].pk, stored.pk)  # twice is harmless

    assert sorted(stored.lists.values_list("name", flat=True)) == ["List 0", "List 1", "List 2"]
    assert SandboxContact.objects.count() == 1
    counts = {c.name: c.extra.get("contactCount") for c in live_client.marketing.lists.iter_all()}
    assert counts == {"List 0": 1, "List 1": 1, "List 2": 1, "List 3": 0, "List 4": 0}


@covers(
    "marketing.contacts.list",
    "marketing.contacts.get",
    "marketing.contacts.update",
    "marketing.contacts.delete",
    "marketing.lists.remove_contact",
)
def test_it_pages_reads_updates_removes_and_deletes_contacts(
    live_client: SocketLabsClient, live_keys: SandboxKeys
) -> None:
    shop = SandboxContactList.objects.create(server=live_keys.server, name="Shop")
    for n in range(7):
        live_client.marketing.lists.add_contact(shop.pk, email_address=f"c{n}@example.net", first_name=f"C{n}")
    stored = list(SandboxContact.objects.filter(server=live_keys.server).order_by("id"))

    every = list(live_client.marketing.contacts.iter_all(count=3))  # index 0, 3, 6

    assert [(c.id, c.email_address, c.first_name) for c in every] == [
        (s.pk, s.email_address, s.first_name) for s in stored
    ]
    last_page = live_client.marketing.contacts.list(index=6, count=3)
    assert (last_page.total, [c.email_address for c in last_page.items]) == (7, ["c6@example.net"])
    one = live_client.marketing.contacts.get(stored[3].pk)
    assert (one.id, one.email_address, one.first_name, one.last_name) == (stored[3].pk, "c3@example.net", "C3", "")

    updated = live_client.marketing.contacts.update(stored[3].pk, email_address="new3@example.net", last_name="Lee")

    stored[3].refresh_from_db()
    assert (stored[3].email_address, stored[3].first_name, stored[3].last_name) == ("new3@example.net", "C3", "Lee")
    assert updated is not None and (updated.email_address, updated.last_name) == ("new3@example.net", "Lee")
    with pytest.raises(socketlabs.ConflictError) as caught:
        live_client.marketing.contacts.update(stored[3].pk, email_address="c4@example.net")
    assert caught.value.message == "Another contact already has c4@example.net."

    live_client.marketing.lists.remove_contact(shop.pk, email_address="c5@example.net")

    assert set(shop.contacts.values_list("email_address", flat=True)) == {
        s.email_address for s in stored if s.email_address != "c5@example.net"
    }
    assert SandboxContact.objects.filter(email_address="c5@example.net").exists()  # off the list, not deleted

    live_client.marketing.contacts.delete(stored[0].pk)

    assert not SandboxContact.objects.filter(pk=stored[0].pk).exists()
    with pytest.raises(socketlabs.NotFoundError):
        live_client.marketing.contacts.get(stored[0].pk)
    assert live_client.marketing.contacts.list().total == 6


@covers("marketing.custom_fields.list", "marketing.contacts.set_custom_fields", "marketing.contacts.unsubscribe")
def test_it_sets_custom_fields_and_unsubscribes_contacts(live_client: SocketLabsClient, live_keys: SandboxKeys) -> None:
    SandboxCustomField.objects.create(server=live_keys.server, name="Plan", data_type="Text")
    SandboxCustomField.objects.create(server=live_keys.server, name="City", data_type="Text")
    contact = SandboxContact.objects.create(server=live_keys.server, email_address="ann@example.net")

    fields = live_client.marketing.custom_fields.list()

    assert [(f.name, f.type) for f in fields] == [("City", "Text"), ("Plan", "Text")]
    assert {f.id for f in fields} == set(SandboxCustomField.objects.values_list("pk", flat=True))

    live_client.marketing.contacts.set_custom_fields(contact.pk, {"plan": "Gold", "City": "Oslo"})

    contact.refresh_from_db()
    assert contact.custom_fields == {"Plan": "Gold", "City": "Oslo"}
    read = live_client.marketing.contacts.get(contact.pk)
    assert (read.custom_field("Plan"), read.custom_field("City")) == ("Gold", "Oslo")
    live_client.marketing.contacts.set_custom_fields(contact.pk, {"City": None})  # None clears
    contact.refresh_from_db()
    assert contact.custom_fields == {"Plan": "Gold"}
    with pytest.raises(socketlabs.ValidationError) as caught:
        live_client.marketing.contacts.set_custom_fields(contact.pk, {"Shoe size": "44"})
    assert caught.value.status == 400 and caught.value.permanent is True
    assert caught.value.message == "[0].name: 'Shoe size' is not a custom field."
    contact.refresh_from_db()
    assert contact.custom_fields == {"Plan": "Gold"}  # nothing half-written

    live_client.marketing.contacts.unsubscribe("ann@example.net")
    live_client.marketing.contacts.unsubscribe("new@example.net")

    assert dict(SandboxContact.objects.values_list("email_address", "unsubscribed")) == {
        "ann@example.net": True,
        "new@example.net": True,
    }
    assert live_client.marketing.contacts.get(contact.pk).extra.get("unsubscribed") is True


@covers("marketing.custom_fields.list")
def test_custom_fields_carry_their_type(live_client: SocketLabsClient, live_keys: SandboxKeys) -> None:
    SandboxCustomField.objects.create(server=live_keys.server, name="Birthday", data_type="Date")

    (field,) = live_client.marketing.custom_fields.list()

    assert (field.name, field.type) == ("Birthday", "Date")
