"""Set-based writes to the mirror: a whole list in one transaction, never a query per row.

`load(server_id, rows, replace=...)` takes an iterable of rows
`(address, domain, reason, source, last_update_iso_or_None)` — already normalised — and:

* PostgreSQL: streams them with `COPY` into a temporary staging table, then runs **one**
  `INSERT … SELECT DISTINCT ON (address) … ORDER BY address ON CONFLICT DO UPDATE` into the
  mirror (rows whose reason, source and date did not change are not rewritten), then, for a
  full pull (`replace=True`), **one** `DELETE` of the rows the pull no longer holds.
  Sorting by address makes the primary-key inserts sequential; `DISTINCT ON` keeps the newest
  row of an address the file holds twice.
* SQLite (the zero-setup default): the same three steps with `executemany` into the staging
  table and SQLite's own upsert.

The whole load is one transaction: a crash or an error leaves the mirror as it was.

Races with our own writes while a pull is running are settled by time: a row written after the
pull started is never deleted by it, and an address we removed after the pull started (see
`RecentRemoval`) is not put back by it.
"""

from __future__ import annotations

import csv
import itertools
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from common.csvio import CsvFileError, CsvProblem, CsvReader, find_column, normalise_name
from common.emails import domain_of, lenient_email
from suppression.models import Reason, RecentRemoval, Suppression

MirrorRow = tuple[str, str, str, str, "str | None"]

TABLE = Suppression._meta.db_table
REMOVALS = RecentRemoval._meta.db_table
SQLITE_CHUNK = 5000

_REASONS = {r.value.lower(): r.value for r in Reason} | {"customer request": Reason.CUSTOMER_REQUEST.value}
# Every spelling a download may use, looked up as sent: "Bounce", "bounce", "BOUNCE", "Customer request"…
_REASON_SPELLINGS = {v: v for v in _REASONS.values()} | _REASONS | {k.upper(): v for k, v in _REASONS.items()}


def reason_value(raw: str) -> str:
    """A SocketLabs reason in its canonical spelling; an unknown one is kept as sent (trimmed)."""
    text = raw.strip()
    return _REASONS.get(text.lower(), text[:40])


@dataclass
class LoadResult:
    rows: int = 0  # rows offered (after parsing)
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    at: datetime | None = None  # the `first_seen_at` of the rows this load added


@dataclass
class DownloadStats:
    """What parsing a SocketLabs download skipped, and why (first few problems kept)."""

    read: int = 0
    skipped: int = 0
    problems: list[CsvProblem] = field(default_factory=list)

    def skip(self, line: int, column: str | None, message: str) -> None:
        self.skipped += 1
        if len(self.problems) < 20:
            self.problems.append(CsvProblem(line, column, message))


# --- parsing the S5 download -----------------------------------------------------------------
def download_rows(path: Path, stats: DownloadStats) -> Iterator[MirrorRow]:
    """Rows of a `suppressions/download` CSV (header: serverId, suppressionLastUpdate, reason, emailAddress, source).

    Columns are found by header name; without a recognisable header the contract's order is
    used (the address is the 4th column). Addresses are checked leniently: the mirror must
    reflect SocketLabs even where Mailroom's own rules for new addresses are stricter.
    """
    reader = CsvReader(path)
    header = reader.header if reader.has_header else []
    names = [normalise_name(h) for h in header]

    def col(name: str, default: int) -> int:
        index = find_column(header, (name,)) if names else None
        return default if index is None else index

    if reader.has_header:
        address_at = reader.column_index(("emailaddress", "email", "address"))
        if address_at is None:
            raise CsvFileError(
                f"The download has no e-mail address column (its header is: {', '.join(header)}).", line=1
            )
    else:
        address_at = 3
    reason_at, updated_at, source_at = col("reason", 2), col("suppressionlastupdate", 1), col("source", 4)
    width = max(address_at, reason_at, updated_at, source_at) + 1
    # The hot loop of a pull: a million rows per few seconds, so names are local and the common
    # case (a plain address, a known reason, a valid date) takes the shortest path.
    fromiso = datetime.fromisoformat
    lenient = lenient_email
    reasons = _REASON_SPELLINGS
    read = 0
    for line, fields in reader:
        read += 1
        if len(fields) < width:
            fields = fields + [""] * (width - len(fields))
        raw = fields[address_at]
        address = lenient(raw)
        if address is None:
            stats.skip(line, "emailAddress", f"“{raw[:80]}” is not an e-mail address")
            continue
        reason_raw = fields[reason_at]
        reason = reasons.get(reason_raw) or reason_value(reason_raw) or Reason.FAILURE.value
        stamp: str | None = fields[updated_at]
        if stamp:
            try:
                fromiso(stamp)
            except ValueError:
                stamp = None
        else:
            stamp = None
        yield address, address[address.rindex("@") + 1 :], reason, fields[source_at].strip()[:40], stamp
    stats.read = read


# --- loading ---------------------------------------------------------------------------------
def load(server_id: int, rows: Iterable[MirrorRow], *, replace: bool, started_at: datetime | None = None) -> LoadResult:
    """Put `rows` into the mirror of `server_id` in one transaction (see the module docstring).

    `replace=True` also deletes rows not in `rows` (a full pull); `started_at` is when the data
    was taken from SocketLabs (defaults to now).
    """
    now = datetime.now(UTC)
    started = started_at or now
    with transaction.atomic():
        if connection.vendor == "postgresql":
            result = _load_postgresql(server_id, rows, replace=replace, now=now, started=started)
        else:
            result = _load_portable(server_id, rows, replace=replace, now=now, started=started)
    result.at = now
    return result


_COLUMNS = "(server_id, address, domain, reason, source, first_seen_at, last_update, mirrored_at)"
# The newest row of each address, sorted by address so the primary-key inserts are sequential;
# addresses we removed after the pull started stay removed.
_SELECT_STAGE = f"""
    SELECT DISTINCT ON (s.address) %(server)s, s.address, s.domain, s.reason, s.source, %(now)s,
           COALESCE(s.last_update, %(now)s), %(now)s
    FROM supp_stage s
    WHERE NOT EXISTS (
      SELECT 1 FROM {REMOVALS} r
      WHERE r.server_id = %(server)s AND r.address = s.address AND r.removed_at >= %(started)s
    )
    ORDER BY s.address, s.last_update DESC NULLS LAST
"""


def _load_postgresql(
    server_id: int, rows: Iterable[MirrorRow], *, replace: bool, now: datetime, started: datetime
) -> LoadResult:
    result = LoadResult()
    with connection.cursor() as cursor:
        # Sorting a million addresses for DISTINCT ON fits in memory with this; only for this transaction.
        cursor.execute("SET LOCAL work_mem = '128MB'")
        # Dropped explicitly too: inside an outer transaction, ON COMMIT comes only at its end.
        cursor.execute("DROP TABLE IF EXISTS supp_stage")
        cursor.execute(
            'CREATE TEMPORARY TABLE supp_stage (address text COLLATE "C", domain text COLLATE "C", '
            "reason text, source text, last_update timestamptz) ON COMMIT DROP"
        )
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {TABLE} WHERE server_id = %s)", [server_id])
        had_rows = bool(cursor.fetchone()[0])
        with cursor.copy("COPY supp_stage (address, domain, reason, source, last_update) FROM STDIN") as copy:
            write = copy.write_row
            count = 0
            for row in rows:
                write(row)
                count += 1
        result.rows = count
        params: dict[str, Any] = {"server": server_id, "now": now, "started": started}
        inserted = None
        if not had_rows:
            # First pull into an empty mirror: a plain INSERT, without the speculative-insertion
            # work of ON CONFLICT (about a fifth of the load). Should our own write race in
            # meanwhile, the savepoint falls back to the upsert below.
            try:
                with transaction.atomic():
                    cursor.execute(f"INSERT INTO {TABLE} {_COLUMNS} {_SELECT_STAGE}", params)
                    inserted = cursor.rowcount
            except IntegrityError:
                inserted = None
        if inserted is not None:
            result.added = inserted
        else:
            cursor.execute(
                f"""
                WITH up AS (
                  INSERT INTO {TABLE} AS m {_COLUMNS} {_SELECT_STAGE}
                  ON CONFLICT (server_id, address) DO UPDATE
                    SET reason = EXCLUDED.reason, source = EXCLUDED.source,
                        last_update = EXCLUDED.last_update, mirrored_at = EXCLUDED.mirrored_at
                    WHERE (m.reason, m.source, m.last_update)
                          IS DISTINCT FROM (EXCLUDED.reason, EXCLUDED.source, EXCLUDED.last_update)
                  RETURNING (xmax = 0) AS inserted
                )
                SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up
                """,
                params,
            )
            added, updated = cursor.fetchone()
            result.added, result.updated = int(added), int(updated)
        if replace and had_rows:
            cursor.execute(
                f"""
                DELETE FROM {TABLE} m WHERE m.server_id = %s AND m.mirrored_at < %s
                AND NOT EXISTS (SELECT 1 FROM supp_stage s WHERE s.address = m.address)
                """,
                [server_id, started],
            )
            result.removed = cursor.rowcount
        cursor.execute("DROP TABLE supp_stage")
    result.unchanged = max(result.rows - result.added - result.updated, 0)
    return result


def _sqlite_stamp(value: str | None, default: str) -> str:
    if not value:
        return default
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return default
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed.isoformat(sep=" ", timespec="microseconds")


def _load_portable(
    server_id: int, rows: Iterable[MirrorRow], *, replace: bool, now: datetime, started: datetime
) -> LoadResult:
    """SQLite: the same steps, with executemany into the staging table and SQLite's upsert."""
    result = LoadResult()
    now_text = now.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    started_text = started.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS temp.supp_stage")
        cursor.execute(
            "CREATE TEMPORARY TABLE supp_stage (address TEXT, domain TEXT, reason TEXT, source TEXT, last_update TEXT)"
        )
        cursor.execute(f"SELECT COUNT(*) FROM {TABLE} WHERE server_id = %s", [server_id])
        before = int(cursor.fetchone()[0])
        iterator = iter(rows)
        while chunk := list(itertools.islice(iterator, SQLITE_CHUNK)):
            cursor.executemany(
                "INSERT INTO supp_stage VALUES (%s, %s, %s, %s, %s)",
                [(a, d, r, s, _sqlite_stamp(t, now_text)) for a, d, r, s, t in chunk],
            )
            result.rows += len(chunk)
        # SQLite takes the other columns of a MAX() aggregate from the row holding the maximum.
        cursor.execute(
            f"""
            INSERT INTO {TABLE} (server_id, address, domain, reason, source, first_seen_at, last_update, mirrored_at)
            SELECT %s, address, domain, reason, source, %s, MAX(last_update), %s FROM supp_stage s
            WHERE NOT EXISTS (
              SELECT 1 FROM {REMOVALS} r WHERE r.server_id = %s AND r.address = s.address AND r.removed_at >= %s
            )
            GROUP BY address
            ON CONFLICT (server_id, address) DO UPDATE
              SET reason = excluded.reason, source = excluded.source,
                  last_update = excluded.last_update, mirrored_at = excluded.mirrored_at
              WHERE reason IS NOT excluded.reason OR source IS NOT excluded.source
                 OR last_update IS NOT excluded.last_update
            """,
            [server_id, now_text, now_text, server_id, started_text],
        )
        changed = max(cursor.rowcount, 0)
        cursor.execute(f"SELECT COUNT(*) FROM {TABLE} WHERE server_id = %s", [server_id])
        result.added = int(cursor.fetchone()[0]) - before
        result.updated = max(changed - result.added, 0)
        if replace and before:
            cursor.execute(
                f"""
                DELETE FROM {TABLE} WHERE server_id = %s AND mirrored_at < %s
                AND address NOT IN (SELECT address FROM supp_stage)
                """,
                [server_id, started_text],
            )
            result.removed = max(cursor.rowcount, 0)
        cursor.execute("DROP TABLE temp.supp_stage")
    result.unchanged = max(result.rows - result.added - result.updated, 0)
    return result


# --- single rows (our own writes and event effects) ------------------------------------------
def upsert_one(
    server_id: int,
    *,
    address: str,
    reason: str,
    source: str,
    last_update: datetime | None = None,
    only_if_newer: bool = False,
) -> None:
    """Put one address on the mirror (after SocketLabs accepted it)."""
    upsert_many(server_id, [(address, reason, source, last_update or datetime.now(UTC))], only_if_newer=only_if_newer)


def upsert_many(
    server_id: int, entries: Sequence[tuple[str, str, str, datetime]], *, only_if_newer: bool = False
) -> int:
    """Upsert a few hundred (address, reason, source, last_update) in one statement; returns rows written.

    `only_if_newer` keeps a row whose `last_update` is later than the entry's (event effects may
    arrive out of order).
    """
    if not entries:
        return 0
    now = datetime.now(UTC)
    latest: dict[str, tuple[str, str, datetime]] = {}
    for address, reason, source, last_update in entries:
        known = latest.get(address)
        if known is None or last_update >= known[2]:
            latest[address] = (reason, source, last_update)
    values = []
    params: list[Any] = []
    for address, (reason, source, last_update) in latest.items():
        values.append("(%s, %s, %s, %s, %s, %s, %s, %s)")
        params += [server_id, address, domain_of(address), reason, source, now, last_update, now]
    guard = f"WHERE excluded.last_update >= {TABLE}.last_update" if only_if_newer else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {TABLE} (server_id, address, domain, reason, source, first_seen_at, last_update, mirrored_at)
            VALUES {", ".join(values)}
            ON CONFLICT (server_id, address) DO UPDATE
              SET reason = excluded.reason, source = excluded.source,
                  last_update = excluded.last_update, mirrored_at = excluded.mirrored_at
              {guard}
            """,
            params,
        )
        return max(cursor.rowcount, 0)


def delete_one(server_id: int, address: str, *, at: datetime | None = None) -> int:
    """Take one address off the mirror (after SocketLabs removed it) and note the removal for running pulls."""
    when = at or datetime.now(UTC)
    deleted, _ = Suppression.objects.filter(server_id=server_id, address=address).delete()
    RecentRemoval.objects.create(server_id=server_id, address=address, removed_at=when)
    return deleted


# --- reading many at once --------------------------------------------------------------------
def lookup(server_ids: Sequence[int], addresses: Sequence[str]) -> list[tuple[int, str, str, str, datetime]]:
    """(server_id, address, reason, source, last_update) for every listed address found: one query.

    PostgreSQL gets both lists as arrays (`= ANY`), which uses the primary key whatever their
    length; SQLite gets `IN` lists in chunks under its parameter limit.
    """
    if not server_ids or not addresses:
        return []
    if connection.vendor == "postgresql":
        return _lookup_postgresql(server_ids, addresses)
    found: list[tuple[int, str, str, str, datetime]] = []
    with connection.cursor() as cursor:
        server_marks = ", ".join(["%s"] * len(server_ids))
        for start in range(0, len(addresses), 500):
            chunk = list(addresses[start : start + 500])
            cursor.execute(
                f"SELECT server_id, address, reason, source, last_update FROM {TABLE} "
                f"WHERE server_id IN ({server_marks}) AND address IN ({', '.join(['%s'] * len(chunk))})",
                [*server_ids, *chunk],
            )
            found.extend(
                (sid, addr, reason, source, _aware(stamp)) for sid, addr, reason, source, stamp in cursor.fetchall()
            )
    return found


_LOOKUP_ONE_SQL = (
    f"SELECT server_id, address, reason, source, last_update FROM {TABLE} WHERE server_id = %s AND address = %s"
)
_LOOKUP_SQL = (
    f"SELECT server_id, address, reason, source, last_update FROM {TABLE} "
    "WHERE server_id = ANY(%s::bigint[]) AND address = ANY(%s::text[])"
)


def _lookup_cursor() -> Any:
    """A server-side-binding cursor on Django's own connection (same transaction), kept for the connection's life."""
    import psycopg

    connection.ensure_connection()
    raw = connection.connection
    cursor = getattr(connection, "_suppression_lookup_cursor", None)
    if cursor is None or cursor.closed or cursor.connection is not raw:
        cursor = psycopg.Cursor(raw)
        connection._suppression_lookup_cursor = cursor  # type: ignore[attr-defined]
    return cursor


def _lookup_postgresql(server_ids: Sequence[int], addresses: Sequence[str]) -> list[Any]:
    """Checks are the hot path of sending, so they skip Django's cursor.

    Django binds parameters on the client and never prepares statements; here the statement is
    prepared (PostgreSQL parses and plans it once per connection) and the arrays travel as binary
    parameters instead of a 10,000-element literal. One address on one server uses plain
    equalities, which PostgreSQL runs faster than `= ANY` of one-element arrays. Set
    `SUPPRESSION_PREPARED_LOOKUPS = False` behind a pooler that cannot keep prepared statements.
    """
    prepare = bool(getattr(settings, "SUPPRESSION_PREPARED_LOOKUPS", True))
    started = time.monotonic()
    cursor = _lookup_cursor()
    if len(server_ids) == 1 and len(addresses) == 1:
        sql = _LOOKUP_ONE_SQL
        cursor.execute(sql, (server_ids[0], addresses[0]), prepare=prepare)
    else:
        sql = _LOOKUP_SQL
        cursor.execute(sql, (list(server_ids), list(addresses)), prepare=prepare)
    rows = cursor.fetchall()
    if connection.queries_logged:
        # Stay visible to Django's query log (DEBUG, the debug toolbar, query-count tests).
        logged = f"{sql} -- {len(server_ids)} server(s), {len(addresses)} address(es)"
        connection.queries_log.append({"sql": logged, "time": f"{time.monotonic() - started:.3f}"})
    return list(rows)


def _aware(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def write_download_copy(rows: Iterable[Sequence[str]], path: Path) -> int:
    """Save the rows of a streamed download to a file (so the network is never read inside a transaction)."""
    count = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count
