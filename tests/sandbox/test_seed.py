"""Demo seeding: sandbox account, servers and keys plus Mailroom servers that use them; idempotent."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from pytest_django.fixtures import Settings

from accounts.models import AuditLog, Server, User
from sandbox.models import SandboxAccount, SandboxApiKey, SandboxContactList, SandboxServer
from sandbox.seed import key_works, seed_demo_servers

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def sandbox_base(settings: Settings) -> None:
    settings.SANDBOX_BASE_URL = "http://mailroom.test:8000/sandbox/"


def test_it_creates_three_sandbox_servers_and_matching_mailroom_servers(site_admin: User) -> None:
    lines = seed_demo_servers(owner=site_admin)
    assert SandboxAccount.objects.get().account_id == 10100
    assert list(SandboxServer.objects.values_list("server_id", "name")) == [
        (10101, "Acme Transactional"),
        (10102, "Acme Marketing"),
        (10103, "Acme EU"),
    ]
    servers = list(Server.objects.order_by("socketlabs_id"))
    assert [(s.name, s.socketlabs_id, s.account_id) for s in servers] == [
        ("Acme Transactional", 10101, 10100),
        ("Acme Marketing", 10102, 10100),
        ("Acme EU", 10103, 10100),
    ]
    first = servers[0]
    assert first.api_url == "http://mailroom.test:8000/sandbox/api/v2"
    assert first.inject_url == "http://mailroom.test:8000/sandbox/inject/api/v1/email"
    assert first.marketing_url == "http://mailroom.test:8000/sandbox/marketing/v1"
    assert any("created" in line for line in lines)
    assert AuditLog.objects.filter(action="server.create", actor=site_admin).count() == 3


def test_its_keys_work_for_their_permission_only(site_admin: User) -> None:
    seed_demo_servers(owner=site_admin)
    for server in Server.objects.all():
        sandbox = SandboxServer.objects.get(server_id=server.socketlabs_id)
        assert key_works(sandbox, server.api_key, "api")
        assert key_works(sandbox, server.injection_key, "injection")
        assert key_works(sandbox, server.marketing_key, "marketing")
        assert not key_works(sandbox, server.api_key, "injection")
        assert len(server.api_key) == 61
    legacy = Server.objects.get(socketlabs_id=10103).injection_key
    assert len(legacy) != 61 and "." not in legacy  # the legacy key goes in the body, not Bearer
    assert len(Server.objects.get(socketlabs_id=10101).injection_key) == 61


def test_it_stores_the_keys_encrypted(site_admin: User) -> None:
    seed_demo_servers(owner=site_admin)
    server = Server.objects.get(socketlabs_id=10101)
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key, injection_key, marketing_key FROM accounts_server WHERE id = %s", [server.pk])
        stored = cursor.fetchone()
    for raw, plain in zip(stored, (server.api_key, server.injection_key, server.marketing_key), strict=True):
        assert plain and plain not in raw


def test_running_it_twice_duplicates_nothing_and_keeps_working_keys(site_admin: User) -> None:
    seed_demo_servers(owner=site_admin)
    before = {s.pk: (s.api_key, s.injection_key, s.marketing_key) for s in Server.objects.all()}
    key_ids = set(SandboxApiKey.objects.values_list("pk", flat=True))
    lines = seed_demo_servers(owner=site_admin)
    after = {s.pk: (s.api_key, s.injection_key, s.marketing_key) for s in Server.objects.all()}
    assert after == before
    assert set(SandboxApiKey.objects.values_list("pk", flat=True)) == key_ids
    assert SandboxServer.objects.count() == 3 and Server.objects.count() == 3 and SandboxAccount.objects.count() == 1
    assert SandboxContactList.objects.count() == 1
    assert lines[0] == "Sandbox account Acme (10100): kept."
    assert all("created" not in line for line in lines)
    assert "keys issued: none (existing keys still work)" in lines[1]


def test_it_reissues_only_a_key_that_stopped_working(site_admin: User) -> None:
    seed_demo_servers(owner=site_admin)
    server = Server.objects.get(socketlabs_id=10102)
    old_api, old_marketing = server.api_key, server.marketing_key
    SandboxApiKey.objects.filter(server__server_id=10102, name="Mailroom demo: API v2").delete()
    lines = seed_demo_servers(owner=site_admin)
    server.refresh_from_db()
    assert server.api_key != old_api
    assert key_works(SandboxServer.objects.get(server_id=10102), server.api_key, "api")
    assert server.marketing_key == old_marketing
    assert SandboxApiKey.objects.filter(server__server_id=10102, name="Mailroom demo: API v2").count() == 1
    assert any("stored new keys for api_key" in line for line in lines)


def test_the_command_wraps_it(site_admin: User) -> None:
    out = io.StringIO()
    call_command("sandbox_seed", stdout=out)
    assert "Mailroom server Acme EU (10103)" in out.getvalue()
    assert Server.objects.count() == 3


def test_the_command_refuses_an_unknown_owner(db: None) -> None:
    with pytest.raises(Exception, match="No user with the e-mail"):
        call_command("sandbox_seed", "--owner", "ghost@example.com", stdout=io.StringIO())


def test_the_demo_seed_command_seeds_the_sandbox_too(settings: Settings, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert "Acme Transactional" in out.getvalue()
    assert Server.objects.count() == 3


def test_the_demo_gets_two_weeks_of_traffic_and_a_queued_report_backfill_once(
    site_admin: User, django_capture_on_commit_callbacks: Any
) -> None:
    from datetime import timedelta

    from reporting.models import PullStatus, PullTrigger, ReportPull
    from reporting.pulls import utc_today
    from sandbox.models import SandboxMessage
    from sandbox.seed import seed_demo_history

    seed_demo_servers(owner=site_admin)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        lines = seed_demo_history(owner=site_admin, days=3, per_day=5)

    assert SandboxMessage.objects.count() == 3 * 3 * 5
    pulls = list(ReportPull.objects.order_by("server__socketlabs_id"))
    yesterday = utc_today() - timedelta(days=1)
    assert [(p.server.socketlabs_id, p.first_day, p.last_day) for p in pulls] == [
        (sid, yesterday - timedelta(days=2), yesterday) for sid in (10101, 10102, 10103)
    ]
    assert {(p.trigger, p.status, p.created_by) for p in pulls} == {
        (PullTrigger.BACKFILL, PullStatus.QUEUED, site_admin)
    }
    assert len(queued) == 3  # each pull goes to the worker once the seed commits
    assert len(lines) == 6

    assert seed_demo_history(owner=site_admin, days=3, per_day=5) == []
    assert SandboxMessage.objects.count() == 45
    assert ReportPull.objects.count() == 3
