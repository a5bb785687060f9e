"""Reading an uploaded contacts CSV: a thin layer over `common.csvio` for row-level byte problems.

`common.csvio.CsvReader` refuses a whole file at its first byte that is not UTF-8. That is right
for a file saved in another encoding, and this reader refuses those files with the same message.
But an import must also report a *stray* bad byte in an otherwise UTF-8 file as a problem of that
one row (with its line number), so that "skip invalid rows" can import the rest (shared/ecosystem.md
R6). So this reader decodes with `surrogateescape`: a bad byte becomes a lone surrogate, which
`has_bad_bytes` finds in the cells the import keeps.

The whole file is refused (`CsvFileError`, the csvio messages) when it is empty, UTF-16/32, a
spreadsheet workbook, holds NUL bytes, has a header that is not UTF-8, or when bad bytes are
common in its first 64 KiB (more than 1 line in 20: the file is in another encoding).
Everything else — delimiter detection, header detection, physical line numbers with quoted
newlines — behaves as `CsvReader`.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

from common.csvio import (
    DELIMITER_NAMES,
    SAMPLE_BYTES,
    CsvFileError,
    detect_delimiter,
    looks_like_email,
)

_BAD_BYTE = re.compile("[\udc80-\udcff]")
UTF8_ADVICE = (
    " Mailroom reads CSV files in UTF-8 only. Save the file as “CSV UTF-8” "
    "(Excel: File → Save As → CSV UTF-8) and upload it again. Nothing was imported."
)
SAMPLE_ROWS = 20


def has_bad_bytes(text: str) -> bool:
    """Whether a cell holds bytes that were not UTF-8 (cheap for ASCII text, the usual case)."""
    return not text.isascii() and _BAD_BYTE.search(text) is not None


class ContactCsv:
    """Records of a CSV file on disk: `for line, fields in ContactCsv(path): ...` (header skipped)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.size = self.path.stat().st_size
        self._binary: io.BufferedReader | None = None
        self._bytes_read = 0
        with self.path.open("rb") as raw:
            head = raw.read(SAMPLE_BYTES)
        _check_file_type(head)
        whole = len(head) >= self.size
        sample = head.decode("utf-8", errors="surrogateescape")
        if sample.startswith("\ufeff"):
            sample = sample[1:]
        if not whole and "\n" in sample:
            sample = sample[: sample.rindex("\n") + 1]  # a cut-off last line would mislead the detection
        if not sample.strip():
            raise CsvFileError("The file is empty: there is nothing to import.")
        lines = sample.splitlines()
        bad = [number for number, text in enumerate(lines, start=1) if has_bad_bytes(text)]
        if bad and (bad[0] == 1 or len(bad) * 20 > len(lines)):
            raise CsvFileError(
                f"Line {bad[0]} has a byte that is not UTF-8, so the file is in another encoding." + UTF8_ADVICE,
                line=bad[0],
            )
        self.delimiter = detect_delimiter(sample)
        first = _first_record(sample, self.delimiter)
        self.has_header = not any(looks_like_email(cell) for cell in first)
        self.header: list[str] = [cell.strip() for cell in first] if self.has_header else []
        self.width = len(first)

    @property
    def bytes_read(self) -> int:
        if self._binary is not None and not self._binary.closed:
            return self._binary.tell()
        return self._bytes_read

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        """(line where the record starts, cells); a record whose quoting is broken comes as a `BadRecord`."""
        binary = self.path.open("rb")
        self._binary = binary
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")
        # strict: a quote that never closes is an error of that record (the reader then goes on with
        # the next line) instead of silently swallowing the rest of the file into one cell.
        reader = csv.reader(text, delimiter=self.delimiter, strict=True)
        skip_header = self.has_header
        previous = 0
        try:
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    line, previous = previous + 1, reader.line_num
                    if skip_header:
                        raise CsvFileError(f"Line {line}: {_reason(exc)}. Nothing was imported.", line=line) from None
                    yield line, BadRecord(_reason(exc))
                    continue
                line, previous = previous + 1, reader.line_num
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue
                if skip_header:
                    skip_header = False
                    continue
                yield line, fields
        finally:
            self._bytes_read = binary.tell() if not binary.closed else self.size
            text.close()

    def sample_rows(self, count: int = SAMPLE_ROWS) -> list[tuple[int, list[str]]]:
        rows: list[tuple[int, list[str]]] = []
        for row in self:
            rows.append(row)
            if len(rows) >= count:
                break
        return rows

    def column_label(self, index: int) -> str:
        if self.has_header and index < len(self.header) and self.header[index]:
            return self.header[index]
        return f"column {index + 1}"

    def describe(self) -> str:
        header = "with a header row" if self.has_header else "without a header row"
        return f"{DELIMITER_NAMES[self.delimiter]}-separated, {header}"


class BadRecord(list[str]):
    """A record the CSV reader could not split (broken quoting); `message` says why."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


def _reason(exc: csv.Error) -> str:
    reason = str(exc)
    if "field larger than field limit" in reason or "unexpected end of data" in reason:
        return (
            'a quote (") opened in this record is never closed '
            f"(or one field is longer than {csv.field_size_limit() // 1024} KiB)"
        )
    if "expected after" in reason:
        return f"the quoting is broken ({reason}): a field that starts with a quote must end with one"
    return reason


def _check_file_type(head: bytes) -> None:
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise CsvFileError("The file is UTF-32 encoded." + UTF8_ADVICE, line=1)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise CsvFileError("The file is UTF-16 encoded." + UTF8_ADVICE, line=1)
    if head.startswith(b"PK\x03\x04"):
        raise CsvFileError(
            "This is a spreadsheet workbook (.xlsx or .ods), not a CSV file. "
            "Save it as “CSV UTF-8 (comma delimited)” and upload that.",
            line=1,
        )
    if b"\x00" in head:
        line = head[: head.index(b"\x00")].count(b"\n") + 1
        raise CsvFileError(
            f"Line {line} contains a NUL byte, so this is not a UTF-8 text file (UTF-16, or binary?)." + UTF8_ADVICE,
            line=line,
        )


def _first_record(sample: str, delimiter: str) -> list[str]:
    try:
        for row in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter):
            if row and any(cell.strip() for cell in row):
                return row
    except csv.Error as exc:
        raise CsvFileError(f"Line 1: {exc}. Nothing was imported.", line=1) from None
    return []
