"""Every change to contacts, lists, custom fields and segments goes through these functions.

Each writes one audit row (`accounts.audit.record`, actions under "contacts.") — one per bulk
action, never one per contact — and a history row per contact that a person changed. Bulk paths
are set-based: one statement for any number of contacts.

Public hooks for other apps:

* `apply_event_effects(server=…, entries=[(address, kind, at), …])` — unsubscribes, complaints
  and permanent bounces from SocketLabs events (reporting) or the suppression list move the
  contacts' status, in one statement; see its docstring.
* `refresh_counts(server=…)` — recount the cached figures after work done elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts import audit
from accounts.models import Server
from common.emails import InvalidAddress, normalise_email
from marketing.importer import Outcome, Plan, Problems, Row, apply_rows
from marketing.models import (
    STATUS_RANK,
    Contact,
    ContactHistory,
    ContactList,
    ContactStats,
    CustomField,
    FieldType,
    HistoryKind,
    Membership,
    RemoteAction,
    RemoteChange,
    Segment,
    Status,
    Via,
)
from marketing.segments import SegmentError, catalogue, compile_definition, validate
from marketing.values import MAX_NAME, InvalidValue, display, key_for, parse_for_field

log = logging.getLogger(__name__)

BULK_UPSERT_LIMIT = 10_000
RECOUNT_DEBOUNCE_SECONDS = 5


class ContactError(ValueError):
    """Input that cannot be saved: `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" if k else " ".join(v) for k, v in errors.items()))
        self.errors = errors


def _actor(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


def _sync_enabled(server: Server) -> bool:
    return bool(server.marketing_key)


# --- contacts -------------------------------------------------------------------------------------
def clean_contact_input(
    *, server: Server, data: dict[str, Any], fields: Sequence[CustomField] | None = None, partial: bool = False
) -> dict[str, Any]:
    """Check contact input (form or API) and return it normalised; `ContactError` lists every problem."""
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    if "email" in data or not partial:
        try:
            clean["email"] = normalise_email(str(data.get("email") or ""))
        except InvalidAddress as exc:
            errors["email"] = [str(exc).capitalize() + "."]
    for name in ("first_name", "last_name"):
        if name in data:
            value = str(data.get(name) or "").strip()
            if len(value) > MAX_NAME:
                errors[name] = [f"At most {MAX_NAME} characters."]
            clean[name] = value
    if "status" in data:
        if data["status"] not in Status.values:
            errors["status"] = [f"Choose one of: {', '.join(Status.values)}."]
        clean["status"] = data["status"]
    if "custom" in data:
        raw = data.get("custom") or {}
        if not isinstance(raw, dict):
            errors["custom"] = ["Must be an object of field key → value."]
        else:
            by_key = {f.key: f for f in (fields if fields is not None else CustomField.objects.filter(server=server))}
            values: dict[str, Any] = {}
            for key, value in raw.items():
                custom = by_key.get(str(key))
                if custom is None:
                    errors.setdefault("custom", []).append(f"“{key}” is not a custom field of this server.")
                    continue
                try:
                    values[custom.key] = parse_for_field(custom, value)
                except InvalidValue as exc:
                    errors.setdefault("custom", []).append(f"{custom.label}: {exc}.")
            clean["custom"] = values
    if errors:
        raise ContactError(errors)
    return clean


def create_contact(
    *,
    server: Server,
    actor: Any,
    data: dict[str, Any],
    list_ids: Sequence[int] = (),
    request: HttpRequest | None = None,
    via: str = Via.FORM,
) -> Contact:
    clean = clean_contact_input(server=server, data=data)
    custom = {k: v for k, v in clean.get("custom", {}).items() if v is not None}
    now = timezone.now()
    status = clean.get("status", Status.SUBSCRIBED)
    lists = _own_lists(server, list_ids)
    try:
        with transaction.atomic():
            contact = Contact.objects.create(
                server=server,
                email=clean["email"],
                first_name=clean.get("first_name", ""),
                last_name=clean.get("last_name", ""),
                status=status,
                custom=custom,
                created_at=now,
                updated_at=now,
                status_changed_at=now if status != Status.SUBSCRIBED else None,
                created_via=via,
            )
            ContactHistory.objects.create(
                contact=contact, at=now, kind=HistoryKind.CREATED, via=via, actor=_actor(actor), summary="Added"
            )
            _add_memberships(server=server, contact=contact, lists=lists, actor=actor, via=via, now=now)
            if status == Status.UNSUBSCRIBED and _sync_enabled(server):
                RemoteChange.objects.create(server=server, action=RemoteAction.UNSUBSCRIBE, email=contact.email)
            audit.record(
                action="contacts.create",
                request=request,
                actor=actor,
                server=server,
                target=contact.email,
                after=_snapshot(contact) | {"lists": [lst.name for lst in lists]},
            )
    except IntegrityError:
        raise ContactError({"email": [f"{clean['email']} is already a contact of this server."]}) from None
    schedule_recount(server=server)
    return contact


def _snapshot(contact: Contact) -> dict[str, Any]:
    return {
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "status": contact.status,
        "custom": dict(contact.custom),
    }


def update_contact(
    *, contact: Contact, actor: Any, data: dict[str, Any], request: HttpRequest | None = None, via: str = Via.FORM
) -> Contact:
    """Change some of a contact's data. `custom` values given as None or "" remove the value."""
    server = contact.server
    clean = clean_contact_input(server=server, data=data, partial=True)
    before = _snapshot(contact)
    now = timezone.now()
    changes: dict[str, list[Any]] = {}
    for name in ("email", "first_name", "last_name"):
        if name in clean and clean[name] != getattr(contact, name):
            changes[name] = [getattr(contact, name), clean[name]]
            setattr(contact, name, clean[name])
    if "custom" in clean:
        merged = dict(contact.custom)
        for key, value in clean["custom"].items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        for key in sorted(set(merged) | set(contact.custom)):
            if merged.get(key) != contact.custom.get(key):
                changes[f"custom.{key}"] = [display(contact.custom.get(key)), display(merged.get(key))]
        contact.custom = merged
    status_changed = "status" in clean and clean["status"] != contact.status
    if status_changed:
        changes["status"] = [contact.status, clean["status"]]
        contact.status = clean["status"]
        contact.status_changed_at = now
    if not changes:
        return contact
    contact.updated_at = now
    try:
        with transaction.atomic():
            contact.save()
            if set(changes) - {"status"}:
                ContactHistory.objects.create(
                    contact=contact,
                    at=now,
                    kind=HistoryKind.EDITED,
                    via=via,
                    actor=_actor(actor),
                    summary="Edited " + ", ".join(_label(name) for name in changes if name != "status"),
                    changes={k: v for k, v in changes.items() if k != "status"},
                )
            if status_changed:
                ContactHistory.objects.create(
                    contact=contact,
                    at=now,
                    kind=HistoryKind.STATUS,
                    via=via,
                    actor=_actor(actor),
                    summary=f"Status changed from {changes['status'][0]} to {changes['status'][1]}",
                    changes={"status": changes["status"]},
                )
                if contact.status == Status.UNSUBSCRIBED and _sync_enabled(server):
                    RemoteChange.objects.create(server=server, action=RemoteAction.UNSUBSCRIBE, email=contact.email)
            audit.record(
                action="contacts.update",
                request=request,
                actor=actor,
                server=server,
                target=contact.email,
                before=before,
                after=_snapshot(contact),
            )
    except IntegrityError:
        raise ContactError({"email": [f"{contact.email} is already another contact of this server."]}) from None
    if status_changed:
        schedule_recount(server=server)
        schedule_push(server=server)
    return contact


def _label(name: str) -> str:
    return {"email": "e-mail address", "first_name": "first name", "last_name": "last name"}.get(
        name, name.removeprefix("custom.")
    )


def delete_contact(*, contact: Contact, actor: Any, request: HttpRequest | None = None) -> None:
    server = contact.server
    snapshot = _snapshot(contact)
    with transaction.atomic():
        contact.delete()  # memberships and history go with it (ON DELETE CASCADE in the database)
        audit.record(
            action="contacts.delete",
            request=request,
            actor=actor,
            server=server,
            target=snapshot["email"],
            before=snapshot,
        )
    schedule_recount(server=server)


def set_contact_lists(
    *, contact: Contact, actor: Any, list_ids: Sequence[int], request: HttpRequest | None = None, via: str = Via.FORM
) -> tuple[int, int]:
    """Make the contact's lists exactly `list_ids`. Returns (added, removed)."""
    server = contact.server
    wanted = {lst.pk: lst for lst in _own_lists(server, list_ids)}
    current = set(Membership.objects.filter(contact=contact).values_list("contact_list_id", flat=True))
    add = [wanted[pk] for pk in wanted if pk not in current]
    remove = list(ContactList.objects.filter(pk__in=current - set(wanted)))
    if not add and not remove:
        return 0, 0
    now = timezone.now()
    with transaction.atomic():
        _add_memberships(server=server, contact=contact, lists=add, actor=actor, via=via, now=now)
        if remove:
            Membership.objects.filter(contact=contact, contact_list__in=remove).delete()
            ContactHistory.objects.bulk_create(
                ContactHistory(
                    contact=contact,
                    at=now,
                    kind=HistoryKind.LIST_REMOVED,
                    via=via,
                    actor=_actor(actor),
                    summary=f"Removed from list “{lst.name}”"[:300],
                )
                for lst in remove
            )
            if _sync_enabled(server):
                RemoteChange.objects.bulk_create(
                    RemoteChange(
                        server=server, action=RemoteAction.REMOVE, list_remote_id=lst.remote_id, email=contact.email
                    )
                    for lst in remove
                    if lst.remote_id
                )
        audit.record(
            action="contacts.lists",
            request=request,
            actor=actor,
            server=server,
            target=contact.email,
            after={"added": [lst.name for lst in add], "removed": [lst.name for lst in remove]},
        )
    refresh_list_counts(list_ids=[lst.pk for lst in [*add, *remove]])
    schedule_push(server=server)
    return len(add), len(remove)


def _own_lists(server: Server, list_ids: Iterable[int]) -> list[ContactList]:
    ids = {int(pk) for pk in list_ids}
    lists = list(ContactList.objects.filter(server=server, pk__in=ids))
    if len(lists) != len(ids):
        raise ContactError({"lists": ["One of the chosen lists does not belong to this server."]})
    return lists


def _add_memberships(
    *, server: Server, contact: Contact, lists: Sequence[ContactList], actor: Any, via: str, now: datetime
) -> None:
    if not lists:
        return
    Membership.objects.bulk_create(
        [Membership(contact_list=lst, contact=contact, added_at=now, added_via=via) for lst in lists],
        ignore_conflicts=True,
    )
    ContactHistory.objects.bulk_create(
        ContactHistory(
            contact=contact,
            at=now,
            kind=HistoryKind.LIST_ADDED,
            via=via,
            actor=_actor(actor),
            summary=f"Added to list “{lst.name}”"[:300],
        )
        for lst in lists
    )
    if _sync_enabled(server):
        RemoteChange.objects.bulk_create(
            RemoteChange(
                server=server,
                action=RemoteAction.ADD,
                list_remote_id=lst.remote_id,
                email=contact.email,
                first_name=contact.first_name,
                last_name=contact.last_name,
            )
            for lst in lists
            if lst.remote_id
        )
    ContactList.objects.filter(pk__in=[lst.pk for lst in lists]).update(member_count=F("member_count") + 1)


# --- bulk actions on a filtered set -----------------------------------------------------------------
def bulk_add_to_list(
    *, server: Server, contacts: QuerySet[Contact], contact_list: ContactList, actor: Any, request: HttpRequest | None
) -> int:
    """Add every contact of `contacts` to the list in one statement; one audit row."""
    now = timezone.now()
    ids = contacts.filter(server=server).values("pk")
    with transaction.atomic():
        if connection.vendor == "postgresql":
            subquery, params = ids.query.sql_with_params()
            with connection.cursor() as cursor:
                cursor.execute(
                    "WITH added AS ("
                    "  INSERT INTO marketing_membership (contact_list_id, contact_id, added_at, added_via, job_id)"
                    f" SELECT %s, m.id, %s, %s, NULL FROM ({subquery}) m(id)"
                    "  ON CONFLICT DO NOTHING RETURNING contact_id"
                    "), pushed AS ("
                    "  INSERT INTO marketing_remotechange"
                    "    (server_id, action, list_remote_id, email, first_name, last_name, created_at, attempts, error)"
                    "  SELECT %s, 'add', %s, c.email, c.first_name, c.last_name, %s, 0, ''"
                    "  FROM added a JOIN marketing_contact c ON c.id = a.contact_id WHERE %s"
                    ") SELECT count(*) FROM added",
                    [
                        contact_list.pk,
                        now,
                        Via.BULK,
                        *params,
                        server.pk,
                        contact_list.remote_id,
                        now,
                        bool(contact_list.remote_id and _sync_enabled(server)),
                    ],
                )
                added = int(cursor.fetchone()[0])
        else:
            present = Membership.objects.filter(contact_list=contact_list).values("contact_id")
            new = list(
                contacts.filter(server=server)
                .exclude(pk__in=present)
                .values_list("pk", "email", "first_name", "last_name")
            )
            Membership.objects.bulk_create(
                [
                    Membership(contact_list=contact_list, contact_id=pk, added_at=now, added_via=Via.BULK)
                    for pk, *_ in new
                ],
                batch_size=1000,
            )
            if contact_list.remote_id and _sync_enabled(server):
                RemoteChange.objects.bulk_create(
                    [
                        RemoteChange(
                            server=server,
                            action=RemoteAction.ADD,
                            list_remote_id=contact_list.remote_id,
                            email=email,
                            first_name=first,
                            last_name=last,
                        )
                        for _, email, first, last in new
                    ],
                    batch_size=1000,
                )
            added = len(new)
        audit.record(
            action="contacts.bulk_add_to_list",
            request=request,
            actor=actor,
            server=server,
            target=contact_list.name,
            after={"added": added},
        )
    refresh_list_counts(list_ids=[contact_list.pk])
    schedule_push(server=server)
    return added


def bulk_remove_from_list(
    *, server: Server, contacts: QuerySet[Contact], contact_list: ContactList, actor: Any, request: HttpRequest | None
) -> int:
    with transaction.atomic():
        members = Membership.objects.filter(
            contact_list=contact_list, contact__in=contacts.filter(server=server).values("pk")
        )
        if contact_list.remote_id and _sync_enabled(server):
            # Written before the delete, from the same set: one statement each.
            RemoteChange.objects.bulk_create(
                [
                    RemoteChange(
                        server=server, action=RemoteAction.REMOVE, list_remote_id=contact_list.remote_id, email=e
                    )
                    for e in members.values_list("contact__email", flat=True).iterator(chunk_size=5000)
                ],
                batch_size=1000,
            )
        removed, _ = members.delete()
        audit.record(
            action="contacts.bulk_remove_from_list",
            request=request,
            actor=actor,
            server=server,
            target=contact_list.name,
            after={"removed": removed},
        )
    refresh_list_counts(list_ids=[contact_list.pk])
    schedule_push(server=server)
    return removed


def bulk_delete(
    *, server: Server, contacts: QuerySet[Contact], actor: Any, request: HttpRequest | None, what: str
) -> int:
    """Delete every contact of `contacts` (one statement; memberships and history go in the database)."""
    with transaction.atomic():
        deleted, _ = Contact.objects.filter(pk__in=contacts.filter(server=server).values("pk")).delete()
        audit.record(
            action="contacts.bulk_delete",
            request=request,
            actor=actor,
            server=server,
            target=what[:300],
            after={"deleted": deleted},
        )
    refresh_counts(server=server)
    return deleted


def bulk_upsert(
    *,
    server: Server,
    actor: Any,
    records: Sequence[Any],
    update_existing: bool = True,
    skip_invalid: bool = False,
    list_ids: Sequence[int] = (),
    new_status: str = Status.SUBSCRIBED,
    request: HttpRequest | None = None,
) -> tuple[Outcome, list[dict[str, Any]]]:
    """Create or update up to 10,000 contacts from JSON in one set-based transaction (the API).

    Each record: `{email, first_name?, last_name?, status?, custom?: {key: value}}`. Problems are
    returned per record (`index` from 0). Strict unless `skip_invalid`: one bad record and nothing
    is written. Like an import: empty values never erase stored ones, and status only moves away
    from "subscribed" for existing contacts.
    """
    if len(records) > BULK_UPSERT_LIMIT:
        raise ContactError({"contacts": [f"At most {BULK_UPSERT_LIMIT:,} contacts per call; got {len(records):,}."]})
    lists = _own_lists(server, list_ids)
    fields = list(CustomField.objects.filter(server=server).order_by("id"))
    problems = Problems()
    plan = Plan(
        server_id=server.pk,
        fields=fields,
        set_first=True,
        set_last=True,
        set_status=True,
        update_existing=update_existing,
        new_status=new_status,
        list_ids=[lst.pk for lst in lists],
        via=Via.API,
        actor_id=getattr(_actor(actor), "pk", None),
        skip_invalid=skip_invalid,
        push_unsubscribes=_sync_enabled(server),
        history_summary="Updated through the API (bulk)",
    )
    outcome = apply_rows(plan, lambda skip: _json_rows(records, fields, problems, skip), problems)
    if outcome.committed:
        audit.record(
            action="contacts.bulk_upsert",
            request=request,
            actor=actor,
            server=server,
            target=f"{len(records)} contacts",
            after=outcome.as_dict() | {"lists": [lst.name for lst in lists]},
        )
        refresh_counts(server=server, list_ids=plan.list_ids)
        schedule_push(server=server)
    return outcome, [
        {"index": line - 1, "field": column, "message": message} for line, column, message in problems.all_in_memory()
    ]


def _json_rows(
    records: Sequence[Any], fields: list[CustomField], problems: Problems, skip: frozenset[int] = frozenset()
) -> Iterable[Row]:
    for index, record in enumerate(records, start=1):
        if index in skip:
            continue
        if not isinstance(record, dict):
            problems.add(index, "", "must be an object with at least “email”")
            continue
        try:
            clean = clean_contact_input(
                server=None,  # type: ignore[arg-type]  # fields are given, the server is not needed
                data={k: v for k, v in record.items() if k in ("email", "first_name", "last_name", "status", "custom")},
                fields=fields,
            )
        except ContactError as exc:
            for name, messages in exc.errors.items():
                for message in messages:
                    problems.add(index, name, message)
            continue
        custom = clean.get("custom", {})
        yield (
            index,
            clean["email"],
            clean.get("first_name") or None,
            clean.get("last_name") or None,
            clean.get("status"),
            *(custom.get(f.key) for f in fields),
        )


# --- lists ----------------------------------------------------------------------------------------
def create_list(
    *, server: Server, actor: Any, name: str, description: str = "", request: HttpRequest | None = None
) -> ContactList:
    name = name.strip()
    if not name:
        raise ContactError({"name": ["Give the list a name."]})
    if ContactList.objects.filter(server=server, name__iexact=name).exists():
        raise ContactError({"name": [f"There is already a list called “{name}”."]})
    with transaction.atomic():
        contact_list = ContactList.objects.create(server=server, name=name[:200], description=description.strip()[:500])
        audit.record(
            action="contacts.list.create", request=request, actor=actor, server=server, target=contact_list.name
        )
    return contact_list


def update_list(
    *, contact_list: ContactList, actor: Any, name: str, description: str = "", request: HttpRequest | None = None
) -> ContactList:
    name = name.strip()
    if not name:
        raise ContactError({"name": ["Give the list a name."]})
    if ContactList.objects.filter(server=contact_list.server, name__iexact=name).exclude(pk=contact_list.pk).exists():
        raise ContactError({"name": [f"There is already a list called “{name}”."]})
    before = {"name": contact_list.name, "description": contact_list.description}
    contact_list.name, contact_list.description = name[:200], description.strip()[:500]
    contact_list.updated_at = timezone.now()
    with transaction.atomic():
        contact_list.save()
        audit.record(
            action="contacts.list.update",
            request=request,
            actor=actor,
            server=contact_list.server,
            target=contact_list.name,
            before=before,
            after={"name": contact_list.name, "description": contact_list.description},
        )
    return contact_list


def delete_list(*, contact_list: ContactList, actor: Any, request: HttpRequest | None = None) -> None:
    """Delete the list (not its contacts)."""
    with transaction.atomic():
        audit.record(
            action="contacts.list.delete",
            request=request,
            actor=actor,
            server=contact_list.server,
            target=contact_list.name,
            before={"members": contact_list.member_count},
        )
        contact_list.delete()


# --- custom fields --------------------------------------------------------------------------------
def create_field(
    *,
    server: Server,
    actor: Any,
    label: str,
    type: str,  # noqa: A002 - the field's type, as in the model
    choices: Sequence[str] = (),
    key: str = "",
    request: HttpRequest | None = None,
) -> CustomField:
    label = label.strip()
    errors: dict[str, list[str]] = {}
    if not label:
        errors["label"] = ["Give the field a name."]
    if type not in FieldType.values:
        errors["type"] = [f"Choose one of: {', '.join(FieldType.values)}."]
    key = key_for(key or label)
    if CustomField.objects.filter(server=server, key=key).exists():
        errors["key"] = [f"There is already a field with the key “{key}”."]
    clean_choices = _clean_choices(choices) if type == FieldType.CHOICE else []
    if type == FieldType.CHOICE and not clean_choices:
        errors["choices"] = ["A choice field needs at least one choice."]
    if errors:
        raise ContactError(errors)
    with transaction.atomic():
        custom = CustomField.objects.create(server=server, key=key, label=label[:100], type=type, choices=clean_choices)
        audit.record(
            action="contacts.field.create",
            request=request,
            actor=actor,
            server=server,
            target=key,
            after={"label": custom.label, "type": type, "choices": clean_choices},
        )
    return custom


def _clean_choices(choices: Sequence[str]) -> list[str]:
    seen: dict[str, str] = {}
    for choice in choices:
        text = str(choice).strip()[:100]
        if text and text.casefold() not in seen:
            seen[text.casefold()] = text
    return list(seen.values())[:200]


def update_field(
    *, custom: CustomField, actor: Any, label: str, choices: Sequence[str] = (), request: HttpRequest | None = None
) -> CustomField:
    """Rename a field or change its choices. The type never changes: stored values are typed by it."""
    label = label.strip()
    if not label:
        raise ContactError({"label": ["Give the field a name."]})
    before = {"label": custom.label, "choices": custom.choices}
    custom.label = label[:100]
    if custom.type == FieldType.CHOICE:
        clean = _clean_choices(choices)
        if not clean:
            raise ContactError({"choices": ["A choice field needs at least one choice."]})
        custom.choices = clean
    with transaction.atomic():
        custom.save()
        audit.record(
            action="contacts.field.update",
            request=request,
            actor=actor,
            server=custom.server,
            target=custom.key,
            before=before,
            after={"label": custom.label, "choices": custom.choices},
        )
    return custom


def delete_field(*, custom: CustomField, actor: Any, request: HttpRequest | None = None) -> int:
    """Delete the field and remove its value from every contact (one statement). Returns contacts changed."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "UPDATE marketing_contact SET custom = custom - %s WHERE server_id = %s AND custom ? %s",
                [custom.key, custom.server_id, custom.key],
            )
        else:
            cursor.execute(
                "UPDATE marketing_contact SET custom = json_remove(custom, %s) "
                "WHERE server_id = %s AND json_type(custom, %s) IS NOT NULL",
                [f'$."{custom.key}"', custom.server_id, f'$."{custom.key}"'],
            )
        changed = cursor.rowcount
        audit.record(
            action="contacts.field.delete",
            request=request,
            actor=actor,
            server=custom.server,
            target=custom.key,
            before={"label": custom.label, "type": custom.type, "values_removed": changed},
        )
        custom.delete()
    return changed


# --- segments -------------------------------------------------------------------------------------
def segment_fields(server: Server) -> dict[str, Any]:
    return catalogue(
        list(CustomField.objects.filter(server=server).order_by("label")),
        list(ContactList.objects.filter(server=server).order_by("name")),
    )


def segment_fields_from(fields: Sequence[CustomField], lists: Sequence[ContactList]) -> dict[str, Any]:
    """The segment builder's fields from lists already loaded (saves two queries on a page)."""
    return catalogue(fields, lists)


def contacts_matching(server: Server, definition: dict[str, Any] | None) -> QuerySet[Contact]:
    contacts = Contact.objects.filter(server=server)
    if definition and definition.get("conditions"):
        contacts = contacts.filter(compile_definition(definition, segment_fields(server)))
    return contacts


def save_segment(
    *,
    server: Server,
    actor: Any,
    name: str,
    definition: Any,
    segment: Segment | None = None,
    request: HttpRequest | None = None,
) -> Segment:
    name = name.strip()
    if not name:
        raise ContactError({"name": ["Give the segment a name."]})
    try:
        clean = validate(definition, segment_fields(server))
    except SegmentError as exc:
        raise ContactError({"definition": exc.problems}) from None
    clash = Segment.objects.filter(server=server, name__iexact=name)
    if segment is not None:
        clash = clash.exclude(pk=segment.pk)
    if clash.exists():
        raise ContactError({"name": [f"There is already a segment called “{name}”."]})
    with transaction.atomic():
        if segment is None:
            segment = Segment.objects.create(server=server, name=name[:200], definition=clean, created_by=_actor(actor))
            action, before = "contacts.segment.create", None
        else:
            before = {"name": segment.name, "definition": segment.definition}
            segment.name, segment.definition, segment.updated_at = name[:200], clean, timezone.now()
            segment.cached_count = None
            segment.save()
            action = "contacts.segment.update"
        audit.record(
            action=action,
            request=request,
            actor=actor,
            server=server,
            target=segment.name,
            before=before,
            after={"name": segment.name, "definition": clean},
        )
    return segment


def delete_segment(*, segment: Segment, actor: Any, request: HttpRequest | None = None) -> None:
    with transaction.atomic():
        audit.record(
            action="contacts.segment.delete",
            request=request,
            actor=actor,
            server=segment.server,
            target=segment.name,
            before={"definition": segment.definition},
        )
        segment.delete()


def count_segment(*, segment: Segment) -> int:
    count = contacts_matching(segment.server, segment.definition).count()
    Segment.objects.filter(pk=segment.pk).update(cached_count=count, counted_at=timezone.now())
    segment.cached_count = count
    return count


# --- counts ---------------------------------------------------------------------------------------
def refresh_counts(*, server: Server, list_ids: Sequence[int] | None = None) -> ContactStats:
    """Recount the server's contacts by status (one grouped query) and the given lists (all when None)."""
    by_status = dict(
        Contact.objects.filter(server=server).values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    stats, _ = ContactStats.objects.update_or_create(
        server=server,
        defaults={
            **{status: by_status.get(status, 0) for status in Status.values},
            "total": sum(by_status.values()),
            "counted_at": timezone.now(),
        },
    )
    lists = ContactList.objects.filter(server=server)
    if list_ids is not None:
        lists = lists.filter(pk__in=list_ids)
    refresh_list_counts(list_ids=list(lists.values_list("pk", flat=True)))
    return stats


def refresh_list_counts(*, list_ids: Sequence[int]) -> None:
    if not list_ids:
        return
    counts = dict(
        Membership.objects.filter(contact_list_id__in=list_ids)
        .values_list("contact_list_id")
        .annotate(n=Count("contact_id"))
        .values_list("contact_list_id", "n")
    )
    now = timezone.now()
    for pk in list_ids:
        ContactList.objects.filter(pk=pk).update(member_count=counts.get(pk, 0), counted_at=now)


def schedule_recount(*, server: Server) -> None:
    """Recount soon, at most once per few seconds per server, after the current transaction."""
    from marketing.tasks import refresh_counts as refresh_task

    if cache.add(f"marketing:recount:{server.pk}", 1, RECOUNT_DEBOUNCE_SECONDS):
        transaction.on_commit(
            lambda: refresh_task.apply_async((server.pk,), countdown=RECOUNT_DEBOUNCE_SECONDS), robust=True
        )


def schedule_push(*, server: Server) -> None:
    """Push the outbox to SocketLabs soon, when this server syncs and there is something to push."""
    if not _sync_enabled(server):
        return
    from marketing import sync

    transaction.on_commit(lambda: sync.request_push(server=server, automatic=True), robust=True)


def stats_for(server: Server) -> ContactStats:
    return ContactStats.objects.filter(server=server).first() or ContactStats(server=server)


# --- events and suppressions (called by other apps) --------------------------------------------------
EFFECT_STATUS: dict[str, str] = {
    "unsubscribe": Status.UNSUBSCRIBED,
    "unsubscribed": Status.UNSUBSCRIBED,
    "suppress_bounce": Status.BOUNCED,
    "bounce": Status.BOUNCED,
    "bounced": Status.BOUNCED,
    "suppress_complaint": Status.COMPLAINED,
    "complaint": Status.COMPLAINED,
    "complained": Status.COMPLAINED,
}


@dataclass
class EffectResult:
    changed: int = 0
    unknown_kinds: list[str] = field(default_factory=list)


def apply_event_effects(*, server: Server, entries: Iterable[tuple[str, str, datetime | None]]) -> EffectResult:
    """Move contacts' status for events: `entries` are (address, kind, when).

    `kind` is a `reporting.models.EffectKind` value ("unsubscribe", "suppress_bounce",
    "suppress_complaint") or a status word ("unsubscribed", "bounced", "complained"). Set-based:
    one UPDATE for all entries, one history row per contact that changed. A status only moves up
    (subscribed → unsubscribed → bounced → complained), so replays and out-of-order events are
    harmless, and addresses that are not contacts are ignored. Safe to run twice.
    """
    result = EffectResult()
    wanted: dict[str, tuple[str, datetime]] = {}
    now = timezone.now()
    for address, kind, at in entries:
        status = EFFECT_STATUS.get(str(kind).lower())
        if status is None:
            result.unknown_kinds.append(str(kind))
            continue
        try:
            email = normalise_email(address)
        except InvalidAddress:
            continue
        previous = wanted.get(email)
        if previous is None or STATUS_RANK[status] > STATUS_RANK[previous[0]]:
            wanted[email] = (status, at or now)
    if not wanted:
        return result
    with transaction.atomic():
        candidates = Contact.objects.filter(server=server, email__in=list(wanted)).only("pk", "email", "status")
        moving: dict[str, list[Contact]] = {}
        for contact in candidates:
            status, _ = wanted[contact.email]
            if STATUS_RANK[status] > STATUS_RANK.get(contact.status, 0):
                moving.setdefault(status, []).append(contact)
        for status, contacts in moving.items():
            ids = [c.pk for c in contacts]
            # The rank check again in SQL: a concurrent change between the read and the write wins.
            changed = (
                Contact.objects.filter(pk__in=ids)
                .exclude(status__in=_at_or_above(status))
                .update(status=status, status_changed_at=now, updated_at=now)
            )
            result.changed += changed
            ContactHistory.objects.bulk_create(
                [
                    ContactHistory(
                        contact_id=c.pk,
                        at=wanted[c.email][1],
                        kind=HistoryKind.STATUS,
                        via=Via.EVENT,
                        summary=f"Status changed from {c.status} to {status} (SocketLabs event)",
                        changes={"status": [c.status, status]},
                    )
                    for c in contacts
                ],
                batch_size=1000,
            )
            if status == Status.UNSUBSCRIBED and _sync_enabled(server):
                RemoteChange.objects.bulk_create(
                    [RemoteChange(server=server, action=RemoteAction.UNSUBSCRIBE, email=c.email) for c in contacts],
                    batch_size=1000,
                )
        if result.changed:
            audit.record(
                action="contacts.event_effects",
                server=server,
                target=f"{result.changed} contacts",
                after={status: len(contacts) for status, contacts in moving.items()},
            )
    if result.changed:
        schedule_recount(server=server)
    return result


def _at_or_above(status: str) -> list[str]:
    return [s for s, rank in STATUS_RANK.items() if rank >= STATUS_RANK[status]]


def apply_suppressions(*, server: Server, entries: Iterable[tuple[str, str]]) -> EffectResult:
    """For the suppression app: (address, reason) pairs from the suppression list move contacts' status.

    Reasons "Bounce"/"Failure" → bounced, "Complaint" → complained, "Unsubscribe"/"CustomerRequest"
    → unsubscribed.
    """
    reasons = {
        "bounce": "bounced",
        "failure": "bounced",
        "complaint": "complained",
        "unsubscribe": "unsubscribed",
        "customerrequest": "unsubscribed",
    }
    return apply_event_effects(
        server=server,
        entries=((address, reasons.get(str(reason).lower(), "unsubscribed"), None) for address, reason in entries),
    )


def contacts_for_lists(server: Server, list_ids: Sequence[int]) -> QuerySet[Contact]:
    return Contact.objects.filter(server=server).filter(
        Q(pk__in=Membership.objects.filter(contact_list_id__in=list_ids).values("contact_id"))
    )
