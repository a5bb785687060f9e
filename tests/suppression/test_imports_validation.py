"""Bulk import, steps 1–2: every kind of bad input gets a clear message and changes nothing; the dry-run diff."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from django.core.files.uploadedfile import UploadedFile
from pytest_django.fixtures import Settings

from accounts.models import AuditLog, Server, User
from suppression import imports
from suppression.models import ImportEntry, ImportJob, JobStatus, Suppression
from tests.suppression.conftest import put_in_mirror, upload

pytestmark = pytest.mark.django_db


def job_for(text: str | bytes, server: Server, actor: User, *, kind: str = "add", name: str = "list.csv") -> ImportJob:
    return imports.create_job(actor=actor, kind=kind, upload=upload(text, name), servers=[server])


def assert_nothing_changed(job: ImportJob, server: Server) -> None:
    assert ImportEntry.objects.filter(target__job=job).count() == 0
    assert not Suppression.objects.filter(server=server).exists()
    assert not Path(job.file_path).exists(), "the upload is deleted once refused"


def test_it_refuses_a_file_that_is_not_utf8_and_says_where(server: Server, ops: User) -> None:
    job = job_for("email\nann@example.com\nzoë@example.com\n".encode("cp1252"), server, ops)
    assert job.status == JobStatus.REJECTED
    assert job.error_line == 3
    assert "Line 3" in job.error and "UTF-8" in job.error and "Nothing was imported" in job.error
    assert_nothing_changed(job, server)


def test_it_refuses_a_file_without_an_email_column_and_names_its_columns(server: Server, ops: User) -> None:
    job = job_for("name,city\nAnn,Oslo\nBob,Rome\n", server, ops)
    assert job.status == JobStatus.REJECTED
    assert "No e-mail column" in job.error
    assert "“name”, “city”" in job.error
    assert_nothing_changed(job, server)


@pytest.mark.parametrize("content", ["", "\n\n", "\ufeff"])
def test_it_refuses_an_empty_file(server: Server, ops: User, content: str) -> None:
    job = job_for(content, server, ops)
    assert job.status == JobStatus.REJECTED
    assert "empty" in job.error
    assert_nothing_changed(job, server)


def test_it_refuses_a_header_without_rows(server: Server, ops: User) -> None:
    job = job_for("email,reason\n", server, ops)
    assert job.status == JobStatus.REJECTED
    assert "no addresses under it" in job.error
    assert_nothing_changed(job, server)


def test_it_refuses_a_file_whose_every_row_is_bad_and_lists_them(server: Server, ops: User) -> None:
    job = job_for("email\nnope\nstill nope\n", server, ops)
    assert job.status == JobStatus.REJECTED
    assert "None of the 2 rows" in job.error
    assert list(job.problems.values_list("line", flat=True)) == [2, 3]


@pytest.mark.parametrize(("delimiter", "name"), [(";", "semicolon"), ("\t", "tab"), (",", "comma")])
def test_it_detects_semicolon_and_tab_delimiters(server: Server, ops: User, delimiter: str, name: str) -> None:
    text = f"name{delimiter}email{delimiter}reason\nAnn{delimiter}ann@example.com{delimiter}Bounce\n"
    text += f"Bob{delimiter}bob@example.com{delimiter}\n"
    job = job_for(text, server, ops)
    assert job.status == JobStatus.READY, job.error
    assert job.layout == f"{name}-separated, with a header row"
    assert dict(ImportEntry.objects.values_list("address", "reason")) == {
        "ann@example.com": "Bounce",
        "bob@example.com": "CustomerRequest",
    }


def test_it_counts_lines_across_quoted_newlines(server: Server, ops: User) -> None:
    text = (
        'email,note\nann@example.com,"a note\nover two lines"\n'
        'broken address,"and\nanother\nnote"\nbob@example.com,x\nalso bad,y\n'
    )
    job = job_for(text, server, ops)
    assert job.status == JobStatus.READY
    assert list(job.problems.values_list("line", "column")) == [(4, "email"), (8, "email")]
    assert dict(ImportEntry.objects.values_list("address", "line")) == {"ann@example.com": 2, "bob@example.com": 7}


def test_it_merges_a_flood_of_duplicates_into_one_entry(server: Server, ops: User, tmp_path: Path) -> None:
    # 200,000 copies here; the benchmark runs the 1M-duplicate file (the suite stays fast).
    path = tmp_path / "dupes.csv"
    with path.open("w") as out:
        out.write("email\n")
        out.write("Same@Example.com\n" * 200_000)
        out.write("other@example.com\n")
    with path.open("rb") as handle:
        job = imports.create_job(
            actor=ops,
            kind="add",
            upload=UploadedFile(handle, name="dupes.csv", size=path.stat().st_size),
            servers=[server],
        )
    imports.validate(job.pk)  # over the inline limit: the worker's job
    job.refresh_from_db()
    assert job.status == JobStatus.READY
    assert (job.rows_read, job.valid_rows, job.unique_addresses, job.duplicate_rows) == (200_001, 200_001, 2, 199_999)
    assert list(ImportEntry.objects.order_by("line").values_list("address", "line")) == [
        ("same@example.com", 2),
        ("other@example.com", 200_002),
    ]


def test_the_dry_run_diff_shows_to_add_already_present_and_invalid_with_lines(
    server: Server, other_server: Server, site_admin: User
) -> None:
    put_in_mirror(server, "known@example.com")
    text = (
        "email,reason\n"
        "new@example.com,Complaint\n"
        "known@example.com,\n"
        "'=cmd@example.com,\n"  # our own export's escaping is undone
        "no-at-sign,\n"
        "fresh@example.com,Maybe\n"
        "NEW@example.com,Bounce\n"
    )
    job = imports.create_job(actor=site_admin, kind="add", upload=upload(text), servers=[server, other_server])
    assert job.status == JobStatus.READY
    assert (job.rows_read, job.valid_rows, job.invalid_rows, job.unique_addresses, job.duplicate_rows) == (
        6,
        4,
        2,
        3,
        1,
    )
    targets = {t.server_id: t for t in job.targets.all()}
    assert (targets[server.pk].to_change, targets[server.pk].unchanged) == (2, 1)
    assert (targets[other_server.pk].to_change, targets[other_server.pk].unchanged) == (3, 0)
    problems = list(job.problems.values_list("line", "column", "message"))
    assert problems[0][:2] == (5, "email") and "has no @" in problems[0][2]
    assert problems[1][:2] == (6, "reason") and "“Maybe” is not a reason" in problems[1][2]
    rows = list(imports.report_rows(job))
    assert ["Acme-1", 10001, 2, "new@example.com", "to add", ""] in rows
    assert ["Acme-1", 10001, 3, "known@example.com", "already present", ""] in rows
    assert ["Acme-1", 10001, 4, "=cmd@example.com", "to add", ""] in rows
    assert ["", "", 5, "", "invalid", rows[-2][5]] == rows[-2]
    # Nothing was changed anywhere by the dry run.
    assert set(Suppression.objects.values_list("address", flat=True)) == {"known@example.com"}
    assert AuditLog.objects.filter(action="suppression.import.upload").count() == 2


def test_a_remove_diff_counts_what_is_on_the_list(server: Server, ops: User) -> None:
    put_in_mirror(server, "on@example.com")
    job = job_for("email\non@example.com\noff@example.com\n", server, ops, kind="remove")
    target = job.targets.get()
    assert (target.to_change, target.unchanged) == (1, 1)
    labels = {row[3]: row[4] for row in imports.report_rows(job)}
    assert labels == {"on@example.com": "to remove", "off@example.com": "not on the list"}


def test_it_refuses_files_over_the_limit(server: Server, ops: User, settings: Settings) -> None:
    settings.SUPPRESSION_IMPORT_MAX_BYTES = 1000
    with pytest.raises(imports.ImportRefused, match="the limit is"):
        job_for("email\n" + "a@example.com\n" * 100, server, ops)
    assert ImportJob.objects.count() == 0


def test_validating_twice_is_harmless(server: Server, ops: User, settings: Settings) -> None:
    settings.SUPPRESSION_INLINE_VALIDATE_BYTES = 0
    job = job_for("email\na@example.com\nb@example.com\n", server, ops)
    assert job.status == JobStatus.VALIDATING
    imports.validate(job.pk)
    imports.validate(job.pk)  # a duplicate delivery of the task: the claim fails, nothing doubles
    assert ImportEntry.objects.count() == 2


@pytest.mark.slow
def test_it_streams_a_200_mb_file_and_refuses_a_bad_byte_at_its_end(server: Server, ops: User, tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    note = "n" * 2000
    with path.open("wb") as out:
        out.write(b"email,note\n")
        chunk = "".join(f"user{i}@example.com,{note}\n" for i in range(1000)).encode()
        for _ in range(100):  # 100,000 rows of ~2 KB: ~200 MB
            out.write(chunk)
        out.write(b"last\xff@example.com,x\n")
    size = path.stat().st_size
    assert size > 200_000_000
    with path.open("rb") as handle:
        job = imports.create_job(
            actor=ops, kind="add", upload=UploadedFile(handle, name="huge.csv", size=size), servers=[server]
        )
    tracemalloc.start()
    try:
        imports.validate(job.pk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    job.refresh_from_db()
    assert job.status == JobStatus.REJECTED
    assert job.error_line == 100_002
    assert "Line 100002" in job.error
    assert peak < 64 * 1024 * 1024, f"peak Python memory {peak / 1e6:.0f} MB for a {size / 1e6:.0f} MB file"
    assert_nothing_changed(job, server)
