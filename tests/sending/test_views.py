"""Sending-setup pages over the sandbox: roles, HTMX fragments, one-time secrets, bad input, DNS health."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditLog, Server, User
from sandbox.models import SandboxApiKey, SandboxBounceDomain, SandboxDkim, SandboxSendingDomain, SandboxTrackingDomain
from sending import services
from sending.models import DkimSetup, DnsCheckJob, DnsCheckResult, DnsState, JobStatus, RecordKind, SetupStep
from tests.dnsfixture import Zone
from tests.sandbox.conftest import SandboxKeys

pytestmark = pytest.mark.django_db(transaction=True)
HTMX = {"HX-Request": "true"}
AsUser = Callable[[User], Client]


def url(name: str, server: Server, *args: object) -> str:
    return reverse(f"sending:{name}", args=[server.pk, *args])


PAGES = ["api_keys", "domains", "dkim", "bounce", "tracking", "dns"]


@pytest.mark.parametrize("page", PAGES)
def test_every_role_on_the_server_may_read_every_page(
    sl_server: Server, as_user: AsUser, admin: User, ops: User, marketing: User, viewer: User, page: str
) -> None:
    for user in (admin, ops, marketing, viewer):
        response = as_user(user).get(url(page, sl_server))
        assert response.status_code == 200, (user, page)
        assert b"<h2>Sending</h2>" in response.content


@pytest.mark.parametrize("page", PAGES)
def test_an_outsider_gets_404_and_learns_nothing(sl_server: Server, as_user: AsUser, outsider: User, page: str) -> None:
    assert as_user(outsider).get(url(page, sl_server)).status_code == 404
    assert as_user(outsider).post(url(page, sl_server), {"domain": "example.com"}).status_code == 404


@pytest.mark.parametrize("page", ["api_keys", "domains", "dkim", "bounce", "tracking", "dns"])
def test_marketing_and_viewers_may_not_change_anything(
    sl_server: Server, as_user: AsUser, marketing: User, viewer: User, page: str
) -> None:
    for user in (marketing, viewer):
        response = as_user(user).post(
            url(page, sl_server), {"domain": "example.com", "name": "x", "permissions": ["api"]}
        )
        assert response.status_code == 403
    assert not SandboxSendingDomain.objects.exists()
    assert not SandboxApiKey.objects.filter(name="x").exists()


def test_readers_see_no_buttons_that_change_things(sl_server: Server, as_user: AsUser, viewer: User, ops: User) -> None:
    services.add_bounce_domain(request=None, actor=ops, server=sl_server, domain="bounce.example.com")
    page = as_user(viewer).get(url("bounce", sl_server)).content.decode()
    assert "bounce.example.com" in page
    assert "Remove" not in page and "Check DNS" not in page and "Add bounce domain" not in page


# --- API keys ----------------------------------------------------------------------------------------------
def test_a_new_key_is_shown_once_with_a_copy_button_and_never_again(
    sl_server: Server, as_user: AsUser, ops: User, sandbox: SandboxKeys
) -> None:
    client = as_user(ops)
    response = client.post(url("api_keys", sl_server), {"name": "Shop", "permissions": ["injection"]}, headers=HTMX)
    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" not in page, "HTMX gets the panel only"
    secret = re.search(r'id="new-key-secret" readonly value="([^"]+)"', page)
    assert secret and len(secret.group(1)) == 61
    assert 'data-copy="#new-key-secret"' in page
    assert "shown only this once" in page
    assert "no-store" in response["Cache-Control"]
    again = client.get(url("api_keys", sl_server)).content.decode()
    assert "Shop" in again and secret.group(1) not in again


def test_only_an_admin_may_store_the_new_key_for_mailroom(
    sl_server: Server, as_user: AsUser, ops: User, admin: User
) -> None:
    ops_page = as_user(ops).get(url("api_keys", sl_server)).content.decode()
    assert "Use this key for Mailroom" not in ops_page
    # Ops sending the field anyway changes nothing in Mailroom.
    as_user(ops).post(url("api_keys", sl_server), {"name": "Sneaky", "permissions": ["api"], "use_for_mailroom": "on"})
    sl_server.refresh_from_db()
    assert not sl_server.api_key.startswith(SandboxApiKey.objects.get(name="Sneaky").public_part)

    response = as_user(admin).post(
        url("api_keys", sl_server), {"name": "Mailroom", "permissions": ["api"], "use_for_mailroom": "on"}
    )
    assert response.status_code == 200
    assert "Mailroom now uses it for this server" in response.content.decode()
    sl_server.refresh_from_db()
    assert sl_server.api_key.startswith(SandboxApiKey.objects.get(name="Mailroom").public_part)
    assert "Used by Mailroom" in as_user(admin).get(url("api_keys", sl_server)).content.decode()


def test_creating_a_key_without_a_permission_says_so_next_to_the_field(
    sl_server: Server, as_user: AsUser, ops: User
) -> None:
    response = as_user(ops).post(url("api_keys", sl_server), {"name": "Shop"})
    assert response.status_code == 400
    assert "Choose at least one permission." in response.content.decode()
    assert 'value="Shop"' in response.content.decode(), "what was typed is kept"


def test_revoking_asks_first_naming_the_key_and_the_server(
    sl_server: Server, as_user: AsUser, ops: User, sandbox: SandboxKeys
) -> None:
    key = services.create_api_key(request=None, actor=ops, server=sl_server, name="Old shop", permissions=["injection"])
    client = as_user(ops)
    page = client.get(url("api_keys", sl_server)).content.decode()
    assert f"Revoke the API key “Old shop” ({key.public_part}) of server Acme-1?" in page
    response = client.post(url("api_key_revoke", sl_server, key.id), headers=HTMX)
    assert "Revoked the API key" in response.content.decode()
    assert not SandboxApiKey.objects.filter(pk=key.id).exists()


# --- sending domains ----------------------------------------------------------------------------------------
def test_an_invalid_domain_is_refused_next_to_the_field_and_kept(sl_server: Server, as_user: AsUser, ops: User) -> None:
    response = as_user(ops).post(url("domains", sl_server), {"domain": "not a domain"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "no spaces" in page
    assert 'value="not a domain"' in page
    assert not SandboxSendingDomain.objects.exists()
    htmx = as_user(ops).post(url("domains", sl_server), {"domain": "-x.example.com"}, headers=HTMX)
    assert htmx.status_code == 200 and "hyphen" in htmx.content.decode()


def test_adding_and_verifying_a_domain_in_place(sl_server: Server, as_user: AsUser, ops: User, dns_zone: Zone) -> None:
    client = as_user(ops)
    added = client.post(url("domains", sl_server), {"domain": "example.com"}, headers=HTMX).content.decode()
    assert "Added example.com" in added
    record = SandboxSendingDomain.objects.get().verification_record
    assert f'value="{record}"' in added
    early = client.post(url("domain_verify", sl_server, "example.com"), headers=HTMX).content.decode()
    assert "Not asking SocketLabs yet: example.com does not exist (NXDOMAIN)." in early
    dns_zone.txt("example.com", record)
    verified = client.post(url("domain_verify", sl_server, "example.com"), headers=HTMX).content.decode()
    assert "SocketLabs verified example.com." in verified
    assert '<span class="badge status-ok" title="Status at SocketLabs">Verified</span>' in verified


def test_removing_a_domain_without_htmx_redirects_with_a_message(sl_server: Server, as_user: AsUser, ops: User) -> None:
    services.add_sending_domain(request=None, actor=ops, server=sl_server, domain="example.com")
    client = as_user(ops)
    page = client.get(url("domains", sl_server)).content.decode()
    assert 'hx-confirm="Remove example.com from the sending domains of server Acme-1?' in page
    response = client.post(url("domain_remove", sl_server, "example.com"), follow=True)
    assert "Removed example.com from the sending domains of Acme-1." in response.content.decode()
    assert not SandboxSendingDomain.objects.exists()


def test_a_socketlabs_refusal_is_shown_in_plain_words(
    sl_server: Server, as_user: AsUser, ops: User, sandbox: SandboxKeys
) -> None:
    services.add_sending_domain(request=None, actor=ops, server=sl_server, domain="example.com")
    page = as_user(ops).post(url("domains", sl_server), {"domain": "example.com"}, headers=HTMX).content.decode()
    assert "SocketLabs refused to add the sending domain example.com" in page
    assert "(409)" in page


def test_a_page_explains_a_refused_key_instead_of_failing(sl_server: Server, as_user: AsUser, viewer: User) -> None:
    sl_server.api_key = "not-the-key"
    sl_server.save()
    response = as_user(viewer).get(url("dkim", sl_server))
    assert response.status_code == 200
    assert "SocketLabs refused the API key for server 17001 (401)." in response.content.decode()


# --- DKIM ---------------------------------------------------------------------------------------------------
def test_adding_a_dkim_key_shows_the_record_both_ways_then_verifies_to_a_green_badge(
    sl_server: Server, as_user: AsUser, ops: User, sandbox: SandboxKeys, dns_zone: Zone
) -> None:
    client = as_user(ops)
    response = client.post(url("dkim", sl_server), {"domain": "example.com", "selector": "mr1", "private_key": ""})
    setup = DkimSetup.objects.get()
    assert response.status_code == 302
    assert response["Location"] == url("dkim_setup", sl_server, setup.pk)
    page = client.get(response["Location"]).content.decode()
    assert 'value="mr1._domainkey.example.com"' in page
    assert f">{setup.txt_value}</textarea>" in page
    strings = re.search(r'data-testid="dkim-strings">([^<]+)</textarea>', page)
    assert strings and html.unescape(strings.group(1)).count('"') == 4, "two quoted strings of at most 255 bytes"
    assert page.count("data-copy=") >= 3
    assert "Waiting for DNS" in page

    early = client.post(url("dkim_verify", sl_server, setup.pk), headers=HTMX).content.decode()
    assert "Not asking SocketLabs yet" in early
    dns_zone.txt(setup.host, setup.txt_value)
    done = client.post(url("dkim_verify", sl_server, setup.pk), headers=HTMX).content.decode()
    assert '<span class="badge status-ok">Verified</span>' in done
    assert SandboxDkim.objects.get().selector == "mr1"
    listing = client.get(url("dkim", sl_server)).content.decode()
    assert '<span class="badge status-ok" title="Status at SocketLabs">Verified</span>' in listing


def test_a_bad_private_key_is_refused_next_to_the_field(sl_server: Server, as_user: AsUser, ops: User) -> None:
    response = as_user(ops).post(
        url("dkim", sl_server), {"domain": "example.com", "selector": "mr1", "private_key": "-----BEGIN nonsense"}
    )
    assert response.status_code == 400
    assert "not a readable private key" in response.content.decode()
    assert not DkimSetup.objects.exists()


def test_a_rotation_through_the_pages(
    sl_server: Server, as_user: AsUser, ops: User, sandbox: SandboxKeys, dns_zone: Zone
) -> None:
    first = services.start_dkim(request=None, actor=ops, server=sl_server, domain="example.com", selector="mr1")
    dns_zone.txt(first.host, first.txt_value)
    services.verify_dkim(request=None, actor=ops, setup=first)
    client = as_user(ops)
    form = client.get(url("dkim_rotate", sl_server, "example.com", "mr1")).content.decode()
    assert 'value="mr2"' in form, "the next selector is suggested"
    response = client.post(url("dkim_rotate", sl_server, "example.com", "mr1"), {"selector": "mr2"})
    rotation = DkimSetup.objects.get(old_selector="mr1")
    assert response["Location"] == url("dkim_setup", sl_server, rotation.pk)
    dns_zone.txt(rotation.host, rotation.txt_value)
    assert (
        "Switch signing to mr2"
        in client.post(url("dkim_verify", sl_server, rotation.pk), headers=HTMX).content.decode()
    )
    switched = client.post(url("dkim_switch", sl_server, rotation.pk), headers=HTMX).content.decode()
    assert "SocketLabs now signs with mr2" in switched
    dns_zone.remove(first.host)
    finished = client.post(url("dkim_finish", sl_server, rotation.pk), headers=HTMX).content.decode()
    assert "Rotation finished" in finished
    assert list(SandboxDkim.objects.values_list("selector", flat=True)) == ["mr2"]


def test_cancelling_a_key_returns_to_the_list(sl_server: Server, as_user: AsUser, ops: User) -> None:
    setup = services.start_dkim(request=None, actor=ops, server=sl_server, domain="example.com", selector="mr1")
    response = as_user(ops).post(url("dkim_cancel", sl_server, setup.pk), headers=HTMX)
    assert response["HX-Redirect"] == url("dkim", sl_server)
    setup.refresh_from_db()
    assert setup.step == SetupStep.CANCELLED


def test_another_servers_key_setup_is_not_found(
    sl_server: Server, other_server: Server, as_user: AsUser, ops: User
) -> None:
    foreign = DkimSetup.objects.create(server=other_server, domain="example.org", selector="x", public_key="AAAA")
    assert as_user(ops).get(url("dkim_setup", sl_server, foreign.pk)).status_code == 404
    assert as_user(ops).post(url("dkim_verify", sl_server, foreign.pk)).status_code == 404


# --- bounce and tracking ----------------------------------------------------------------------------------------
def test_bounce_domains_add_default_and_dns_check_in_place(
    sl_server: Server, as_user: AsUser, ops: User, dns_zone: Zone
) -> None:
    client = as_user(ops)
    added = client.post(url("bounce", sl_server), {"domain": "bounce.example.com"}, headers=HTMX).content.decode()
    assert "Point its CNAME to tracking.socketlabs.com" in added
    made = client.post(url("bounce_default", sl_server, "bounce.example.com"), {"is_default": "1"}, headers=HTMX)
    assert "bounce.example.com is now the default bounce domain." in made.content.decode()
    assert SandboxBounceDomain.objects.get().is_default
    dns_zone.cname("bounce.example.com", "elsewhere.example.net")
    dns_zone.a("elsewhere.example.net")
    cell = client.post(
        url("dns_check_record", sl_server), {"kind": "bounce", "domain": "bounce.example.com"}, headers=HTMX
    ).content.decode()
    assert cell.startswith('<div class="dns-cell"')
    assert "Wrong value" in cell
    assert "points to elsewhere.example.net, not tracking.socketlabs.com" in cell


def test_tracking_toggles_change_in_place(sl_server: Server, as_user: AsUser, ops: User, sandbox: SandboxKeys) -> None:
    client = as_user(ops)
    client.post(
        url("tracking", sl_server),
        {"domain": "t.example.com", "opens_enabled": "on", "clicks_enabled": "on", "https_enabled": "on"},
        headers=HTMX,
    )
    stored = SandboxTrackingDomain.objects.get()
    assert (stored.opens_enabled, stored.clicks_enabled, stored.unsubscribes_enabled, stored.https_enabled) == (
        True,
        True,
        False,
        True,
    )
    response = client.post(url("tracking_update", sl_server, "t.example.com"), {"opens_enabled": "on"}, headers=HTMX)
    assert "Saved the tracking settings of t.example.com." in response.content.decode()
    stored.refresh_from_db()
    assert (stored.opens_enabled, stored.clicks_enabled, stored.https_enabled) == (True, False, False)


# --- DNS health ---------------------------------------------------------------------------------------------------
def _result(server: Server, host: str, state: str, detail: str = "") -> DnsCheckResult:
    return DnsCheckResult.objects.create(
        server=server,
        kind=RecordKind.BOUNCE,
        domain=host,
        host=host,
        rtype="CNAME",
        expected="tracking.socketlabs.com",
        state=state,
        detail=detail,
    )


def test_the_health_table_shows_expected_published_and_what_is_wrong(
    sl_server: Server, as_user: AsUser, viewer: User
) -> None:
    _result(sl_server, "ok.example.com", DnsState.OK)
    _result(sl_server, "slow.example.com", DnsState.TIMEOUT, "The DNS server did not answer. Unknown: retry later.")
    _result(sl_server, "gone.example.com", DnsState.NXDOMAIN, "gone.example.com does not exist (NXDOMAIN).")
    page = as_user(viewer).get(url("dns", sl_server)).content.decode()
    assert "3 records" in page and "2 need attention" in page
    assert '<span class="badge status-unknown">Unknown, retry later</span>' in page
    assert '<span class="badge status-error">No such name</span>' in page
    assert "Check now" not in page, "viewers wait for the nightly check"
    only_problems = as_user(viewer).get(url("dns", sl_server), {"state": "problems"}).content.decode()
    assert "ok.example.com" not in only_problems and "gone.example.com" in only_problems


def test_a_check_runs_in_the_background_with_progress_and_refreshes_the_table(
    sl_server: Server, as_user: AsUser, ops: User, dns_zone: Zone, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    from sending import tasks

    monkeypatch.setattr(tasks.run_dns_check_job, "delay", lambda job_id: None)
    services.add_bounce_domain(request=None, actor=ops, server=sl_server, domain="bounce.example.com")
    client = as_user(ops)
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(url("dns", sl_server), headers=HTMX)
    job = DnsCheckJob.objects.get()
    fragment = started.content.decode()
    assert f'hx-get="{url("dns_job", sl_server, job.pk)}" hx-trigger="every 1s"' in fragment
    assert "Waiting for a worker" in fragment
    assert AuditLog.objects.filter(server=sl_server, action="sending.dns.check").count() == 1

    services.run_dns_job(job.pk)
    polled = client.get(url("dns_job", sl_server, job.pk), headers=HTMX)
    assert "dnsChecked" in json.loads(polled["HX-Trigger"])
    assert "Checked 1 record: 1 needs attention." in polled.content.decode()
    assert 'hx-trigger="every 1s"' not in polled.content.decode()
    table = client.get(url("dns", sl_server), {"fragment": "table"}, headers=HTMX).content.decode()
    assert table.lstrip().startswith('<div id="dns-table"') and "bounce.example.com" in table


def test_the_health_page_across_servers_shows_only_servers_the_user_can_see(
    sl_server: Server, other_server: Server, as_user: AsUser, viewer: User, outsider: User
) -> None:
    _result(sl_server, "mine.example.com", DnsState.OK)
    _result(other_server, "theirs.example.com", DnsState.WRONG)
    mine = as_user(viewer).get(reverse("sending_dns:all")).content.decode()
    assert "mine.example.com" in mine and "theirs.example.com" not in mine
    assert as_user(viewer).post(reverse("sending_dns:all")).status_code == 403
    theirs = as_user(outsider).get(reverse("sending_dns:all")).content.decode()
    assert "theirs.example.com" in theirs and "mine.example.com" not in theirs


def test_a_job_of_all_servers_is_visible_only_to_who_started_it(
    sl_server: Server, as_user: AsUser, ops: User, viewer: User
) -> None:
    job = DnsCheckJob.objects.create(
        server_ids=[sl_server.pk], requested_by=ops, status=JobStatus.RUNNING, total=4, done=1
    )
    own = as_user(ops).get(reverse("sending_dns:job", args=[job.pk]), headers=HTMX).content.decode()
    assert "Checked 1 of 4" in own
    assert as_user(viewer).get(reverse("sending_dns:job", args=[job.pk])).status_code == 404


def test_the_health_table_exports_as_csv_with_the_filters(sl_server: Server, as_user: AsUser, viewer: User) -> None:
    _result(sl_server, "ok.example.com", DnsState.OK)
    _result(sl_server, "gone.example.com", DnsState.NXDOMAIN, "gone.example.com does not exist (NXDOMAIN).")
    response = as_user(viewer).get(url("dns", sl_server), {"state": "problems", "format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0].startswith("server,domain,kind,type,host,expected,published,state,detail")
    assert len(lines) == 2 and "gone.example.com" in lines[1] and "No such name" in lines[1]


def test_the_health_page_does_not_query_per_row(
    sl_server: Server, other_server: Server, as_user: AsUser, site_admin: User, django_assert_max_num_queries
) -> None:
    client = as_user(site_admin)
    _result(sl_server, "one.example.com", DnsState.OK)
    client.get(reverse("sending_dns:all"))  # warm the session
    with django_assert_max_num_queries(20) as few:
        client.get(reverse("sending_dns:all"))
    for i in range(30):
        _result(other_server if i % 2 else sl_server, f"d{i}.example.com", DnsState.WRONG)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(reverse("sending_dns:all")).content.decode()
    assert page.count("<tr data-host=") == 31


def test_the_rotation_page_shows_which_step_comes_next(
    sl_server: Server, as_user: AsUser, ops: User, dns_zone: Zone
) -> None:
    first = services.start_dkim(request=None, actor=ops, server=sl_server, domain="example.com", selector="mr1")
    dns_zone.txt(first.host, first.txt_value)
    services.verify_dkim(request=None, actor=ops, setup=first)
    rotation = services.start_rotation(
        request=None, actor=ops, server=sl_server, domain="example.com", old_selector="mr1", new_selector="mr2"
    )
    page = as_user(ops).get(url("dkim_setup", sl_server, rotation.pk)).content.decode()
    assert '<li aria-current="step"><strong>Publish the new record</strong></li>' in page
    dns_zone.txt(rotation.host, rotation.txt_value)
    services.verify_dkim(request=None, actor=ops, setup=rotation)
    page = as_user(ops).get(url("dkim_setup", sl_server, rotation.pk)).content.decode()
    assert "<li>✓ Verify</li>" in page
    assert '<li aria-current="step"><strong>Switch signing</strong></li>' in page
