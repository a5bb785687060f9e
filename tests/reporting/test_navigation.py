"""The Activity pages and the endpoint pages are reachable from the sidebar and from the server overview."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.test import Client
from django.urls import reverse

from accounts.models import Server, User

AsUser = Callable[[User], Client]


def activity_urls(server: Server) -> list[str]:
    return [
        reverse("activity:feed", args=[server.pk]),
        reverse("activity:timeline", args=[server.pk]),
        reverse("reporting:endpoints", args=[server.pk, "events"]),
        reverse("reporting:request_log", args=[server.pk]),
        reverse("reporting:dead_letters", args=[server.pk]),
        reverse("reporting:inbound_messages", args=[server.pk]),
        reverse("reporting:endpoints", args=[server.pk, "inbound"]),
    ]


def sidebar_section(body: str) -> str:
    found = re.search(r'<ul data-testid="activity-nav">(.*?)</ul>', body, re.S)
    assert found, "no Activity section in the sidebar"
    return found.group(1)


def current(body: str) -> list[str]:
    return re.findall(r'<a href="([^"]+)" aria-current="page"', sidebar_section(body))


def test_the_sidebar_links_every_activity_page_on_any_server_page(
    as_user: AsUser, viewer: User, server: Server
) -> None:
    body = as_user(viewer).get(reverse("server_detail", args=[server.pk])).content.decode()

    links = re.findall(r'<a href="([^"]+)"', sidebar_section(body))
    assert links == activity_urls(server)
    assert current(body) == []


def test_the_sidebar_marks_the_page_being_shown(as_user: AsUser, viewer: User, server: Server) -> None:
    client = as_user(viewer)
    for url in activity_urls(server):
        assert current(client.get(url).content.decode()) == [url], url


def test_the_server_overview_links_the_activity_pages(as_user: AsUser, viewer: User, server: Server) -> None:
    body = as_user(viewer).get(reverse("server_detail", args=[server.pk])).content.decode()

    block = re.search(r'data-testid="activity-links">(.*?)</section>', body, re.S)
    assert block
    links = re.findall(r'<a href="([^"]+)"', block.group(1))
    assert set(activity_urls(server)) - set(links) == {reverse("reporting:dead_letters", args=[server.pk])}


def test_there_is_no_activity_section_without_a_current_server(as_user: AsUser, viewer: User) -> None:
    body = as_user(viewer).get(reverse("dashboard")).content.decode()

    assert 'data-testid="activity-nav"' not in body
