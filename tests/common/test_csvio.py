"""The streaming CSV reader and the spreadsheet-safe writer."""

from __future__ import annotations

import csv
import io
import string
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.csvio import (
    EMAIL_COLUMN_NAMES,
    CsvFileError,
    CsvReader,
    detect_delimiter,
    safe_cell,
    stream_csv,
    unescape_cell,
)


def write(tmp_path: Path, data: bytes | str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def records(path: Path) -> list[tuple[int, list[str]]]:
    return list(CsvReader(path))


def test_it_reads_utf8_with_and_without_a_byte_order_mark(tmp_path: Path) -> None:
    plain = write(tmp_path, "email,name\na@example.com,Zoë\n", "plain.csv")
    bom = write(tmp_path, b"\xef\xbb\xbf" + "email,name\na@example.com,Zoë\n".encode(), "bom.csv")
    for path in (plain, bom):
        reader = CsvReader(path)
        assert reader.header == ["email", "name"]
        assert list(reader) == [(2, ["a@example.com", "Zoë"])]


def test_it_refuses_utf16_with_a_clear_message(tmp_path: Path) -> None:
    path = write(tmp_path, "email\na@example.com\n".encode("utf-16"))
    with pytest.raises(CsvFileError) as caught:
        CsvReader(path)
    assert "UTF-16" in caught.value.message
    assert "CSV UTF-8" in caught.value.message


def test_it_refuses_latin1_and_names_the_line_of_the_first_bad_byte(tmp_path: Path) -> None:
    path = write(tmp_path, "email,name\na@example.com,Ann\nb@example.com,Zo\xeb\n".encode("latin-1"))
    with pytest.raises(CsvFileError) as caught:
        CsvReader(path)
    assert caught.value.line == 3
    assert "Line 3" in caught.value.message
    assert "0xEB" in caught.value.message


def test_it_finds_a_bad_byte_far_beyond_the_sample_while_streaming(tmp_path: Path) -> None:
    good = "".join(f"user{i}@example.com\n" for i in range(20_000))  # ~400 KB, beyond the 64 KiB sample
    path = write(tmp_path, b"email\n" + good.encode() + b"late\xff@example.com\n")
    reader = CsvReader(path)
    with pytest.raises(CsvFileError) as caught:
        list(reader)
    assert caught.value.line == 20_002
    assert "Line 20002" in caught.value.message


def test_it_refuses_a_spreadsheet_workbook(tmp_path: Path) -> None:
    path = write(tmp_path, b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(CsvFileError, match="workbook"):
        CsvReader(path)


@pytest.mark.parametrize("content", ["", "\n\n  \n", "\ufeff"])
def test_it_refuses_an_empty_file(tmp_path: Path, content: str) -> None:
    with pytest.raises(CsvFileError, match="empty"):
        CsvReader(write(tmp_path, content))


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("email,reason\na@example.com,Bounce\n", ","),
        ("email;reason\na@example.com;Bounce\n", ";"),
        ("email\treason\na@example.com\tBounce\n", "\t"),
        ("email;name\na@example.com;Smith, John\nb@example.com;Doe, Jane\n", ";"),
        ("email\na@example.com\n", ","),
    ],
)
def test_it_detects_the_delimiter(tmp_path: Path, text: str, delimiter: str) -> None:
    reader = CsvReader(write(tmp_path, text))
    assert reader.delimiter == delimiter
    assert reader.column_index(EMAIL_COLUMN_NAMES) == 0


def test_it_treats_a_first_row_holding_an_address_as_data(tmp_path: Path) -> None:
    reader = CsvReader(write(tmp_path, "Ann,ann@example.com\nBob,bob@example.com\n"))
    assert not reader.has_header
    assert reader.column_index(EMAIL_COLUMN_NAMES) == 1
    assert [line for line, _ in reader] == [1, 2]


def test_it_finds_the_email_column_by_many_names(tmp_path: Path) -> None:
    reader = CsvReader(write(tmp_path, "First Name,E-mail Address,City\nAnn,ann@example.com,Oslo\n"))
    assert reader.column_index(EMAIL_COLUMN_NAMES) == 1
    assert reader.column_label(1) == "E-mail Address"


def test_it_numbers_records_by_their_first_line_with_quoted_newlines(tmp_path: Path) -> None:
    text = 'email,note\na@example.com,"two\nlines"\nb@example.com,"three\nmore\nlines"\n\nc@example.com,x\n'
    assert [(line, fields[0]) for line, fields in records(write(tmp_path, text))] == [
        (2, "a@example.com"),
        (4, "b@example.com"),
        (8, "c@example.com"),
    ]


def test_it_reports_a_quote_that_never_closes(tmp_path: Path) -> None:
    text = 'email,note\na@example.com,ok\nb@example.com,"open\n' + ("x" * 200 + "\n") * 1000
    with pytest.raises(CsvFileError) as caught:
        records(write(tmp_path, text))
    assert caught.value.line == 3
    assert "never closed" in caught.value.message


def test_it_streams_a_large_file_in_flat_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w") as out:
        out.write("email,note\n")
        line = "someone@example.com," + "n" * 2000 + "\n"
        for _ in range(10_000):  # 20 MB
            out.write(line)
    tracemalloc.start()
    try:
        count = sum(1 for _ in CsvReader(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 10_000
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes: the reader must not hold the file"


def test_it_reports_how_far_it_has_read(tmp_path: Path) -> None:
    path = write(tmp_path, "email\n" + "".join(f"u{i}@example.com\n" for i in range(50_000)))
    reader = CsvReader(path)
    seen = []
    for index, _ in enumerate(reader):
        if index % 10_000 == 0:
            seen.append(reader.bytes_read)
    assert seen == sorted(seen) and seen[-1] > 0
    assert reader.bytes_read == reader.size


@pytest.mark.parametrize("value", ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_it_escapes_cells_a_spreadsheet_would_run(value: str) -> None:
    assert safe_cell(value) == "'" + value
    assert unescape_cell(safe_cell(value)) == value


def test_it_leaves_ordinary_cells_alone() -> None:
    for value in ["bob@example.com", "o'brien@example.com", "'quoted", "", "1"]:
        assert safe_cell(value) == value
        assert unescape_cell(value) == value
    assert safe_cell(None) == ""


def test_it_streams_safe_csv_in_chunks() -> None:
    rows = [[f"=cmd{i}", i] for i in range(1200)]
    chunks = list(stream_csv(["address", "n"], rows, rows_per_chunk=500))
    assert len(chunks) == 4  # header + 500 + 500 + 200
    parsed = list(csv.reader(io.StringIO("".join(chunks))))
    assert parsed[0] == ["address", "n"]
    assert parsed[1] == ["'=cmd0", "0"]
    assert len(parsed) == 1201


def test_it_picks_comma_for_a_single_column() -> None:
    assert detect_delimiter("a@example.com\nb@example.com\n") == ","


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000))
def test_it_never_fails_with_anything_but_a_clear_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    try:
        reader = CsvReader(path)
        for line, fields in reader:
            assert line >= 1
            assert fields
    except CsvFileError as exc:
        assert exc.message


CELL = st.text(alphabet=string.ascii_letters + string.digits + ' ,"\n', min_size=1, max_size=20)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(CELL, min_size=2, max_size=2), min_size=1, max_size=20))
def test_it_reads_back_exactly_what_csv_writer_wrote(tmp_path: Path, rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["email", "note"])
    writer.writerows(rows)
    path = tmp_path / "round.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    reader = CsvReader(path)
    assert reader.delimiter == ","
    assert [fields for _, fields in reader] == rows
