"""Every report page is one click away in the sidebar, per server and across servers, and marks itself."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.test import Client
from django.urls import reverse

from accounts.models import Server, User

AsUser = Callable[[User], Client]


def server_report_urls(server: Server) -> list[str]:
    kinds = [
        reverse("reports:kind", args=[server.pk, kind]) for kind in ("delivered", "failed", "complaints", "tracking")
    ]
    return [
        reverse("reports:overview", args=[server.pk]),
        *kinds,
        *(
            reverse(f"reports:{name}", args=[server.pk])
            for name in ("streamscore", "reconciliation", "events", "jobs", "schedule", "alerts", "subscriptions")
        ),
    ]


def all_report_urls() -> list[str]:
    kinds = [reverse("all_reports:kind", args=[kind]) for kind in ("delivered", "failed", "complaints", "tracking")]
    return [
        reverse("all_reports:overview"),
        *kinds,
        *(reverse(f"all_reports:{name}") for name in ("streamscore", "reconciliation", "jobs")),
    ]


def reports_section(body: str) -> str:
    found = re.search(r'<ul data-testid="reports-nav">(.*?)</ul>', body, re.S)
    assert found, "no Reports section in the sidebar"
    return found.group(1)


def links(body: str) -> list[str]:
    return re.findall(r'<a href="([^"]+)"', reports_section(body))


def current(body: str) -> list[str]:
    return re.findall(r'<a href="([^"]+)" aria-current="page"', reports_section(body))


def test_a_server_page_links_every_report_page_of_that_server(as_user: AsUser, viewer: User, server: Server) -> None:
    body = as_user(viewer).get(reverse("server_detail", args=[server.pk])).content.decode()

    assert links(body) == server_report_urls(server)


def test_each_server_report_page_marks_itself(as_user: AsUser, viewer: User, server: Server) -> None:
    client = as_user(viewer)
    for url in server_report_urls(server):
        response = client.get(url)
        assert response.status_code == 200, url
        assert current(response.content.decode()) == [url], url


def test_without_a_server_the_sidebar_links_the_cross_server_reports(
    as_user: AsUser, viewer: User, server: Server
) -> None:
    client = as_user(viewer)
    body = client.get(reverse("dashboard")).content.decode()

    assert links(body) == all_report_urls()
    for url in all_report_urls():
        response = client.get(url)
        assert response.status_code == 200, url
        assert current(response.content.decode()) == [url], url
