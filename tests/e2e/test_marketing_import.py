"""The contacts import wizard in a browser: upload → map → preview → import → progress → report → search.

The import runs in a real Celery worker (in a thread, on the Redis broker), as in production; the file
is large enough (40,000 rows) that the progress bar is seen before the report replaces it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from playwright.sync_api import Page, expect

import marketing.tasks  # noqa: F401 - registers the tasks with the app before the worker starts
from accounts.models import Membership, Server, User
from accounts.roles import Role
from config.celery import app as celery_app
from marketing import services
from marketing.models import Contact, ContactList, FieldType, ImportJob, JobStatus
from tests.conftest import PASSWORD
from tests.e2e.conftest import BrowserProblems

pytestmark = pytest.mark.browser

ROWS = 40_000


@pytest.fixture
def worker() -> Iterator[None]:
    celery_app.control.purge()  # leftovers of other tests on this broker database
    with start_worker(celery_app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10):
        yield


@pytest.fixture
def acme(base_url: str, settings: Any, tmp_path: Path) -> Server:
    settings.MEDIA_ROOT = tmp_path / "media"
    return Server.objects.create(name="Acme-1", socketlabs_id=10001)


def test_it_imports_a_csv_through_the_wizard_and_finds_the_rows(
    log_in: Callable[[User], Page], acme: Server, worker: None, tmp_path: Path, problems: BrowserProblems
) -> None:
    user = User.objects.create_user("marketing@example.com", PASSWORD)
    Membership.objects.create(user=user, server=acme, role=Role.MARKETING)
    services.create_field(server=acme, actor=user, label="Plan", type=FieldType.CHOICE, choices=["free", "pro"])
    newsletter = services.create_list(server=acme, actor=user, name="Newsletter")
    upload = tmp_path / "people.csv"
    lines = ["E-mail,First name,Last name,Plan,Lead score,Notes"]
    lines.append("ann.lee@example.com,Ann,Lee,PRO,42,likes tea")
    lines.append("not-an-address,Bob,Ray,free,1,")  # line 3: refused
    lines.append("cid@example.com,Cid,,gold,7,")  # line 4: "gold" is not a plan
    lines += [f"person{i}@example.org,P{i},Q,free,{i % 100},note {i}" for i in range(ROWS - 3)]
    upload.write_text("\n".join(lines) + "\n")

    page = log_in(user)
    page.goto(f"/servers/{acme.pk}/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Imports").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Import contacts from a CSV file")
    page.get_by_label("CSV file").set_input_files(str(upload))
    page.get_by_role("button", name="Upload and map columns").click()

    # Mapping: suggestions from the header; the notes column is ignored by choice.
    expect(page.get_by_role("heading", level=1)).to_have_text("2. What is in each column?")
    expect(page.get_by_text("comma-separated, with a header row")).to_be_visible()
    expect(page.get_by_label("Import E-mail as")).to_have_value("email")
    expect(page.get_by_label("Import Plan as")).to_have_value("field:plan")
    expect(page.get_by_label("Import Lead score as")).to_have_value("new:number")
    page.get_by_label("Import Notes as").select_option("")
    page.get_by_role("button", name="Preview").click()

    # Preview: the first rows as they will be stored, bad ones with the reason.
    table = page.get_by_test_id("preview-table")
    expect(table).to_contain_text("ann.lee@example.com")
    expect(table.locator("tr", has_text="ann.lee@example.com")).to_contain_text("pro")
    expect(table.locator("tr", has_text="not-an-address")).to_contain_text("has no @")
    expect(table.locator("tr", has_text="cid@example.com")).to_contain_text("“gold” is not one of the choices")
    page.get_by_label("Skip invalid rows and import the rest").check()
    page.get_by_label("Newsletter").check()
    page.get_by_role("button", name="Start the import").click()

    # Progress (polled over HTMX), then the report in its place.
    job = ImportJob.objects.get()
    expect(page).to_have_url(re.compile(rf"/contacts/imports/{job.pk}/$"))
    expect(page.get_by_test_id("import-progress")).to_be_visible(timeout=15_000)
    report = page.get_by_test_id("import-report")
    expect(report).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("created-count")).to_have_text(f"{ROWS - 2:,}")
    expect(page.get_by_test_id("invalid-count")).to_have_text("2")
    problems_table = page.get_by_test_id("problems-table")
    expect(problems_table.locator("tr", has_text="has no @").locator("td").first).to_have_text("3")
    expect(problems_table.locator("tr", has_text="gold").locator("td").first).to_have_text("4")
    expect(page.get_by_test_id("report-link")).to_be_visible()
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.list_added_count == ROWS - 2
    assert Contact.objects.get(email="ann.lee@example.com").custom == {"plan": "pro", "lead_score": 42}
    assert ContactList.objects.get(pk=newsletter.pk).member_count == ROWS - 2

    # The new contacts are found by search.
    page.get_by_role("link", name="See the new contacts").click()
    page.get_by_label("Search").fill("ann.")
    page.get_by_role("button", name="Show contacts").click()
    rows = page.get_by_test_id("contacts-table").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("ann.lee@example.com")
    expect(rows.first).to_contain_text("Ann Lee")
    rows.first.get_by_role("link").click()
    expect(page.get_by_test_id("history")).to_contain_text(f"Added by import #{job.pk}")
    problems.assert_clean()
