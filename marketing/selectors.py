"""Reads for the contacts pages: filters from the query string, keyset pages, history, exports."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.db.utils import OperationalError

from accounts.models import Server
from marketing.models import (
    Contact,
    ContactHistory,
    ContactList,
    CustomField,
    ImportJob,
    Membership,
    Segment,
    Status,
    Via,
)
from marketing.segments import FieldInfo, SegmentError, compile_definition, validate
from marketing.values import export_value

PAGE_SIZE = 50
MAX_ROWS = 30
COUNT_TIMEOUT_MS = 5000


@dataclass
class Filters:
    """What the contacts page shows, read from its query string (search, status, list, segment, conditions)."""

    search: str = ""
    status: str = ""
    list_id: int | None = None
    job_id: int | None = None
    segment: Segment | None = None
    match: str = "all"
    rows: list[dict[str, str]] = field(default_factory=list)  # the builder's rows as typed
    definition: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    from_segment: bool = False  # the conditions are the saved segment's, unchanged

    @classmethod
    def from_query(cls, server: Server, params: Mapping[str, str], fields: dict[str, FieldInfo]) -> Filters:
        filters = cls(search=params.get("q", "").strip()[:254], status=params.get("status", ""))
        if filters.status not in Status.values:
            filters.status = ""
        filters.list_id = _int(params.get("list"))
        if filters.list_id is not None and not ContactList.objects.filter(server=server, pk=filters.list_id).exists():
            filters.list_id = None
        filters.job_id = _int(params.get("job"))
        segment_id = _int(params.get("segment"))
        if segment_id is not None:
            filters.segment = Segment.objects.filter(server=server, pk=segment_id).first()
        filters.match = "any" if params.get("match") == "any" else "all"
        for index in range(MAX_ROWS):
            name = params.get(f"c-{index}-field", "")
            if name:
                filters.rows.append(
                    {"field": name, "op": params.get(f"c-{index}-op", ""), "value": params.get(f"c-{index}-value", "")}
                )
        if not filters.rows and filters.segment is not None:
            filters.from_segment = True
            definition = filters.segment.definition
            filters.match = definition.get("match", "all")
            filters.rows = [
                {"field": c["field"], "op": c["op"], "value": _as_text(c.get("value"))}
                for c in definition.get("conditions", [])
                if "conditions" not in c
            ]
            if any("conditions" in c for c in definition.get("conditions", [])):
                filters.definition = definition  # nested groups: applied as saved
        if filters.rows and filters.definition is None:
            try:
                filters.definition = validate({"match": filters.match, "conditions": filters.rows}, fields)
            except SegmentError as exc:
                filters.problems = exc.problems
        return filters

    @property
    def is_filtered(self) -> bool:
        return bool(self.search or self.status or self.list_id or self.job_id or self.definition or self.problems)

    @property
    def only_segment(self) -> bool:
        return self.from_segment and not (self.search or self.status or self.list_id or self.job_id)

    @property
    def only_list(self) -> bool:
        return bool(self.list_id) and not (self.search or self.status or self.job_id or self.definition)

    def queryset(self, server: Server, fields: dict[str, FieldInfo]) -> QuerySet[Contact]:
        contacts = Contact.objects.filter(server=server)
        if self.problems:
            return contacts.none()
        if self.search:
            contacts = contacts.filter(search_q(self.search))
        if self.status:
            contacts = contacts.filter(status=self.status)
        if self.list_id:
            contacts = contacts.filter(
                pk__in=Membership.objects.filter(contact_list_id=self.list_id).values("contact_id")
            )
        if self.job_id:
            contacts = contacts.filter(created_job=self.job_id)
        if self.definition:
            contacts = contacts.filter(compile_definition(self.definition, fields))
        return contacts

    def params(self) -> list[tuple[str, str]]:
        """The filters as query-string pairs (for links to other pages, the export and the count)."""
        pairs: list[tuple[str, str]] = []
        if self.search:
            pairs.append(("q", self.search))
        if self.status:
            pairs.append(("status", self.status))
        if self.list_id:
            pairs.append(("list", str(self.list_id)))
        if self.job_id:
            pairs.append(("job", str(self.job_id)))
        if self.segment is not None:
            pairs.append(("segment", str(self.segment.pk)))
        if self.rows and not self.from_segment:
            pairs.append(("match", self.match))
            for index, row in enumerate(self.rows):
                pairs += [(f"c-{index}-{k}", row.get(k, "")) for k in ("field", "op", "value")]
        return pairs

    def querystring(self) -> str:
        return urlencode(self.params())

    def describe(self, lists: Mapping[int, str]) -> str:
        words = []
        if self.search:
            words.append(f"address starts with “{self.search}”")
        if self.status:
            words.append(f"status {self.status}")
        if self.list_id:
            words.append(f"on list “{lists.get(self.list_id, self.list_id)}”")
        if self.job_id:
            words.append(f"added by import #{self.job_id}")
        if self.segment is not None:
            words.append(f"segment “{self.segment.name}”")
        elif self.rows:
            words.append(f"{len(self.rows)} condition{'s' if len(self.rows) != 1 else ''}")
        return ", ".join(words) or "all contacts"


def _int(raw: Any) -> int | None:
    try:
        return int(str(raw)) if raw not in (None, "") else None
    except ValueError:
        return None


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def search_q(text: str) -> Q:
    """The search box: the start of an address.

    Addresses are stored lower-cased in the "C" collation, so this is a range on the (server, email)
    btree and answers in milliseconds at any size. Names are searched with a condition of the
    segment builder ("First name starts with …"), which scans in address order.
    """
    return Q(email__startswith=text.strip().lower())


@dataclass
class Page:
    rows: list[Contact]
    next_after: str | None
    prev_before: str | None


def keyset_page(contacts: QuerySet[Contact], *, after: str = "", before: str = "", size: int = PAGE_SIZE) -> Page:
    """One page in address order, from a cursor (the last or first address shown): no OFFSET, no COUNT."""
    columns = ("pk", "email", "first_name", "last_name", "status", "custom", "created_at")
    if before:
        rows = list(contacts.filter(email__lt=before).order_by("-email").only(*columns)[: size + 1])
        has_prev = len(rows) > size
        rows = rows[:size][::-1]
        return Page(rows, rows[-1].email if rows else None, rows[0].email if has_prev and rows else None)
    if after:
        contacts = contacts.filter(email__gt=after)
    rows = list(contacts.order_by("email").only(*columns)[: size + 1])
    has_next = len(rows) > size
    rows = rows[:size]
    return Page(rows, rows[-1].email if has_next else None, rows[0].email if after and rows else None)


def count(contacts: QuerySet[Contact]) -> int | None:
    """COUNT(*) of a filtered set, or None when it takes longer than a few seconds (a page must not hang)."""
    if connection.vendor != "postgresql":
        return contacts.count()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = {COUNT_TIMEOUT_MS}")
            return contacts.count()
    except OperationalError:
        return None


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    summary: str
    via: str
    actor: str
    changes: dict[str, Any] | None


def history_for(contact: Contact, limit: int = 100) -> list[HistoryEntry]:
    """What happened to a contact, newest first: its history rows, list additions by bulk work, its creation."""
    entries = [
        HistoryEntry(h.at, h.summary, h.get_via_display(), h.actor.email if h.actor else "", h.changes)
        for h in ContactHistory.objects.filter(contact=contact).select_related("actor").order_by("-at", "-id")[:limit]
    ]
    lists = dict(ContactList.objects.filter(server_id=contact.server_id).values_list("pk", "name"))
    for m in Membership.objects.filter(contact=contact).exclude(added_via=Via.FORM).order_by("-added_at")[:limit]:
        how = f"import #{m.job_id}" if m.job_id else Via(m.added_via).label
        entries.append(
            HistoryEntry(m.added_at, f"Added to list “{lists.get(m.contact_list_id, '?')}” ({how})", "", "", None)
        )
    created = "Added"
    if contact.created_via == Via.IMPORT and contact.created_job:
        job = ImportJob.objects.filter(pk=contact.created_job).only("file_name").first()
        created = f"Added by import #{contact.created_job}" + (f" ({job.file_name})" if job else "")
    elif contact.created_via != Via.FORM:
        created = f"Added ({Via(contact.created_via).label})"
    if not any(e.summary == "Added" for e in entries):
        entries.append(HistoryEntry(contact.created_at, created, "", "", None))
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


def export_header(fields: list[CustomField]) -> list[str]:
    return ["email", "first_name", "last_name", "status", "created_at", *(f.key for f in fields)]


def export_rows(contacts: QuerySet[Contact], fields: list[CustomField]) -> Iterator[list[Any]]:
    """Rows for a streamed CSV: read in chunks of 5,000 on a server-side cursor, so memory stays flat."""
    keys = [f.key for f in fields]
    rows = contacts.order_by("email").values_list("email", "first_name", "last_name", "status", "created_at", "custom")
    for email, first, last, status, created, custom in rows.iterator(chunk_size=5000):
        yield [email, first, last, status, created.isoformat(), *(export_value(custom.get(k)) for k in keys)]
