"""Compose and send in a browser: template → preview → send to a contact list → progress reaches 100 % → history.

The send runs in a real Celery worker (in a thread, on the Redis broker) that injects into the
sandbox over real HTTP, exactly as in production.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from celery.contrib.testing.worker import start_worker
from playwright.sync_api import Dialog, Page, expect

import sending.tasks  # noqa: F401 - registers the tasks with the app before the worker starts
from accounts.models import Membership, Server, User
from accounts.roles import Role
from config.celery import app as celery_app
from marketing.models import Contact, ContactList, Status
from marketing.models import Membership as ListMembership
from sandbox.models import SandboxMessage
from tests.e2e.conftest import BrowserProblems
from tests.sandbox.conftest import SandboxKeys

pytestmark = pytest.mark.browser


@pytest.fixture
def worker() -> Iterator[None]:
    celery_app.control.purge()  # leftovers of other tests on this broker database
    with start_worker(celery_app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10):
        yield


@pytest.fixture
def inject_server(sandbox: SandboxKeys, base_url: str) -> Server:
    return Server.objects.create(
        name="Acme-1",
        socketlabs_id=sandbox.server_id,
        api_url=f"{base_url}/sandbox/api/v2",
        api_key=sandbox.api_key,
        inject_url=f"{base_url}/sandbox/inject/api/v1/email",
        injection_key=sandbox.injection_key,
    )


def test_a_marketer_writes_a_template_previews_it_and_sends_it_to_a_list(
    log_in: Callable[[User], Page], inject_server: Server, worker: None, problems: BrowserProblems
) -> None:
    marketer = User.objects.create_user("marketing@example.com", "correct horse battery staple 42")
    Membership.objects.create(user=marketer, server=inject_server, role=Role.MARKETING)
    customers = ContactList.objects.create(server=inject_server, name="Customers")
    for i, status in enumerate([Status.SUBSCRIBED] * 3 + [Status.UNSUBSCRIBED]):
        contact = Contact.objects.create(
            server=inject_server, email=f"c{i}@example.net", first_name=f"Cust{i}", status=status
        )
        ListMembership.objects.create(contact_list=customers, contact=contact)
    page = log_in(marketer)
    page.on("dialog", lambda dialog: dialog.accept() if isinstance(dialog, Dialog) else None)

    # A template, and its preview for a pasted row (escaped, never rendered).
    page.goto(f"/servers/{inject_server.pk}/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Templates").click()
    page.get_by_role("link", name="New template").click()
    page.get_by_label("Name", exact=True).fill("Spring news")
    page.get_by_label("Subject").fill("Hello %%FirstName%%")
    page.get_by_label("HTML body").fill("<p>Hi %%FirstName%%, see %%Offer%%</p>")
    page.get_by_label("Generate the text body from the HTML").check()
    page.get_by_role("button", name="Save template").click()
    expect(page.get_by_text("Template “Spring news” saved.")).to_be_visible()
    page.get_by_label("Preview for").fill("FirstName: <b>Ann</b>")
    page.get_by_role("button", name="Show preview").click()
    expect(page.get_by_test_id("preview-subject")).to_have_text("Hello <b>Ann</b>")
    expect(page.get_by_test_id("preview-missing")).to_contain_text("Offer")

    # The wizard: audience → template → settings → summary → confirm.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New send").click()
    page.get_by_label("Contact lists").check()
    page.get_by_label("Customers").check()
    page.get_by_label("Template").select_option(label="Spring news")
    page.get_by_label("From address").fill("news@example.com")
    page.get_by_label("Global merge fields").fill("Offer: 10% off")
    page.get_by_role("button", name="Continue to the summary").click()
    expect(page.get_by_test_id("summary")).to_contain_text("3 recipients, 1 skipped")
    expect(page.get_by_test_id("skipped")).to_contain_text("c3@example.net: unsubscribed")
    assert not SandboxMessage.objects.exists()
    page.get_by_role("button", name="Confirm and send").click()

    # The progress bar polls until every recipient is accepted.
    expect(page.get_by_test_id("send-progress")).to_have_attribute("data-status", "done", timeout=20_000)
    expect(page.get_by_test_id("send-percent")).to_have_attribute("data-percent", "100")
    expect(page.get_by_test_id("send-progress")).to_contain_text("3 accepted, 0 rejected")
    subjects = sorted(SandboxMessage.objects.values_list("subject", "text_body"))
    assert subjects == [(f"Hello Cust{i}", f"Hi Cust{i}, see 10% off") for i in range(3)]

    # The history shows the numbers.
    page.get_by_role("link", name="All sends").click()
    row = page.get_by_test_id("send-history").locator("tbody tr").first
    expect(row).to_contain_text("Spring news")
    expect(row).to_contain_text("Done")
    expect(row.get_by_test_id("accepted")).to_have_text("3")
    problems.assert_clean()
