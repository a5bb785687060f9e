"""Contacts, lists and fields changed one at a time: validation, history, audit, outbox; event effects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from accounts import services as account_services
from accounts.models import AuditLog, Server, User
from marketing import services
from marketing.models import (
    Contact,
    ContactHistory,
    ContactList,
    CustomField,
    HistoryKind,
    Membership,
    RemoteChange,
    Status,
)

pytestmark = pytest.mark.django_db


def add(server: Server, user: User, email: str, **data: object) -> Contact:
    return services.create_contact(server=server, actor=user, data={"email": email, **data})


def test_it_creates_a_contact_with_normalised_address_and_typed_values(
    server: Server, marketing: User, fields: dict[str, CustomField]
) -> None:
    contact = add(server, marketing, "  Ann@Example.COM ", first_name="Ann", custom={"score": "12", "vip": "yes"})
    assert contact.email == "ann@example.com"
    assert contact.custom == {"score": 12, "vip": True}
    assert ContactHistory.objects.get(contact=contact).kind == HistoryKind.CREATED
    assert AuditLog.objects.get(action="contacts.create").target == "ann@example.com"


def test_addresses_are_unique_per_server_whatever_their_case(
    server: Server, other_server: Server, marketing: User
) -> None:
    add(server, marketing, "ann@example.com")
    with pytest.raises(services.ContactError, match="already a contact"):
        add(server, marketing, "ANN@example.com")
    assert add(other_server, marketing, "ann@example.com").server == other_server


def test_it_lists_every_problem_of_the_input(server: Server, marketing: User, fields: dict[str, CustomField]) -> None:
    with pytest.raises(services.ContactError) as caught:
        add(server, marketing, "nope", first_name="x" * 101, status="gone", custom={"score": "x", "zzz": 1})
    errors = caught.value.errors
    assert set(errors) == {"email", "first_name", "status", "custom"}
    assert "Score: “x” is not a number." in errors["custom"]
    assert "“zzz” is not a custom field of this server." in errors["custom"]


def test_an_edit_records_what_changed(server: Server, marketing: User, fields: dict[str, CustomField]) -> None:
    contact = add(server, marketing, "ann@example.com", first_name="Ann", custom={"city": "Oslo", "score": 3})
    services.update_contact(
        contact=contact,
        actor=marketing,
        data={"first_name": "Anna", "custom": {"city": "", "plan": "pro"}, "status": "unsubscribed"},
    )
    contact.refresh_from_db()
    assert contact.custom == {"score": 3, "plan": "pro"}  # "" removed the city
    assert contact.status == Status.UNSUBSCRIBED and contact.status_changed_at is not None
    edited = ContactHistory.objects.get(contact=contact, kind=HistoryKind.EDITED)
    assert edited.changes == {"first_name": ["Ann", "Anna"], "custom.city": ["Oslo", ""], "custom.plan": ["", "pro"]}
    assert edited.actor == marketing
    status = ContactHistory.objects.get(contact=contact, kind=HistoryKind.STATUS)
    assert status.changes == {"status": ["subscribed", "unsubscribed"]}
    audit = AuditLog.objects.get(action="contacts.update")
    assert audit.before["first_name"] == "Ann" and audit.after["first_name"] == "Anna"


def test_an_edit_that_changes_nothing_records_nothing(server: Server, marketing: User) -> None:
    contact = add(server, marketing, "ann@example.com", first_name="Ann")
    services.update_contact(contact=contact, actor=marketing, data={"first_name": "Ann"})
    assert not AuditLog.objects.filter(action="contacts.update").exists()


def test_list_changes_by_hand_are_in_the_history(server: Server, marketing: User) -> None:
    contact = add(server, marketing, "ann@example.com")
    news = services.create_list(server=server, actor=marketing, name="News")
    vip = services.create_list(server=server, actor=marketing, name="VIP")
    assert services.set_contact_lists(contact=contact, actor=marketing, list_ids=[news.pk, vip.pk]) == (2, 0)
    assert services.set_contact_lists(contact=contact, actor=marketing, list_ids=[vip.pk]) == (0, 1)
    summaries = set(ContactHistory.objects.filter(contact=contact).values_list("summary", flat=True))
    assert {"Added to list “News”", "Added to list “VIP”", "Removed from list “News”"} <= summaries
    news.refresh_from_db()
    assert news.member_count == 0


def test_lists_of_another_server_are_refused(server: Server, other_server: Server, marketing: User) -> None:
    contact = add(server, marketing, "ann@example.com")
    foreign = ContactList.objects.create(server=other_server, name="Theirs")
    with pytest.raises(services.ContactError):
        services.set_contact_lists(contact=contact, actor=marketing, list_ids=[foreign.pk])
    assert not Membership.objects.exists()


def test_deleting_a_contact_removes_its_memberships_and_history(server: Server, marketing: User) -> None:
    contact = add(server, marketing, "ann@example.com")
    news = services.create_list(server=server, actor=marketing, name="News")
    services.set_contact_lists(contact=contact, actor=marketing, list_ids=[news.pk])
    services.delete_contact(contact=contact, actor=marketing)
    assert not Contact.objects.exists() and not Membership.objects.exists() and not ContactHistory.objects.exists()
    assert AuditLog.objects.get(action="contacts.delete").before["email"] == "ann@example.com"


def test_deleting_a_server_deletes_its_contacts(server: Server, other_server: Server, site_admin: User) -> None:
    add(server, site_admin, "ann@example.com")
    add(other_server, site_admin, "bob@example.com")
    account_services.delete_server(request=None, actor=site_admin, server=server)
    assert list(Contact.objects.values_list("email", flat=True)) == ["bob@example.com"]


def test_deleting_a_field_removes_its_values_in_one_statement(
    server: Server, marketing: User, fields: dict[str, CustomField]
) -> None:
    add(server, marketing, "ann@example.com", custom={"city": "Oslo", "score": 1})
    add(server, marketing, "bob@example.com", custom={"score": 2})
    assert services.delete_field(custom=fields["city"], actor=marketing) == 1
    assert list(Contact.objects.order_by("email").values_list("custom", flat=True)) == [{"score": 1}, {"score": 2}]


def test_field_types_and_keys_are_checked(server: Server, marketing: User, fields: dict[str, CustomField]) -> None:
    with pytest.raises(services.ContactError, match="already a field"):
        services.create_field(server=server, actor=marketing, label="City", type="text")
    with pytest.raises(services.ContactError, match="needs at least one choice"):
        services.create_field(server=server, actor=marketing, label="Tier", type="choice")
    with pytest.raises(services.ContactError, match="Choose one of"):
        services.create_field(server=server, actor=marketing, label="Odd", type="colour")


def test_bulk_actions_write_one_audit_row(server: Server, marketing: User) -> None:
    for i in range(30):
        add(server, marketing, f"p{i}@example.com")
    news = services.create_list(server=server, actor=marketing, name="News")
    everyone = Contact.objects.filter(server=server)
    assert (
        services.bulk_add_to_list(server=server, contacts=everyone, contact_list=news, actor=marketing, request=None)
        == 30
    )
    assert (
        services.bulk_add_to_list(server=server, contacts=everyone, contact_list=news, actor=marketing, request=None)
        == 0
    )
    half = everyone.filter(email__lt="p2")
    removed = services.bulk_remove_from_list(
        server=server, contacts=half, contact_list=news, actor=marketing, request=None
    )
    assert removed == 12  # p0, p1 and p10…p19
    assert Membership.objects.count() == 18
    deleted = services.bulk_delete(server=server, contacts=everyone, actor=marketing, request=None, what="all")
    assert deleted == 30
    assert AuditLog.objects.filter(action="contacts.bulk_add_to_list").count() == 2
    assert AuditLog.objects.filter(action="contacts.bulk_delete").count() == 1


# --- effects from events and suppressions ---------------------------------------------------------
def test_event_effects_move_statuses_in_one_go(server: Server, marketing: User) -> None:
    for email in ("ann@example.com", "bob@example.com", "cid@example.com"):
        add(server, marketing, email)
    at = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    result = services.apply_event_effects(
        server=server,
        entries=[
            ("ANN@example.com", "unsubscribe", at),
            ("bob@example.com", "suppress_bounce", at),
            ("bob@example.com", "suppress_complaint", at),  # the stronger one wins
            ("stranger@example.com", "unsubscribe", at),  # not a contact: ignored
            ("cid@example.com", "opened", at),
        ],
    )
    assert result.changed == 2
    assert result.unknown_kinds == ["opened"]
    assert dict(Contact.objects.values_list("email", "status")) == {
        "ann@example.com": Status.UNSUBSCRIBED,
        "bob@example.com": Status.COMPLAINED,
        "cid@example.com": Status.SUBSCRIBED,
    }
    history = ContactHistory.objects.get(contact__email="ann@example.com", kind=HistoryKind.STATUS)
    assert history.at == at and history.via == "event"
    assert AuditLog.objects.filter(action="contacts.event_effects").count() == 1


def test_event_effects_never_move_a_status_down_and_are_safe_to_replay(server: Server, marketing: User) -> None:
    add(server, marketing, "ann@example.com", status=Status.COMPLAINED)
    entries = [("ann@example.com", "unsubscribe", None)]
    assert services.apply_event_effects(server=server, entries=entries).changed == 0
    add(server, marketing, "bob@example.com")
    assert services.apply_event_effects(server=server, entries=[("bob@example.com", "bounced", None)]).changed == 1
    assert services.apply_event_effects(server=server, entries=[("bob@example.com", "bounced", None)]).changed == 0
    assert ContactHistory.objects.filter(contact__email="bob@example.com", kind=HistoryKind.STATUS).count() == 1


def test_unsubscribes_from_events_are_pushed_when_the_server_syncs(server: Server, marketing: User) -> None:
    server.marketing_key = "marketing-key"
    server.save()
    add(server, marketing, "ann@example.com")
    services.apply_event_effects(server=server, entries=[("ann@example.com", "unsubscribe", None)])
    assert list(RemoteChange.objects.values_list("action", "email")) == [("unsubscribe", "ann@example.com")]


def test_suppressions_move_statuses_by_reason(server: Server, marketing: User) -> None:
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        add(server, marketing, email)
    services.apply_suppressions(
        server=server,
        entries=[("a@example.com", "Bounce"), ("b@example.com", "Complaint"), ("c@example.com", "CustomerRequest")],
    )
    assert dict(Contact.objects.values_list("email", "status")) == {
        "a@example.com": Status.BOUNCED,
        "b@example.com": Status.COMPLAINED,
        "c@example.com": Status.UNSUBSCRIBED,
    }


def test_contacts_follow_the_events_reporting_records(
    server: Server, marketing: User, django_capture_on_commit_callbacks: Any
) -> None:
    """reporting.effects sends `effects_recorded` after its processing commits; the contacts' status follows."""
    from reporting import effects
    from reporting.models import Event, EventType, FailureType

    add(server, marketing, "ann@example.com")
    add(server, marketing, "bob@example.com")
    at = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    events = [
        Event.objects.create(server=server, type=EventType.COMPLAINT, occurred_at=at, address="ann@example.com"),
        Event.objects.create(
            server=server,
            type=EventType.FAILED,
            failure_type=FailureType.PERMANENT,
            occurred_at=at,
            address="BOB@example.com",
        ),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        effects.apply(events)
    assert dict(Contact.objects.values_list("email", "status")) == {
        "ann@example.com": Status.COMPLAINED,
        "bob@example.com": Status.BOUNCED,
    }
    assert ContactHistory.objects.get(contact__email="ann@example.com", kind=HistoryKind.STATUS).at == at
