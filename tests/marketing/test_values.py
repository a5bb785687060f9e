"""Typed custom-field values: what is accepted, how it is stored, and the reasons for refusals."""

from __future__ import annotations

import pytest

from marketing.models import FieldType
from marketing.values import InvalidValue, converter_for, infer_type, key_for


@pytest.mark.parametrize(
    ("field_type", "raw", "stored"),
    [
        (FieldType.TEXT, "  Berlin ", "Berlin"),
        (FieldType.TEXT, "", None),
        (FieldType.NUMBER, "42", 42),
        (FieldType.NUMBER, "-3.5", -3.5),
        (FieldType.NUMBER, "1,234", 1234),
        (FieldType.NUMBER, "1,234,567.25", 1234567.25),
        (FieldType.NUMBER, "12,5", 12.5),
        (FieldType.NUMBER, "1e3", 1000),
        (FieldType.NUMBER, " ", None),
        (FieldType.DATE, "2024-02-29", "2024-02-29"),
        (FieldType.DATE, "2024/3/7", "2024-03-07"),
        (FieldType.DATE, "2024-03-07T10:11:12Z", "2024-03-07"),
        (FieldType.BOOLEAN, "Yes", True),
        (FieldType.BOOLEAN, "0", False),
        (FieldType.BOOLEAN, "false", False),
    ],
)
def test_it_stores_values_typed(field_type: str, raw: str, stored: object) -> None:
    assert converter_for(field_type)(raw) == stored


def test_it_stores_a_choice_as_the_field_spells_it() -> None:
    assert converter_for(FieldType.CHOICE, ["Free", "Pro"])(" pro ") == "Pro"


@pytest.mark.parametrize(
    ("field_type", "raw", "reason"),
    [
        (FieldType.NUMBER, "twelve", "“twelve” is not a number"),
        (FieldType.NUMBER, "nan", "“nan” is not a number"),
        (FieldType.NUMBER, "1" * 20, "is too large"),
        (FieldType.DATE, "31/12/2024", "write dates as YYYY-MM-DD"),
        (FieldType.DATE, "2024-02-30", "is not a date"),
        (FieldType.BOOLEAN, "maybe", "is not yes/no"),
        (FieldType.TEXT, "x" * 501, "at most 500 fit"),
    ],
)
def test_it_refuses_values_with_a_reason(field_type: str, raw: str, reason: str) -> None:
    with pytest.raises(InvalidValue, match=reason):
        converter_for(field_type)(raw)


def test_it_refuses_a_value_that_is_not_a_choice_and_names_the_choices() -> None:
    with pytest.raises(InvalidValue, match=r"“gold” is not one of the choices \(free, pro\)"):
        converter_for(FieldType.CHOICE, ["free", "pro"])("gold")


def test_it_infers_types_for_new_fields() -> None:
    assert infer_type(["2024-01-01", ""]) == FieldType.DATE
    assert infer_type(["3", "4.5"]) == FieldType.NUMBER
    assert infer_type(["yes", "no"]) == FieldType.BOOLEAN
    assert infer_type(["0", "1"]) == FieldType.NUMBER
    assert infer_type(["Oslo", "3"]) == FieldType.TEXT
    assert infer_type([]) == FieldType.TEXT


def test_it_makes_keys_from_labels() -> None:
    assert key_for("Signup Date") == "signup_date"
    assert key_for("2nd phone") == "f_2nd_phone"
    assert key_for("!!!") == "field"
