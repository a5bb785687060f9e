"""Bulk suppression import in a browser: upload a CSV → see the diff → apply → watch progress → search finds the rows.

The apply runs in a real Celery worker (in a thread, on the Redis broker) that calls the sandbox
over real HTTP, exactly as in production.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from playwright.sync_api import Page, expect

import suppression.tasks  # noqa: F401 - registers the tasks with the app before the worker starts
from accounts.models import Membership, Server, User
from accounts.roles import Role
from config.celery import app as celery_app
from sandbox.models import SandboxSuppression
from suppression import services
from suppression.models import ImportJob, JobStatus
from tests.e2e.conftest import BrowserProblems
from tests.sandbox.conftest import SandboxKeys

pytestmark = pytest.mark.browser

NEW = [f"new{i:02d}@example.com" for i in range(24)]


@pytest.fixture
def worker() -> Iterator[None]:
    celery_app.control.purge()  # leftovers of other tests on this broker database
    with start_worker(celery_app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10):
        yield


@pytest.fixture
def linked_server(sandbox: SandboxKeys, base_url: str, settings: Any) -> Server:
    settings.MEDIA_ROOT = Path(settings.MEDIA_ROOT) / "e2e-suppression"
    settings.SUPPRESSION_API_RATE = 12  # paced: the progress bar is seen moving
    server = Server.objects.create(
        name="Acme-1", socketlabs_id=sandbox.server_id, api_url=f"{base_url}/sandbox/api/v2", api_key=sandbox.api_key
    )
    SandboxSuppression.objects.create(server=sandbox.server, email_address="known@example.com", reason="Bounce")
    services.sync(server=server)
    return server


def test_it_imports_a_csv_with_a_diff_a_progress_bar_and_a_searchable_result(
    log_in: Callable[[User], Page],
    linked_server: Server,
    sandbox: SandboxKeys,
    worker: None,
    tmp_path: Path,
    problems: BrowserProblems,
) -> None:
    ops = User.objects.create_user("ops@example.com", "correct horse battery staple 42")
    Membership.objects.create(user=ops, server=linked_server, role=Role.OPS)
    page = log_in(ops)
    upload = tmp_path / "suppress.csv"
    upload.write_text("Email;Reason\n" + "".join(f"{a};Complaint\n" for a in NEW) + "known@example.com;\nbroken;\n")

    page.goto(f"/servers/{linked_server.pk}/suppressions/")
    expect(page.get_by_test_id("last-synced")).not_to_contain_text("never")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Import", exact=True).click()
    page.get_by_label("CSV file").set_input_files(str(upload))
    page.get_by_role("button", name="Upload and check").click()

    # The dry-run diff: what would be added, what is already there, which line is bad and why.
    expect(page.get_by_test_id("job-status")).to_have_text("Ready to apply")
    expect(page.get_by_text("semicolon-separated, with a header row")).to_be_visible()
    expect(page.get_by_test_id("to-change")).to_have_text("24")
    expect(page.get_by_test_id("unchanged")).to_have_text("1")
    expect(page.get_by_test_id("problem-table")).to_contain_text("has no @")
    expect(page.get_by_test_id("problem-table").locator("td.num")).to_have_text("27")
    assert not SandboxSuppression.objects.filter(email_address__startswith="new").exists()

    page.get_by_label("Skip the invalid rows").check()
    page.get_by_role("button", name="Add the addresses on 1 server").click()

    # The progress bar moves (counts and a bar), then the page shows the result.
    progress = page.get_by_test_id("apply-progress")
    expect(progress).to_be_visible()
    expect(progress.locator("progress")).to_be_visible()
    expect(progress).to_contain_text(re.compile(r"of 24 done"))
    expect(page.get_by_test_id("job-status")).to_have_text("Done", timeout=20_000)
    expect(page.get_by_test_id("changed")).to_have_text("24")
    job = ImportJob.objects.get()
    assert job.status == JobStatus.DONE
    assert set(SandboxSuppression.objects.filter(server=sandbox.server).values_list("email_address", flat=True)) == {
        *NEW,
        "known@example.com",
    }

    # The search finds the new rows.
    page.goto(f"/servers/{linked_server.pk}/suppressions/")
    page.locator("#search_address").fill("new0")
    page.get_by_role("button", name="Search").click()
    table = page.get_by_test_id("suppression-table")
    expect(table.locator("tbody tr")).to_have_count(10)
    expect(table).to_contain_text("new09@example.com")
    expect(table).to_contain_text("Complaint")
    expect(page).to_have_url(re.compile(r"address=new0"))
    problems.assert_clean()
