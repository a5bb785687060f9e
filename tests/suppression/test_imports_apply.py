"""Bulk import, step 3: applying against the sandbox over HTTP, in batches, across servers, after crashes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings

from accounts.models import AuditLog, Server, User
from sandbox.models import SandboxRequestLog
from suppression import imports
from suppression.models import (
    BatchStatus,
    ImportBatch,
    ImportEntry,
    ImportJob,
    JobStatus,
    Outcome,
    Suppression,
    TargetStatus,
)
from tests.suppression.conftest import Linked, upload

pytestmark = pytest.mark.django_db(transaction=True)

ADDRESSES = [f"user{i:02d}@example.com" for i in range(12)]


def make_job(servers: list[Server], actor: User, text: str, *, kind: str = "add") -> ImportJob:
    job = imports.create_job(actor=actor, kind=kind, upload=upload(text), servers=servers)
    assert job.status == JobStatus.READY, job.error
    return job


def csv_of(addresses: list[str]) -> str:
    return "email\n" + "".join(f"{a}\n" for a in addresses)


def mirror_of(server: Server) -> set[str]:
    return set(Suppression.objects.filter(server=server).values_list("address", flat=True))


def run_to_the_end(job: ImportJob) -> imports.RunOutcome:
    outcome = imports.run(job.pk, budget_seconds=120)
    job.refresh_from_db()
    return outcome


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports, "BATCH_SIZE", 5)


def test_it_applies_the_diff_and_reports_every_address(linked: Linked, ops: User, small_batches: None) -> None:
    linked.seed("user00@example.com")
    from suppression import services

    services.sync(server=linked.server)
    job = make_job([linked.server], ops, csv_of(ADDRESSES) + "bad row\n")
    assert ImportBatch.objects.filter(target__job=job).count() == 3  # 11 to add in batches of 5
    with pytest.raises(imports.ImportRefused, match="1 rows of the file are invalid"):
        imports.request_apply(job=job, actor=ops, skip_invalid=False)
    imports.request_apply(job=job, actor=ops, skip_invalid=True)
    assert run_to_the_end(job).state == "done"
    assert job.status == JobStatus.DONE
    assert linked.sandbox_addresses() == set(ADDRESSES)
    assert mirror_of(linked.server) == set(ADDRESSES)
    target = job.targets.get()
    assert (target.to_change, target.changed, target.skipped, target.failed, target.unchanged) == (11, 11, 0, 0, 1)
    report = {row[3]: row[4] for row in imports.report_rows(job) if row[3]}
    assert report["user00@example.com"] == "already present"
    assert {report[a] for a in ADDRESSES[1:]} == {"added"}
    assert [row[4] for row in imports.report_rows(job) if not row[3]] == ["invalid"]
    actions = list(AuditLog.objects.filter(server=linked.server).values_list("action", flat=True))
    assert {"suppression.import.upload", "suppression.import.add", "suppression.import.finish"} <= set(actions)


def test_it_removes_in_bulk_the_same_way(linked: Linked, ops: User) -> None:
    linked.seed(*ADDRESSES[:4])
    from suppression import services

    services.sync(server=linked.server)
    job = make_job([linked.server], ops, csv_of(ADDRESSES[:2] + ["never-there@example.com"]), kind="remove")
    imports.request_apply(job=job, actor=ops, skip_invalid=False)
    run_to_the_end(job)
    assert job.status == JobStatus.DONE
    assert linked.sandbox_addresses() == set(ADDRESSES[2:4])
    assert mirror_of(linked.server) == set(ADDRESSES[2:4])
    report = {row[3]: row[4] for row in imports.report_rows(job)}
    assert report == {ADDRESSES[0]: "removed", ADDRESSES[1]: "removed", "never-there@example.com": "not on the list"}


def test_it_applies_to_several_servers_at_once(
    link: Callable[[Server, int], Linked], server: Server, other_server: Server, site_admin: User, small_batches: None
) -> None:
    first, second = link(server, 17001), link(other_server, 17002)
    second.seed(ADDRESSES[0], ADDRESSES[1])
    from suppression import services

    services.sync(server=second.server)
    job = make_job([first.server, second.server], site_admin, csv_of(ADDRESSES[:6]))
    counts = {t.server_id: (t.to_change, t.unchanged) for t in job.targets.all()}
    assert counts == {server.pk: (6, 0), other_server.pk: (4, 2)}
    imports.request_apply(job=job, actor=site_admin, skip_invalid=False)
    run_to_the_end(job)
    assert job.status == JobStatus.DONE
    assert first.sandbox_addresses() == second.sandbox_addresses() == set(ADDRESSES[:6])
    assert mirror_of(server) == mirror_of(other_server) == set(ADDRESSES[:6])
    assert AuditLog.objects.filter(action="suppression.import.add").count() == 2


def test_it_resumes_after_a_worker_is_killed_mid_batch_without_applying_twice(
    linked: Linked, ops: User, small_batches: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_job([linked.server], ops, csv_of(ADDRESSES))
    imports.request_apply(job=job, actor=ops, skip_invalid=False)
    real_record = imports._record
    calls = {"n": 0}

    def killed_after_the_seventh_call(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 7:
            # SocketLabs took the 7th address, then the worker died before writing it down.
            raise SystemExit("worker killed")
        return real_record(*args, **kwargs)

    monkeypatch.setattr(imports, "_record", killed_after_the_seventh_call)
    with pytest.raises(SystemExit):
        imports.run(job.pk, budget_seconds=120)
    monkeypatch.setattr(imports, "_record", real_record)

    job.refresh_from_db()
    assert job.status == JobStatus.APPLYING
    stuck = ImportBatch.objects.get(target__job=job, status=BatchStatus.RUNNING)
    assert ImportEntry.objects.filter(target__job=job, outcome=Outcome.CHANGED).count() == 6
    # Another worker carries on with the other batches but cannot finish while one is claimed.
    assert imports.run(job.pk, budget_seconds=120).state == "idle"
    job.refresh_from_db()
    assert job.status == JobStatus.APPLYING
    # The sweeper frees the batch of the dead worker once it is stale; the next run completes the job.
    assert imports.sweep(now=timezone.now() + timedelta(minutes=1))["freed_batches"] == 0
    assert imports.sweep(now=timezone.now() + imports.BATCH_STALE_AFTER + timedelta(seconds=1))["freed_batches"] == 1
    assert run_to_the_end(job).state == "done"
    assert job.status == JobStatus.DONE
    stuck.refresh_from_db()
    assert stuck.attempts == 2
    entries = ImportEntry.objects.filter(target__job=job)
    assert set(entries.values_list("outcome", flat=True)) == {Outcome.CHANGED}
    assert "interrupted" in entries.get(address=ADDRESSES[6]).detail
    assert linked.sandbox_addresses() == set(ADDRESSES)
    assert mirror_of(linked.server) == set(ADDRESSES)
    target = job.targets.get()
    assert (target.changed, target.skipped, target.failed) == (12, 0, 0)
    # Each address reached SocketLabs once, except the one whose outcome was lost: asked once more.
    posts = SandboxRequestLog.objects.filter(method="POST", path__endswith="/suppressions").count()
    assert posts == 13


def test_it_stops_a_server_whose_plan_lacks_suppression_and_says_what_was_not_applied(
    linked: Linked, ops: User, small_batches: None
) -> None:
    job = make_job([linked.server], ops, csv_of(ADDRESSES[:3]))
    imports.request_apply(job=job, actor=ops, skip_invalid=False)
    linked.sandbox.suppression_enabled = False
    linked.sandbox.save()
    run_to_the_end(job)
    assert job.status == JobStatus.STOPPED
    target = job.targets.get()
    assert target.status == TargetStatus.STOPPED
    assert "not part of the SocketLabs plan" in target.stop_reason
    labels = {row[4] for row in imports.report_rows(job)}
    assert labels == {"not applied"}
    assert all("not applied: Suppression management" in row[5] for row in imports.report_rows(job))


def test_it_pauses_when_socketlabs_is_unreachable_and_carries_on_later(
    linked: Linked, ops: User, small_batches: None
) -> None:
    job = make_job([linked.server], ops, csv_of(ADDRESSES[:3]))
    imports.request_apply(job=job, actor=ops, skip_invalid=False)
    good_url = linked.server.api_url
    linked.server.api_url = "http://127.0.0.1:9/v2"
    linked.server.save()
    outcome = imports.run(job.pk, budget_seconds=120)
    assert outcome.state == "retry" and outcome.retry_after >= 30
    assert ImportBatch.objects.get(target__job=job).status == BatchStatus.PENDING
    linked.server.api_url = good_url
    linked.server.save()
    assert run_to_the_end(job).state == "done"
    assert linked.sandbox_addresses() == set(ADDRESSES[:3])


def test_cancelling_stops_before_the_next_address(linked: Linked, ops: User) -> None:
    job = make_job([linked.server], ops, csv_of(ADDRESSES[:3]))
    imports.request_apply(job=job, actor=ops, skip_invalid=False)
    assert imports.cancel(job=job, actor=ops)
    assert imports.run(job.pk).state == "gone"
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert linked.sandbox_addresses() == set()
    assert {row[4] for row in imports.report_rows(job)} == {"not applied"}


def test_it_paces_its_calls(settings: Settings) -> None:
    settings.SUPPRESSION_API_RATE = 4
    slept: list[float] = []
    now = {"t": 100.0}

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))
        now["t"] += seconds

    pacer = imports._Pacer(imports.api_rate(), sleep, lambda: now["t"])
    for _ in range(4):
        pacer.wait()
    assert slept == [0.25, 0.25, 0.25]
