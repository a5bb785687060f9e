"""Sending setup in the browser: add a domain, see its DKIM record, publish it in DNS, verify, green badge."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Dialog, Page, expect

from accounts.models import AuditLog, Server
from sandbox.models import SandboxDkim, SandboxSendingDomain
from tests.dnsfixture import Zone, dns_server, dns_zone  # noqa: F401 - fixtures
from tests.e2e.conftest import BrowserProblems
from tests.sandbox.conftest import SandboxKeys

pytestmark = pytest.mark.browser
GREEN = "rgb(17, 99, 41)"  # --ok in the light theme


@pytest.fixture
def acme(sandbox: SandboxKeys, base_url: str) -> Server:
    return Server.objects.create(
        name="Acme Mail", socketlabs_id=sandbox.server_id, api_url=f"{base_url}/sandbox/api/v2", api_key=sandbox.api_key
    )


def test_it_adds_a_domain_shows_its_dkim_record_and_verifies_it_once_published(
    admin_page: Page,
    acme: Server,
    dns_zone: Zone,  # noqa: F811 - the fixture imported above
    problems: BrowserProblems,
) -> None:
    page = admin_page
    page.goto(f"/servers/{acme.pk}/")
    sidebar = page.get_by_role("navigation", name="Main")
    sidebar.get_by_role("link", name="Sending domains").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sending domains")

    # Add the domain in place.
    page.get_by_label("Domain").fill("example.com")
    page.get_by_role("button", name="Add domain").click()
    expect(page.get_by_test_id("flash")).to_contain_text("Added example.com")
    row = page.locator("tr[data-domain='example.com']")
    expect(row).to_contain_text("Pending")

    # The sending domain's verification record, published, then verified.
    record = SandboxSendingDomain.objects.get().verification_record
    expect(row.get_by_label("Verification record for example.com")).to_have_value(record)
    dns_zone.txt("example.com", "v=spf1 -all", record)
    row.get_by_role("button", name="Verify example.com").click()
    expect(page.get_by_test_id("flash")).to_have_text("SocketLabs verified example.com.")
    expect(page.locator("tr[data-domain='example.com'] .badge").first).to_have_text("Verified")

    # A DKIM key: SocketLabs generates the pair, the page shows where and what to publish.
    sidebar.get_by_role("link", name="DKIM").click()
    page.get_by_label("Domain").fill("example.com")
    page.get_by_label("Selector").fill("mr1")
    page.get_by_role("button", name="Create key and show the DNS record").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("DKIM key mr1._domainkey.example.com")
    expect(page.get_by_test_id("dkim-host")).to_have_value("mr1._domainkey.example.com")
    value = page.get_by_test_id("dkim-value").input_value()
    assert value.startswith("v=DKIM1; k=rsa; p=MIIB")
    strings = page.get_by_test_id("dkim-strings").input_value()
    assert strings.count('"') == 4 and strings.replace('" "', "").strip('"') == value
    page.get_by_role("button", name="Copy").first.click()
    expect(page.get_by_role("button", name="Copied")).to_have_count(1)
    expect(page.get_by_test_id("dkim-status")).to_contain_text("Waiting for DNS")

    # Verify before publishing: our own check says what is wrong and SocketLabs is not asked.
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_test_id("flash")).to_contain_text("Not asking SocketLabs yet")
    expect(page.get_by_test_id("flash")).to_contain_text("does not exist (NXDOMAIN)")
    assert not SandboxDkim.objects.exists()

    # The DNS fixture publishes the record as a zone file would (two strings); verify → green badge.
    dns_zone.txt("mr1._domainkey.example.com", value)
    page.get_by_role("button", name="Verify").click()
    badge = page.get_by_test_id("dkim-status").locator(".badge")
    expect(badge).to_have_text("Verified")
    expect(badge).to_have_class(re.compile("status-ok"))
    expect(badge).to_have_css("color", GREEN)
    assert SandboxDkim.objects.get().validation_status == "Verified"

    # The list agrees, with our DNS check beside SocketLabs' status.
    sidebar.get_by_role("link", name="DKIM").click()
    key_row = page.locator("tr[data-host='mr1._domainkey.example.com']")
    expect(key_row.locator(".badge").first).to_have_text("Verified")
    expect(key_row.get_by_test_id("dns-dkim-example.com-mr1")).to_contain_text("Matches")
    assert AuditLog.objects.filter(server=acme, action="sending.dkim.verify").count() == 1
    problems.assert_clean()


def test_a_bounce_domain_is_checked_in_place_and_removed_after_a_named_confirmation(
    admin_page: Page,
    acme: Server,
    dns_zone: Zone,  # noqa: F811 - the fixture imported above
    problems: BrowserProblems,
) -> None:
    page = admin_page
    page.goto(f"/servers/{acme.pk}/sending/bounce/")
    page.get_by_label("Domain", exact=True).fill("bounce.example.com")
    page.get_by_role("button", name="Add bounce domain").click()
    row = page.locator("tr[data-domain='bounce.example.com']")
    expect(row).to_be_visible()

    dns_zone.cname("bounce.example.com", "tracking.socketlabs.com")
    row.get_by_role("button", name="Check DNS for bounce.example.com").click()
    cell = page.get_by_test_id("dns-bounce-bounce.example.com")
    expect(cell.locator(".badge")).to_have_text("Matches")
    expect(cell.locator(".badge")).to_have_css("color", GREEN)

    asked: list[str] = []

    def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    row.get_by_role("button", name="Remove bounce.example.com").click()
    expect(page.get_by_test_id("flash")).to_have_text("Removed the bounce domain bounce.example.com from Acme Mail.")
    assert asked == ["Remove the bounce domain bounce.example.com from server Acme Mail?"]
    problems.assert_clean()


def test_dns_health_shows_what_is_wrong_for_every_record(
    admin_page: Page,
    acme: Server,
    dns_zone: Zone,  # noqa: F811 - the fixture imported above
    problems: BrowserProblems,
) -> None:
    from sending import services

    services.add_bounce_domain(request=None, actor=None, server=acme, domain="bounce.example.com")
    services.add_tracking_domain(request=None, actor=None, server=acme, domain="t.example.com", flags={})
    dns_zone.cname("bounce.example.com", "elsewhere.example.net")
    dns_zone.silent("t.example.com")
    from sending.models import DnsCheckJob

    job = DnsCheckJob.objects.create(server=acme, server_ids=[acme.pk])
    services.run_dns_job(job.pk)

    page = admin_page
    page.goto(f"/servers/{acme.pk}/sending/dns/")
    table = page.get_by_test_id("dns-health")
    expect(table.locator("tr[data-host='bounce.example.com']")).to_contain_text("Wrong value")
    expect(table.locator("tr[data-host='bounce.example.com']")).to_contain_text("points to elsewhere.example.net")
    expect(table.locator("tr[data-host='t.example.com']")).to_contain_text("Unknown, retry later")
    page.get_by_label("Show").select_option("problems")
    page.get_by_role("button", name="Filter").click()
    expect(table.locator("tbody tr")).to_have_count(2)
    problems.assert_clean()
