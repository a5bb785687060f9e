"""Column mapping suggestions from the header (and from the values when there is no header)."""

from __future__ import annotations

import pytest

from accounts.models import Server, User
from marketing import mapping, services
from marketing.models import CustomField, FieldType

pytestmark = pytest.mark.django_db


def suggest(
    header: list[str], rows: list[list[str]], fields: list[CustomField] | None = None, *, has_header: bool = True
) -> list[str]:
    return mapping.suggest(header, rows, fields or [], has_header=has_header)


@pytest.mark.parametrize(
    "name", ["email", "Email", "E-mail", "e_mail", "Email Address", "E-Mail-Adresse", "mail", "EmailAddress", "address"]
)
def test_it_recognises_the_email_column_by_its_many_names(name: str) -> None:
    assert suggest(["id", name], [["1", "a@example.com"]]) == ["new:number", "email"]


@pytest.mark.parametrize(
    ("first", "last"),
    [("First name", "Last name"), ("firstname", "surname"), ("Given Name", "Family Name"), ("Vorname", "Nachname")],
)
def test_it_suggests_first_and_last_names(first: str, last: str) -> None:
    assert suggest(["Email", first, last], [["a@example.com", "Ann", "Lee"]]) == ["email", "first_name", "last_name"]


def test_it_suggests_a_full_name_column_when_there_are_no_separate_names() -> None:
    assert suggest(["Name", "Email"], [["Ann Lee", "a@example.com"]]) == ["full_name", "email"]


def test_it_suggests_the_status_column() -> None:
    assert suggest(["email", "Status"], [["a@example.com", "unsubscribed"]]) == ["email", "status"]


def test_it_maps_known_custom_fields_by_key_or_label(server: Server, admin: User) -> None:
    city = services.create_field(server=server, actor=admin, label="Home City", type=FieldType.TEXT)
    score = services.create_field(server=server, actor=admin, label="Lead score", type=FieldType.NUMBER)
    targets = suggest(["email", "home_city", "Lead Score"], [["a@example.com", "Oslo", "3"]], [city, score])
    assert targets == ["email", "field:home_city", "field:lead_score"]


def test_it_suggests_new_fields_typed_by_their_values() -> None:
    header = ["email", "joined", "visits", "vip", "notes", "flag01"]
    rows = [
        ["a@example.com", "2024-01-31", "12", "yes", "likes tea", "1"],
        ["b@example.com", "2023-12-01", "3.5", "no", "", "0"],
    ]
    assert suggest(header, rows) == ["email", "new:date", "new:number", "new:boolean", "new:text", "new:number"]


def test_it_finds_the_email_column_by_its_values_in_a_file_without_header() -> None:
    rows = [["Ann", "ann@example.com", "3"], ["Bob", "bob@example.com", "4"]]
    targets = suggest([], rows, has_header=False)
    assert targets[1] == "email"
    assert targets[0] == "" and targets[2] == ""


def test_it_finds_the_email_column_by_its_values_when_the_header_names_it_oddly() -> None:
    assert suggest(["Kontakt", "Wer"], [["ann@example.com", "Ann"]])[0] == "email"


def test_it_suggests_each_target_once() -> None:
    assert suggest(["email", "E-mail"], [["a@example.com", "b@example.com"]]).count("email") == 1


def test_check_names_every_problem_with_a_mapping() -> None:
    assert mapping.check(["first_name", ""], []) == [
        "Choose the column that holds the e-mail addresses: every contact needs one."
    ]
    problems = mapping.check(["email", "first_name", "first_name", "nonsense"], [])
    assert "“nonsense” is not something a column can be imported into." in problems
    assert "Two columns are mapped to “First name”: choose one." in problems
    assert mapping.check(["email", "full_name", "last_name"], []) == [
        "Map either a full name or first and last names, not both."
    ]
    assert mapping.check(["email", "new:text", "new:text"], []) == []  # several new fields are fine
