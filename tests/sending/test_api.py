"""The REST API for sending setup: same services, same roles, SocketLabs errors as `detail`, in the OpenAPI schema."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from accounts.models import ApiToken, AuditLog, Server, User
from sandbox.models import SandboxBounceDomain, SandboxDkim, SandboxSendingDomain, SandboxTrackingDomain
from sending.models import DnsCheckJob, DnsCheckResult, DnsState, RecordKind
from tests.dnsfixture import Zone
from tests.sandbox.conftest import SandboxKeys

pytestmark = pytest.mark.django_db(transaction=True)
Api = Callable[[User], Client]


@pytest.fixture
def api() -> Api:
    def make(user: User) -> Client:
        _, raw = ApiToken.issue(user=user, name="test")
        return Client(headers={"Authorization": f"Bearer {raw}"})

    return make


def base(server: Server) -> str:
    return f"/api/v1/servers/{server.pk}/sending"


def test_readers_list_and_writers_change(sl_server: Server, api: Api, ops: User, viewer: User, marketing: User) -> None:
    created = api(ops).post(f"{base(sl_server)}/domains/", {"domain": "Example.com"}, content_type="application/json")
    assert created.status_code == 201
    assert created.json()["domain"] == "example.com"
    assert created.json()["status"] == "Pending"
    for reader in (viewer, marketing):
        listed = api(reader).get(f"{base(sl_server)}/domains/")
        assert listed.status_code == 200
        assert [d["domain"] for d in listed.json()] == ["example.com"]
        refused = api(reader).post(
            f"{base(sl_server)}/domains/", {"domain": "b.example.com"}, content_type="application/json"
        )
        assert refused.status_code == 403
        assert api(reader).delete(f"{base(sl_server)}/domains/example.com/").status_code == 403
    assert list(SandboxSendingDomain.objects.values_list("domain", flat=True)) == ["example.com"]


def test_outsiders_get_404_and_anonymous_callers_401(sl_server: Server, api: Api, outsider: User) -> None:
    assert api(outsider).get(f"{base(sl_server)}/dkim/").status_code == 404
    assert api(outsider).post(f"{base(sl_server)}/domains/", {"domain": "example.com"}).status_code == 404
    assert Client().get(f"{base(sl_server)}/dkim/").status_code == 401


def test_bad_input_names_the_field(sl_server: Server, api: Api, ops: User) -> None:
    response = api(ops).post(f"{base(sl_server)}/domains/", {"domain": "bad domain"}, content_type="application/json")
    assert response.status_code == 400
    assert "no spaces" in response.json()["domain"][0]
    key = api(ops).post(
        f"{base(sl_server)}/dkim/",
        {"domain": "example.com", "selector": "mr1", "private_key": "not a key"},
        content_type="application/json",
    )
    assert key.status_code == 400
    assert key.json() == {"detail": key.json()["detail"], "field": "private_key"}
    assert "not a readable private key" in key.json()["detail"]


def test_socketlabs_refusals_come_back_as_detail(sl_server: Server, api: Api, ops: User, sandbox: SandboxKeys) -> None:
    client = api(ops)
    client.post(f"{base(sl_server)}/domains/", {"domain": "example.com"}, content_type="application/json")
    again = client.post(f"{base(sl_server)}/domains/", {"domain": "example.com"}, content_type="application/json")
    assert again.status_code == 409
    assert again.json()["detail"].startswith("SocketLabs refused to add the sending domain example.com:")


def test_a_new_api_key_returns_its_secret_once(sl_server: Server, api: Api, ops: User, admin: User) -> None:
    response = api(ops).post(
        f"{base(sl_server)}/api-keys/", {"name": "Shop", "permissions": ["injection"]}, content_type="application/json"
    )
    assert response.status_code == 201
    body = response.json()
    assert len(body["secret"]) == 61 and body["stored_for_mailroom"] is False
    listed = api(ops).get(f"{base(sl_server)}/api-keys/").json()
    assert "secret" not in next(k for k in listed if k["name"] == "Shop")
    refused = api(ops).post(
        f"{base(sl_server)}/api-keys/",
        {"name": "Mine", "permissions": ["api"], "use_for_mailroom": True},
        content_type="application/json",
    )
    assert refused.status_code == 403
    stored = api(admin).post(
        f"{base(sl_server)}/api-keys/",
        {"name": "Mine", "permissions": ["api"], "use_for_mailroom": True},
        content_type="application/json",
    )
    sl_server.refresh_from_db()
    assert sl_server.api_key == stored.json()["secret"]
    assert api(ops).delete(f"{base(sl_server)}/api-keys/{body['id']}/").status_code == 204


def test_the_dkim_flow_through_the_api(
    sl_server: Server, api: Api, ops: User, sandbox: SandboxKeys, dns_zone: Zone
) -> None:
    client = api(ops)
    created = client.post(
        f"{base(sl_server)}/dkim/", {"domain": "example.com", "selector": "mr1"}, content_type="application/json"
    )
    assert created.status_code == 201
    setup = created.json()
    assert setup["host"] == "mr1._domainkey.example.com"
    assert setup["step"] == "publish"
    assert "".join(setup["txt_strings"]) == setup["txt_value"]
    assert len(setup["txt_strings"]) == 2
    assert "private_key" not in setup

    early = client.post(f"{base(sl_server)}/dkim/setups/{setup['id']}/verify/").json()
    assert early["ok"] is False and early["setup"]["step"] == "publish"
    dns_zone.txt(setup["host"], setup["txt_value"])
    done = client.post(f"{base(sl_server)}/dkim/setups/{setup['id']}/verify/").json()
    assert done["ok"] is True and done["setup"]["step"] == "done"
    keys = client.get(f"{base(sl_server)}/dkim/").json()
    assert [(k["selector"], k["validation_status"]) for k in keys] == [("mr1", "Verified")]

    rotation = client.post(
        f"{base(sl_server)}/dkim/rotations/",
        {"domain": "example.com", "old_selector": "mr1", "selector": "mr2"},
        content_type="application/json",
    ).json()
    dns_zone.txt(rotation["host"], rotation["txt_value"])
    assert client.post(f"{base(sl_server)}/dkim/setups/{rotation['id']}/verify/").json()["setup"]["step"] == "verified"
    assert client.post(f"{base(sl_server)}/dkim/setups/{rotation['id']}/switch/").json()["setup"]["step"] == "switched"
    dns_zone.remove("mr1._domainkey.example.com")
    assert client.post(f"{base(sl_server)}/dkim/setups/{rotation['id']}/finish/").json()["setup"]["step"] == "done"
    assert list(SandboxDkim.objects.values_list("selector", flat=True)) == ["mr2"]
    assert client.delete(f"{base(sl_server)}/dkim/example.com/mr2/").status_code == 204
    assert not SandboxDkim.objects.exists()


def test_bounce_and_tracking_domains_through_the_api(
    sl_server: Server, api: Api, ops: User, sandbox: SandboxKeys
) -> None:
    client = api(ops)
    assert (
        client.post(
            f"{base(sl_server)}/bounce-domains/", {"domain": "b.example.com"}, content_type="application/json"
        ).status_code
        == 201
    )
    patched = client.patch(
        f"{base(sl_server)}/bounce-domains/b.example.com/", {"is_default": True}, content_type="application/json"
    )
    assert patched.json()["is_default"] is True
    assert SandboxBounceDomain.objects.get().is_default
    tracking = client.post(
        f"{base(sl_server)}/tracking-domains/",
        {"domain": "t.example.com", "opens_enabled": True, "clicks_enabled": False},
        content_type="application/json",
    )
    assert tracking.status_code == 201
    assert (tracking.json()["opens_enabled"], tracking.json()["clicks_enabled"]) == (True, False)
    client.patch(
        f"{base(sl_server)}/tracking-domains/t.example.com/", {"clicks_enabled": True}, content_type="application/json"
    )
    stored = SandboxTrackingDomain.objects.get()
    assert (stored.opens_enabled, stored.clicks_enabled) == (True, True)
    assert client.delete(f"{base(sl_server)}/tracking-domains/t.example.com/").status_code == 204
    assert client.delete(f"{base(sl_server)}/bounce-domains/b.example.com/").status_code == 204
    assert AuditLog.objects.filter(server=sl_server, action__startswith="sending.").count() == 6


def test_dns_checks_through_the_api(
    sl_server: Server, other_server: Server, api: Api, ops: User, viewer: User, dns_zone: Zone, monkeypatch
) -> None:
    from sending import tasks

    monkeypatch.setattr(tasks.run_dns_check_job, "delay", lambda job_id: None)
    client = api(ops)
    client.post(f"{base(sl_server)}/bounce-domains/", {"domain": "b.example.com"}, content_type="application/json")
    dns_zone.silent("b.example.com")
    checked = client.post(
        f"{base(sl_server)}/dns/check/", {"kind": "bounce", "domain": "b.example.com"}, content_type="application/json"
    )
    assert checked.status_code == 200
    assert checked.json()["state"] == DnsState.TIMEOUT
    assert (
        api(viewer).post(f"{base(sl_server)}/dns/check/", {"kind": "bounce", "domain": "b.example.com"}).status_code
        == 403
    )
    assert [r["host"] for r in api(viewer).get(f"{base(sl_server)}/dns/").json()] == ["b.example.com"]

    job = client.post(f"{base(sl_server)}/dns/jobs/")
    assert job.status_code == 202
    assert job.json()["status"] == "queued"
    assert api(viewer).get(f"{base(sl_server)}/dns/jobs/{job.json()['id']}/").json()["id"] == job.json()["id"]
    assert DnsCheckJob.objects.get().trigger == "api"

    DnsCheckResult.objects.create(
        server=other_server,
        kind=RecordKind.BOUNCE,
        domain="x.example.org",
        host="x.example.org",
        rtype="CNAME",
        expected="tracking.socketlabs.com",
    )
    everywhere = api(viewer).get("/api/v1/sending/dns/").json()["results"]
    assert [(r["server"], r["host"]) for r in everywhere] == [(sl_server.pk, "b.example.com")]


def test_the_operations_are_in_the_openapi_schema(client: Client, viewer: User) -> None:
    client.force_login(viewer)
    schema = client.get("/api/schema/", headers={"Accept": "application/json"}).json()
    paths = schema["paths"]
    prefix = "/api/v1/servers/{server_id}/sending"
    for path, methods in {
        "/api-keys/": {"get", "post"},
        "/api-keys/{key_id}/": {"delete"},
        "/domains/": {"get", "post"},
        "/domains/{domain}/verify/": {"post"},
        "/dkim/": {"get", "post"},
        "/dkim/rotations/": {"post"},
        "/dkim/setups/{setup_id}/verify/": {"post"},
        "/dkim/setups/{setup_id}/switch/": {"post"},
        "/dkim/setups/{setup_id}/finish/": {"post"},
        "/bounce-domains/{domain}/": {"patch", "delete"},
        "/tracking-domains/{domain}/": {"patch", "delete"},
        "/dns/check/": {"post"},
        "/dns/jobs/": {"post"},
    }.items():
        assert methods <= set(paths[prefix + path]), path
    created = paths[prefix + "/api-keys/"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    assert "secret" in schema["components"]["schemas"][created.rsplit("/", 1)[1]]["properties"]
    assert "/api/v1/sending/dns/" in paths
