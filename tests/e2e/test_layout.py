"""The shell at desktop and phone widths, in both themes: nothing overflows sideways.

Set MAILROOM_SCREENSHOTS=/some/dir to also save a screenshot of every page checked.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import Server, ServerStatus, User
from tests.e2e.conftest import BrowserProblems

pytestmark = pytest.mark.browser

SHOTS = os.environ.get("MAILROOM_SCREENSHOTS", "")

THEMES = ("light", "dark")

OTHER_PAGES = [
    ("users", "/admin/users/"),
    ("audit", "/admin/audit/"),
    ("tokens", "/profile/api-tokens/"),
    ("add-server", "/servers/add/"),
]


def check_page(page: Page, name: str) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)
    assert overflow <= 0, f"{name} scrolls sideways by {overflow}px"


@pytest.fixture
def servers(server: Server, other_server: Server) -> list[Server]:
    now = timezone.now()
    Server.objects.filter(pk=server.pk).update(
        status=ServerStatus.OK, status_message="Connected to server 10001.", last_checked_at=now - timedelta(minutes=3)
    )
    Server.objects.filter(pk=other_server.pk).update(
        status=ServerStatus.UNREACHABLE,
        status_message="Could not reach https://api.socketlabs.com/v2. Check the address and the network.",
        last_checked_at=now - timedelta(hours=2),
    )
    return [server, other_server]


@pytest.mark.parametrize("width", [1280, 390])
def test_it_fits_every_width_in_both_themes(
    page: Page,
    log_in: Callable[[User], Page],
    site_admin: User,
    servers: list[Server],
    problems: BrowserProblems,
    width: int,
) -> None:
    page.set_viewport_size({"width": width, "height": 860})
    page.goto("/accounts/login/")
    for theme in THEMES:
        page.emulate_media(color_scheme=theme)
        expect(page.get_by_role("heading", name="Sign in to Mailroom")).to_be_visible()
        check_page(page, f"login-{theme}-{width}")
    log_in(site_admin)
    pages = [("dashboard", "/"), ("server", f"/servers/{servers[0].pk}/"), *OTHER_PAGES]
    for theme in THEMES:
        page.emulate_media(color_scheme=theme)
        for name, path in pages:
            page.goto(path)
            check_page(page, f"{name}-{theme}-{width}")
    problems.assert_clean()
