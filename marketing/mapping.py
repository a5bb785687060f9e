"""Column mapping for the import wizard: what each CSV column becomes, suggested from the header.

A target is a string:

* "" — ignore the column;
* "email", "first_name", "last_name", "full_name" (split into first and last), "status";
* "field:<key>" — an existing custom field;
* "new:<type>" — a custom field to create, named after the column's header.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from common.csvio import EMAIL_COLUMN_NAMES, looks_like_email, normalise_name
from marketing.models import CustomField, FieldType, Status
from marketing.values import infer_type, key_for

BUILTIN_TARGETS: dict[str, str] = {
    "email": "E-mail address",
    "first_name": "First name",
    "last_name": "Last name",
    "full_name": "Full name (split into first and last)",
    "status": "Subscription status",
}

# Header names (after `normalise_name`) that mean each built-in target, in order of preference.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "email": (*EMAIL_COLUMN_NAMES, "emails", "emailaddr", "mailaddress", "emailadresse", "courriel", "correo"),
    "first_name": ("firstname", "first", "givenname", "forename", "fname", "vorname", "prenom", "nombre"),
    "last_name": ("lastname", "last", "surname", "familyname", "lname", "nachname", "nom", "apellido"),
    "full_name": ("name", "fullname", "contactname", "displayname", "recipientname"),
    "status": ("status", "subscriptionstatus", "subscription", "optin", "optinstatus"),
}

NEW_FIELD_TYPES = (FieldType.TEXT, FieldType.NUMBER, FieldType.DATE, FieldType.BOOLEAN)

STATUS_WORDS: dict[str, str] = {
    "subscribed": Status.SUBSCRIBED,
    "subscribe": Status.SUBSCRIBED,
    "active": Status.SUBSCRIBED,
    "optedin": Status.SUBSCRIBED,
    "unsubscribed": Status.UNSUBSCRIBED,
    "unsubscribe": Status.UNSUBSCRIBED,
    "optedout": Status.UNSUBSCRIBED,
    "bounced": Status.BOUNCED,
    "bounce": Status.BOUNCED,
    "complained": Status.COMPLAINED,
    "complaint": Status.COMPLAINED,
    "spam": Status.COMPLAINED,
}


def parse_status(raw: str) -> str | None:
    """A status cell → a `Status` value; None for an empty cell; ValueError for anything else."""
    text = normalise_name(raw)
    if not text:
        return None
    found = STATUS_WORDS.get(text)
    if found is None:
        raise ValueError(f"“{raw.strip()[:40]}” is not a status (subscribed, unsubscribed, bounced or complained)")
    return found


@dataclass(frozen=True)
class ColumnInfo:
    index: int
    label: str
    samples: tuple[str, ...]
    suggestion: str


def field_matches(field: CustomField, name: str) -> bool:
    return name in {normalise_name(field.key), normalise_name(field.label), normalise_name(field.remote_name or "")}


def suggest(
    header: Sequence[str], samples: Sequence[Sequence[str]], fields: Sequence[CustomField], *, has_header: bool
) -> list[str]:
    """One suggested target per column. Each built-in target and field is suggested at most once."""
    width = max([len(header), *(len(row) for row in samples)], default=0)
    columns = [[row[i] if i < len(row) else "" for row in samples] for i in range(width)]
    names = [normalise_name(header[i]) if has_header and i < len(header) else "" for i in range(width)]
    targets = [""] * width
    taken: set[str] = set()

    def take(index: int, target: str) -> None:
        targets[index] = target
        taken.add(target)

    # Built-in targets by header name, in order of preference of the synonyms.
    for target, synonyms in SYNONYMS.items():
        for synonym in synonyms:
            if target in taken:
                break
            for index, name in enumerate(names):
                if name == synonym and not targets[index]:
                    take(index, target)
                    break
    # The e-mail column by content when no header names it (or there is no header).
    if "email" not in taken:
        best, best_share = None, 0.0
        for index, values in enumerate(columns):
            filled = [v for v in values if v.strip()]
            if targets[index] or not filled:
                continue
            share = sum(1 for v in filled if looks_like_email(v)) / len(filled)
            if share > best_share:
                best, best_share = index, share
        if best is not None and best_share >= 0.5:
            take(best, "email")
    # A full name only when first and last are not both there.
    if "first_name" in taken and "last_name" in taken and "full_name" in taken:
        targets[targets.index("full_name")] = ""
    # Existing custom fields by key, label or SocketLabs name; else a new field of the inferred type.
    for index, name in enumerate(names):
        if targets[index] or not name:
            continue
        match = next((f for f in fields if field_matches(f, name) and f"field:{f.key}" not in taken), None)
        if match is not None:
            take(index, f"field:{match.key}")
        else:
            targets[index] = f"new:{infer_type(columns[index])}"
    return targets


def target_choices(fields: Sequence[CustomField]) -> list[tuple[str, str]]:
    choices = [("", "Ignore this column"), *BUILTIN_TARGETS.items()]
    choices += [(f"field:{f.key}", f"Field: {f.label} ({f.get_type_display().lower()})") for f in fields]
    choices += [(f"new:{t}", f"New field ({FieldType(t).label.lower()})") for t in NEW_FIELD_TYPES]
    return choices


def new_field_label(header: Sequence[str], index: int) -> str:
    label = header[index].strip() if index < len(header) else ""
    return label[:100] or f"Column {index + 1}"


def new_field_key(label: str, existing: set[str]) -> str:
    key = key_for(label)
    candidate, n = key, 2
    while candidate in existing:
        suffix = f"_{n}"
        candidate = key[: 50 - len(suffix)] + suffix
        n += 1
    return candidate


def check(targets: Sequence[str], fields: Sequence[CustomField]) -> list[str]:
    """Problems with a mapping, in plain words (empty when it can be used)."""
    problems: list[str] = []
    valid = {value for value, _ in target_choices(fields)}
    chosen = [t for t in targets if t]
    for target in chosen:
        if target not in valid:
            problems.append(f"“{target}” is not something a column can be imported into.")
    if "email" not in chosen:
        problems.append("Choose the column that holds the e-mail addresses: every contact needs one.")
    for target in set(chosen):
        if not target.startswith("new:") and chosen.count(target) > 1:
            label = dict(target_choices(fields)).get(target, target)
            problems.append(f"Two columns are mapped to “{label}”: choose one.")
    if "full_name" in chosen and ("first_name" in chosen or "last_name" in chosen):
        problems.append("Map either a full name or first and last names, not both.")
    return problems
