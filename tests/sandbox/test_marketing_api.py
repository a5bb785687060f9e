"""The sandbox's Marketing API: Basic auth (ServerId : marketing key), lists, contacts, custom fields, XML."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from sandbox.models import SandboxContact, SandboxContactList, SandboxCustomField, SandboxRequestLog
from tests.sandbox.conftest import SandboxKeys

pytestmark = pytest.mark.django_db
BASE = "/sandbox/marketing/v1"


def basic(user: str | int, password: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class Mkt:
    def __init__(self, client: Client, keys: SandboxKeys) -> None:
        self.client, self.keys = client, keys

    def __call__(self, method: str, rest: str, body: Any = None, **extra: str) -> Any:
        headers = {**basic(self.keys.server_id, self.keys.marketing_key), **extra}
        if body is None:
            return getattr(self.client, method)(BASE + rest, **headers)
        return getattr(self.client, method)(BASE + rest, body, content_type="application/json", **headers)


@pytest.fixture
def mkt(client: Client, sandbox_server: SandboxKeys) -> Mkt:
    return Mkt(client, sandbox_server)


@pytest.fixture
def newsletter(sandbox_server: SandboxKeys) -> SandboxContactList:
    return SandboxContactList.objects.create(server=sandbox_server.server, name="Newsletter")


@pytest.fixture
def ann(sandbox_server: SandboxKeys) -> SandboxContact:
    return SandboxContact.objects.create(
        server=sandbox_server.server, email_address="ann@example.net", first_name="Ann", last_name="Lee"
    )


# --- authentication ------------------------------------------------------------------------
def test_it_accepts_the_server_id_and_a_marketing_key(mkt: Mkt, newsletter: SandboxContactList) -> None:
    response = mkt("get", "/lists")
    assert response.status_code == 200
    body = response.json()
    assert body["totalCount"] == 1 and body["count"] == 1 and body["totalPages"] == 1
    assert body["timestamp"].endswith("Z")
    assert body["collection"] == [
        {"id": newsletter.pk, "name": "Newsletter", "contactCount": 0, "createdOn": body["collection"][0]["createdOn"]}
    ]


@pytest.mark.parametrize("case", ["none", "wrong-server", "api-key", "bad-password", "bearer", "garbage"])
def test_it_answers_401_with_a_basic_challenge_otherwise(
    client: Client, sandbox_server: SandboxKeys, other_sandbox_server: SandboxKeys, case: str
) -> None:
    headers = {
        "none": {},
        "wrong-server": basic(other_sandbox_server.server_id, sandbox_server.marketing_key),
        "api-key": basic(sandbox_server.server_id, sandbox_server.api_key),
        "bad-password": basic(sandbox_server.server_id, "nope"),
        "bearer": {"HTTP_AUTHORIZATION": f"Bearer {sandbox_server.marketing_key}"},
        "garbage": {"HTTP_AUTHORIZATION": "Basic %%%"},
    }[case]
    response = client.get(BASE + "/lists", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="SocketLabsMarketingAPI"'
    assert response.json()["errors"][0]["errorType"] == "Unauthorized"
    assert SandboxRequestLog.objects.get().api == "marketing"


# --- lists and contacts ---------------------------------------------------------------------
def test_it_adds_an_existing_contact_to_a_list_idempotently(
    mkt: Mkt, newsletter: SandboxContactList, ann: SandboxContact
) -> None:
    for _ in range(2):
        response = mkt("put", f"/lists/{newsletter.pk}/contacts/{ann.pk}")
        assert response.status_code == 200
        assert response.json()["emailAddress"] == "ann@example.net"
    assert list(newsletter.contacts.all()) == [ann]
    assert mkt("put", f"/lists/999/contacts/{ann.pk}").status_code == 404
    assert mkt("put", f"/lists/{newsletter.pk}/contacts/999").status_code == 404


def test_it_creates_a_contact_by_email_when_adding_to_a_list(mkt: Mkt, newsletter: SandboxContactList) -> None:
    response = mkt(
        "put",
        f"/lists/{newsletter.pk}/contacts",
        {"EmailAddress": "Bo@Example.net", "firstName": "Bo", "lastName": "X"},
    )
    assert response.status_code == 200
    assert response.json() == {
        "id": response.json()["id"],
        "emailAddress": "bo@example.net",
        "firstName": "Bo",
        "lastName": "X",
        "customFields": [],
        "unsubscribed": False,
    }
    assert newsletter.contacts.count() == 1


def test_it_matches_existing_contacts_on_email_and_keeps_their_names(
    mkt: Mkt, newsletter: SandboxContactList, ann: SandboxContact
) -> None:
    data = mkt(
        "put", f"/lists/{newsletter.pk}/contacts", {"emailAddress": "ANN@example.net", "firstName": "Other"}
    ).json()
    assert data["id"] == ann.pk and data["firstName"] == "Ann"
    assert SandboxContact.objects.count() == 1


@pytest.mark.parametrize("body", [{}, {"emailAddress": "not-an-address"}, {"emailAddress": "a@b.c", "firstName": 5}])
def test_it_answers_400_for_a_missing_or_bad_email(
    mkt: Mkt, newsletter: SandboxContactList, body: dict[str, Any]
) -> None:
    response = mkt("put", f"/lists/{newsletter.pk}/contacts", body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["errorType"] == "ValidationError"
    assert not SandboxContact.objects.exists()


def test_it_answers_403_at_the_contact_limit(mkt: Mkt, newsletter: SandboxContactList, settings: Settings) -> None:
    settings.SANDBOX_MARKETING_CONTACT_LIMIT = 1
    assert mkt("put", f"/lists/{newsletter.pk}/contacts", {"emailAddress": "a@example.net"}).status_code == 200
    assert mkt("put", f"/lists/{newsletter.pk}/contacts", {"emailAddress": "b@example.net"}).status_code == 403
    # An existing contact can still be added to a list.
    assert mkt("put", f"/lists/{newsletter.pk}/contacts", {"emailAddress": "a@example.net"}).status_code == 200


def test_it_removes_a_contact_from_a_list_by_email(
    mkt: Mkt, newsletter: SandboxContactList, ann: SandboxContact
) -> None:
    ann.lists.add(newsletter)
    response = mkt("delete", f"/lists/{newsletter.pk}/contacts/?emailAddress=Ann@example.net")
    assert response.status_code == 200
    assert newsletter.contacts.count() == 0
    assert SandboxContact.objects.filter(pk=ann.pk).exists()  # removed from the list, not deleted
    assert mkt("delete", f"/lists/{newsletter.pk}/contacts/?emailAddress=ann@example.net").status_code == 404
    assert mkt("delete", f"/lists/{newsletter.pk}/contacts/").status_code == 400


def test_it_unsubscribes_known_and_unknown_addresses(mkt: Mkt, ann: SandboxContact) -> None:
    assert mkt("post", "/contacts/unsubscribe/", {"emailAddress": "ann@example.net"}).json()["unsubscribed"] is True
    ann.refresh_from_db()
    assert ann.unsubscribed
    assert mkt("post", "/contacts/unsubscribe", {"emailAddress": "new@example.net"}).json()["unsubscribed"] is True
    assert mkt("post", "/contacts/unsubscribe/", {"emailAddress": "nope"}).status_code == 400


def test_it_pages_contacts_by_index_and_count_capped_at_500(mkt: Mkt, sandbox_server: SandboxKeys) -> None:
    SandboxContact.objects.bulk_create(
        SandboxContact(server=sandbox_server.server, email_address=f"c{i:03}@example.net") for i in range(502)
    )
    page = mkt("get", "/contacts?index=500&count=10").json()
    assert page["totalCount"] == 502 and page["count"] == 2 and page["totalPages"] == 51
    assert [c["emailAddress"] for c in page["collection"]] == ["c500@example.net", "c501@example.net"]
    capped = mkt("get", "/contacts?count=5000").json()
    assert capped["count"] == 500 and capped["totalPages"] == 2
    assert mkt("get", "/contacts?index=-1").status_code == 400


def test_it_reads_updates_and_deletes_one_contact(mkt: Mkt, ann: SandboxContact, sandbox_server: SandboxKeys) -> None:
    assert mkt("get", f"/contacts/{ann.pk}").json()["firstName"] == "Ann"
    updated = mkt("put", f"/contacts/{ann.pk}", {"firstName": "Anne", "emailAddress": "anne@example.net"}).json()
    assert (updated["firstName"], updated["lastName"], updated["emailAddress"]) == ("Anne", "Lee", "anne@example.net")
    SandboxContact.objects.create(server=sandbox_server.server, email_address="taken@example.net")
    assert mkt("put", f"/contacts/{ann.pk}", {"emailAddress": "taken@example.net"}).status_code == 409
    assert mkt("delete", f"/contacts/{ann.pk}").status_code == 200
    assert mkt("get", f"/contacts/{ann.pk}").status_code == 404


def test_it_never_shows_another_servers_contacts(
    mkt: Mkt, other_sandbox_server: SandboxKeys, newsletter: SandboxContactList
) -> None:
    theirs = SandboxContact.objects.create(server=other_sandbox_server.server, email_address="x@example.net")
    their_list = SandboxContactList.objects.create(server=other_sandbox_server.server, name="Theirs")
    assert mkt("get", f"/contacts/{theirs.pk}").status_code == 404
    assert mkt("put", f"/lists/{their_list.pk}/contacts/{theirs.pk}").status_code == 404
    assert mkt("get", "/contacts").json()["totalCount"] == 0


# --- custom fields ------------------------------------------------------------------------------
def test_it_lists_custom_fields_and_sets_their_values(
    mkt: Mkt, ann: SandboxContact, sandbox_server: SandboxKeys
) -> None:
    SandboxCustomField.objects.create(server=sandbox_server.server, name="City")
    SandboxCustomField.objects.create(server=sandbox_server.server, name="Plan")
    fields = mkt("get", "/customfields").json()
    assert [f["name"] for f in fields["collection"]] == ["City", "Plan"]
    response = mkt(
        "put", f"/contacts/{ann.pk}/customfields", [{"Name": "city", "Value": "Oslo"}, {"name": "Plan", "value": 3}]
    )
    assert response.status_code == 200
    assert response.json()["customFields"] == [{"name": "City", "value": "Oslo"}, {"name": "Plan", "value": "3"}]
    cleared = mkt("put", f"/contacts/{ann.pk}/customfields", [{"name": "Plan", "value": None}]).json()
    assert cleared["customFields"] == [{"name": "City", "value": "Oslo"}]


def test_it_rejects_unknown_custom_fields_without_changing_anything(
    mkt: Mkt, ann: SandboxContact, sandbox_server: SandboxKeys
) -> None:
    SandboxCustomField.objects.create(server=sandbox_server.server, name="City")
    response = mkt(
        "put",
        f"/contacts/{ann.pk}/customfields",
        [{"name": "City", "value": "Oslo"}, {"name": "Shoe", "value": "42"}, "x"],
    )
    assert response.status_code == 400
    assert [e["message"] for e in response.json()["errors"]] == [
        "[1].name: 'Shoe' is not a custom field.",
        "[2]: must be an object with name and value.",
    ]
    ann.refresh_from_db()
    assert ann.custom_fields == {}
    assert mkt("put", f"/contacts/{ann.pk}/customfields", {"name": "City"}).status_code == 400


# --- XML ----------------------------------------------------------------------------------------
def test_it_renders_xml_when_asked(mkt: Mkt, newsletter: SandboxContactList, ann: SandboxContact) -> None:
    ann.custom_fields = {"City": "Oslo"}
    ann.save()
    response = mkt("get", "/contacts", HTTP_ACCEPT="application/xml")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml; charset=utf-8"
    root = ET.fromstring(response.content)
    assert root.tag == "response"
    assert root.findtext("totalCount") == "1"
    item = root.find("collection/item")
    assert item is not None
    assert item.findtext("emailAddress") == "ann@example.net"
    assert item.findtext("unsubscribed") == "false"
    assert item.findtext("customFields/item/name") == "City"
    assert item.findtext("customFields/item/value") == "Oslo"


def test_it_renders_xml_errors_too(client: Client, sandbox_server: SandboxKeys) -> None:
    response = client.get(BASE + "/lists", HTTP_ACCEPT="text/xml")
    assert response.status_code == 401
    root = ET.fromstring(response.content)
    assert root.findtext("errors/item/errorType") == "Unauthorized"


def test_it_answers_json_404_for_unknown_marketing_paths(mkt: Mkt) -> None:
    response = mkt("get", "/segments")
    assert response.status_code == 404
    assert response.json()["errors"][0]["errorType"] == "NotFound"
