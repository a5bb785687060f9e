"""REST API under /api/v1/servers/{id}/suppressions/: check (1 or 10,000), add, remove, search, job status."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import ApiToken, Server, User
from suppression import imports, mirror
from suppression.models import Suppression
from tests.suppression.conftest import Linked, put_in_mirror, upload

pytestmark = pytest.mark.django_db


def api(user: User) -> APIClient:
    _, raw = ApiToken.issue(user=user, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def base(server: Server, rest: str = "") -> str:
    return f"/api/v1/servers/{server.pk}/suppressions/{rest}"


def test_it_checks_one_address(server: Server, viewer: User) -> None:
    put_in_mirror(server, "bob@example.net", reason="Complaint")
    body = api(viewer).get(base(server, "check/"), {"address": "Bob@Example.net"}).json()
    assert body["count"] == 1 and body["suppressed_count"] == 1
    assert body["results"][0]["reason"] == "Complaint"
    assert body["mirror"]["last_synced_at"] is None


def test_it_checks_ten_thousand_addresses_in_one_query(server: Server, viewer: User) -> None:
    mirror.load(
        server.pk,
        [(f"s{i}@example.com", "example.com", "Bounce", "api", None) for i in range(0, 10_000, 2)],
        replace=True,
    )
    addresses = [f"s{i}@example.com" for i in range(10_000)]
    client = api(viewer)
    with CaptureQueriesContext(connection) as queries:
        response = client.post(base(server, "check/"), {"addresses": addresses}, format="json")
    assert response.status_code == 200
    mirror_queries = [q for q in queries if "suppression_suppression" in q["sql"]]
    assert len(mirror_queries) == 1, "one query for all addresses, never one per address"
    body = response.json()
    assert body["count"] == 10_000 and body["suppressed_count"] == 5_000
    assert [r["suppressed"] for r in body["results"][:4]] == [True, False, True, False]


def test_it_refuses_more_than_ten_thousand(server: Server, viewer: User) -> None:
    response = api(viewer).post(
        base(server, "check/"), {"addresses": [f"a{i}@x.com" for i in range(10_001)]}, format="json"
    )
    assert response.status_code == 400
    assert "10000" in str(response.json())


def test_it_reports_invalid_addresses_in_a_bulk_check(server: Server, viewer: User) -> None:
    body = api(viewer).post(base(server, "check/"), {"addresses": ["ok@x.com", "not an address"]}, format="json").json()
    assert body["invalid"] == [{"address": "not an address", "error": "not an e-mail address"}]


def test_it_searches_with_a_cursor(server: Server, viewer: User) -> None:
    mirror.load(
        server.pk, [(f"p{i:03d}@example.com", "example.com", "Bounce", "api", None) for i in range(70)], replace=True
    )
    client = api(viewer)
    first = client.get(base(server), {"address": "p0"}).json()
    assert len(first["results"]) == 50 and first["next_cursor"]
    second = client.get(base(server), {"address": "p0", "cursor": first["next_cursor"]}).json()
    assert len(second["results"]) == 20 and second["next_cursor"] is None
    assert first["results"][0]["address"] == "p000@example.com"
    assert api(viewer).get(base(server), {"since": "not a date"}).status_code == 400


@pytest.mark.parametrize("role", ["viewer", "marketing"])
def test_viewers_and_marketing_cannot_change_through_the_api(
    request: pytest.FixtureRequest, server: Server, role: str
) -> None:
    client = api(request.getfixturevalue(role))
    assert client.post(base(server), {"address": "a@x.com"}, format="json").status_code == 403
    assert client.post(base(server, "remove/"), {"address": "a@x.com"}, format="json").status_code == 403
    assert client.get(base(server, "check/"), {"address": "a@x.com"}).status_code == 200


def test_an_outsider_gets_404(server: Server, outsider: User) -> None:
    client = api(outsider)
    assert client.get(base(server)).status_code == 404
    assert client.get(base(server, "check/"), {"address": "a@x.com"}).status_code == 404
    assert client.post(base(server), {"address": "a@x.com"}, format="json").status_code == 404


def test_anonymous_calls_are_refused_without_a_redirect(server: Server) -> None:
    response = Client().get(base(server))
    assert response.status_code in (401, 403)


def test_it_shows_an_import_job_on_its_server_only(server: Server, other_server: Server, ops: User) -> None:
    job = imports.create_job(actor=ops, kind="add", upload=upload("email\na@example.com\nbad\n"), servers=[server])
    body = api(ops).get(base(server, f"imports/{job.pk}/")).json()
    assert body["status"] == "ready"
    assert (body["valid_rows"], body["invalid_rows"], body["target"]["to_change"]) == (1, 1, 1)
    assert body["progress"]["total"] == 1
    assert api(ops).get(base(other_server, f"imports/{job.pk}/")).status_code == 404


def test_the_api_is_in_the_openapi_schema(site_admin: User) -> None:
    client = Client()
    client.force_login(site_admin)
    schema = client.get("/api/schema/?format=json").json()
    paths = schema["paths"]
    for path in ("", "check/", "remove/", "imports/{job_id}/"):
        assert f"/api/v1/servers/{{server_id}}/suppressions/{path}" in paths


@pytest.mark.django_db(transaction=True)
def test_it_adds_and_removes_through_socketlabs(linked: Linked, ops: User) -> None:
    client = api(ops)
    added = client.post(base(linked.server), {"address": "New@Example.com", "reason": "Complaint"}, format="json")
    assert added.status_code == 200, added.content
    assert added.json()["result"] == "done"
    assert added.json()["entry"]["reason"] == "Complaint"
    assert linked.sandbox_addresses() == {"new@example.com"}
    removed = client.post(base(linked.server, "remove/"), {"address": "new@example.com"}, format="json")
    assert removed.status_code == 200 and removed.json()["result"] == "done"
    assert linked.sandbox_addresses() == set()
    assert not Suppression.objects.exists()
    bad = client.post(base(linked.server), {"address": "nope"}, format="json")
    assert bad.status_code == 400


@pytest.mark.django_db(transaction=True)
def test_it_answers_202_when_the_write_is_queued(linked: Linked, ops: User) -> None:
    linked.server.api_url = "http://127.0.0.1:9/v2"
    linked.server.save()
    response = api(ops).post(base(linked.server), {"address": "later@example.com"}, format="json")
    assert response.status_code == 202
    assert response.json()["pending_write_id"]


@pytest.mark.django_db(transaction=True)
def test_it_answers_403_when_the_plan_lacks_suppression(linked: Linked, ops: User) -> None:
    linked.sandbox.suppression_enabled = False
    linked.sandbox.save()
    response = api(ops).post(base(linked.server), {"address": "x@example.com"}, format="json")
    assert response.status_code == 403
    assert "not part of the SocketLabs plan" in response.json()["message"]


@pytest.mark.django_db(transaction=True)
def test_the_page_adds_through_socketlabs(linked: Linked, as_user: Callable[[User], Client], ops: User) -> None:
    client = as_user(ops)
    response = client.post(
        f"/servers/{linked.server.pk}/suppressions/add/",
        {"address": "page@example.com", "reason": "Bounce"},
        follow=True,
    )
    assert "page@example.com was added to the suppression list of Acme-1." in response.content.decode()
    assert linked.sandbox_addresses() == {"page@example.com"}
    response = client.post(
        f"/servers/{linked.server.pk}/suppressions/remove/", {"address": "page@example.com"}, follow=True
    )
    assert "page@example.com was removed from the suppression list of Acme-1." in response.content.decode()
    assert linked.sandbox_addresses() == set()
