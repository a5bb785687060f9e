"""R17: response headers under the production settings (loaded from config/settings.py with a production env)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import ApiToken
from tests.accounts.test_deploy import production_settings

pytestmark = pytest.mark.django_db

# Everything config/settings.py switches on when DEBUG is false (or always) that shapes responses.
SECURITY_SETTINGS = (
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY",
    "SECURE_CSP",
    "X_FRAME_OPTIONS",
    "SESSION_COOKIE_NAME",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "SESSION_COOKIE_AGE",
    "CSRF_COOKIE_NAME",
    "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_SAMESITE",
)


@pytest.fixture
def production(settings: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    values = production_settings(tmp_path, monkeypatch)
    for name in SECURITY_SETTINGS:
        setattr(settings, name, values[name])
    return values


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def test_https_is_enforced_with_hsts_for_a_year_and_subdomains(client, production):
    assert client.get(reverse("account_login")).status_code == 301  # plain HTTP goes to HTTPS
    response = client.get(reverse("account_login"), secure=True)
    hsts = response["Strict-Transport-Security"]
    max_age = int(re.search(r"max-age=(\d+)", hsts).group(1))
    assert max_age >= 31536000
    assert "includeSubDomains" in hsts


def test_the_content_security_policy_is_strict(client, production):
    response = client.get(reverse("account_login"), secure=True)
    csp = csp_directives(response["Content-Security-Policy"])
    assert csp["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in csp["script-src"]
    assert "'unsafe-eval'" not in csp["script-src"]
    assert "'unsafe-inline'" not in csp.get("style-src", [])
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]


def test_every_script_on_a_page_carries_the_nonce_of_its_response(as_user, viewer, production):
    response = as_user(viewer).get(reverse("dashboard"), secure=True)
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
    scripts = re.findall(r"<script\b[^>]*>", response.content.decode())
    assert scripts
    for tag in scripts:
        assert f'nonce="{nonce}"' in tag, tag
    other = as_user(viewer).get(reverse("dashboard"), secure=True)
    assert nonce not in other["Content-Security-Policy"]  # a fresh nonce per response


def test_browser_hardening_headers_are_present(client, production):
    response = client.get(reverse("account_login"), secure=True)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("name", ["dashboard", "api_tokens", "mfa_index", "usersessions_list", "audit_log"])
def test_signed_in_pages_are_never_cached(as_user, site_admin, production, name):
    response = as_user(site_admin).get(reverse(name), secure=True)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


def test_api_answers_with_a_token_are_never_cached(viewer, server, production):
    _, raw = ApiToken.issue(user=viewer, name="script")
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    response = client.get(f"/api/v1/servers/{server.pk}/", secure=True)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


def test_the_api_schema_and_docs_need_authentication(client, production):
    assert client.get(reverse("api_schema"), secure=True).status_code == 401
    docs = client.get(reverse("api_docs"), secure=True)
    assert docs.status_code == 302
    assert docs["Location"].startswith(reverse("account_login"))


def test_the_production_cookies_are_host_only_and_secure(production):
    assert production["SESSION_COOKIE_NAME"] == "__Host-sessionid"
    assert production["CSRF_COOKIE_NAME"] == "__Host-csrftoken"
    assert production["SESSION_COOKIE_SECURE"] is True
    assert production["CSRF_COOKIE_SECURE"] is True
    assert production["SESSION_COOKIE_HTTPONLY"] is True
    assert production["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert production.get("SESSION_COOKIE_DOMAIN") is None
    assert production["DEBUG"] is False
