"""Segments: conditions on contacts (field, operator, value) joined with AND/OR, compiled to one query.

A definition is JSON::

    {"match": "all" | "any",
     "conditions": [{"field": "custom.score", "op": "gte", "value": "50"},
                    {"match": "any", "conditions": [...]}]}   # a nested group

Fields are the built-in ones (`email`, `first_name`, `last_name`, `status`, `created_at`, `list`)
and every custom field as `custom.<key>`. Custom values are compared by the field's type: numbers
and dates are cast from the JSON text (`(custom ->> 'score')::double precision`), and equality on
numbers, booleans and choices is a containment test (`custom @> '{"plan": "pro"}'`) so that
PostgreSQL answers it from the GIN index. `validate` turns a raw definition into a clean one or
a list of problems in plain words ("Condition 2: “abc” is not a number").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import connection
from django.db.models import DateField, Exists, FloatField, OuterRef, Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from marketing.models import CustomField, FieldType, Membership, Status
from marketing.values import InvalidValue, parse_boolean, parse_date, parse_number

MAX_CONDITIONS = 30
MAX_DEPTH = 3

OPERATORS: dict[str, dict[str, str]] = {
    FieldType.TEXT: {
        "eq": "is",
        "neq": "is not",
        "contains": "contains",
        "not_contains": "does not contain",
        "starts": "starts with",
        "ends": "ends with",
        "empty": "is empty",
        "not_empty": "is not empty",
    },
    FieldType.NUMBER: {
        "eq": "=",
        "neq": "≠",
        "gt": ">",
        "gte": "≥",
        "lt": "<",
        "lte": "≤",
        "empty": "is empty",
        "not_empty": "is not empty",
    },
    FieldType.DATE: {
        "eq": "is on",
        "before": "is before",
        "after": "is after",
        "empty": "is empty",
        "not_empty": "is not empty",
    },
    FieldType.BOOLEAN: {"true": "is yes", "false": "is no", "empty": "is empty", "not_empty": "is not empty"},
    FieldType.CHOICE: {
        "eq": "is",
        "neq": "is not",
        "in": "is any of",
        "empty": "is empty",
        "not_empty": "is not empty",
    },
    "list": {"in_list": "is on list", "not_in_list": "is not on list"},
}
NO_VALUE = frozenset({"empty", "not_empty", "true", "false"})


@dataclass(frozen=True)
class FieldInfo:
    name: str  # "email", "custom.score", ...
    label: str
    type: str  # a FieldType value or "list"
    choices: tuple[tuple[str, str], ...] = ()
    custom: CustomField | None = None

    @property
    def operators(self) -> dict[str, str]:
        return OPERATORS[self.type]


def catalogue(fields: Sequence[CustomField], lists: Sequence[Any] = ()) -> dict[str, FieldInfo]:
    """Every field a condition may use, by name, in the order the builder shows them."""
    found: dict[str, FieldInfo] = {
        "email": FieldInfo("email", "E-mail address", FieldType.TEXT),
        "first_name": FieldInfo("first_name", "First name", FieldType.TEXT),
        "last_name": FieldInfo("last_name", "Last name", FieldType.TEXT),
        "status": FieldInfo("status", "Status", FieldType.CHOICE, tuple(Status.choices)),
        "created_at": FieldInfo("created_at", "Added on", FieldType.DATE),
        "list": FieldInfo("list", "List", "list", tuple((str(lst.pk), lst.name) for lst in lists)),
    }
    for custom in fields:
        choices = tuple((str(c), str(c)) for c in custom.choices) if custom.type == FieldType.CHOICE else ()
        found[f"custom.{custom.key}"] = FieldInfo(f"custom.{custom.key}", custom.label, custom.type, choices, custom)
    return found


class SegmentError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def validate(definition: Any, fields: dict[str, FieldInfo]) -> dict[str, Any]:
    """A clean definition (values typed and canonical), or `SegmentError` with every problem."""
    problems: list[str] = []
    counter = [0]
    clean = _validate_group(definition, fields, problems, counter, depth=1, where="")
    if counter[0] == 0 and not problems:
        problems.append("Add at least one condition.")
    if counter[0] > MAX_CONDITIONS:
        problems.append(f"A segment can have at most {MAX_CONDITIONS} conditions.")
    if problems:
        raise SegmentError(problems)
    return clean


def _validate_group(
    group: Any, fields: dict[str, FieldInfo], problems: list[str], counter: list[int], *, depth: int, where: str
) -> dict[str, Any]:
    if not isinstance(group, dict):
        problems.append(f"{where or 'The segment'} must be an object with “match” and “conditions”.")
        return {"match": "all", "conditions": []}
    match = group.get("match", "all")
    if match not in ("all", "any"):
        problems.append(f"{where or 'The segment'}: “match” must be “all” or “any”.")
    conditions = group.get("conditions")
    if not isinstance(conditions, list):
        problems.append(f"{where or 'The segment'}: “conditions” must be a list.")
        return {"match": "all", "conditions": []}
    clean: list[dict[str, Any]] = []
    for position, condition in enumerate(conditions, start=1):
        label = f"{where}Condition {position}"
        if isinstance(condition, dict) and "conditions" in condition:
            if depth >= MAX_DEPTH:
                problems.append(f"{label}: groups can be nested at most {MAX_DEPTH} deep.")
                continue
            clean.append(
                _validate_group(condition, fields, problems, counter, depth=depth + 1, where=f"{label}, group: ")
            )
            continue
        counter[0] += 1
        checked = _validate_condition(condition, fields, label)
        if isinstance(checked, str):
            problems.append(checked)
        else:
            clean.append(checked)
    return {"match": match if match in ("all", "any") else "all", "conditions": clean}


def _validate_condition(condition: Any, fields: dict[str, FieldInfo], label: str) -> dict[str, Any] | str:
    if not isinstance(condition, dict):
        return f"{label} must be an object with field, op and value."
    info = fields.get(str(condition.get("field", "")))
    if info is None:
        return f"{label}: “{condition.get('field', '')}” is not a field (choose one from the list)."
    op = str(condition.get("op", ""))
    if op not in info.operators:
        allowed = ", ".join(info.operators.values())
        return f"{label}: {info.label} cannot be compared with “{op}” (use {allowed})."
    if op in NO_VALUE:
        return {"field": info.name, "op": op}
    raw = condition.get("value")
    try:
        value = _typed_value(info, op, raw)
    except InvalidValue as exc:
        return f"{label}: {info.label} {exc}."
    return {"field": info.name, "op": op, "value": value}


def _typed_value(info: FieldInfo, op: str, raw: Any) -> Any:
    text = "" if raw is None else str(raw).strip() if not isinstance(raw, list) else raw
    if text == "" or text == []:
        raise InvalidValue("needs a value")
    if info.type == FieldType.NUMBER:
        return parse_number(str(text))
    if info.type == FieldType.DATE:
        return parse_date(str(text))
    if info.type == FieldType.BOOLEAN:
        return parse_boolean(str(text))
    if info.type == "list":
        allowed = {key for key, _ in info.choices}
        if str(text) not in allowed:
            raise InvalidValue("needs one of this server's lists")
        return int(str(text))
    if info.type == FieldType.CHOICE:
        canonical = {key.casefold(): key for key, _ in info.choices}
        values = text if isinstance(text, list) else str(text).split(",") if op == "in" else [text]
        picked = []
        for value in values:
            found = canonical.get(str(value).strip().casefold())
            if found is None:
                shown = ", ".join(key for key, _ in info.choices[:10])
                raise InvalidValue(f"has no choice “{str(value).strip()[:40]}” (choose from {shown})")
            picked.append(found)
        return picked if op == "in" else picked[0]
    if isinstance(text, list):
        raise InvalidValue("needs a single value")
    if len(text) > 500:
        raise InvalidValue("value is too long (at most 500 characters)")
    return text


# --- compiling ----------------------------------------------------------------------------------
def compile_definition(definition: dict[str, Any], fields: dict[str, FieldInfo]) -> Q:
    """A validated definition → a Q on `Contact` (the caller adds the server filter)."""
    parts = [
        compile_definition(c, fields) if "conditions" in c else _condition_q(c, fields)
        for c in definition.get("conditions", [])
    ]
    if not parts:
        return Q()
    combined = parts[0]
    for part in parts[1:]:
        combined = combined & part if definition.get("match", "all") == "all" else combined | part
    return combined


def _contains(key: str, value: Any) -> Q:
    # Containment uses the GIN index on PostgreSQL; other databases compare the extracted value.
    if connection.vendor == "postgresql":
        return Q(custom__contains={key: value})
    return Q(**{f"custom__{key}": value})


def _condition_q(condition: dict[str, Any], fields: dict[str, FieldInfo]) -> Q:
    info = fields[condition["field"]]
    op: str = condition["op"]
    value: Any = condition.get("value")
    if info.name == "list":
        member = Exists(Membership.objects.filter(contact_list_id=value, contact_id=OuterRef("pk")))
        return Q(member) if op == "in_list" else ~Q(member)
    if info.custom is None:
        return _builtin_q(info, op, value)
    key = info.custom.key
    has = Q(custom__has_key=key)
    if op == "empty":
        return ~has
    if op == "not_empty":
        return has
    if info.type == FieldType.TEXT:
        path = f"custom__{key}"
        return {
            "eq": Q(**{f"{path}__iexact": value}),
            # "is not" and "does not contain" include contacts without a value (SQL's NOT on NULL would not).
            "neq": ~Q(**{f"{path}__iexact": value}) | ~has,
            "contains": Q(**{f"{path}__icontains": value}),
            "not_contains": ~Q(**{f"{path}__icontains": value}) | ~has,
            "starts": Q(**{f"{path}__istartswith": value}),
            "ends": Q(**{f"{path}__iendswith": value}),
        }[op]
    if info.type == FieldType.BOOLEAN:
        return _contains(key, op == "true")
    if info.type == FieldType.CHOICE:
        if op == "in":
            combined = Q()
            for choice in value:
                combined |= _contains(key, choice)
            return combined
        return _contains(key, value) if op == "eq" else ~_contains(key, value) | ~has
    if info.type == FieldType.NUMBER:
        if op in ("eq", "neq"):
            return _contains(key, value) if op == "eq" else ~_contains(key, value) | ~has
        number = Cast(KeyTextTransform(key, "custom"), FloatField())
        return _compare(number, op, float(value))
    # Dates: ISO text cast to a date.
    day = Cast(KeyTextTransform(key, "custom"), DateField())
    return _compare(day, {"eq": "exact", "before": "lt", "after": "gt"}[op], date.fromisoformat(value))


def _compare(expression: Any, lookup: str, value: Any) -> Q:
    """`expression <lookup> value` as a Q (an expression with a lookup, usable in filter())."""
    return Q(expression.get_lookup(lookup)(expression, value))


def _builtin_q(info: FieldInfo, op: str, value: Any) -> Q:
    name = info.name
    if name == "status":
        if op == "in":
            return Q(status__in=value)
        return {
            "eq": Q(status=value),
            "neq": ~Q(status=value),
            "empty": Q(pk__in=[]),
            "not_empty": Q(),
        }[op]
    if name == "created_at":
        if op in ("empty", "not_empty"):
            return Q() if op == "not_empty" else Q(pk__in=[])
        lookup = {"eq": "exact", "before": "lt", "after": "gt"}[op]
        return Q(**{f"created_at__date__{lookup}": date.fromisoformat(value)})
    if name == "email":
        # Addresses are stored lower-cased in the "C" collation: a prefix match uses the btree.
        text = str(value).lower() if value is not None else ""
        return {
            "eq": Q(email=text),
            "neq": ~Q(email=text),
            "contains": Q(email__contains=text),
            "not_contains": ~Q(email__contains=text),
            "starts": Q(email__startswith=text),
            "ends": Q(email__endswith=text),
            "empty": Q(email=""),
            "not_empty": ~Q(email=""),
        }[op]
    return {
        "eq": Q(**{f"{name}__iexact": value}),
        "neq": ~Q(**{f"{name}__iexact": value}),
        "contains": Q(**{f"{name}__icontains": value}),
        "not_contains": ~Q(**{f"{name}__icontains": value}),
        "starts": Q(**{f"{name}__istartswith": value}),
        "ends": Q(**{f"{name}__iendswith": value}),
        "empty": Q(**{name: ""}),
        "not_empty": ~Q(**{name: ""}),
    }[op]


def describe(definition: dict[str, Any], fields: dict[str, FieldInfo]) -> str:
    """A definition in words: “Plan is pro and Score ≥ 50”."""
    joiner = " and " if definition.get("match", "all") == "all" else " or "
    words = []
    for condition in definition.get("conditions", []):
        if "conditions" in condition:
            words.append(f"({describe(condition, fields)})")
            continue
        info = fields.get(condition["field"])
        if info is None:
            words.append("(a removed field)")
            continue
        op = info.operators.get(condition["op"], condition["op"])
        value = condition.get("value")
        if info.type == "list":
            value = dict(info.choices).get(str(value), "a removed list")
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, bool) or value is None:
            value = ""
        words.append(f"{info.label} {op} {value}".strip())
    return joiner.join(words)
