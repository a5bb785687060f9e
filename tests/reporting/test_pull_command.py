"""`manage.py pull_reports`: the same pull as the jobs page, synchronous, with progress and an exit status."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
import responses
from django.core.management import CommandError, call_command

from accounts.models import AuditLog, Server
from reporting.models import PullStatus, PullTrigger, ReportDay, ReportPull
from tests.reporting.test_pulls import D1, D2, FAKE_API, TODAY, Linked, fake_remote, link_server, seed_day, snapshot


def pull_reports(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("pull_reports", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def linked(live_server: Any, settings: Any, server: Server, short_db_sessions: None) -> Linked:
    settings.SANDBOX_ENABLED = True
    return link_server(server, live_server.url)


@pytest.mark.django_db(transaction=True)
def test_it_pulls_a_range_for_one_server_with_progress_and_a_summary(linked: Linked) -> None:
    seed_day(linked.keys, D1)
    seed_day(linked.keys, D2, scale=2)

    out, err = pull_reports("--server", str(linked.server.pk), "--from", f"{D1}", "--to", f"{D2}")

    assert err == ""
    assert "Acme-1 (server 17001): 2 day(s)…" in out
    assert f"{D1} stored (1/2)" in out and f"{D2} stored (2/2)" in out
    assert "Done: 2 day(s) pulled." in out
    delivered = dict(ReportDay.objects.filter(server=linked.server, kind="delivered").values_list("day", "total"))
    assert delivered == {D1: 3, D2: 5}
    pull = ReportPull.objects.get()
    assert (pull.trigger, pull.status) == (PullTrigger.COMMAND, PullStatus.DONE)
    assert AuditLog.objects.filter(action="reports.pull_command", server=linked.server).count() == 1

    before = snapshot(linked.server)
    pull_reports("--server", str(linked.server.pk), "--from", f"{D1}", "--to", f"{D2}")
    assert snapshot(linked.server) == before  # the same rows again


@pytest.mark.django_db(transaction=True)
def test_all_servers_with_a_key_and_the_last_n_days(linked: Linked, other_server: Server, live_server: Any) -> None:
    other = link_server(other_server, live_server.url, sandbox_id=17002)
    Server.objects.create(name="No key", socketlabs_id=40004, api_key="")
    yesterday = TODAY - timedelta(days=1)
    seed_day(linked.keys, yesterday)
    seed_day(other.keys, yesterday, scale=4)

    out, _ = pull_reports("--all", "--days", "2")

    assert out.count("Done: 2 day(s) pulled.") == 2 and "No key" not in out
    assert ReportDay.objects.get(server=linked.server, day=yesterday, kind="delivered").total == 3
    assert ReportDay.objects.get(server=other.server, day=yesterday, kind="delivered").total == 9
    assert {(p.first_day, p.last_day) for p in ReportPull.objects.all()} == {(yesterday - timedelta(days=1), yesterday)}


@pytest.mark.django_db
@responses.activate
def test_a_failure_exits_non_zero_with_the_error_in_plain_words_and_no_retry_later(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_remote(server, monkeypatch, max_attempts=2)
    responses.get(re.compile(rf"{FAKE_API}/.*"), status=503, json={})

    err = StringIO()
    with pytest.raises(CommandError, match="The pull failed for Acme-1"):
        call_command("pull_reports", "--server", str(server.pk), stdout=StringIO(), stderr=err)

    assert "SocketLabs had an internal problem (503) when asked to read its reports" in err.getvalue()
    pull = ReportPull.objects.get()
    assert pull.status == PullStatus.FAILED  # not left waiting for a retry nobody asked for
    assert len(responses.calls) == 2  # the client's own retry, once


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--server", "999999"], "No server with id 999999"),
        (["--server", "{pk}", "--from", "2026-13-01"], "is not a day as YYYY-MM-DD"),
        (["--server", "{pk}", "--to", "2026-01-01"], "--to needs --from"),
        (["--server", "{pk}", "--days", "0"], "--days must be 1 or more"),
        (["--server", "{pk}", "--days", "2", "--from", f"{D1}"], "either --days or --from/--to"),
        (["--server", "{pk}", "--from", f"{D2}", "--to", f"{D1}"], "is after the last day"),
        (["--server", "{pk}", "--from", f"{TODAY - timedelta(days=200)}"], "keeps report data for 90 days"),
        (["--server", "{pk}", "--from", f"{TODAY + timedelta(days=1)}"], "is in the future"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_pulled(server: Server, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        pull_reports(*[a.format(pk=server.pk) for a in args])
    assert not ReportPull.objects.exists()


@pytest.mark.django_db
def test_all_with_no_server_keys_says_so(server: Server) -> None:
    Server.objects.filter(pk=server.pk).update(api_key="")
    with pytest.raises(CommandError, match="No server has an API key"):
        pull_reports("--all")
