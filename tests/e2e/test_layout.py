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
    for theme in ("light", "dark"):
        page.emulate_media(color_scheme=theme)
        page.context.clear_cookies()
        page.goto("/accounts/login/")
        expect(page.get_by_role("heading", name="Sign in to Mailroom")).to_be_visible()
        check_page(page, f"login-{theme}-{width}")
        log_in(site_admin)
        page.goto("/")
        check_page(page, f"dashboard-{theme}-{width}")
        page.goto(f"/servers/{servers[0].pk}/")
        check_page(page, f"server-{theme}-{width}")
    problems.assert_clean()
