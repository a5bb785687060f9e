"""REST API under /api/v1/servers/{id}/contacts/: CRUD, bulk upsert, list members, segments, fields, roles."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import ApiToken, AuditLog, Server, User
from marketing import services
from marketing.models import Contact, ContactList, CustomField, Membership, Segment

pytestmark = pytest.mark.django_db


def api(user: User) -> Client:
    _, raw = ApiToken.issue(user=user, name="tests")
    return Client(headers={"Authorization": f"Bearer {raw}"})


def base(server: Server) -> str:
    return f"/api/v1/servers/{server.pk}/contacts/"


def post(client: Client, path: str, data: Any) -> Any:
    return client.post(path, data, content_type="application/json")


def test_anonymous_calls_are_refused(client: Client, server: Server) -> None:
    assert client.get(base(server)).status_code == 401
    assert client.post(base(server) + "bulk/", {}, content_type="application/json").status_code == 401


def test_contacts_crud(server: Server, marketing: User, fields: dict[str, CustomField]) -> None:
    client = api(marketing)
    news = services.create_list(server=server, actor=marketing, name="News")
    created = post(
        client,
        base(server),
        {"email": "Ann@Example.com", "first_name": "Ann", "custom": {"score": "7"}, "lists": [news.pk]},
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["email"], body["custom"], body["status"]) == ("ann@example.com", {"score": 7}, "subscribed")
    assert Membership.objects.filter(contact_list=news).count() == 1
    one = f"{base(server)}{body['id']}/"
    assert client.get(one).json()["first_name"] == "Ann"
    patched = client.patch(one, {"status": "unsubscribed", "custom": {"plan": "pro"}}, content_type="application/json")
    assert patched.status_code == 200
    assert (patched.json()["status"], patched.json()["custom"]) == ("unsubscribed", {"score": 7, "plan": "pro"})
    bad = client.patch(one, {"custom": {"score": "lots"}}, content_type="application/json")
    assert bad.status_code == 400 and bad.json() == {"custom": ["Score: “lots” is not a number."]}
    duplicate = post(client, base(server), {"email": "ANN@example.com"})
    assert duplicate.status_code == 400 and "already a contact" in duplicate.json()["email"][0]
    assert client.delete(one).status_code == 204
    assert not Contact.objects.exists()
    assert {"contacts.create", "contacts.update", "contacts.delete"} <= set(
        AuditLog.objects.values_list("action", flat=True)
    )


def test_listing_pages_by_cursor_and_filters(server: Server, viewer: User, marketing: User) -> None:
    for i in range(7):
        services.create_contact(
            server=server,
            actor=marketing,
            data={"email": f"p{i}@example.com", "status": "unsubscribed" if i == 3 else "subscribed"},
        )
    client = api(viewer)
    first = client.get(base(server), {"page_size": 5}).json()
    assert [c["email"] for c in first["results"]] == [f"p{i}@example.com" for i in range(5)]
    rest = client.get(first["next"]).json()
    assert [c["email"] for c in rest["results"]] == ["p5@example.com", "p6@example.com"]
    assert [c["email"] for c in client.get(base(server), {"status": "unsubscribed"}).json()["results"]] == [
        "p3@example.com"
    ]
    assert [c["email"] for c in client.get(base(server), {"q": "p6"}).json()["results"]] == ["p6@example.com"]


def test_bulk_upsert_of_ten_thousand_contacts_in_one_call(
    server: Server, marketing: User, fields: dict[str, CustomField]
) -> None:
    news = services.create_list(server=server, actor=marketing, name="News")
    contacts = [
        {"email": f"person{i}@example.com", "first_name": f"P{i}", "custom": {"score": i}} for i in range(10_000)
    ]
    response = post(api(marketing), base(server) + "bulk/", {"contacts": contacts, "lists": [news.pk]})
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "created": 10_000,
        "updated": 0,
        "unchanged": 0,
        "skipped": 0,
        "invalid": 0,
        "list_added": 10_000,
        "committed": True,
        "problems": [],
    }
    assert Contact.objects.count() == 10_000
    assert Contact.objects.get(email="person42@example.com").custom == {"score": 42}
    assert AuditLog.objects.filter(action="contacts.bulk_upsert").count() == 1


def test_bulk_upsert_refuses_more_than_ten_thousand(server: Server, marketing: User) -> None:
    response = post(
        api(marketing), base(server) + "bulk/", {"contacts": [{"email": f"p{i}@example.com"} for i in range(10_001)]}
    )
    assert response.status_code == 400
    assert not Contact.objects.exists()


def test_bulk_upsert_merges_and_is_strict_unless_told_otherwise(
    server: Server, marketing: User, fields: dict[str, CustomField]
) -> None:
    client = api(marketing)
    post(client, base(server) + "bulk/", {"contacts": [{"email": "ann@example.com", "custom": {"city": "Oslo"}}]})
    batch = [
        {"email": "ann@example.com", "custom": {"score": 3}, "status": "subscribed"},
        {"email": "nope", "first_name": "X"},
        {"email": "bob@example.com", "custom": {"plan": "gold"}},
        "not an object",
        {"email": "cid@example.com", "status": "unsubscribed"},
    ]
    strict = post(client, base(server) + "bulk/", {"contacts": batch})
    assert strict.status_code == 400
    body = strict.json()
    assert body["committed"] is False
    assert [(p["index"], p["field"]) for p in body["problems"]] == [(1, "email"), (2, "custom"), (3, "")]
    assert Contact.objects.count() == 1
    lenient = post(client, base(server) + "bulk/", {"contacts": batch, "skip_invalid": True})
    assert lenient.status_code == 200
    assert (lenient.json()["created"], lenient.json()["updated"], lenient.json()["invalid"]) == (1, 1, 3)
    assert Contact.objects.get(email="ann@example.com").custom == {"city": "Oslo", "score": 3}
    assert Contact.objects.get(email="cid@example.com").status == "unsubscribed"


def test_list_members_are_added_and_removed_by_address_or_id(server: Server, marketing: User) -> None:
    client = api(marketing)
    created = post(client, base(server) + "lists/", {"name": "News"})
    assert created.status_code == 201
    list_id = created.json()["id"]
    ann = services.create_contact(server=server, actor=marketing, data={"email": "ann@example.com"})
    bob = services.create_contact(server=server, actor=marketing, data={"email": "bob@example.com"})
    members = f"{base(server)}lists/{list_id}/members/"
    added = post(client, members, {"emails": ["ANN@example.com", "zed@example.com"], "contact_ids": [bob.pk]})
    assert added.json() == {"changed": 2, "not_found": ["zed@example.com"]}
    listed = client.get(members).json()
    assert [c["email"] for c in listed["results"]] == ["ann@example.com", "bob@example.com"]
    assert client.get(f"{base(server)}lists/{list_id}/").json()["member_count"] == 2
    removed = client.delete(members, {"contact_ids": [ann.pk]}, content_type="application/json")
    assert removed.json()["changed"] == 1
    assert list(Membership.objects.values_list("contact_id", flat=True)) == [bob.pk]


def test_segments_through_the_api(server: Server, marketing: User, fields: dict[str, CustomField]) -> None:
    client = api(marketing)
    for email, plan in (("ann@example.com", "pro"), ("bob@example.com", "free")):
        services.create_contact(server=server, actor=marketing, data={"email": email, "custom": {"plan": plan}})
    bad = post(
        client,
        base(server) + "segments/",
        {"name": "X", "definition": {"match": "all", "conditions": [{"field": "custom.plan", "op": "gt", "value": 1}]}},
    )
    assert bad.status_code == 400 and "cannot be compared" in bad.json()["definition"][0]
    created = post(
        client,
        base(server) + "segments/",
        {
            "name": "Pro",
            "definition": {"match": "all", "conditions": [{"field": "custom.plan", "op": "eq", "value": "pro"}]},
        },
    )
    assert created.status_code == 201
    segment_id = created.json()["id"]
    assert created.json()["description"] == "Plan is pro"
    assert client.get(f"{base(server)}segments/{segment_id}/count/").json() == {"count": 1}
    matches = client.get(f"{base(server)}segments/{segment_id}/contacts/").json()
    assert [c["email"] for c in matches["results"]] == ["ann@example.com"]
    assert [c["email"] for c in client.get(base(server), {"segment": segment_id}).json()["results"]] == [
        "ann@example.com"
    ]
    assert client.delete(f"{base(server)}segments/{segment_id}/").status_code == 204
    assert not Segment.objects.exists()


def test_custom_fields_through_the_api(server: Server, marketing: User) -> None:
    client = api(marketing)
    created = post(client, base(server) + "fields/", {"label": "Tier", "type": "choice", "choices": ["gold", "silver"]})
    assert created.status_code == 201 and created.json()["key"] == "tier"
    field_url = f"{base(server)}fields/{created.json()['id']}/"
    assert client.patch(field_url, {"type": "number"}, content_type="application/json").status_code == 400
    assert client.patch(field_url, {"label": "Level"}, content_type="application/json").json()["label"] == "Level"
    assert [f["key"] for f in client.get(base(server) + "fields/").json()] == ["tier"]
    assert client.delete(field_url).status_code == 204


@pytest.mark.parametrize("persona", ["viewer", "ops"])
def test_viewers_and_ops_read_but_cannot_change(
    request: pytest.FixtureRequest, server: Server, marketing: User, persona: str
) -> None:
    contact = services.create_contact(server=server, actor=marketing, data={"email": "ann@example.com"})
    news = services.create_list(server=server, actor=marketing, name="News")
    client = api(request.getfixturevalue(persona))
    assert client.get(base(server)).status_code == 200
    assert post(client, base(server), {"email": "x@example.com"}).status_code == 403
    assert post(client, base(server) + "bulk/", {"contacts": [{"email": "x@example.com"}]}).status_code == 403
    assert client.delete(f"{base(server)}{contact.pk}/").status_code == 403
    assert post(client, f"{base(server)}lists/{news.pk}/members/", {"emails": ["ann@example.com"]}).status_code == 403
    assert post(client, base(server) + "fields/", {"label": "X", "type": "text"}).status_code == 403
    assert Contact.objects.count() == 1 and not Membership.objects.exists()


def test_an_outsider_gets_404(server: Server, marketing: User, outsider: User) -> None:
    contact = services.create_contact(server=server, actor=marketing, data={"email": "ann@example.com"})
    client = api(outsider)
    assert client.get(base(server)).status_code == 404
    assert client.get(f"{base(server)}{contact.pk}/").status_code == 404
    assert post(client, base(server) + "bulk/", {"contacts": [{"email": "x@example.com"}]}).status_code == 404


def test_a_contact_cannot_be_reached_through_another_server(server: Server, other_server: Server, admin: User) -> None:
    theirs = Contact.objects.create(server=other_server, email="secret@example.com")
    assert api(admin).get(f"{base(server)}{theirs.pk}/").status_code == 404
    assert ContactList.objects.count() == 0


def test_the_schema_documents_the_contacts_api(viewer: User) -> None:
    schema = api(viewer).get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    for path in [
        "/api/v1/servers/{server_id}/contacts/",
        "/api/v1/servers/{server_id}/contacts/{id}/",
        "/api/v1/servers/{server_id}/contacts/bulk/",
        "/api/v1/servers/{server_id}/contacts/lists/{id}/members/",
        "/api/v1/servers/{server_id}/contacts/segments/{id}/count/",
        "/api/v1/servers/{server_id}/contacts/fields/",
    ]:
        assert path in paths, path
    assert "ContactStatusEnum" in schema["components"]["schemas"]
