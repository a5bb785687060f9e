"""The REST API for sends: create with recipients, start, read progress and results; roles; OpenAPI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from accounts.models import ApiToken, AuditLog, Server, User
from sandbox.models import SandboxMessage
from sending import engine
from sending.models import Send, SendStatus

pytestmark = pytest.mark.django_db(transaction=True)

Api = Callable[[User], Client]


@pytest.fixture
def api() -> Api:
    def make(user: User) -> Client:
        _, raw = ApiToken.issue(user=user, name="test")
        return Client(headers={"Authorization": f"Bearer {raw}"})

    return make


def base(server: Server) -> str:
    return f"/api/v1/servers/{server.pk}/sends"


BODY: dict[str, Any] = {
    "subject": "Hi %%FirstName%%",
    "text_body": "Hello %%FirstName%%",
    "from_address": "news@example.com",
    "recipients": [
        {"address": "ann@example.net", "merge_fields": {"FirstName": "Ann"}},
        {"address": "bob@example.net", "name": "Bob"},
        {"address": "broken"},
    ],
}


def test_a_marketer_creates_starts_and_reads_a_send(
    api: Api, marketing: User, viewer: User, inject_server: Server, queued: list[int]
) -> None:
    created = api(marketing).post(f"{base(inject_server)}/", {**BODY, "start": True}, content_type="application/json")

    assert created.status_code == 201, created.content
    send_id = created.json()["id"]
    assert created.json()["status"] == SendStatus.QUEUED
    assert (created.json()["total"], created.json()["skipped"]) == (2, 1)
    engine.run_dispatcher(send_id)

    detail = api(viewer).get(f"{base(inject_server)}/{send_id}/").json()
    assert detail["status"] == SendStatus.DONE
    assert detail["progress"]["accepted"] == 2
    assert detail["progress"]["percent"] == 100
    results = api(viewer).get(f"{base(inject_server)}/{send_id}/results/?state=accepted").json()
    assert sorted(r["address"] for r in results["results"]) == ["ann@example.net", "bob@example.net"]
    assert results["next_after"] is None
    assert sorted(SandboxMessage.objects.values_list("subject", flat=True)) == ["Hi ", "Hi Ann"]
    assert AuditLog.objects.filter(action="send.start").exists()


def test_a_draft_takes_more_recipients_then_starts(
    api: Api, marketing: User, inject_server: Server, queued: list[int]
) -> None:
    send_id = api(marketing).post(f"{base(inject_server)}/", BODY, content_type="application/json").json()["id"]

    added = api(marketing).post(
        f"{base(inject_server)}/{send_id}/recipients/",
        {"recipients": [{"address": "cy@example.net"}]},
        content_type="application/json",
    )
    started = api(marketing).post(f"{base(inject_server)}/{send_id}/start/")
    again = api(marketing).post(f"{base(inject_server)}/{send_id}/start/")
    late = api(marketing).post(
        f"{base(inject_server)}/{send_id}/recipients/",
        {"recipients": [{"address": "dee@example.net"}]},
        content_type="application/json",
    )

    assert added.json()["total"] == 3
    assert started.json()["status"] == SendStatus.QUEUED
    assert again.status_code == 409
    assert "only a draft can be started" in again.json()["detail"]
    assert late.status_code == 409
    assert Send.objects.get().total == 3


def test_bad_input_names_the_field(api: Api, marketing: User, inject_server: Server) -> None:
    missing = api(marketing).post(f"{base(inject_server)}/", {"subject": "x"}, content_type="application/json")
    no_body = api(marketing).post(f"{base(inject_server)}/", {**BODY, "text_body": ""}, content_type="application/json")
    bad_state = api(marketing).get(f"{base(inject_server)}/1/results/?state=nope")

    assert missing.status_code == 400
    assert "from_address" in missing.json()
    assert no_body.status_code == 400
    assert no_body.json()["detail"] == "An HTML or a text body is required."
    assert bad_state.status_code in (400, 404)
    assert not Send.objects.exists()


def test_roles_decide_who_sends(
    api: Api, ops: User, viewer: User, outsider: User, inject_server: Server, marketing: User, queued: list[int]
) -> None:
    send = engine.create_send(
        server=inject_server, actor=marketing, subject="s", text_body="t", from_address="a@example.com"
    )
    for reader in (ops, viewer):
        assert api(reader).get(f"{base(inject_server)}/").status_code == 200
        assert api(reader).post(f"{base(inject_server)}/", BODY, content_type="application/json").status_code == 403
        assert api(reader).post(f"{base(inject_server)}/{send.pk}/cancel/").status_code == 403
    assert api(outsider).get(f"{base(inject_server)}/{send.pk}/").status_code == 404
    assert api(outsider).post(f"{base(inject_server)}/{send.pk}/cancel/").status_code == 404
    assert Client().get(f"{base(inject_server)}/").status_code == 401
    assert Send.objects.get().status == SendStatus.DRAFT


def test_the_operations_are_in_the_openapi_schema(client: Client, viewer: User) -> None:
    client.force_login(viewer)
    paths = client.get("/api/schema/", headers={"Accept": "application/json"}).json()["paths"]

    prefix = "/api/v1/servers/{server_id}/sends"
    assert {"get", "post"} <= set(paths[prefix + "/"])
    assert "get" in paths[prefix + "/{send_id}/results/"]
    assert "post" in paths[prefix + "/{send_id}/{action}/"]
