"""The UI shell in a real browser: theme, server switcher, confirmations, HTMX and the CSP."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Dialog, Page, Request, expect

from accounts.models import Membership, Server, User
from tests.e2e.conftest import CSP_PREFIX, BrowserProblems

pytestmark = pytest.mark.browser

LIGHT_BG = "rgb(246, 247, 249)"
DARK_BG = "rgb(13, 17, 23)"


def test_it_reports_csp_violations_and_console_errors(page: Page, base_url: str, problems: BrowserProblems) -> None:
    """The watcher every browser test relies on really sees what it must catch."""
    page.goto("/accounts/login/")
    inline = (
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.ran = 1'; document.head.append(s); }"
    )
    with page.expect_console_message(lambda m: m.text.startswith(CSP_PREFIX)):
        page.evaluate(inline)
    assert page.evaluate("window.ran") is None  # the CSP blocked the inline script
    with page.expect_console_message(lambda m: m.text == "boom"):
        page.evaluate("console.error('boom')")
    assert any("script-src" in v for v in problems.csp_violations)
    assert any(e.startswith("boom") for e in problems.console_errors)
    with pytest.raises(AssertionError, match="CSP violations"):
        problems.assert_clean()
    problems.assert_clean()  # each problem is reported once


def test_it_toggles_dark_mode_and_keeps_it_after_a_reload(page: Page, base_url: str, problems: BrowserProblems) -> None:
    page.goto("/accounts/login/")
    html = page.locator("html")
    toggle = page.get_by_role("button", name="Dark mode")
    expect(html).to_have_attribute("data-theme", "auto")
    expect(page.locator("body")).to_have_css("background-color", LIGHT_BG)
    expect(toggle).to_have_attribute("aria-pressed", "false")

    toggle.click()
    expect(html).to_have_attribute("data-theme", "dark")
    expect(page.locator("body")).to_have_css("background-color", DARK_BG)
    expect(toggle).to_have_attribute("aria-pressed", "true")

    page.reload()
    expect(html).to_have_attribute("data-theme", "dark")
    expect(page.locator("body")).to_have_css("background-color", DARK_BG)
    expect(toggle).to_have_attribute("aria-pressed", "true")

    toggle.click()
    page.reload()
    expect(html).to_have_attribute("data-theme", "light")
    expect(page.locator("body")).to_have_css("background-color", LIGHT_BG)
    problems.assert_clean()


def test_it_follows_the_system_theme_until_the_user_chooses(
    page: Page, base_url: str, problems: BrowserProblems
) -> None:
    page.emulate_media(color_scheme="dark")
    page.goto("/accounts/login/")
    expect(page.locator("body")).to_have_css("background-color", DARK_BG)
    expect(page.get_by_role("button", name="Dark mode")).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Dark mode").click()
    expect(page.locator("body")).to_have_css("background-color", LIGHT_BG)
    problems.assert_clean()


def test_the_server_switcher_navigates(
    admin_page: Page, server: Server, other_server: Server, problems: BrowserProblems
) -> None:
    page = admin_page
    page.goto("/")  # the servers were added after sign-in
    switcher = page.get_by_label("Server", exact=True)
    expect(switcher.locator("option:checked")).to_have_text("All servers")

    switcher.select_option(label="Other-2")
    expect(page).to_have_url(re.compile(rf"/servers/{other_server.pk}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Other-2")
    expect(switcher.locator("option:checked")).to_have_text("Other-2")

    switcher.select_option(label="Acme-1")
    expect(page).to_have_url(re.compile(rf"/servers/{server.pk}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme-1")

    switcher.select_option(label="All servers")
    expect(page.get_by_role("heading", level=1)).to_have_text("Servers")
    problems.assert_clean()


def test_with_the_keyboard_the_switcher_waits_for_enter(
    admin_page: Page, server: Server, other_server: Server, problems: BrowserProblems
) -> None:
    page = admin_page
    page.goto("/")
    switcher = page.get_by_label("Server", exact=True)
    switcher.focus()
    switcher.press("ArrowDown")  # Acme-1
    switcher.press("ArrowDown")  # Other-2: arrows move the choice without leaving the page
    expect(switcher.locator("option:checked")).to_have_text("Other-2")
    expect(page.get_by_role("heading", level=1)).to_have_text("Servers")
    switcher.press("Enter")
    expect(page).to_have_url(re.compile(rf"/servers/{other_server.pk}/$"))
    problems.assert_clean()


def test_removing_a_member_asks_first_and_a_no_changes_nothing(
    admin_page: Page, server: Server, viewer: User, problems: BrowserProblems
) -> None:
    page = admin_page
    page.goto(f"/servers/{server.pk}/")
    row = page.get_by_role("row").filter(has_text="viewer@example.com")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    questions: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    row.get_by_role("button", name="Remove").click()
    page.reload()  # a round trip after the click: a submitted form would have been sent by now
    assert questions == ["Remove viewer@example.com's access to Acme-1?"]
    assert posts == []
    assert Membership.objects.filter(server=server, user=viewer).exists()

    def accept(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    row.get_by_role("button", name="Remove").click()
    expect(page.locator("#messages")).to_contain_text("viewer@example.com no longer has access to Acme-1")
    expect(row).to_have_count(0)
    assert len(questions) == 2
    assert not Membership.objects.filter(server=server, user=viewer).exists()
    problems.assert_clean()


def test_deactivating_a_user_asks_first(admin_page: Page, viewer: User, problems: BrowserProblems) -> None:
    page = admin_page
    page.goto("/admin/users/")
    row = page.get_by_role("row").filter(has_text="viewer@example.com")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Deactivate").click()
    expect(page.locator("#messages")).to_contain_text("viewer@example.com is deactivated")
    expect(row.get_by_text("deactivated")).to_be_visible()
    expect(row.get_by_role("button", name="Reactivate")).to_be_visible()
    viewer.refresh_from_db()
    assert viewer.is_active is False
    problems.assert_clean()


def test_htmx_requests_carry_the_csrf_token(
    log_in: Callable[[User], Page], admin: User, server: Server, problems: BrowserProblems
) -> None:
    page = log_in(admin)
    page.goto(f"/servers/{server.pk}/")
    server.api_key = ""
    server.save(update_fields=["api_key"])  # no key: the check answers at once, without a network call

    def is_test(request: Request) -> bool:
        return request.url.endswith(f"/servers/{server.pk}/test/") and request.method == "POST"

    with page.expect_request(is_test) as request_info:
        page.get_by_role("button", name="Test connection").click()
    request = request_info.value
    token = page.locator("body").evaluate("b => JSON.parse(b.getAttribute('hx-headers'))['X-CSRFToken']")
    assert request.headers.get("hx-request") == "true"
    assert request.headers.get("x-csrftoken") == token
    assert len(token) == 64
    assert request.response() is not None and request.response().status == 200  # type: ignore[union-attr]
    expect(page.get_by_test_id("connection-result")).to_contain_text("No API key is stored")
    problems.assert_clean()


def test_an_htmx_form_with_data_confirm_asks_exactly_once(
    admin_page: Page, server: Server, problems: BrowserProblems
) -> None:
    page = admin_page
    page.goto(f"/servers/{server.pk}/")
    # An htmx-driven destructive form, built in the page the way templates write one.
    page.evaluate(
        """(url) => {
          const form = document.createElement("form");
          form.setAttribute("hx-post", url);
          form.setAttribute("hx-swap", "none");
          form.setAttribute("data-confirm", "Really?");
          form.innerHTML = '<button type="submit" id="once">Go</button>';
          document.querySelector("main").append(form);
          window.htmx.process(form);
        }""",
        f"/servers/{server.pk}/test/",
    )
    questions: list[str] = []

    def accept(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.accept()

    # Accepting is what exposes a double prompt: a dismissed first prompt stops the submit.
    page.on("dialog", accept)
    with page.expect_request(f"**/servers/{server.pk}/test/"):
        page.click("#once")
    page.wait_for_timeout(300)
    assert questions == ["Really?"]
    problems.assert_clean()
