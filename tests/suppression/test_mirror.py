"""The set-based mirror loader: one upsert, delete-missing, duplicates, and races with our own writes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Server
from suppression import mirror
from suppression.models import RecentRemoval, Suppression

pytestmark = pytest.mark.django_db

T0 = "2024-03-01T10:00:00Z"
T1 = "2024-03-02T10:00:00Z"


def rows(*pairs: tuple[str, str], stamp: str = T0) -> list[mirror.MirrorRow]:
    return [(a, a.rsplit("@", 1)[1], reason, "api", stamp) for a, reason in pairs]


def mirrored(server: Server) -> dict[str, str]:
    return dict(Suppression.objects.filter(server=server).values_list("address", "reason"))


def test_it_loads_a_list_in_a_handful_of_statements_whatever_its_size(server: Server, other_server: Server) -> None:
    counts = []
    for target, size in ((server, 30), (other_server, 3000)):
        many = rows(*[(f"user{i}@example.com", "Bounce") for i in range(size)])
        with CaptureQueriesContext(connection) as queries:
            result = mirror.load(target.pk, many, replace=True)
        assert result.rows == result.added == size
        counts.append(len(queries))
    assert counts[0] == counts[1] <= 12, counts
    assert Suppression.objects.filter(server=other_server).count() == 3000


def test_it_adds_updates_and_deletes_what_the_pull_no_longer_holds(server: Server) -> None:
    mirror.load(server.pk, rows(("a@x.com", "Bounce"), ("b@x.com", "Bounce"), ("c@x.com", "Bounce")), replace=True)
    later = datetime.now(UTC) + timedelta(seconds=1)
    result = mirror.load(
        server.pk,
        rows(("a@x.com", "Bounce"), ("b@x.com", "Complaint"), ("d@x.com", "Unsubscribe"), stamp=T0) + [],
        replace=True,
        started_at=later,
    )
    assert mirrored(server) == {"a@x.com": "Bounce", "b@x.com": "Complaint", "d@x.com": "Unsubscribe"}
    assert (result.added, result.updated, result.removed, result.unchanged) == (1, 1, 1, 1)


def test_it_keeps_other_servers_rows(server: Server, other_server: Server) -> None:
    mirror.load(other_server.pk, rows(("keep@x.com", "Bounce")), replace=True)
    mirror.load(server.pk, rows(("mine@x.com", "Bounce")), replace=True)
    mirror.load(server.pk, [], replace=True, started_at=datetime.now(UTC) + timedelta(seconds=1))
    assert mirrored(server) == {}
    assert mirrored(other_server) == {"keep@x.com": "Bounce"}


def test_it_keeps_the_newest_of_an_address_listed_twice(server: Server) -> None:
    result = mirror.load(
        server.pk,
        rows(("twice@x.com", "Bounce"), stamp=T0) + rows(("twice@x.com", "Complaint"), stamp=T1),
        replace=True,
    )
    assert result.added == 1
    assert mirrored(server) == {"twice@x.com": "Complaint"}


def test_it_does_not_delete_rows_written_after_the_pull_started(server: Server) -> None:
    pull_started = datetime.now(UTC) - timedelta(minutes=1)
    mirror.upsert_one(server.pk, address="new@x.com", reason="CustomerRequest", source="mailroom")
    mirror.load(server.pk, rows(("old@x.com", "Bounce")), replace=True, started_at=pull_started)
    assert set(mirrored(server)) == {"new@x.com", "old@x.com"}


def test_it_does_not_put_back_an_address_removed_after_the_pull_started(server: Server) -> None:
    pull_started = datetime.now(UTC) - timedelta(minutes=1)
    mirror.load(server.pk, rows(("gone@x.com", "Bounce")), replace=True, started_at=pull_started)
    mirror.delete_one(server.pk, "gone@x.com")
    assert RecentRemoval.objects.filter(server_id=server.pk, address="gone@x.com").exists()
    mirror.load(server.pk, rows(("gone@x.com", "Bounce")), replace=True, started_at=pull_started)
    assert mirrored(server) == {}


def test_it_rolls_everything_back_when_the_rows_break_midway(server: Server) -> None:
    mirror.load(server.pk, rows(("a@x.com", "Bounce")), replace=True)

    def broken():  # type: ignore[no-untyped-def]
        yield from rows(("b@x.com", "Bounce"))
        raise RuntimeError("worker killed")

    with pytest.raises(RuntimeError):
        mirror.load(server.pk, broken(), replace=True)
    assert mirrored(server) == {"a@x.com": "Bounce"}


def test_it_only_moves_a_row_forward_for_events(server: Server) -> None:
    new = datetime(2024, 5, 2, tzinfo=UTC)
    old = datetime(2024, 5, 1, tzinfo=UTC)
    mirror.upsert_many(server.pk, [("e@x.com", "Complaint", "event", new)], only_if_newer=True)
    mirror.upsert_many(server.pk, [("e@x.com", "Bounce", "event", old)], only_if_newer=True)
    assert mirrored(server) == {"e@x.com": "Complaint"}


def test_it_looks_up_many_addresses_in_one_query(server: Server, other_server: Server) -> None:
    mirror.load(server.pk, rows(("a@x.com", "Bounce"), ("b@x.com", "Complaint")), replace=True)
    mirror.load(other_server.pk, rows(("a@x.com", "Unsubscribe")), replace=True)
    wanted = ["a@x.com", "b@x.com"] + [f"nobody{i}@x.com" for i in range(10_000)]
    with CaptureQueriesContext(connection) as queries:
        found = mirror.lookup([server.pk, other_server.pk], wanted)
    assert len(queries) == 1
    assert sorted((sid == server.pk, a, r) for sid, a, r, *_ in found) == [
        (False, "a@x.com", "Unsubscribe"),
        (True, "a@x.com", "Bounce"),
        (True, "b@x.com", "Complaint"),
    ]


def test_it_reads_the_socketlabs_download_format(tmp_path: Path) -> None:
    path = tmp_path / "download.csv"
    path.write_text(
        "serverId,suppressionLastUpdate,reason,emailAddress,source\n"
        "17001,2024-01-02T03:04:05Z,Bounce,Ann@Example.com,api\n"
        "17001,not-a-date,complaint,bob@example.com,\n"
        "17001,2024-01-02T03:04:05Z,Bounce,no-address-here,api\n"
        "17001,2024-01-02T03:04:05Z,SomethingNew,carl@example.com,api\n"
    )
    stats = mirror.DownloadStats()
    got = list(mirror.download_rows(path, stats))
    assert got == [
        ("ann@example.com", "example.com", "Bounce", "api", "2024-01-02T03:04:05Z"),
        ("bob@example.com", "example.com", "Complaint", "", None),
        ("carl@example.com", "example.com", "SomethingNew", "api", "2024-01-02T03:04:05Z"),
    ]
    assert (stats.read, stats.skipped) == (4, 1)
    assert stats.problems[0].line == 4


@pytest.mark.slow
def test_it_loads_the_mirror_on_sqlite_too(tmp_path: Path) -> None:
    """The zero-setup default runs on SQLite: the portable path must give the same answers."""
    script = textwrap.dedent(
        """
        from datetime import UTC, datetime, timedelta
        from django.core.management import call_command
        call_command("migrate", verbosity=0)
        from accounts.models import Server
        from suppression import mirror
        from suppression.models import Suppression
        s = Server.objects.create(name="Lite", socketlabs_id=5)
        row = lambda a, r, t="2024-03-01T10:00:00Z": (a, a.split("@")[1], r, "api", t)
        newer = "2024-03-02T00:00:00Z"
        first = [row("a@x.com", "Bounce"), row("b@x.com", "Bounce"), row("b@x.com", "Complaint", newer)]
        r1 = mirror.load(s.pk, first, replace=True)
        later = datetime.now(UTC) + timedelta(seconds=1)
        second = [row("b@x.com", "Complaint", newer), row("c@x.com", "Unsubscribe")]
        r2 = mirror.load(s.pk, second, replace=True, started_at=later)
        found = mirror.lookup([s.pk], ["b@x.com", "c@x.com", "z@x.com"])
        print("R1", r1.added, r1.updated, r1.removed)
        print("R2", r2.added, r2.updated, r2.removed)
        print("ROWS", sorted(Suppression.objects.values_list("address", "reason")))
        print("FOUND", sorted((a, r) for _, a, r, *_ in found))
        from django.core.files.uploadedfile import SimpleUploadedFile
        from suppression import imports
        text = "email;reason\\nb@x.com;\\nnew@x.com;Complaint\\nNEW@x.com;\\nbad\\n"
        upload = SimpleUploadedFile("l.csv", text.encode())
        job = imports.create_job(actor=None, kind="add", upload=upload, servers=[s])
        t = job.targets.get()
        print("JOB", job.status, job.unique_addresses, job.duplicate_rows, job.invalid_rows, t.to_change, t.unchanged)
        print("BATCHES", list(t.batches.values_list("number", "size")))
        """
    )
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'lite.sqlite3'}",
        "MAILROOM_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    env.pop("CELERY_BROKER_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); exec(open(0).read())"],
        input=script,
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=240,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "R1 2 0 0" in out.stdout
    assert "R2 1 0 1" in out.stdout
    assert "ROWS [('b@x.com', 'Complaint'), ('c@x.com', 'Unsubscribe')]" in out.stdout
    assert "FOUND [('b@x.com', 'Complaint'), ('c@x.com', 'Unsubscribe')]" in out.stdout
    assert "JOB ready 2 1 1 1 1" in out.stdout
    assert "BATCHES [(0, 1)]" in out.stdout
