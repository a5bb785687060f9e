"""Bad files and bad rows: clear messages with line numbers, and never a half-applied import."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings

from accounts.models import Server, User
from marketing import imports
from marketing.models import Contact, CustomField, ImportJob, JobStatus
from tests.marketing.conftest import upload

pytestmark = pytest.mark.django_db

RunImport = Callable[..., ImportJob]


def refused(server: Server, user: User, content: str | bytes) -> str:
    with pytest.raises(imports.ImportRefused) as caught:
        imports.create_job(server=server, actor=user, upload=upload(content))
    return str(caught.value)


def report_lines(job: ImportJob) -> list[list[str]]:
    path = Path(settings.MEDIA_ROOT) / job.report_path
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_it_refuses_a_file_in_another_encoding_and_says_how_to_fix_it(server: Server, admin: User) -> None:
    latin1 = "email,city\n" + "".join(f"user{i}@example.com,Zürich Genève\n" for i in range(10))
    message = refused(server, admin, latin1.encode("latin-1"))
    assert "Line 2 has a byte that is not UTF-8" in message
    assert "CSV UTF-8" in message
    assert "Nothing was imported." in message


def test_it_refuses_utf16_workbooks_and_binary(server: Server, admin: User) -> None:
    assert "UTF-16" in refused(server, admin, "email\na@example.com\n".encode("utf-16"))
    assert "spreadsheet workbook" in refused(server, admin, b"PK\x03\x04rest-of-an-xlsx")
    assert "NUL byte" in refused(server, admin, b"email\na@exa\x00mple.com\n")


def test_it_refuses_an_empty_file_and_a_file_with_only_a_header(server: Server, admin: User) -> None:
    assert refused(server, admin, b"") == "The file is empty: there is nothing to import."
    assert refused(server, admin, b"\n \n") == "The file is empty: there is nothing to import."
    assert "no contacts under it" in refused(server, admin, "email,name\n")


def test_it_refuses_a_file_without_an_email_column_and_names_its_columns(server: Server, admin: User) -> None:
    message = refused(server, admin, "name,city\nAnn,Oslo\nBob,Rome\n")
    assert message.startswith("No e-mail column: the header row (line 1) has the columns “name”, “city”")
    assert "comma-separated" in message


def test_it_leaves_no_file_behind_when_it_refuses_one(server: Server, admin: User, media_root: Path) -> None:
    refused(server, admin, "name\nAnn\n")
    assert not list((media_root / "marketing-imports").glob("*.csv"))


@pytest.mark.parametrize(("delimiter", "name"), [(";", "semicolon"), ("\t", "tab"), (",", "comma")])
def test_it_reads_semicolon_and_tab_separated_files(
    server: Server, admin: User, run_import: RunImport, delimiter: str, name: str
) -> None:
    text = f'email{delimiter}first name{delimiter}last name\nann@example.com{delimiter}Ann{delimiter}"Lee, Jr."\n'
    job = imports.create_job(server=server, actor=admin, upload=upload(text))
    assert imports.reader_for(job).describe() == f"{name}-separated, with a header row"
    done = run_import(text)
    assert done.status == JobStatus.DONE
    assert Contact.objects.get().last_name == "Lee, Jr."


def test_it_reads_a_utf8_file_with_a_byte_order_mark(run_import: RunImport) -> None:
    job = run_import("\ufeffEmail,Vorname\nann@example.com,Ännchen\n".encode())
    assert job.status == JobStatus.DONE
    assert Contact.objects.get().first_name == "Ännchen"


def test_it_numbers_lines_as_a_text_editor_does_when_quoted_fields_hold_newlines(run_import: RunImport) -> None:
    text = 'email,first_name\nann@example.com,"Ann\nMarie"\nnot-an-address,Bob\ncid@example.com,Cid\n'
    job = run_import(text, skip_invalid=True)
    assert job.problems == [[4, "email", "“not-an-address” has no @, so it is not an e-mail address"]]
    assert Contact.objects.get(email="ann@example.com").first_name == "Ann\nMarie"
    assert job.created_count == 2


def test_it_reports_duplicates_within_the_file_and_keeps_the_first(run_import: RunImport) -> None:
    text = "email,first_name\nann@example.com,First\nbob@example.com,Bob\nANN@example.com,Second\n"
    strict = run_import(text)
    assert strict.status == JobStatus.FAILED
    assert strict.problems == [[4, "email", "the address is already on line 2"]]
    assert not Contact.objects.exists()
    skipping = run_import(text, skip_invalid=True)
    assert skipping.status == JobStatus.DONE
    assert Contact.objects.get(email="ann@example.com").first_name == "First"
    assert (skipping.created_count, skipping.invalid_count) == (2, 1)


def test_it_reports_a_stray_byte_that_is_not_utf8_as_a_problem_of_that_row(run_import: RunImport) -> None:
    good = "".join(f"user{i}@example.com,Name{i}\n" for i in range(60))
    data = ("email,first_name\n" + good).encode() + b"bad@example.com,Caf\xe9\n" + b"last@example.com,Last\n"
    job = run_import(data, skip_invalid=True)
    assert job.problems == [[62, "first_name", "has bytes that are not UTF-8 (save the file as CSV UTF-8)"]]
    assert Contact.objects.count() == 61
    assert not Contact.objects.filter(email="bad@example.com").exists()


def test_it_reports_rows_with_the_wrong_number_of_cells(run_import: RunImport) -> None:
    job = run_import("email,first_name,last_name\nann@example.com,Ann\nbob@example.com,Bob,Lee\n", skip_invalid=True)
    assert job.problems == [[2, "", "has 2 cells where the header has 3"]]
    assert list(Contact.objects.values_list("email", flat=True)) == ["bob@example.com"]


def test_it_points_at_a_quote_that_never_closes(run_import: RunImport) -> None:
    job = run_import(
        'email,first_name\nann@example.com,Ann\nbob@example.com,"Bob\ncid@example.com,Cid\n', skip_invalid=True
    )
    assert job.problems[0][0] == 3
    assert "is never closed" in job.problems[0][2]
    assert list(Contact.objects.values_list("email", flat=True)) == ["ann@example.com"]


def test_it_reports_every_problem_of_a_row(run_import: RunImport, fields: dict[str, CustomField]) -> None:
    job = run_import("email,first_name,score,signup\nnope,Ann,many,yesterday\n", skip_invalid=True)
    assert [p[1] for p in job.problems] == ["email", "score", "signup"]
    assert job.invalid_count == 1


def test_it_stores_formula_cells_as_text(run_import: RunImport, fields: dict[str, CustomField]) -> None:
    job = run_import('email,first_name,city\nann@example.com,=1+2,"=HYPERLINK(""http://x"")"\n')
    assert job.status == JobStatus.DONE
    contact = Contact.objects.get()
    assert contact.first_name == "=1+2"
    assert contact.custom["city"] == '=HYPERLINK("http://x")'


def test_it_imports_its_own_escaped_export_back_unchanged(
    run_import: RunImport, fields: dict[str, CustomField]
) -> None:
    job = run_import("email,first_name,city\nann@example.com,'=1+2,'@home\n")
    assert job.status == JobStatus.DONE
    contact = Contact.objects.get()
    assert (contact.first_name, contact.custom["city"]) == ("=1+2", "@home")


def test_it_refuses_a_file_over_the_size_limit(server: Server, admin: User, settings: object) -> None:
    settings.MARKETING_IMPORT_MAX_BYTES = 100  # type: ignore[attr-defined]
    assert "the limit is" in refused(server, admin, "email\n" + "a@example.com\n" * 20)


def test_it_lists_exactly_the_seeded_defects_and_strict_mode_commits_nothing(
    run_import: RunImport, fields: dict[str, CustomField]
) -> None:
    """R6 in small: 2,000 rows with 40 defects of five kinds at known lines."""
    rng = random.Random(7)
    lines = ["email,first_name,score,signup"]
    defects: dict[int, str] = {}
    bad_lines = sorted(rng.sample(range(3, 2002), 40))
    kinds = ["email", "cells", "number", "date", "duplicate"]
    for line in range(2, 2002):
        if line in bad_lines:
            kind = kinds[bad_lines.index(line) % len(kinds)]
            defects[line] = kind
            row = {
                "email": f"broken{line}.example.com,X,1,2024-01-01",
                "cells": f"cells{line}@example.com,X",
                "number": f"num{line}@example.com,X,lots,2024-01-01",
                "date": f"date{line}@example.com,X,1,01.02.2024",
                "duplicate": "user2@example.com,Again,1,2024-01-01",
            }[kind]
        else:
            row = f"user{line}@example.com,Name{line},{line % 100},2024-01-{line % 28 + 1:02d}"
        lines.append(row)
    text = "\n".join(lines) + "\n"

    strict = run_import(text)
    assert strict.status == JobStatus.FAILED
    assert not strict.committed and not Contact.objects.exists()
    assert strict.invalid_count == 40
    reported = report_lines(strict)
    assert reported[0] == ["line", "column", "problem"]
    assert sorted({int(r[0]) for r in reported[1:]}) == bad_lines
    assert [int(r[0]) for r in reported[1:]] == sorted(int(r[0]) for r in reported[1:])  # in line order

    skipping = run_import(text, skip_invalid=True)
    assert skipping.status == JobStatus.DONE
    assert Contact.objects.count() == 2000 - 40
    assert skipping.created_count == 1960


def test_it_reads_a_large_file_in_a_stream(run_import: RunImport) -> None:
    out = io.StringIO()
    out.write("email,first_name\n")
    for i in range(30_000):
        out.write(f"person{i}@example.org,P{i}\n")
    job = run_import(out.getvalue())
    assert job.status == JobStatus.DONE
    assert job.created_count == 30_000
    assert job.bytes_done == job.file_size
    assert Contact.objects.count() == 30_000
