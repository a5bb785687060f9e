"""Browser tests: Debian's Chromium driven by pytest-playwright against pytest-django's live server.

Every test gets a `page` that records console errors, uncaught page errors and Content Security
Policy violations; tests end with `problems.assert_clean()` and the fixture checks again at
teardown, so a page that logs an error or breaks the CSP fails the test that opened it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.db.backends.postgresql.operations import DatabaseOperations as PostgresOperations
from playwright.sync_api import BrowserContext, ConsoleMessage, Error, Page, expect

from accounts.models import User
from tests.conftest import PASSWORD
from tests.sandbox.conftest import SandboxKeys, make_sandbox_server

CHROMIUM = "/usr/bin/chromium"

# Debian's Chromium, never a downloaded one (`playwright install` is not used anywhere).
# The flags keep it quiet and fast in containers and on CI's two cores: no sandbox (we run
# as an unprivileged user in a container), no GPU, and no background traffic to Google.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Seconds: a page of ours answers in milliseconds; anything slower is a failure, not a wait.
DEFAULT_TIMEOUT_MS = 5_000

CSP_PREFIX = "[csp-violation]"

# Runs before any script of the page (Playwright injects it outside the page's CSP). The event
# bubbles to the document from the offending element; Chromium also logs its own "Refused to …"
# line, which the console listener sees as an error.
CSP_LISTENER = (
    "document.addEventListener('securitypolicyviolation', function (e) {"
    f"  console.error('{CSP_PREFIX} ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline')"
    "    + ' at ' + e.sourceFile + ':' + e.lineNumber);"
    "}, true);"
)


@dataclass
class BrowserProblems:
    """What went wrong in the browser while a test ran."""

    console_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        text = message.text
        if text.startswith(CSP_PREFIX):
            self.csp_violations.append(text.removeprefix(CSP_PREFIX).strip())
        else:
            self.console_errors.append(f"{text} ({message.location.get('url', '')})")

    def on_page_error(self, error: Error) -> None:
        self.console_errors.append(f"uncaught: {error.message}")

    def clear(self) -> None:
        self.console_errors.clear()
        self.csp_violations.clear()

    def assert_clean(self) -> None:
        # Reported once: what a failed assertion showed is not reported again at teardown.
        violations, errors = list(self.csp_violations), list(self.console_errors)
        self.clear()
        assert violations == [], f"CSP violations: {violations}"
        assert errors == [], f"console errors: {errors}"


def _delete_instead_of_truncate(
    ops: Any, style: Any, tables: list[str], *, reset_sequences: bool = False, allow_cascade: bool = False
) -> list[str]:
    if reset_sequences or not tables:
        return list(_TRUNCATE(ops, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade))
    # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED and the flush runs in one
    # transaction, so the order of the deletes does not matter.
    return ["SET CONSTRAINTS ALL DEFERRED", *(f"DELETE FROM {ops.quote_name(table)}" for table in tables)]


_TRUNCATE = PostgresOperations.sql_flush


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None]:
    """Empty the database after a browser test with DELETE rather than TRUNCATE.

    Browser tests need a transactional database (the live server answers from other threads),
    which pytest-django empties after each test with one TRUNCATE of every table: about a second
    for ~50 tables on PostgreSQL, most of a browser test's time. Deleting the few rows a test
    wrote takes a few milliseconds. Only teardowns of tests in this directory are affected.
    """
    with mock.patch.object(PostgresOperations, "sql_flush", _delete_instead_of_truncate):
        return (yield)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    # A fixed viewport, locale, zone and colour scheme so the pages (and screenshots) do not
    # depend on the machine running the tests.
    return {
        **browser_context_args,
        "viewport": {"width": 1280, "height": 900},
        "locale": "en-US",
        "timezone_id": "UTC",
        "color_scheme": "light",
    }


@pytest.fixture
def problems() -> BrowserProblems:
    return BrowserProblems()


@pytest.fixture
def page(context: BrowserContext, problems: BrowserProblems) -> Generator[Page]:
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    page.on("console", problems.on_console)
    page.on("pageerror", problems.on_page_error)
    yield page
    # Catch what appeared after the test's own assert_clean(), e.g. from its last click.
    problems.assert_clean()


@pytest.fixture(scope="session")
def base_url(django_db_setup: None, live_server: Any) -> Generator[str]:
    """The live server's address, so pages open with relative URLs: `page.goto("/")`.

    pytest-django runs the server in a thread of this process on loopback (which pytest-socket
    allows) and gives every test that uses it a transactional database, flushed afterwards.
    """
    # Browsers and the SocketLabs client keep HTTP connections alive, so a live-server thread
    # can outlive its request; with persistent database connections it would keep a session
    # open and PostgreSQL would refuse to drop the test database at the end. Close per request.
    database = django_settings.DATABASES["default"]
    kept = database.get("CONN_MAX_AGE", 0)
    database["CONN_MAX_AGE"] = 0
    yield str(live_server.url)
    database["CONN_MAX_AGE"] = kept


@pytest.fixture
def log_in(page: Page) -> Callable[[User], Page]:
    """Sign a user in through the real sign-in form, as a person would."""

    def sign_in(user: User, password: str = PASSWORD) -> Page:
        page.goto("/accounts/login/")
        page.get_by_label("E-mail address").fill(user.email)
        page.get_by_label("Password", exact=True).fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page).not_to_have_url(re.compile(r"/accounts/login/"))
        return page

    return sign_in


@pytest.fixture
def admin_page(log_in: Callable[[User], Page], site_admin: User) -> Page:
    """A page signed in as the site administrator."""
    return log_in(site_admin)


@dataclass(frozen=True)
class ConnectionTarget:
    """Where the browser flow's new server points, and what "Test connection" should then say."""

    api_url: str
    socketlabs_id: int
    api_key: str
    expected_message: str
    expected_status: str  # the badge's words
    expected_badge_class: str


@pytest.fixture
def sandbox(base_url: str, settings: Any) -> SandboxKeys:
    """A server in the SocketLabs sandbox, served over real HTTP by the same live server."""
    settings.SANDBOX_ENABLED = True
    return make_sandbox_server()


@pytest.fixture
def connection_target(base_url: str, sandbox: SandboxKeys) -> ConnectionTarget:
    """The sandbox's API v2 with a key it knows: "Test connection" succeeds.

    Override this fixture to point the flow elsewhere (another server id, a wrong key, a closed
    port): the flow test reads every expectation from here.
    """
    return ConnectionTarget(
        api_url=f"{base_url}/sandbox/api/v2",
        socketlabs_id=sandbox.server_id,
        api_key=sandbox.api_key,
        expected_message=f"Connected to server {sandbox.server_id} ({sandbox.server.name}).",
        expected_status="Connected",
        expected_badge_class="status-ok",
    )
