"""Segments: every operator of every type, AND/OR and groups, compiled to one query; clear problems."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import Server, User
from marketing import services
from marketing.models import Contact, ContactList, CustomField, Status
from marketing.segments import SegmentError, describe, validate

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(server: Server, admin: User, fields: dict[str, CustomField]) -> dict[str, Contact]:
    """Five contacts with different values (and gaps) in every field."""
    data = {
        "ann@example.com": {
            "first_name": "Ann",
            "custom": {"city": "Oslo", "score": 10, "signup": "2024-01-10", "vip": "yes", "plan": "pro"},
        },
        "bob@example.org": {
            "first_name": "Bob",
            "custom": {"city": "Bergen", "score": 55.5, "signup": "2023-06-01", "vip": "no", "plan": "free"},
        },
        "cid@example.com": {
            "first_name": "Cid",
            "status": Status.UNSUBSCRIBED,
            "custom": {"score": 100, "plan": "team"},
        },
        "dee@test.net": {"first_name": "Dee", "custom": {"city": "oslo", "signup": "2024-01-10", "plan": "pro"}},
        "eve@example.com": {"first_name": "", "custom": {}},
    }
    return {
        email: services.create_contact(server=server, actor=admin, data={"email": email, **values})
        for email, values in data.items()
    }


def matching(server: Server, *conditions: dict[str, Any], match: str = "all") -> set[str]:
    definition = validate({"match": match, "conditions": list(conditions)}, services.segment_fields(server))
    return {c.split("@")[0] for c in services.contacts_matching(server, definition).values_list("email", flat=True)}


def cond(field: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (cond("custom.city", "eq", "OSLO"), {"ann", "dee"}),
        (cond("custom.city", "neq", "oslo"), {"bob", "cid", "eve"}),
        (cond("custom.city", "contains", "er"), {"bob"}),
        (cond("custom.city", "not_contains", "o"), {"bob", "cid", "eve"}),
        (cond("custom.city", "starts", "be"), {"bob"}),
        (cond("custom.city", "ends", "LO"), {"ann", "dee"}),
        (cond("custom.city", "empty"), {"cid", "eve"}),
        (cond("custom.city", "not_empty"), {"ann", "bob", "dee"}),
        (cond("custom.score", "eq", "10"), {"ann"}),
        (cond("custom.score", "neq", 10), {"bob", "cid", "dee", "eve"}),
        (cond("custom.score", "gt", "55"), {"bob", "cid"}),
        (cond("custom.score", "gte", "55.5"), {"bob", "cid"}),
        (cond("custom.score", "lt", "55.5"), {"ann"}),
        (cond("custom.score", "lte", "55.5"), {"ann", "bob"}),
        (cond("custom.score", "empty"), {"dee", "eve"}),
        (cond("custom.signup", "eq", "2024-01-10"), {"ann", "dee"}),
        (cond("custom.signup", "before", "2024-01-10"), {"bob"}),
        (cond("custom.signup", "after", "2023-06-01"), {"ann", "dee"}),
        (cond("custom.signup", "not_empty"), {"ann", "bob", "dee"}),
        (cond("custom.vip", "true"), {"ann"}),
        (cond("custom.vip", "false"), {"bob"}),
        (cond("custom.vip", "empty"), {"cid", "dee", "eve"}),
        (cond("custom.plan", "eq", "PRO"), {"ann", "dee"}),
        (cond("custom.plan", "neq", "pro"), {"bob", "cid", "eve"}),
        (cond("custom.plan", "in", "free, team"), {"bob", "cid"}),
        (cond("custom.plan", "empty"), {"eve"}),
        (cond("email", "ends", "@example.com"), {"ann", "cid", "eve"}),
        (cond("email", "starts", "B"), {"bob"}),
        (cond("email", "eq", "DEE@test.net"), {"dee"}),
        (cond("email", "contains", "example"), {"ann", "bob", "cid", "eve"}),
        (cond("first_name", "eq", "ann"), {"ann"}),
        (cond("first_name", "empty"), {"eve"}),
        (cond("status", "eq", "unsubscribed"), {"cid"}),
        (cond("status", "neq", "subscribed"), {"cid"}),
        (cond("status", "in", "unsubscribed,bounced"), {"cid"}),
    ],
)
def test_each_operator_of_each_type(
    server: Server, people: dict[str, Contact], condition: dict[str, Any], expected: set[str]
) -> None:
    assert matching(server, condition) == expected


def test_list_conditions(server: Server, admin: User, people: dict[str, Contact]) -> None:
    news = services.create_list(server=server, actor=admin, name="News")
    services.set_contact_lists(contact=people["ann@example.com"], actor=admin, list_ids=[news.pk])
    services.set_contact_lists(contact=people["eve@example.com"], actor=admin, list_ids=[news.pk])
    assert matching(server, cond("list", "in_list", news.pk)) == {"ann", "eve"}
    assert matching(server, cond("list", "not_in_list", str(news.pk))) == {"bob", "cid", "dee"}


def test_and_or_and_nested_groups(server: Server, people: dict[str, Contact]) -> None:
    pro, high = cond("custom.plan", "eq", "pro"), cond("custom.score", "gte", 50)
    assert matching(server, pro, high, match="all") == set()
    assert matching(server, pro, high, match="any") == {"ann", "dee", "bob", "cid"}
    group = {"match": "any", "conditions": [cond("custom.city", "eq", "bergen"), cond("custom.vip", "true")]}
    assert matching(server, cond("status", "eq", "subscribed"), group) == {"ann", "bob"}


def test_a_condition_on_a_number_uses_numbers_not_text(server: Server, people: dict[str, Contact]) -> None:
    # As text "100" < "55.5"; as numbers it is not.
    assert matching(server, cond("custom.score", "gt", "60")) == {"cid"}


def test_it_explains_every_problem_of_a_definition(server: Server, fields: dict[str, CustomField]) -> None:
    catalogue = services.segment_fields(server)
    with pytest.raises(SegmentError) as caught:
        validate(
            {
                "match": "all",
                "conditions": [
                    cond("custom.score", "gt", "many"),
                    cond("custom.nope", "eq", "x"),
                    cond("custom.city", "gt", "x"),
                    cond("custom.plan", "eq", "gold"),
                    cond("custom.signup", "before", "31/12/2024"),
                    cond("custom.city", "eq", ""),
                ],
            },
            catalogue,
        )
    problems = caught.value.problems
    assert problems[0] == "Condition 1: Score “many” is not a number."
    assert problems[1] == "Condition 2: “custom.nope” is not a field (choose one from the list)."
    assert problems[2].startswith("Condition 3: City cannot be compared with “gt”")
    assert "has no choice “gold”" in problems[3]
    assert "YYYY-MM-DD" in problems[4]
    assert problems[5] == "Condition 6: City needs a value."
    with pytest.raises(SegmentError, match="Add at least one condition"):
        validate({"match": "all", "conditions": []}, catalogue)
    with pytest.raises(SegmentError, match="“match” must be “all” or “any”"):
        validate({"match": "some", "conditions": [cond("email", "empty")]}, catalogue)


def test_it_describes_a_segment_in_words(server: Server, fields: dict[str, CustomField]) -> None:
    catalogue = services.segment_fields(server)
    definition = validate(
        {"match": "any", "conditions": [cond("custom.plan", "eq", "pro"), cond("custom.score", "gte", "50")]}, catalogue
    )
    assert describe(definition, catalogue) == "Plan is pro or Score ≥ 50"


def test_saved_segments_keep_a_count(server: Server, admin: User, people: dict[str, Contact]) -> None:
    segment = services.save_segment(
        server=server,
        actor=admin,
        name="Pro",
        definition={"match": "all", "conditions": [cond("custom.plan", "eq", "pro")]},
    )
    assert segment.cached_count is None
    assert services.count_segment(segment=segment) == 2
    segment.refresh_from_db()
    assert segment.cached_count == 2 and segment.counted_at is not None
    with pytest.raises(services.ContactError, match="already a segment"):
        services.save_segment(server=server, actor=admin, name="pro", definition=segment.definition)


def test_a_segment_never_reaches_another_servers_contacts(
    server: Server, other_server: Server, admin: User, people: dict[str, Contact]
) -> None:
    Contact.objects.create(server=other_server, email="ann@example.com", custom={"plan": "pro"})
    assert len(matching(server, cond("email", "starts", "ann"))) == 1
    assert ContactList.objects.filter(server=other_server).count() == 0
