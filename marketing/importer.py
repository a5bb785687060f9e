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

import csv
import heapq
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.cache import cache
from django.db import connection, connections, transaction
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
SQL_TYPES: dict[str, str] = {
    FieldType.TEXT: "text",
    FieldType.NUMBER: "numeric",
    FieldType.DATE: "date",
    FieldType.BOOLEAN: "boolean",
    FieldType.CHOICE: "text",
}


# --- problems -------------------------------------------------------------------------------------
class Problems:
    """Every bad row: counted, the first `KEEP_PROBLEMS` kept for the page, all written to a CSV report.

    Problems found while reading come in line order; duplicates are found afterwards, also in line
    order. `finish()` merges both into the report, sorted by line.
    """

    HEADER = ("line", "column", "problem")

    def __init__(self, report_path: Path | None = None) -> None:
        self.report_path = report_path
        self.count = 0
        self.rows = 0  # rows with at least one problem
        self._last_line = 0
        self._early: list[tuple[int, str, str]] = []
        self._late: list[tuple[int, str, str]] = []
        self._early_file: Path | None = None
        self._writer: Any = None
        self._handle: Any = None
        if report_path is not None:
            report_path.parent.mkdir(parents=True, exist_ok=True)
            self._early_file = report_path.with_suffix(".reading.csv")
            self._handle = self._early_file.open("w", newline="", encoding="utf-8")
            self._writer = csv.writer(self._handle)

    def add(self, line: int, column: str, message: str) -> None:
        self.count += 1
        if line != self._last_line:  # a record's problems come together, so this counts rows
            self.rows += 1
            self._last_line = line
        if len(self._early) < KEEP_PROBLEMS:
            self._early.append((line, column, message))
        if self._writer is not None:
            self._writer.writerow((line, column, message))

    def add_late(self, line: int, column: str, message: str) -> None:
        """A problem found after reading (a duplicate), in line order among themselves."""
        self.count += 1
        self.rows += 1  # a duplicate row was valid otherwise: never counted before
        self._late.append((line, column, message))

    @property
    def first(self) -> list[list[Any]]:
        merged = heapq.merge(self._early, self._late[: KEEP_PROBLEMS * 10])
        return [list(p) for _, p in zip(range(KEEP_PROBLEMS), merged, strict=False)]

    def all_in_memory(self) -> list[tuple[int, str, str]]:
        return sorted(self._early + self._late)

    def finish(self) -> Path | None:
        """Close and write the sorted report; None when there was nothing to report."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self.report_path is None or self._early_file is None:
            return None
        if not self.count:
            self._early_file.unlink(missing_ok=True)
            return None
        with (
            self._early_file.open(newline="", encoding="utf-8") as early,
            self.report_path.open("w", newline="", encoding="utf-8") as out,
        ):
            writer = csv.writer(out)
            writer.writerow(self.HEADER)
            reading = ((int(r[0]), r[1], r[2]) for r in csv.reader(early))
            for line, column, message in heapq.merge(reading, self._late):
                writer.writerow((line, _safe(column), _safe(message)))
        self._early_file.unlink(missing_ok=True)
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

    def rows(self, records: Iterable[tuple[int, list[str]]], problems: Problems, state: ReadState) -> Iterator[Row]:
        """Valid stage rows; every bad record goes to `problems` (all its problems, not just the first)."""
        width, ei, fi, li, ni, si = self.width, self.email, self.first, self.last, self.full, self.status
        values = self.values
        for line, cells in records:
            state.line = line
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
def apply_rows(
    plan: Plan,
    rows: Iterable[Row],
    problems: Problems,
    *,
    engine: str = "auto",
    before: Callable[[], None] | None = None,
    on_apply: Callable[[], None] | None = None,
) -> Outcome:
    """Write `rows` as `plan` says, in one transaction. See the module docstring.

    `before` runs first inside the transaction (creating custom fields, so a rolled-back import
    leaves none behind); `on_apply` when reading is done and writing starts (progress).
    """
    if engine == "auto":
        engine = "sql" if connection.vendor == "postgresql" else "orm"
    with transaction.atomic():
        if before is not None:
            before()
        outcome = _apply_sql(plan, rows, problems, on_apply) if engine == "sql" else _apply_orm(plan, rows, problems)
        outcome.invalid = problems.rows
        if problems.count and not plan.skip_invalid:
            transaction.set_rollback(True)
            return Outcome(rows=outcome.rows, invalid=outcome.invalid, committed=False)
        outcome.committed = True
        return outcome


def _stage_columns(plan: Plan) -> sql.Composed:
    columns = [
        sql.SQL('line integer, email text COLLATE "C", first_name text, last_name text, status text'),
        *(
            sql.SQL("{} {}").format(sql.Identifier(f"f{i}"), sql.SQL(SQL_TYPES[f.type]))
            for i, f in enumerate(plan.fields)
        ),
    ]
    return sql.SQL(", ").join(columns)


def _custom_expr(plan: Plan) -> sql.Composable:
    if not plan.fields:
        return sql.SQL("'{}'::jsonb")
    # jsonb_build_object takes at most 100 arguments: 40 fields per call, joined with ||.
    chunks = []
    for start in range(0, len(plan.fields), 40):
        pairs = sql.SQL(", ").join(
            sql.SQL("{}, s.{}").format(sql.Literal(f.key), sql.Identifier(f"f{start + i}"))
            for i, f in enumerate(plan.fields[start : start + 40])
        )
        chunks.append(sql.SQL("jsonb_strip_nulls(jsonb_build_object({}))").format(pairs))
    return sql.SQL(" || ").join(chunks)


def _rank(expr: str) -> str:
    cases = " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in STATUS_RANK.items())
    return f"(CASE {expr} {cases} ELSE 0 END)"


def _apply_sql(plan: Plan, rows: Iterable[Row], problems: Problems, on_apply: Callable[[], None] | None) -> Outcome:
    outcome = Outcome()
    now = timezone.now()
    with connection.cursor() as cursor:
        # The duplicate check hashes every address of the input; this keeps it in memory (this transaction only).
        cursor.execute("SET LOCAL work_mem = '192MB'")
        # Dropped at commit; also here in case an enclosing transaction already used one (tests, the API).
        cursor.execute("DROP TABLE IF EXISTS pg_temp.mk_stage")
        cursor.execute(sql.SQL("CREATE TEMPORARY TABLE mk_stage ({}) ON COMMIT DROP").format(_stage_columns(plan)))
        count = 0
        with cursor.copy("COPY mk_stage FROM STDIN") as copy:
            write = copy.write_row
            for row in rows:
                write(row)
                count += 1
        if on_apply is not None:
            on_apply()
        cursor.execute(
            "SELECT s.line, s.email FROM mk_stage s JOIN "
            "(SELECT email FROM mk_stage GROUP BY email HAVING count(*) > 1) d ON d.email = s.email "
            "ORDER BY s.email, s.line"
        )
        duplicates = cursor.fetchall()
        if duplicates:
            later: list[tuple[int, int]] = []
            first_line, first_email = 0, None
            for line, email in duplicates:
                if email != first_email:
                    first_line, first_email = line, email
                else:
                    later.append((line, first_line))
            for line, first in sorted(later):
                problems.add_late(line, "email", f"the address is already on line {first}")
            cursor.execute("DELETE FROM mk_stage WHERE line = ANY(%s)", [[line for line, _ in later]])
            count -= len(later)
        outcome.rows = count
        if problems.count and not plan.skip_invalid:
            return outcome  # strict mode: the caller rolls back; no need to write anything
        params: dict[str, Any] = {
            "server": plan.server_id,
            "now": now,
            "new_status": plan.new_status,
            "via": plan.via,
            "job": plan.job_id,
            "actor": plan.actor_id,
            "summary": plan.history_summary[:300],
            "lists": plan.list_ids,
        }
        cursor.execute(_upsert_sql(plan), params)
        created, updated = cursor.fetchone()
        outcome.created, outcome.updated = int(created or 0), int(updated or 0)
        if plan.update_existing:
            outcome.unchanged = count - outcome.created - outcome.updated
        else:
            outcome.skipped = count - outcome.created
        if plan.list_ids:
            cursor.execute(_membership_sql(), params)
            outcome.list_added = int(cursor.fetchone()[0] or 0)
    return outcome


def _upsert_sql(plan: Plan) -> sql.Composed:
    custom = _custom_expr(plan)
    insert = sql.SQL(
        """
        INSERT INTO marketing_contact AS c
          (server_id, email, first_name, last_name, status, custom, created_at, updated_at,
           status_changed_at, created_via, created_job)
        SELECT %(server)s, s.email, COALESCE(s.first_name, ''), COALESCE(s.last_name, ''),
               COALESCE(s.status, %(new_status)s), {custom}, %(now)s, %(now)s,
               CASE WHEN s.status IS NOT NULL THEN %(now)s::timestamptz END, %(via)s, %(job)s
        FROM mk_stage s
        """
    ).format(custom=custom)
    sets: list[tuple[str, str]] = []
    if plan.set_first:
        sets.append(("first_name", "COALESCE(NULLIF(EXCLUDED.first_name, ''), c.first_name)"))
    if plan.set_last:
        sets.append(("last_name", "COALESCE(NULLIF(EXCLUDED.last_name, ''), c.last_name)"))
    if plan.fields:
        sets.append(("custom", "c.custom || EXCLUDED.custom"))
    if plan.set_status:
        # EXCLUDED.status_changed_at is set only for rows whose status cell was filled in.
        moves = f"EXCLUDED.status_changed_at IS NOT NULL AND {_rank('EXCLUDED.status')} > {_rank('c.status')}"
        sets.append(("status", f"CASE WHEN {moves} THEN EXCLUDED.status ELSE c.status END"))
    if plan.update_existing and sets:
        assignments = ", ".join(f"{column} = {expr}" for column, expr in sets)
        if plan.set_status:
            assignments += (
                ", status_changed_at = CASE WHEN "
                f"EXCLUDED.status_changed_at IS NOT NULL AND {_rank('EXCLUDED.status')} > {_rank('c.status')} "
                "THEN EXCLUDED.updated_at ELSE c.status_changed_at END"
            )
        before = ", ".join(f"c.{column}" for column, _ in sets)
        after = ", ".join(expr for _, expr in sets)
        conflict = sql.SQL(
            "ON CONFLICT (server_id, email) DO UPDATE SET " + assignments + ", updated_at = EXCLUDED.updated_at "
            f"WHERE ({before}, '') IS DISTINCT FROM ({after}, '')"
        )
    else:
        conflict = sql.SQL("ON CONFLICT (server_id, email) DO NOTHING")
    history = sql.SQL(
        """
        , hist AS (
          INSERT INTO marketing_contacthistory (contact_id, at, kind, via, actor_id, job_id, summary)
          SELECT id, %(now)s, {kind}, %(via)s, %(actor)s, %(job)s, %(summary)s FROM up WHERE NOT created
        )
        """
    ).format(kind=sql.Literal(HistoryKind.IMPORTED if plan.via == "import" else HistoryKind.BULK))
    outbox: sql.Composable = sql.SQL("")
    if plan.push_unsubscribes:
        outbox = sql.SQL(
            """
            , unsub AS (
              INSERT INTO marketing_remotechange
                (server_id, action, list_remote_id, email, first_name, last_name, created_at, attempts, error)
              SELECT %(server)s, {action}, NULL, email, '', '', %(now)s, 0, '' FROM up WHERE status = {status}
            )
            """
        ).format(action=sql.Literal(RemoteAction.UNSUBSCRIBE), status=sql.Literal(Status.UNSUBSCRIBED))
    return sql.SQL(
        """
        WITH up AS ({insert} {conflict} RETURNING c.id, (c.xmax = 0) AS created, c.status, c.email)
        {history} {outbox}
        SELECT count(*) FILTER (WHERE created), count(*) FILTER (WHERE NOT created) FROM up
        """
    ).format(insert=insert, conflict=conflict, history=history, outbox=outbox)


def _membership_sql() -> sql.SQL:
    return sql.SQL(
        f"""
        WITH added AS (
          INSERT INTO marketing_membership (contact_list_id, contact_id, added_at, added_via, job_id)
          SELECT l.id, c.id, %(now)s, %(via)s, %(job)s
          FROM mk_stage s
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
    if problems._late:
        problems._late.sort()
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
