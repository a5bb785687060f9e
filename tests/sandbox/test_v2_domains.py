"""API v2: sending domains, DKIM, custom bounce domains, engagement tracking domains."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.test import Client

from sandbox.models import SandboxBounceDomain, SandboxDkim, SandboxSendingDomain, SandboxTrackingDomain
from tests.sandbox.conftest import SandboxKeys

pytestmark = pytest.mark.django_db


class Api:
    """A thin test-client wrapper: JSON bodies, the v2 key, paths under the server."""

    def __init__(self, client: Client, keys: SandboxKeys) -> None:
        self.client, self.keys = client, keys

    def __call__(self, method: str, rest: str, body: Any = None, *, key: str | None = None) -> Any:
        path = f"/sandbox/api/v2/servers/{self.keys.server_id}{rest}"
        extra = {"HTTP_AUTHORIZATION": f"Bearer {key or self.keys.api_key}"}
        if body is None:
            return getattr(self.client, method)(path, **extra)
        return getattr(self.client, method)(path, body, content_type="application/json", **extra)


@pytest.fixture
def api(client: Client, sandbox_server: SandboxKeys) -> Api:
    return Api(client, sandbox_server)


def errors(response: Any) -> list[str]:
    return [e["message"] for e in response.json()["errors"]]


# --- sending domains ---------------------------------------------------------------
def test_it_adds_a_sending_domain_pending_with_a_verification_record(api: Api) -> None:
    response = api("post", "/sending-domains", {"Domain": "Mail.Example.com"})
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["domain"] == "mail.example.com"
    assert data["status"] == "Pending"
    assert data["verificationRecord"].startswith("socketlabs-verification=")
    assert data["verifiedOn"] is None
    listed = api("get", "/sending-domains").json()
    assert listed["total"] == 1 and listed["data"] == [data]
    assert api("get", "/sending-domains/MAIL.example.com").json()["data"] == data


def test_it_refuses_a_duplicate_or_malformed_sending_domain(api: Api) -> None:
    api("post", "/sending-domains", {"domain": "example.com"})
    assert api("post", "/sending-domains", {"domain": "EXAMPLE.com"}).status_code == 409
    bad = api("post", "/sending-domains", {"domain": "not a domain"})
    assert bad.status_code == 422
    assert errors(bad) == ["domain: 'not a domain' is not a valid domain name."]
    assert api("post", "/sending-domains", {}).status_code == 422
    assert SandboxSendingDomain.objects.count() == 1


def test_it_verifies_a_domain_unless_its_name_says_unverified(api: Api) -> None:
    api("post", "/sending-domains", {"domain": "good.example"})
    api("post", "/sending-domains", {"domain": "unverified.example"})
    good = api("post", "/sending-domains/good.example/verify").json()["data"]
    assert good["status"] == "Verified" and good["verifiedOn"]
    bad = api("post", "/sending-domains/unverified.example/verify").json()["data"]
    assert bad["status"] == "Failed" and bad["verifiedOn"] is None


def test_its_verification_marker_is_a_setting(api: Api, settings: Any) -> None:
    settings.SANDBOX_UNVERIFIED_MARKER = "broken"
    api("post", "/sending-domains", {"domain": "broken.example"})
    assert api("post", "/sending-domains/broken.example/verify").json()["data"]["status"] == "Failed"


def test_it_deletes_a_sending_domain_and_404s_afterwards(api: Api) -> None:
    api("post", "/sending-domains", {"domain": "example.com"})
    assert api("delete", "/sending-domains/example.com").json()["data"]["domain"] == "example.com"
    assert api("get", "/sending-domains/example.com").status_code == 404
    assert api("delete", "/sending-domains/example.com").status_code == 404
    assert api("post", "/sending-domains/example.com/verify").status_code == 404


def test_it_keeps_each_servers_domains_apart(api: Api, client: Client, other_sandbox_server: SandboxKeys) -> None:
    Api(client, other_sandbox_server)("post", "/sending-domains", {"domain": "theirs.example"})
    assert api("get", "/sending-domains").json()["total"] == 0
    assert api("get", "/sending-domains/theirs.example").status_code == 404


# --- DKIM ------------------------------------------------------------------------------
def test_it_generates_an_rsa_2048_dkim_pair(api: Api) -> None:
    response = api("get", "/dkim/generate?Domain=example.com&selector=s1")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["dnsHostName"] == "s1._domainkey.example.com"
    assert data["dnsRecord"] == f"v=DKIM1; k=rsa; p={data['publicKey']}"
    private = serialization.load_pem_private_key(data["privateKey"].encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    public_der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert base64.b64decode(data["publicKey"]) == public_der
    assert SandboxDkim.objects.count() == 0  # generating stores nothing


def test_it_needs_domain_and_selector_to_generate(api: Api) -> None:
    response = api("get", "/dkim/generate")
    assert response.status_code == 422
    assert errors(response) == ["domain: is required.", "selector: is required."]


def test_it_adds_lists_replaces_and_deletes_a_dkim_key(api: Api) -> None:
    generated = api("get", "/dkim/generate?domain=example.com&selector=s1").json()["data"]
    added = api("post", "/dkim", {"domain": "example.com", "selector": "s1", "privateKey": generated["privateKey"]})
    assert added.status_code == 200
    data = added.json()["data"]
    assert data["publicKey"] == generated["publicKey"]
    assert data["validationStatus"] == "Verified"
    assert "privateKey" not in data
    assert (
        api(
            "post", "/dkim", {"domain": "example.com", "selector": "s1", "privateKey": generated["privateKey"]}
        ).status_code
        == 409
    )
    assert api("get", "/dkim").json()["total"] == 1
    assert api("get", "/dkim?selector=other").json()["total"] == 0

    replacement = api("get", "/dkim/generate?domain=example.com&selector=s1").json()["data"]
    updated = api("put", "/dkim/example.com?selector=s1", {"privateKey": replacement["privateKey"]})
    assert updated.status_code == 200
    assert updated.json()["data"]["publicKey"] == replacement["publicKey"]
    assert api("put", "/dkim/example.com?selector=zz", {"privateKey": replacement["privateKey"]}).status_code == 404

    assert api("delete", "/dkim/example.com").status_code == 422  # which selector?
    assert api("delete", "/dkim/example.com?selector=s1").status_code == 200
    assert api("delete", "/dkim/example.com?selector=s1").status_code == 404
    assert SandboxDkim.objects.count() == 0


def test_it_accepts_a_pkcs8_or_bare_base64_private_key(api: Api) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    assert api("post", "/dkim", {"domain": "a.example", "selector": "s", "privateKey": pkcs8}).status_code == 200
    bare = base64.b64encode(der).decode()
    assert api("post", "/dkim", {"domain": "b.example", "selector": "s", "privateKey": bare}).status_code == 200


def test_it_rejects_unreadable_or_non_rsa_private_keys_with_one_error_per_field(api: Api) -> None:
    response = api("post", "/dkim", {"domain": "bad domain", "selector": "", "privateKey": "-----BEGIN nonsense"})
    assert response.status_code == 422
    found = errors(response)
    assert len(found) == 3
    assert [m.split(":")[0] for m in found] == ["domain", "selector", "privateKey"]
    ec_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    response = api("post", "/dkim", {"domain": "example.com", "selector": "s1", "privateKey": ec_key.decode()})
    assert response.status_code == 422
    assert errors(response) == ["privateKey: must be an RSA key (DKIM k=rsa)."]
    assert SandboxDkim.objects.count() == 0


# --- bounce domains ---------------------------------------------------------------------
def test_it_keeps_only_one_default_bounce_domain(api: Api) -> None:
    first = api("post", "/bounce", {"domain": "b1.example", "isDefault": True}).json()["data"]
    assert first["isDefault"] is True and first["validationStatus"] == "Verified"
    api("post", "/bounce", {"domain": "b2.example", "isDefault": True})
    defaults = {d["domain"]: d["isDefault"] for d in api("get", "/bounce").json()["data"]}
    assert defaults == {"b1.example": False, "b2.example": True}
    api("put", "/bounce/b1.example", {"isDefault": True})
    assert list(SandboxBounceDomain.objects.filter(is_default=True).values_list("domain", flat=True)) == ["b1.example"]
    api("put", "/bounce/b1.example", {"isDefault": False})
    assert not SandboxBounceDomain.objects.filter(is_default=True).exists()


def test_it_validates_bounce_domain_requests(api: Api) -> None:
    assert api("post", "/bounce", {"domain": "b.example", "isDefault": "yes"}).status_code == 422
    api("post", "/bounce", {"domain": "b.example"})
    assert api("post", "/bounce", {"domain": "b.example"}).status_code == 409
    assert errors(api("put", "/bounce/b.example", {})) == ["isDefault: is required."]
    assert api("put", "/bounce/none.example", {"isDefault": True}).status_code == 404
    assert api("delete", "/bounce/b.example").json()["data"]["domain"] == "b.example"
    assert api("delete", "/bounce/b.example").status_code == 404


def test_it_marks_an_unverified_bounce_domain_failed(api: Api) -> None:
    assert api("post", "/bounce", {"domain": "unverified.example"}).json()["data"]["validationStatus"] == "Failed"


# --- tracking domains ---------------------------------------------------------------------
def test_it_adds_a_tracking_domain_with_all_t1_fields(api: Api) -> None:
    response = api(
        "post",
        "/tracking",
        {"domain": "t.example", "opensEnabled": False, "googleAnalyticsEnabled": True, "isDefault": True},
    )
    data = response.json()["data"]
    assert data == {
        "domain": "t.example",
        "opensEnabled": False,
        "clicksEnabled": True,
        "unsubscribesEnabled": True,
        "automaticTrackingEnabled": False,
        "googleAnalyticsEnabled": True,
        "httpsEnabled": True,
        "isDefault": True,
        "validationStatus": "Verified",
        "createdOn": data["createdOn"],
        "updatedOn": data["updatedOn"],
    }


def test_it_updates_tracking_flags_and_moves_the_default(api: Api) -> None:
    api("post", "/tracking", {"domain": "t1.example", "isDefault": True})
    api("post", "/tracking", {"domain": "t2.example"})
    updated = api("put", "/tracking/t2.example", {"clicksEnabled": False, "isDefault": True}).json()["data"]
    assert updated["clicksEnabled"] is False and updated["isDefault"] is True
    assert SandboxTrackingDomain.objects.get(domain="t1.example").is_default is False
    bad = api("put", "/tracking/t2.example", {"httpsEnabled": 1, "opensEnabled": "no"})
    assert bad.status_code == 422 and len(errors(bad)) == 2
    assert api("put", "/tracking/missing.example", {}).status_code == 404
    assert api("post", "/tracking", {"domain": "t1.example"}).status_code == 409
    assert api("delete", "/tracking/t1.example").status_code == 200
    assert api("get", "/tracking").json()["total"] == 1
