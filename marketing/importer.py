"""Writing many contacts at once: the CSV import and the API's bulk upsert share this engine.

The rows arrive already validated (`RowSpec.rows` turns CSV records into rows and reports bad
ones to `Problems`). The engine then writes them in **one transaction**:

PostgreSQL
    1. `COPY mk_stage FROM STDIN` with `copy.write_row()` of typed values (line number, address,
       names, status, one column per custom field) into a TEMP table dropped at commit;
    2. duplicates within the input: one hash aggregate over the stage finds repeated addresses;
       the later lines are reported ("already on line N") and removed from the stage;
    3. one `INSERT … SELECT … ON CONFLICT (server_id, email) DO UPDATE` (or `DO NOTHING` when
       existing contacts are to be skipped) builds the custom-field JSON in SQL and merges it
       into the stored one (`custom = contact.custom || excluded.custom`); a `WHERE … IS
       DISTINCT FROM` leaves identical rows alone, so a re-import writes nothing; the same
       statement writes a history row per updated contact and the push outbox;
    4. one `INSERT … SELECT … ON CONFLICT DO NOTHING` adds every row's contact to the chosen lists.

Other databases (the SQLite default)
    the same semantics with the ORM: `bulk_create` / `bulk_update` per batch of 2,000 rows.

Strict mode (the default): when any row had a problem, the transaction is rolled back — nothing
at all is written, and the report lists every problem. "Skip invalid rows": only the valid rows
are written, and the report lists the others. Either way nothing is ever half-applied.

Rules both engines keep:
* an empty cell never erases a stored value (names and custom fields keep theirs);
* a new contact gets the row's status, else the job's status for new contacts;
* an existing contact's status only moves away from "subscribed" (an import never re-subscribes
  anyone who unsubscribed, bounced or complained — see `STATUS_RANK`).
"""

from __future__ import annotations

import contextlib
import csv
import heapq
import json
import logging
import queue
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone
from psycopg import sql

from common.csvio import safe_cell, unescape_cell
from common.emails import InvalidAddress, normalise_email
from marketing.csvfile import BadRecord, has_bad_bytes
from marketing.mapping import parse_status
from marketing.models import (
    STATUS_RANK,
    Contact,
    ContactHistory,
    ContactList,
    CustomField,
    FieldType,
    HistoryKind,
    Membership,
    RemoteAction,
    RemoteChange,
    Status,
)
from marketing.values import MAX_NAME, Converter, InvalidValue, converter_for

log = logging.getLogger(__name__)

# A stage row: (line, email, first_name, last_name, status, value of each plan field...).
Row = tuple[Any, ...]

KEEP_PROBLEMS = 100
ORM_BATCH = 2000
CHUNK_ROWS = 25_000  # rows per COPY + apply step on PostgreSQL (two chunks in flight: ~25 MB)


# --- problems -------------------------------------------------------------------------------------
class Problems:
    """Every bad row: counted, the first `KEEP_PROBLEMS` kept for the page, all written to a CSV report.

    Problems found while reading come in line order (from the reader thread); duplicates are found
    as the rows are written, also in line order (from the writing thread). Each kind goes to its own
    file; `finish()` merges both into the report, sorted by line. Without a report path (the API,
    small batches) every problem stays in memory.
    """

    HEADER = ("line", "column", "problem")

    def __init__(self, report_path: Path | None = None) -> None:
        self.report_path = report_path
        self.count = 0
        self.rows = 0  # rows with at least one problem
        self._last_line = 0
        self._last_late = 0
        self._late_sorted = True
        self._lock = threading.Lock()
        self._early: list[tuple[int, str, str]] = []
        self._late: list[tuple[int, str, str]] = []
        self._files: dict[str, tuple[Path, Any, Any]] = {}
        if report_path is not None:
            report_path.parent.mkdir(parents=True, exist_ok=True)
            for kind in ("reading", "writing"):
                path = report_path.with_suffix(f".{kind}.csv")
                handle = path.open("w", newline="", encoding="utf-8")
                self._files[kind] = (path, handle, csv.writer(handle))

    def _keep(self, kept: list[tuple[int, str, str]], problem: tuple[int, str, str]) -> None:
        if not self._files or len(kept) < KEEP_PROBLEMS:
            kept.append(problem)

    def add(self, line: int, column: str, message: str) -> None:
        with self._lock:
            self.count += 1
            if line != self._last_line:  # a record's problems come together, so this counts rows
                self.rows += 1
                self._last_line = line
            self._keep(self._early, (line, column, message))
            if self._files:
                self._files["reading"][2].writerow((line, column, message))

    def add_late(self, line: int, column: str, message: str) -> None:
        """A problem found while writing (a repeated address): one per row."""
        with self._lock:
            if line < self._last_late:
                self._late_sorted = False
            self._last_late = line
            self.count += 1
            self.rows += 1  # the row was otherwise valid, so never counted before
            self._keep(self._late, (line, column, message))
            if self._files:
                self._files["writing"][2].writerow((line, column, message))

    def restart(self) -> None:
        """Forget everything (a second pass over the same input reports it all again)."""
        with self._lock:
            self.count = self.rows = self._last_line = self._last_late = 0
            self._late_sorted = True
            self._early, self._late = [], []
            for kind, (path, handle, _) in list(self._files.items()):
                handle.close()
                handle = path.open("w", newline="", encoding="utf-8")
                self._files[kind] = (path, handle, csv.writer(handle))

    @property
    def first(self) -> list[list[Any]]:
        merged = heapq.merge(sorted(self._early), sorted(self._late))
        return [list(p) for _, p in zip(range(KEEP_PROBLEMS), merged, strict=False)]

    def all_in_memory(self) -> list[tuple[int, str, str]]:
        return sorted(self._early + self._late)

    def finish(self) -> Path | None:
        """Close and write the sorted report; None when there was nothing to report."""
        for _, handle, _ in self._files.values():
            handle.close()
        if self.report_path is None or not self._files:
            return None
        paths = [path for path, _, _ in self._files.values()]
        self._files = {}
        if not self.count:
            for path in paths:
                path.unlink(missing_ok=True)
            return None
        with contextlib.ExitStack() as stack:
            readers: list[Iterable[tuple[int, str, str]]] = [
                (
                    (int(r[0]), r[1], r[2])
                    for r in csv.reader(stack.enter_context(path.open(newline="", encoding="utf-8")))
                )
                for path in paths
            ]
            if not self._late_sorted:  # repeats found at the end come after those found on the way: sort them
                readers[-1] = sorted(readers[-1])
            out = stack.enter_context(self.report_path.open("w", newline="", encoding="utf-8"))
            writer = csv.writer(out)
            writer.writerow(self.HEADER)
            for line, column, message in heapq.merge(*readers):
                writer.writerow((line, _safe(column), _safe(message)))
        for path in paths:
            path.unlink(missing_ok=True)
        return self.report_path


def _safe(text: str) -> str:
    return safe_cell(text)


# --- what to write ------------------------------------------------------------------------------
@dataclass
class Plan:
    server_id: int
    fields: list[CustomField]
    set_first: bool = True
    set_last: bool = True
    set_status: bool = False
    update_existing: bool = True
    new_status: str = Status.SUBSCRIBED
    list_ids: list[int] = field(default_factory=list)
    via: str = "import"
    job_id: int | None = None
    actor_id: int | None = None
    skip_invalid: bool = False
    push_unsubscribes: bool = False
    history_summary: str = "Updated by an import"


@dataclass
class Outcome:
    rows: int = 0  # valid, unique rows written to the stage
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    invalid: int = 0
    list_added: int = 0
    committed: bool = False
    created_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, int | bool]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "invalid": self.invalid,
            "list_added": self.list_added,
            "committed": self.committed,
        }


# --- CSV records → rows -----------------------------------------------------------------------------
@dataclass
class RowSpec:
    """How to turn one CSV record into a stage row, from the column mapping."""

    width: int
    email: int
    labels: list[str]
    first: int | None = None
    last: int | None = None
    full: int | None = None
    status: int | None = None
    values: list[tuple[int, Converter]] = field(default_factory=list)  # in plan field order
    check_width: bool = True

    @classmethod
    def from_mapping(
        cls, targets: Sequence[str], fields_by_target: dict[str, CustomField], labels: list[str], width: int
    ) -> tuple[RowSpec, list[CustomField]]:
        spec = cls(width=width, email=targets.index("email"), labels=labels)
        plan_fields: list[CustomField] = []
        for index, target in enumerate(targets):
            if target == "first_name":
                spec.first = index
            elif target == "last_name":
                spec.last = index
            elif target == "full_name":
                spec.full = index
            elif target == "status":
                spec.status = index
            elif target in fields_by_target:
                custom = fields_by_target[target]
                convert = converter_for(custom.type, custom.choices)
                if custom.type == FieldType.TEXT:
                    convert = _unescaping(convert)
                spec.values.append((index, convert))
                plan_fields.append(custom)
        return spec, plan_fields

    def rows(
        self,
        records: Iterable[tuple[int, list[str]]],
        problems: Problems,
        state: ReadState,
        skip: frozenset[int] = frozenset(),
    ) -> Iterator[Row]:
        """Valid stage rows; every bad record goes to `problems` (all its problems, not just the first).

        Lines in `skip` are passed over (repeated addresses, already reported).
        """
        width, ei, fi, li, ni, si = self.width, self.email, self.first, self.last, self.full, self.status
        values = self.values
        for line, cells in records:
            state.line = line
            if skip and line in skip:
                continue
            if cells.__class__ is BadRecord:
                problems.add(line, "", cells.message)  # type: ignore[attr-defined]
                continue
            try:
                if self.check_width and len(cells) != width:
                    raise _RowError
                email = normalise_email(cells[ei])
                first = cells[fi].strip() if fi is not None else None
                last = cells[li].strip() if li is not None else None
                if ni is not None:
                    first, last = _split_name(cells[ni])
                # The slow checks only for the rare name that is long, not ASCII or escaped by an export.
                if first and (len(first) > MAX_NAME or not first.isascii() or first[0] == "'"):
                    first = _checked_name(first)
                if last and (len(last) > MAX_NAME or not last.isascii() or last[0] == "'"):
                    last = _checked_name(last)
                status = parse_status(cells[si]) if si is not None else None
                row = [line, email, first, last, status]
                for index, convert in values:
                    cell = cells[index]
                    if not cell.isascii() and has_bad_bytes(cell):
                        raise _RowError
                    row.append(convert(cell))
            except (_RowError, InvalidAddress, InvalidValue, ValueError, IndexError):
                self._report(line, cells, problems)
                continue
            yield tuple(row)

    def _report(self, line: int, cells: list[str], problems: Problems) -> None:
        """The slow path for a bad record: find and report each of its problems."""
        if self.check_width and len(cells) != self.width:
            hint = ""
            if any("\n" in c for c in cells) or (cells and cells[-1].count('"')):
                hint = ' (is a quote (") opened on this line and never closed?)'
            cells_word = "cell" if len(cells) == 1 else "cells"
            problems.add(line, "", f"has {len(cells)} {cells_word} where the header has {self.width}{hint}")
            return
        checks: list[tuple[int, Callable[[str], Any]]] = [(self.email, normalise_email)]
        for index in (self.first, self.last, self.full):
            if index is not None:
                checks.append((index, _checked_name))
        if self.status is not None:
            checks.append((self.status, parse_status))
        checks.extend(self.values)
        for index, check in checks:
            cell = cells[index]
            if has_bad_bytes(cell):
                problems.add(line, self.labels[index], "has bytes that are not UTF-8 (save the file as CSV UTF-8)")
                continue
            try:
                check(cell)
            except (InvalidAddress, InvalidValue, ValueError) as exc:
                problems.add(line, self.labels[index], str(exc))


class _RowError(Exception):
    pass


@dataclass
class ReadState:
    line: int = 0


def _checked_name(raw: str) -> str:
    text = raw.strip()
    if has_bad_bytes(text):
        raise InvalidValue("has bytes that are not UTF-8 (save the file as CSV UTF-8)")
    if len(text) > MAX_NAME:
        raise InvalidValue(f"is {len(text)} characters long; at most {MAX_NAME} fit")
    return _unescape(text)


def _unescape(text: str) -> str:
    return unescape_cell(text)


def _unescaping(convert: Converter) -> Converter:
    """Text cells our own exports escaped ("'=x") import back as they were ("=x")."""

    def parse(cell: str) -> Any:
        return convert(unescape_cell(cell) if cell[:1] == "'" else cell)

    return parse


def _split_name(raw: str) -> tuple[str, str]:
    parts = _checked_name(raw).rsplit(" ", 1)
    if len(parts) == 1:
        return parts[0], ""
    return parts[0].strip(), parts[1].strip()


# --- the engine ---------------------------------------------------------------------------------
RowsFor = Callable[[frozenset[int]], Iterable[Row]]


def apply_rows(
    plan: Plan,
    rows_for: RowsFor,
    problems: Problems,
    *,
    engine: str = "auto",
    before: Callable[[], None] | None = None,
    on_apply: Callable[[], None] | None = None,
) -> Outcome:
    """Write the rows of `rows_for(lines to skip)` as `plan` says, in one transaction (see the module docstring).

    `before` runs first inside the transaction (creating custom fields, so a rolled-back import
    leaves none behind); `on_apply` when reading is done (progress).
    """
    if engine == "auto":
        engine = "sql" if connection.vendor == "postgresql" else "orm"
    with transaction.atomic():
        if before is not None:
            before()
        if engine == "sql":
            outcome = _apply_sql_checked(plan, rows_for, problems, on_apply)
        else:
            outcome = _apply_orm(plan, rows_for(frozenset()), problems)
            if on_apply is not None:
                on_apply()
        outcome.invalid = problems.rows
        if problems.count and not plan.skip_invalid:
            transaction.set_rollback(True)
            return Outcome(rows=outcome.rows, invalid=outcome.invalid, committed=False)
        outcome.committed = True
        return outcome


def _apply_sql_checked(
    plan: Plan, rows_for: RowsFor, problems: Problems, on_apply: Callable[[], None] | None
) -> Outcome:
    """The SQL engine, with the rare second pass for addresses repeated across chunks.

    Repeats within a chunk are dropped before it is written. Repeats across chunks are only known
    at the end; by then the later row has been applied too. In strict mode that does not matter
    (the import is rolled back). When skipping invalid rows, the work is rolled back to a savepoint
    and done again from the file without those lines, so the first occurrence is what counts.
    """
    savepoint = transaction.savepoint_create()
    outcome, repeated = _apply_sql(plan, rows_for(frozenset()), problems, on_apply)
    if not repeated:
        transaction.savepoint_commit(savepoint)
        return outcome
    if not plan.skip_invalid:
        for line, first in repeated:
            problems.add_late(line, "email", f"the address is already on line {first}")
        return outcome
    transaction.savepoint_rollback(savepoint)
    problems.restart()
    for line, first in repeated:
        problems.add_late(line, "email", f"the address is already on line {first}")
    skip = frozenset(line for line, _ in repeated)
    outcome, again = _apply_sql(plan, rows_for(skip), problems, on_apply)
    assert not again, "the second pass skips every repeated line"
    return outcome


CHUNK_COLUMNS = sql.SQL(
    'line integer, email text COLLATE "C", first_name text, last_name text, status text, custom jsonb'
)


_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str | None) -> str:
    """A value in COPY's text format: \\N for NULL; backslash, tab and line ends escaped."""
    if value is None:
        return "\\N"
    if _COPY_SPECIAL.search(value):
        return value.translate(_COPY_ESCAPES)
    return value


def _copy_line(plan: Plan) -> Callable[[Row], str]:
    """A typed row → its line of COPY text for the stage, the custom values as one JSON object.

    Built in the reading thread, so the writing thread only sends bytes: psycopg's write_row()
    would format in the writing thread, holding the GIL that the reader needs (measured: 6 s of a
    17 s million-row import). The JSON is built here too rather than with jsonb_build_object() in
    the INSERT, because the database is the slower side of the pipeline (3 s per million rows there).
    Empty values are left out of the JSON, as the model wants.
    """
    keys = [f.key for f in plan.fields]
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    text = _copy_text

    def line(row: Row) -> str:
        values = {key: value for key, value in zip(keys, row[5:], strict=True) if value is not None}
        custom = encode(values) if values else "{}"
        return f"{row[0]}\t{text(row[1])}\t{text(row[2])}\t{text(row[3])}\t{text(row[4])}\t{text(custom)}\n"

    return line


@dataclass(frozen=True)
class _Chunk:
    payload: bytes  # COPY text
    size: int  # rows in it


def _custom_expr(plan: Plan) -> sql.Composable:
    return sql.SQL("s.custom")


def _rank(expr: str) -> str:
    cases = " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in STATUS_RANK.items())
    return f"(CASE {expr} {cases} ELSE 0 END)"


def _pipelined(rows: Iterable[Row], size: int, plan: Plan, problems: Problems) -> Iterator[_Chunk]:
    """Chunks of COPY text, prepared in a thread while the caller writes the previous chunk.

    The reading (CSV parsing, checks, formatting: pure Python) and the database work (PostgreSQL,
    on the other core) overlap: while the caller waits for a statement, psycopg releases the GIL
    and the reader prepares the next chunk. At most two chunks wait, so memory stays flat. A row
    whose address came earlier in the same chunk is reported here and left out (one statement may
    not insert an address twice); repeats across chunks are the caller's to find.
    """
    chunks: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()
    done = object()
    format_line = _copy_line(plan)

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            lines: list[str] = []
            first: dict[str, int] = {}
            for row in rows:
                seen = first.get(row[1])
                if seen is not None:
                    problems.add_late(row[0], "email", f"the address is already on line {seen}")
                    continue
                first[row[1]] = row[0]
                lines.append(format_line(row))
                if len(lines) >= size:
                    if not put(_Chunk("".join(lines).encode(), len(lines))):
                        return
                    lines, first = [], {}
            if lines:
                put(_Chunk("".join(lines).encode(), len(lines)))
            put(done)
        except BaseException as exc:  # handed to the caller, raised there
            put(exc)

    reader = threading.Thread(target=read, name="import-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = chunks.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def _apply_sql(
    plan: Plan, rows: Iterable[Row], problems: Problems, on_apply: Callable[[], None] | None
) -> tuple[Outcome, list[tuple[int, int]]]:
    """The PostgreSQL engine: chunks of rows COPYed to a TEMP table and applied set-based as they come.

    Returns the outcome and the (line, first line) of addresses repeated across chunks.
    """
    outcome = Outcome()
    params: dict[str, Any] = {
        "server": plan.server_id,
        "now": timezone.now(),
        "new_status": plan.new_status,
        "via": plan.via,
        "job": plan.job_id,
        "actor": plan.actor_id,
        "summary": plan.history_summary[:300],
        "lists": plan.list_ids,
    }
    update = _update_sql(plan) if plan.update_existing and _assignments(plan, _EXCLUDED) else None
    upsert = _upsert_sql(plan)
    membership = _membership_sql() if plan.list_ids else None
    strict_failed = False
    with connection.cursor() as cursor:
        # The final duplicate check hashes every address of the input (this transaction only).
        cursor.execute("SET LOCAL work_mem = '192MB'")
        # Dropped at commit; dropped here too in case an enclosing transaction made them (tests, the API).
        cursor.execute("DROP TABLE IF EXISTS pg_temp.mk_chunk, pg_temp.mk_seen")
        cursor.execute(sql.SQL("CREATE TEMPORARY TABLE mk_chunk ({}) ON COMMIT DROP").format(CHUNK_COLUMNS))
        # Every address of the input with its line, no index: checked for repeats once, at the end.
        cursor.execute('CREATE TEMPORARY TABLE mk_seen (line integer, email text COLLATE "C") ON COMMIT DROP')
        # A server without contacts (its first import) needs no lookups of existing ones: every row is new,
        # and a plain INSERT does it. Whatever another transaction adds meanwhile is caught by the fallback.
        cursor.execute("SELECT EXISTS (SELECT 1 FROM marketing_contact WHERE server_id = %s)", [plan.server_id])
        had_contacts = bool(cursor.fetchone()[0])
        insert = _insert_sql(plan, check_existing=had_contacts)
        if not had_contacts:
            update = None
        # The statistics of the contacts table (and of the temporary tables) know nothing of the rows this
        # transaction adds; a hash join, a sequential or a materialised scan would read the whole table once
        # per chunk. Every statement below looks rows up by (server_id, email): index lookups it is.
        for setting in PLANNER_SETTINGS:
            cursor.execute(f"SET LOCAL {setting} = off")
        # Those settings make every plan look very expensive, which would start JIT compilation
        # (a third of a second per statement) for statements that touch a few thousand rows.
        cursor.execute("SET LOCAL jit = off")
        # The reader thread keeps the GIL busy; each time this thread comes back from the database it
        # waits for the GIL, by default up to 5 ms, and a COPY comes back dozens of times per chunk
        # (measured: 9 s of an 18 s million-row import). A shorter switch interval hands it over sooner.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval, 0.0002))
        try:
            for chunk in _pipelined(rows, CHUNK_ROWS, plan, problems):
                with cursor.copy("COPY mk_chunk FROM STDIN") as copy:
                    copy.write(chunk.payload)
                cursor.execute("INSERT INTO mk_seen SELECT line, email FROM mk_chunk")
                outcome.rows += chunk.size
                if not strict_failed and problems.count and not plan.skip_invalid:
                    strict_failed = True  # read on for the report, write nothing more: all is rolled back
                if not strict_failed:
                    _apply_chunk(
                        cursor, params, outcome, chunk.size, update=update, insert=insert, upsert=upsert, plan=plan
                    )
                    if membership is not None:
                        cursor.execute(membership, params)
                        outcome.list_added += int(cursor.fetchone()[0] or 0)
                cursor.execute("TRUNCATE mk_chunk")
        finally:
            sys.setswitchinterval(switch_interval)
        for setting in PLANNER_SETTINGS:
            cursor.execute(f"SET LOCAL {setting} = on")
        if on_apply is not None:
            on_apply()
        cursor.execute(
            """
            SELECT line, first_line FROM (
              SELECT line, min(line) OVER (PARTITION BY email) AS first_line FROM mk_seen
              WHERE email IN (SELECT email FROM mk_seen GROUP BY email HAVING count(*) > 1)
            ) d WHERE line <> first_line ORDER BY line
            """
        )
        repeated = [(int(line), int(first)) for line, first in cursor.fetchall()]
    outcome.rows -= len(repeated)
    return outcome, repeated


PLANNER_SETTINGS = ("enable_hashjoin", "enable_mergejoin", "enable_seqscan", "enable_material")


def _apply_chunk(
    cursor: Any,
    params: dict[str, Any],
    outcome: Outcome,
    size: int,
    *,
    update: sql.Composable | None,
    insert: sql.Composable,
    upsert: sql.Composable,
    plan: Plan,
) -> None:
    """Existing contacts first (one UPDATE), then the new ones (one INSERT … WHERE NOT EXISTS).

    A plain insert skips the speculative insertion of ON CONFLICT (measured: a quarter of the time of
    a first import). Should another transaction insert one of the addresses meanwhile, the unique
    index refuses it: the chunk's insert is rolled back to a savepoint and done again as the
    ON CONFLICT upsert, so the outcome is the same as if the upsert had run from the start.
    """
    updated = 0
    if update is not None:
        cursor.execute(update, params)
        updated = int(cursor.fetchone()[0] or 0)
    savepoint = transaction.savepoint_create()
    try:
        cursor.execute(insert, params)
        created = int(cursor.fetchone()[0] or 0) if plan.push_unsubscribes else cursor.rowcount
    except IntegrityError:
        transaction.savepoint_rollback(savepoint)
        cursor.execute(upsert, params)
        created, more = cursor.fetchone()
        created, updated = int(created or 0), updated + int(more or 0)
    else:
        transaction.savepoint_commit(savepoint)
    outcome.created += created
    outcome.updated += updated
    if plan.update_existing:
        outcome.unchanged += size - created - updated
    else:
        outcome.skipped += size - created


@dataclass(frozen=True)
class _Source:
    """Where an existing contact's new values come from: the chunk row `s` (UPDATE) or EXCLUDED (ON CONFLICT)."""

    first: str
    last: str
    status: str
    status_given: str
    custom: sql.Composable


def _chunk_source(plan: Plan) -> _Source:
    return _Source("s.first_name", "s.last_name", "s.status", "s.status IS NOT NULL", _custom_expr(plan))


# In ON CONFLICT the proposed row is EXCLUDED; its status_changed_at is set only when a status was given.
_EXCLUDED = _Source(
    "EXCLUDED.first_name",
    "EXCLUDED.last_name",
    "EXCLUDED.status",
    "EXCLUDED.status_changed_at IS NOT NULL",
    sql.SQL("EXCLUDED.custom"),
)


def _assignments(plan: Plan, src: _Source) -> list[tuple[str, sql.Composable]]:
    """(column, new value) for an existing contact `c`: empty values keep the stored ones; status only moves up."""
    sets: list[tuple[str, sql.Composable]] = []
    if plan.set_first:
        sets.append(("first_name", sql.SQL(f"COALESCE(NULLIF({src.first}, ''), c.first_name)")))
    if plan.set_last:
        sets.append(("last_name", sql.SQL(f"COALESCE(NULLIF({src.last}, ''), c.last_name)")))
    if plan.fields:
        sets.append(("custom", sql.SQL("c.custom || {}").format(src.custom)))
    if plan.set_status:
        sets.append(("status", sql.SQL(f"CASE WHEN {_moves(src)} THEN {src.status} ELSE c.status END")))
    return sets


def _moves(src: _Source) -> str:
    return f"{src.status_given} AND {_rank(src.status)} > {_rank('c.status')}"


def _set_clause(plan: Plan, src: _Source, now: str) -> tuple[sql.Composable, sql.Composable]:
    """The SET list and the "anything changed?" condition for an existing contact."""
    sets = _assignments(plan, src)
    assignments: list[sql.Composable] = [
        sql.SQL("{} = {}").format(sql.Identifier(column), expr) for column, expr in sets
    ]
    if plan.set_status:
        assignments.append(
            sql.SQL(f"status_changed_at = CASE WHEN {_moves(src)} THEN {now} ELSE c.status_changed_at END")
        )
    assignments.append(sql.SQL(f"updated_at = {now}"))
    before = sql.SQL(", ").join(sql.SQL("c.{}").format(sql.Identifier(column)) for column, _ in sets)
    after = sql.SQL(", ").join(expr for _, expr in sets)
    changed = sql.SQL("({}, '') IS DISTINCT FROM ({}, '')").format(before, after)
    return sql.SQL(", ").join(assignments), changed


def _history_and_outbox(plan: Plan, source: str, where: str | None) -> sql.Composable:
    """CTEs writing a history row per updated contact and the unsubscribes to push (from the CTE `source`)."""
    kind = HistoryKind.IMPORTED if plan.via == "import" else HistoryKind.BULK
    parts: list[sql.Composable] = []
    if where is not None:
        parts.append(
            sql.SQL(
                ", hist AS (INSERT INTO marketing_contacthistory "
                "(contact_id, at, kind, via, actor_id, job_id, summary) "
                "SELECT id, %(now)s, {kind}, %(via)s, %(actor)s, %(job)s, %(summary)s FROM {source} WHERE {where})"
            ).format(kind=sql.Literal(kind), source=sql.Identifier(source), where=sql.SQL(where))
        )
    if plan.push_unsubscribes:
        parts.append(
            sql.SQL(
                ", unsub AS (INSERT INTO marketing_remotechange "
                "(server_id, action, list_remote_id, email, first_name, last_name, created_at, attempts, error) "
                "SELECT %(server)s, {action}, NULL, email, '', '', %(now)s, 0, '' "
                "FROM {source} WHERE status = {status})"
            ).format(
                action=sql.Literal(RemoteAction.UNSUBSCRIBE),
                source=sql.Identifier(source),
                status=sql.Literal(Status.UNSUBSCRIBED),
            )
        )
    return sql.Composed(parts)


def _update_sql(plan: Plan) -> sql.Composed:
    """Existing contacts of the chunk that change; answers how many."""
    assignments, changed = _set_clause(plan, _chunk_source(plan), "%(now)s")
    return sql.SQL(
        """
        WITH up AS (
          UPDATE marketing_contact c SET {assignments}
          FROM mk_chunk s
          WHERE c.server_id = %(server)s AND c.email = s.email AND {changed}
          RETURNING c.id, c.status, c.email
        ) {extra}
        SELECT count(*) FROM up
        """
    ).format(assignments=assignments, changed=changed, extra=_history_and_outbox(plan, "up", "true"))


def _new_contact_rows(plan: Plan) -> sql.Composed:
    return sql.SQL(
        """
        SELECT %(server)s, s.email, COALESCE(s.first_name, ''), COALESCE(s.last_name, ''),
               COALESCE(s.status, %(new_status)s), {custom}, %(now)s, %(now)s,
               CASE WHEN s.status IS NOT NULL THEN %(now)s::timestamptz END, %(via)s, %(job)s
        FROM mk_chunk s
        """
    ).format(custom=_custom_expr(plan))


INSERT_COLUMNS = sql.SQL(
    "server_id, email, first_name, last_name, status, custom, created_at, updated_at, status_changed_at, "
    "created_via, created_job"
)


def _insert_sql(plan: Plan, *, check_existing: bool) -> sql.Composed:
    """New contacts of the chunk (a plain insert: no speculative insertion); answers how many."""
    where = sql.SQL(
        "WHERE NOT EXISTS (SELECT 1 FROM marketing_contact c WHERE c.server_id = %(server)s AND c.email = s.email)"
        if check_existing
        else ""
    )
    insert = sql.SQL("INSERT INTO marketing_contact ({columns}) {rows} {where}").format(
        columns=INSERT_COLUMNS, rows=_new_contact_rows(plan), where=where
    )
    if not plan.push_unsubscribes:
        return sql.Composed([insert])  # the count is the cursor's rowcount: no rows to hand back
    return sql.SQL("WITH new AS ({insert} RETURNING id, status, email) {extra} SELECT count(*) FROM new").format(
        insert=insert, extra=_history_and_outbox(plan, "new", None)
    )


def _upsert_sql(plan: Plan) -> sql.Composed:
    """The whole chunk as one ON CONFLICT upsert: the fallback when a concurrent insert took an address."""
    conflict: sql.Composable
    if plan.update_existing and _assignments(plan, _EXCLUDED):
        assignments, changed = _set_clause(plan, _EXCLUDED, "EXCLUDED.updated_at")
        conflict = sql.SQL("ON CONFLICT (server_id, email) DO UPDATE SET {} WHERE {}").format(assignments, changed)
    else:
        conflict = sql.SQL("ON CONFLICT (server_id, email) DO NOTHING")
    return sql.SQL(
        """
        WITH up AS (
          INSERT INTO marketing_contact AS c ({columns}) {rows} {conflict}
          RETURNING c.id, (c.xmax = 0) AS created, c.status, c.email
        ) {extra}
        SELECT count(*) FILTER (WHERE created), count(*) FILTER (WHERE NOT created) FROM up
        """
    ).format(
        columns=INSERT_COLUMNS,
        rows=_new_contact_rows(plan),
        conflict=conflict,
        extra=_history_and_outbox(plan, "up", "NOT created"),
    )


def _membership_sql() -> sql.SQL:
    return sql.SQL(
        f"""
        WITH added AS (
          INSERT INTO marketing_membership (contact_list_id, contact_id, added_at, added_via, job_id)
          SELECT l.id, c.id, %(now)s, %(via)s, %(job)s
          FROM mk_chunk s
          JOIN marketing_contact c ON c.server_id = %(server)s AND c.email = s.email
          CROSS JOIN unnest(%(lists)s::bigint[]) AS l(id)
          ON CONFLICT DO NOTHING
          RETURNING contact_list_id, contact_id
        ), pushed AS (
          INSERT INTO marketing_remotechange
            (server_id, action, list_remote_id, email, first_name, last_name, created_at, attempts, error)
          SELECT %(server)s, '{RemoteAction.ADD.value}', cl.remote_id, c.email, c.first_name, c.last_name,
                 %(now)s, 0, ''
          FROM added a
          JOIN marketing_contactlist cl ON cl.id = a.contact_list_id AND cl.remote_id IS NOT NULL
          JOIN marketing_contact c ON c.id = a.contact_id
        )
        SELECT count(*) FROM added
        """
    )


# --- the portable engine ----------------------------------------------------------------------------
def _apply_orm(plan: Plan, rows: Iterable[Row], problems: Problems) -> Outcome:
    outcome = Outcome()
    seen: dict[str, int] = {}
    batch: list[Row] = []
    linked = {
        pk: int(remote)
        for pk, remote in ContactList.objects.filter(pk__in=plan.list_ids, remote_id__isnull=False).values_list(
            "pk", "remote_id"
        )
        if remote is not None
    }
    for row in rows:
        line, email = row[0], row[1]
        first = seen.get(email)
        if first is not None:
            problems.add_late(line, "email", f"the address is already on line {first}")
            continue
        seen[email] = line
        outcome.rows += 1
        if problems.count and not plan.skip_invalid:
            continue  # strict mode with a problem already: read on for the report, write nothing more
        batch.append(row)
        if len(batch) >= ORM_BATCH:
            _orm_batch(plan, batch, outcome, linked)
            batch = []
    if batch and not (problems.count and not plan.skip_invalid):
        _orm_batch(plan, batch, outcome, linked)
    return outcome


def _orm_batch(plan: Plan, batch: list[Row], outcome: Outcome, linked: dict[int, int]) -> None:
    now = timezone.now()
    keys = [f.key for f in plan.fields]
    existing = {c.email: c for c in Contact.objects.filter(server_id=plan.server_id, email__in=[r[1] for r in batch])}
    new: list[Contact] = []
    changed: list[Contact] = []
    history: list[ContactHistory] = []
    changed_fields = {"updated_at"}
    for row in batch:
        _, email, first, last, status = row[:5]
        values = {k: v for k, v in zip(keys, row[5:], strict=True) if v is not None}
        values = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in values.items()}
        contact = existing.get(email)
        if contact is None:
            new.append(
                Contact(
                    server_id=plan.server_id,
                    email=email,
                    first_name=first or "",
                    last_name=last or "",
                    status=status or plan.new_status,
                    custom=values,
                    created_at=now,
                    updated_at=now,
                    status_changed_at=now if status else None,
                    created_via=plan.via,
                    created_job=plan.job_id,
                )
            )
            continue
        if not plan.update_existing:
            outcome.skipped += 1
            continue
        before = (contact.first_name, contact.last_name, dict(contact.custom), contact.status)
        if plan.set_first and first:
            contact.first_name = first
            changed_fields.add("first_name")
        if plan.set_last and last:
            contact.last_name = last
            changed_fields.add("last_name")
        if plan.fields and values:
            contact.custom = {**contact.custom, **values}
            changed_fields.add("custom")
        if plan.set_status and status and STATUS_RANK[status] > STATUS_RANK.get(contact.status, 0):
            contact.status = status
            contact.status_changed_at = now
            changed_fields.update({"status", "status_changed_at"})
        if (contact.first_name, contact.last_name, contact.custom, contact.status) == before:
            outcome.unchanged += 1
            continue
        contact.updated_at = now
        changed.append(contact)
        history.append(
            ContactHistory(
                contact=contact,
                at=now,
                kind=HistoryKind.IMPORTED if plan.via == "import" else HistoryKind.BULK,
                via=plan.via,
                actor_id=plan.actor_id,
                job_id=plan.job_id,
                summary=plan.history_summary[:300],
            )
        )
    Contact.objects.bulk_create(new, batch_size=1000)
    if changed:
        Contact.objects.bulk_update(changed, sorted(changed_fields), batch_size=1000)
        ContactHistory.objects.bulk_create(history, batch_size=1000)
    outcome.created += len(new)
    outcome.updated += len(changed)
    outbox: list[RemoteChange] = []
    if plan.push_unsubscribes:
        outbox += [
            RemoteChange(server_id=plan.server_id, action=RemoteAction.UNSUBSCRIBE, email=c.email, created_at=now)
            for c in [*new, *changed]
            if c.status == Status.UNSUBSCRIBED
        ]
    if plan.list_ids:
        contacts = {c.pk: c for c in [*new, *existing.values()]}
        present = set(
            Membership.objects.filter(contact_list_id__in=plan.list_ids, contact_id__in=list(contacts)).values_list(
                "contact_list_id", "contact_id"
            )
        )
        added = [
            Membership(contact_list_id=list_id, contact_id=pk, added_at=now, added_via=plan.via, job_id=plan.job_id)
            for list_id in plan.list_ids
            for pk in contacts
            if (list_id, pk) not in present
        ]
        Membership.objects.bulk_create(added, batch_size=1000)
        outcome.list_added += len(added)
        outbox += [
            RemoteChange(
                server_id=plan.server_id,
                action=RemoteAction.ADD,
                list_remote_id=linked[m.contact_list_id],
                email=contacts[m.contact_id].email,
                first_name=contacts[m.contact_id].first_name,
                last_name=contacts[m.contact_id].last_name,
                created_at=now,
            )
            for m in added
            if m.contact_list_id in linked
        ]
    if outbox:
        RemoteChange.objects.bulk_create(outbox, batch_size=1000)


# --- progress -------------------------------------------------------------------------------------
class ProgressReporter:
    """Publishes an import's progress once a second from a thread, outside the import's transaction.

    The thread has its own database connection (Django's are per thread), so on PostgreSQL it
    updates the job row — the heartbeat the sweeper watches. SQLite allows one writer, and the
    import holds it, so there the progress goes to the cache only.
    """

    def __init__(self, job_id: int, bytes_read: Callable[[], int], state: ReadState, interval: float = 1.0) -> None:
        self.job_id = job_id
        self.bytes_read = bytes_read
        self.state = state
        self.interval = interval
        self.phase = "reading"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"import-{job_id}-progress", daemon=True)
        self._use_db = connection.vendor == "postgresql"

    def __enter__(self) -> ProgressReporter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def set_phase(self, phase: str) -> None:
        self.phase = phase
        self.flush()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self.flush()
        finally:
            connections.close_all()  # this thread's own connections

    def flush(self) -> None:
        from marketing.models import ImportJob, JobStatus

        values = {"bytes_done": self.bytes_read(), "rows_read": self.state.line, "phase": self.phase}
        cache.set(progress_key(self.job_id), values, 3600)
        if self._use_db and threading.current_thread() is self._thread:
            try:
                ImportJob.objects.filter(pk=self.job_id, status=JobStatus.RUNNING).update(
                    **values, heartbeat_at=timezone.now()
                )
            except Exception:  # progress is best effort; the import must not fail because of it
                log.warning("could not record progress of import %s", self.job_id, exc_info=True)


def progress_key(job_id: int) -> str:
    return f"marketing:import:{job_id}:progress"
