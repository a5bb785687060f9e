"""Streaming CSV in and out: uploads of any size, exports of millions of rows.

Reading (`CsvReader`):

* The file stays on disk and is read in chunks, so memory does not grow with its size.
* Encoding: UTF-8, with or without a byte-order mark. Anything else (UTF-16, Windows-1252,
  Latin-1, an Excel workbook) is refused with a message that says what to do and, for bytes
  that are not UTF-8, on which line the first one is.
* Delimiter: `,`, `;` or tab, detected from the first records.
* Header row: detected. A first row holding an e-mail address is data, not a header.
* Line numbers are physical lines, 1-based, with the header on line 1. They come from
  `csv.reader.line_num`, which counts the newlines inside quoted fields, and a record is
  numbered by the line it starts on.
* Problems are reported as (line, column, reason): `CsvProblem`. A problem with the file as a
  whole (nothing can be read safely) raises `CsvFileError`.

Writing: `safe_cell` and `stream_csv` escape cells that a spreadsheet would run as a formula
(cells starting with = + - @ tab or carriage return get a leading apostrophe, as OWASP
recommends); `unescape_cell` undoes it, so our own exports import back unchanged.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
SAMPLE_BYTES = 64 * 1024
SAMPLE_RECORDS = 50

# Header names that mean "the e-mail address", compared after `normalise_name`.
EMAIL_COLUMN_NAMES = ("email", "emailaddress", "mail", "address", "recipient", "emailid", "to", "toaddress")

FORMULA_START = frozenset("=+-@\t\r")

_LOOKS_LIKE_EMAIL = re.compile(r"^\s*<?[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+>?\s*$")
_NAME_JUNK = re.compile(r"[^a-z0-9]")


class CsvFileError(ValueError):
    """The file cannot be read as CSV at all; `line` is where the trouble is, when known."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class CsvProblem:
    """One bad record: where it is and why it was not taken."""

    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"Line {self.line}" + (f", column “{self.column}”" if self.column else "")
        return f"{where}: {self.message}"


def normalise_name(name: str) -> str:
    """A header name reduced to lower-case letters and digits: "E-mail Address" → "emailaddress"."""
    return _NAME_JUNK.sub("", name.strip().lower())


def looks_like_email(text: str) -> bool:
    return bool(_LOOKS_LIKE_EMAIL.match(text))


def find_column(header: Sequence[str], names: Sequence[str]) -> int | None:
    """The index of the first header cell whose normalised name is in `names` (in `names`' order of preference)."""
    normalised = [normalise_name(h) for h in header]
    for wanted in names:
        if wanted in normalised:
            return normalised.index(wanted)
    return None


class CsvReader:
    """Records of a CSV file on disk, read lazily: `for line, fields in reader: ...`.

    Construction reads only the first `SAMPLE_BYTES` to check the encoding and find the
    delimiter and the header; iteration then streams the file. Raises `CsvFileError` for an
    empty file, a file that is not UTF-8 (also when the bad byte comes late in the file, from
    the iteration) and a quote that never closes.
    """

    def __init__(self, path: str | Path, *, sample_bytes: int = SAMPLE_BYTES) -> None:
        self.path = Path(path)
        self.size = self.path.stat().st_size
        self._bytes_read = 0
        self._binary: io.BufferedReader | None = None
        with self.path.open("rb") as raw:
            head = raw.read(sample_bytes)
        whole = len(head) >= self.size
        self._check_bytes(head)
        sample = self._decode_sample(head, whole=whole)
        if not sample.strip():
            raise CsvFileError("The file is empty: there is nothing to import.")
        self.delimiter = detect_delimiter(sample)
        first = _first_record(sample, self.delimiter)
        self.has_header = not any(looks_like_email(cell) for cell in first)
        self.header: list[str] = [cell.strip() for cell in first] if self.has_header else []
        self.first_record = first

    # --- detection ------------------------------------------------------------------------
    @staticmethod
    def _check_bytes(head: bytes) -> None:
        if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
            raise CsvFileError(_not_utf8("The file is UTF-32 encoded."), line=1)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise CsvFileError(_not_utf8("The file is UTF-16 encoded."), line=1)
        if head.startswith(b"PK\x03\x04"):
            raise CsvFileError(
                "This is a spreadsheet workbook (.xlsx or .ods), not a CSV file. "
                "Save it as “CSV UTF-8 (comma delimited)” and upload that.",
                line=1,
            )
        if b"\x00" in head:
            line = head[: head.index(b"\x00")].count(b"\n") + 1
            raise CsvFileError(
                _not_utf8(f"Line {line} contains a NUL byte, so this is not a UTF-8 text file (UTF-16, or binary?)."),
                line=line,
            )

    @staticmethod
    def _decode_sample(head: bytes, *, whole: bool) -> str:
        decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
        try:
            text = decoder.decode(head, final=whole)
        except UnicodeDecodeError as exc:
            line = head[: exc.start].count(b"\n") + 1
            byte = head[exc.start]
            raise CsvFileError(
                _not_utf8(f"Line {line} has a byte that is not UTF-8 (0x{byte:02X})."), line=line
            ) from None
        if not whole and "\n" in text:
            text = text[: text.rindex("\n") + 1]  # a cut-off last line would mislead the detection
        return text

    # --- reading ----------------------------------------------------------------------------
    @property
    def bytes_read(self) -> int:
        """How far into the file the reader has got, for progress bars."""
        if self._binary is not None and not self._binary.closed:
            return self._binary.tell()
        return self._bytes_read

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        """(line where the record starts, fields) for every data record; blank lines are skipped."""
        binary = self.path.open("rb")
        self._binary = binary
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="strict", newline="")
        reader = csv.reader(text, delimiter=self.delimiter)
        skip_header = self.has_header
        previous = 0
        try:
            for fields in reader:
                line = previous + 1
                previous = reader.line_num
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue
                if skip_header:
                    skip_header = False
                    continue
                yield line, fields
        except UnicodeDecodeError:
            line = first_bad_utf8_line(self.path)
            raise CsvFileError(_not_utf8(f"Line {line} has a byte that is not UTF-8."), line=line) from None
        except csv.Error as exc:
            line = previous + 1
            reason = str(exc)
            if "field larger than field limit" in reason:
                reason = (
                    'a quoted field does not end: a quote (") is opened and never closed '
                    f"(or one field is longer than {csv.field_size_limit() // 1024} KiB)"
                )
            raise CsvFileError(f"Line {line}: {reason}. Nothing was imported.", line=line) from None
        finally:
            self._bytes_read = binary.tell() if not binary.closed else self.size
            text.close()

    def column_index(self, names: Sequence[str]) -> int | None:
        """The column holding one of `names` (header files), or the first e-mail-looking cell (headerless files)."""
        if self.has_header:
            return find_column(self.header, names)
        for index, cell in enumerate(self.first_record):
            if looks_like_email(cell):
                return index
        return None

    def column_label(self, index: int) -> str:
        if self.has_header and index < len(self.header) and self.header[index]:
            return self.header[index]
        return f"column {index + 1}"

    def describe(self) -> str:
        """How the file was read, for the page: "comma-separated, with a header row"."""
        header = "with a header row" if self.has_header else "without a header row"
        return f"{DELIMITER_NAMES[self.delimiter]}-separated, {header}"


def _not_utf8(what: str) -> str:
    return (
        f"{what} Mailroom reads CSV files in UTF-8 only. Save the file as “CSV UTF-8” "
        "(Excel: File → Save As → CSV UTF-8) and upload it again. Nothing was imported."
    )


def detect_delimiter(sample: str) -> str:
    """`,`, `;` or tab: the one that splits the first records into the same number (≥ 2) of columns.

    A single-column file (only addresses) gets `,`, which never matters for it.
    """
    best = ","
    best_score: tuple[bool, int, float] = (False, 1, 0.0)
    for delimiter in DELIMITERS:
        widths: list[int] = []
        try:
            for row in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter):
                if row and any(cell.strip() for cell in row):
                    widths.append(len(row))
                    if len(widths) >= SAMPLE_RECORDS:
                        break
        except csv.Error:
            continue
        if not widths or widths[0] < 2:
            continue
        consistency = sum(1 for w in widths if w == widths[0]) / len(widths)
        score = (consistency >= 0.9, widths[0], consistency)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _first_record(sample: str, delimiter: str) -> list[str]:
    try:
        for row in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter):
            if row and any(cell.strip() for cell in row):
                return row
    except csv.Error as exc:
        raise CsvFileError(f"Line 1: {exc}. Nothing was imported.", line=1) from None
    return []


def first_bad_utf8_line(path: Path) -> int:
    """The physical line (1-based) holding the first byte that is not UTF-8 (streams the file)."""
    with path.open("rb") as raw:
        for number, line in enumerate(raw, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 1


# --- writing -------------------------------------------------------------------------------
def safe_cell(value: object) -> str:
    """The value as text, with a leading apostrophe when a spreadsheet would run it as a formula."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # a number (even a negative one) is never a formula
    text = "" if value is None else str(value)
    if text and text[0] in FORMULA_START:
        return "'" + text
    return text


def unescape_cell(text: str) -> str:
    """Undo `safe_cell`: "'=x" → "=x". Other text is returned as it is."""
    if len(text) > 1 and text[0] == "'" and text[1] in FORMULA_START:
        return text[1:]
    return text


class _Echo:
    """A file-like object whose write() hands the text back, so csv.writer can feed a stream."""

    def write(self, value: str) -> str:
        return value


def stream_csv(header: Sequence[str], rows: Iterable[Sequence[object]], *, rows_per_chunk: int = 500) -> Iterator[str]:
    """CSV text in chunks of a few hundred rows, for `StreamingHttpResponse`. Every cell is made safe."""
    writer = csv.writer(_Echo())
    yield writer.writerow([safe_cell(h) for h in header])
    chunk: list[str] = []
    for row in rows:
        chunk.append(writer.writerow([safe_cell(cell) for cell in row]))
        if len(chunk) >= rows_per_chunk:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)
