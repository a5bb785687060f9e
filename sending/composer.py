"""Audiences and previews for the composer.

Audiences yield `engine.AudienceRow`s lazily (pasted text, an uploaded CSV read by `common.csvio`,
marketing lists and segments), so expansion stays set-based and memory stays flat.

The preview substitutes `%%Field%%` tokens by plain string replacement: merge content never goes
through Django's template engine (that would be server-side template injection), and the page
shows the result escaped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accounts.models import Server
from common.csvio import CsvFileError, CsvReader, find_column, looks_like_email
from sending.engine import TOKEN, AudienceRow, merge_fields_in

EMAIL_COLUMNS = ("email", "emailaddress", "address", "mail")
NAME_COLUMNS = ("name", "fullname", "recipientname")


class AudienceError(ValueError):
    """The audience cannot be read; the message says where and why."""


def parse_fields(text: str) -> dict[str, str]:
    """`Field: value` (or `Field=value`) lines into a dict; blank lines ignored, names trimmed."""
    fields: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        sep = ":" if ":" in line else "=" if "=" in line else None
        if sep is None:
            raise AudienceError(f"Line {number}: write each field as “Name: value”.")
        name, _, value = line.partition(sep)
        if not name.strip():
            raise AudienceError(f"Line {number}: the field name is empty.")
        fields[name.strip()] = value.strip()
    return fields


def pasted_rows(text: str) -> Iterator[AudienceRow]:
    """Addresses one per line; or CSV with a header row whose other columns become merge fields."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return
    first = next(csv.reader([lines[0]]))
    if len(first) > 1 and not any(looks_like_email(cell) for cell in first):
        yield from _table_rows(first, csv.reader(io.StringIO("\n".join(lines[1:]))), first_line=2)
        return
    for number, line in enumerate(lines, start=1):
        yield AudienceRow(line.strip(), line=number)


def _table_rows(header: Sequence[str], records: Iterator[list[str]], *, first_line: int) -> Iterator[AudienceRow]:
    header = [h.strip() for h in header]
    email_at = find_column(header, EMAIL_COLUMNS)
    if email_at is None:
        raise AudienceError(f"No e-mail column: name one of the columns “email”. The header was: {', '.join(header)}.")
    name_at = find_column(header, NAME_COLUMNS)
    for offset, record in enumerate(records):
        if not record or not any(cell.strip() for cell in record):
            continue
        fields = {
            header[i]: record[i].strip()
            for i in range(min(len(header), len(record)))
            if i not in (email_at, name_at) and header[i]
        }
        yield AudienceRow(
            record[email_at] if email_at < len(record) else "",
            record[name_at].strip() if name_at is not None and name_at < len(record) else "",
            fields,
            line=first_line + offset,
        )


def csv_rows(path: Path) -> Iterator[AudienceRow]:
    """An uploaded CSV file, streamed: a header row names the merge fields."""
    try:
        reader = CsvReader(path)
    except CsvFileError as exc:
        raise AudienceError(exc.message) from None
    if not reader.has_header:
        column = reader.column_index(EMAIL_COLUMNS) or 0
        for line, fields in reader:
            yield AudienceRow(fields[column] if column < len(fields) else "", line=line)
        return
    try:
        records = (fields for _, fields in reader)
        yield from _table_rows(reader.header, records, first_line=2)
    except CsvFileError as exc:
        raise AudienceError(exc.message) from None


@dataclass(frozen=True)
class ContactAudience:
    rows: Iterator[AudienceRow]
    skipped: Iterator[tuple[str, str]]


def contact_rows(server: Server, *, list_ids: Sequence[int] = (), segment_id: int | None = None) -> ContactAudience:
    """Contacts of marketing lists or a saved segment; their custom fields become merge fields.

    Subscribed contacts are the audience; the others are reported as skipped with their status.
    """
    from marketing import services as marketing
    from marketing.models import Segment, Status

    if segment_id is not None:
        segment = Segment.objects.filter(server=server, pk=segment_id).first()
        if segment is None:
            raise AudienceError("That segment does not exist on this server.")
        contacts = marketing.contacts_matching(server, segment.definition)
    else:
        contacts = marketing.contacts_for_lists(server, list(list_ids))
    fields = ("email", "first_name", "last_name", "custom")

    def rows() -> Iterator[AudienceRow]:
        for email, first, last, custom in (
            contacts.filter(status=Status.SUBSCRIBED).values_list(*fields).order_by("pk").iterator(chunk_size=5000)
        ):
            merged = {"FirstName": first, "LastName": last, **{str(k): str(v) for k, v in (custom or {}).items()}}
            yield AudienceRow(email, f"{first} {last}".strip(), merged)

    def skipped() -> Iterator[tuple[str, str]]:
        for email, status in (
            contacts.exclude(status=Status.SUBSCRIBED).values_list("email", "status").iterator(chunk_size=5000)
        ):
            yield email, str(status)

    return ContactAudience(rows=rows(), skipped=skipped())


# --- preview -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Preview:
    subject: str
    html_body: str
    text_body: str
    missing: list[str]  # fields the template uses that the row (and the globals) do not have


def substitute(text: str, values: dict[str, str]) -> str:
    """`%%Field%%` → value, names matched without case, unknown fields empty (as SocketLabs does)."""
    folded = {k.casefold(): v for k, v in values.items()}
    return TOKEN.sub(lambda m: folded.get(m.group(1).casefold(), ""), text)


def preview(
    *, subject: str, html_body: str, text_body: str, row: dict[str, str], global_fields: dict[str, str] | None = None
) -> Preview:
    values = {**(global_fields or {}), **row}
    known = {k.casefold() for k in values}
    used = merge_fields_in(subject, html_body, text_body)
    return Preview(
        subject=substitute(subject, values),
        html_body=substitute(html_body, values),
        text_body=substitute(text_body, values),
        missing=[f for f in used if f.casefold() not in known],
    )


def unused_fields(used: Sequence[str], available: Sequence[str]) -> list[str]:
    """Template fields no recipient has: the composer warns about them."""
    have = {a.casefold() for a in available}
    return [f for f in used if f.casefold() not in have]


# --- test send -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TestOutcome:
    ok: bool
    message: str


def test_send(*, server: Server, template: Any, to: str, from_address: str, row: dict[str, str]) -> TestOutcome:
    """One message to one address (the signed-in user), merged by SocketLabs like a real send.

    Follows the client's rules: never re-sent when the outcome is unknown.
    """
    from accounts.services import client_for
    from socketlabs import errors
    from socketlabs.injection import BulkMessage, BulkRecipient

    used = merge_fields_in(template.subject, template.html_body, template.text_body)
    fields = {name: row.get(name, "") for name in used} | row
    message = BulkMessage(
        from_address=from_address,
        subject=template.subject,
        html_body=template.html_body or None,
        text_body=template.text_body or None,
        mailing_id=f"mailroom-test-{template.pk}",
        recipients=[BulkRecipient(to, None, fields)],
    )
    try:
        result = client_for(server).inject(message)
    except errors.OutcomeUnknownError:
        return TestOutcome(
            False, f"No answer came back: the test to {to} may or may not have been sent. It was not re-sent."
        )
    except errors.SocketLabsError as exc:
        return TestOutcome(False, f"The test was not sent: {exc.message}")
    if result.ok:
        return TestOutcome(True, f"Test sent to {to}.")
    rejected = result.rejected_addresses()
    code = rejected[0].raw_error_code if rejected else result.raw_error_code
    return TestOutcome(False, f"SocketLabs refused the test to {to}: {code}.")
