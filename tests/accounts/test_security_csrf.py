"""R12: every unsafe request made with a session needs the CSRF token; tokens and webhooks do not."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import ApiToken, AuditLog, Server, SiteSettings, User
from tests.accounts.test_url_sweep import Ids, all_routes, build_url, classify
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def strict(user: User | None = None) -> Client:
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    return client


def form_token(client: Client, url: str) -> str:
    body = client.get(url).content.decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    assert match, f"no CSRF token in the form at {url}"
    return match.group(1)


def htmx_token(client: Client, url: str) -> str:
    body = client.get(url).content.decode()
    match = re.search(r"hx-headers='\{\"X-CSRFToken\": \"([^\"]+)\"\}'", body)
    assert match, "base.html must put the CSRF token in hx-headers on <body>"
    return match.group(1)


@pytest.fixture
def reachable_nowhere(server: Server) -> Server:
    # Without a stored key the connection test answers at once, with no network call at all.
    server.api_key = ""
    server.save(update_fields=["api_key"])
    return server


def test_every_page_refuses_a_post_without_the_token(site_admin, server, viewer, settings):
    settings.SANDBOX_ENABLED = True
    token, _ = ApiToken.issue(user=viewer, name="sweep")
    ids = Ids(server=server, user=viewer, token=token)
    client = strict(site_admin)
    failures = []
    for route in all_routes():
        url = build_url(route, ids)
        if classify(route, url) != "page":
            continue
        response = client.post(url)
        if response.status_code != 403 or "CSRF" not in response.content.decode():
            failures.append(f"POST {url} ({route.name}) answered {response.status_code}")
    assert not failures, "\n".join(failures)
    assert Server.objects.filter(pk=server.pk).exists()  # nothing was deleted along the way


def test_the_login_form_needs_the_token(viewer):
    client = strict()
    assert client.post(reverse("account_login"), {"login": viewer.email, "password": PASSWORD}).status_code == 403
    token = form_token(client, reverse("account_login"))
    response = client.post(
        reverse("account_login"), {"login": viewer.email, "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    assert client.get(reverse("dashboard")).status_code == 200


def test_a_form_post_with_the_token_goes_through(site_admin):
    client = strict(site_admin)
    token = form_token(client, reverse("site_security"))
    response = client.post(reverse("site_security"), {"require_mfa": "on", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert SiteSettings.load().require_mfa is True


def test_an_htmx_post_carries_the_token_from_the_body_tag(admin, reachable_nowhere):
    client = strict(admin)
    url = reverse("server_test", args=[reachable_nowhere.pk])
    assert client.post(url, headers={"HX-Request": "true"}).status_code == 403
    token = htmx_token(client, reverse("server_detail", args=[reachable_nowhere.pk]))
    response = client.post(url, headers={"HX-Request": "true", "X-CSRFToken": token})
    assert response.status_code == 200
    assert AuditLog.objects.filter(action="server.test_connection").count() == 1


def test_creating_an_api_token_needs_the_token(viewer):
    client = strict(viewer)
    url = reverse("api_tokens")
    assert client.post(url, {"name": "forged"}).status_code == 403
    assert not ApiToken.objects.filter(user=viewer).exists()
    token = form_token(client, url)
    assert client.post(url, {"name": "mine", "csrfmiddlewaretoken": token}).status_code == 200
    assert ApiToken.objects.filter(user=viewer, name="mine").exists()


def test_signing_out_needs_the_token(viewer):
    client = strict(viewer)
    assert client.post(reverse("account_logout")).status_code == 403
    assert client.get(reverse("dashboard")).status_code == 200
    token = form_token(client, reverse("dashboard"))
    assert client.post(reverse("account_logout"), {"csrfmiddlewaretoken": token}).status_code == 302
    assert client.get(reverse("dashboard")).status_code == 302


def test_the_api_with_a_session_needs_the_token(admin, reachable_nowhere):
    client = strict(admin)
    url = f"/api/v1/servers/{reachable_nowhere.pk}/test-connection/"
    refused = client.post(url)
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    token = htmx_token(client, reverse("dashboard"))
    response = client.post(url, headers={"X-CSRFToken": token})
    assert response.status_code == 200
    assert response.json()["ok"] is False


def test_the_api_with_a_token_needs_no_csrf_token(admin, reachable_nowhere):
    _, raw = ApiToken.issue(user=admin, name="script")
    client = Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {raw}"})
    response = client.post(f"/api/v1/servers/{reachable_nowhere.pk}/test-connection/")
    assert response.status_code == 200


def test_hooks_and_the_sandbox_api_are_exempt_but_not_open(settings: Any, server, viewer):
    settings.SANDBOX_ENABLED = True
    token, _ = ApiToken.issue(user=viewer, name="sweep")
    ids = Ids(server=server, user=viewer, token=token)
    client = strict()
    checked = 0
    for route in all_routes():
        url = build_url(route, ids)
        if classify(route, url) not in ("hook", "sandbox"):
            continue
        response = client.post(url, data="{}", content_type="application/json")
        assert "CSRF" not in response.content.decode(), url
        assert response.status_code != 200 or "ErrorCode" in response.json(), url
        checked += 1
    assert checked
