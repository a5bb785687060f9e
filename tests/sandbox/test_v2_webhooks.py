"""API v2: event webhook endpoints and inbound parse endpoints."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from sandbox import webhooks
from sandbox.models import SandboxEventWebhook, SandboxInboundEndpoint
from tests.sandbox.conftest import SandboxKeys
from tests.sandbox.test_v2_domains import Api

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client: Client, sandbox_server: SandboxKeys) -> Api:
    return Api(client, sandbox_server)


@pytest.fixture
def validated(monkeypatch: pytest.MonkeyPatch) -> list[SandboxEventWebhook]:
    """Stand in for the Validation post (over real HTTP in test_v2_live); record which endpoints were validated."""
    seen: list[SandboxEventWebhook] = []

    def validate(endpoint: SandboxEventWebhook) -> bool:
        seen.append(endpoint)
        failed = "refuse" in endpoint.url
        SandboxEventWebhook.objects.filter(pk=endpoint.pk).update(status="Failed" if failed else "Active")
        return not failed

    monkeypatch.setattr(webhooks, "validate_endpoint", validate)
    return seen


def test_it_creates_a_webhook_and_validates_it_without_echoing_the_secret(
    api: Api, validated: list[SandboxEventWebhook]
) -> None:
    response = api(
        "post",
        "/event-webhooks",
        {
            "URL": "https://hooks.example.com/in",
            "SecretKey": "whsec-1",
            "events": ["delivered", "Failed"],
            "format": "JSON",
        },
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert data == {
        "id": data["id"],
        "url": "https://hooks.example.com/in",
        "events": ["Delivered", "Failed"],
        "format": "json",
        "status": "Active",
        "createdOn": data["createdOn"],
    }
    assert "whsec-1" not in response.content.decode()
    assert [w.pk for w in validated] == [data["id"]]
    assert SandboxEventWebhook.objects.get().secret_key == "whsec-1"


def test_it_reports_a_webhook_that_failed_validation(api: Api, validated: list[SandboxEventWebhook]) -> None:
    data = api("post", "/event-webhooks", {"url": "https://refuse.example/x", "secretKey": "k"}).json()["data"]
    assert data["status"] == "Failed"
    assert data["events"] == []  # empty means every event type


def test_it_rejects_bad_webhooks_with_one_error_per_field(api: Api, validated: list[SandboxEventWebhook]) -> None:
    response = api("post", "/event-webhooks", {"url": "ftp://x", "events": ["Delivered", "Bounced"], "format": "xml"})
    assert response.status_code == 422
    fields = [e["message"].split(":")[0] for e in response.json()["errors"]]
    assert fields == ["url", "secretKey", "events", "format"]
    assert validated == []
    assert not SandboxEventWebhook.objects.exists()


def test_it_lists_and_deletes_webhooks(api: Api, validated: list[SandboxEventWebhook]) -> None:
    first = api("post", "/event-webhooks", {"url": "https://a.example/", "secretKey": "k", "format": "form"}).json()
    api("post", "/event-webhooks", {"url": "https://b.example/", "secretKey": "k"})
    listed = api("get", "/event-webhooks").json()
    assert listed["total"] == 2
    assert [w["url"] for w in listed["data"]] == ["https://a.example/", "https://b.example/"]
    assert listed["data"][0]["format"] == "form"
    webhook_id = first["data"]["id"]
    assert api("delete", f"/event-webhooks/{webhook_id}").status_code == 200
    assert api("delete", f"/event-webhooks/{webhook_id}").status_code == 404
    assert api("get", "/event-webhooks").json()["total"] == 1


def test_it_creates_inbound_parse_endpoints_keeping_the_secret_write_only(api: Api) -> None:
    response = api(
        "post",
        "/inbound-parse",
        {
            "domainOrAddress": "Parse.Example.com",
            "url": "https://app.example/inbound",
            "secretKey": "in-secret",
            "validationKey": "vk-1",
        },
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert data == {
        "id": data["id"],
        "domainOrAddress": "parse.example.com",
        "url": "https://app.example/inbound",
        "validationKey": "vk-1",
        "status": "Active",
        "createdOn": data["createdOn"],
    }
    assert "in-secret" not in response.content.decode()
    assert (
        api(
            "post",
            "/inbound-parse",
            {"domainOrAddress": "parse.example.com", "url": "https://x.example/", "secretKey": "s"},
        ).status_code
        == 409
    )


def test_it_invents_a_validation_key_when_none_is_given(api: Api) -> None:
    data = api(
        "post",
        "/inbound-parse",
        {"domainOrAddress": "support@example.com", "url": "https://a.example/", "secretKey": "s"},
    ).json()["data"]
    assert len(data["validationKey"]) == 24


def test_it_rejects_bad_inbound_endpoints_and_deletes_good_ones(api: Api) -> None:
    bad = api("post", "/inbound-parse", {"domainOrAddress": "not valid", "url": "", "secretKey": ""})
    assert bad.status_code == 422
    assert [e["message"].split(":")[0] for e in bad.json()["errors"]] == ["domainOrAddress", "url", "secretKey"]
    created: Any = api(
        "post", "/inbound-parse", {"domainOrAddress": "in.example.com", "url": "https://a.example/", "secretKey": "s"}
    ).json()["data"]
    assert api("get", "/inbound-parse").json()["total"] == 1
    assert api("delete", f"/inbound-parse/{created['id']}").status_code == 200
    assert api("delete", f"/inbound-parse/{created['id']}").status_code == 404
    assert not SandboxInboundEndpoint.objects.exists()
