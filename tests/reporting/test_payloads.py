"""Property tests (R18): the body decoder and the event normaliser never raise anything unexpected."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reporting.payloads import ParsedEvent, PayloadError, canonical_json, decode_body, dedup_key, parse_event

RECEIVED = datetime(2024, 5, 1, tzinfo=UTC)
CONTENT_TYPES = ["application/json", "application/x-www-form-urlencoded", "", "text/plain"]
KNOWN_KEYS = [
    "Type",
    "type",
    "DateTime",
    "Address",
    "MessageId",
    "MailingId",
    "FailureType",
    "FailureCode",
    "TrackingType",
]


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings(k) + strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)
known_keys = st.sampled_from(
    [
        "Type",
        "type",
        "DateTime",
        "Address",
        "MessageId",
        "MailingId",
        "FailureType",
        "FailureCode",
        "TrackingType",
        "Url",
    ]
)
events = st.dictionaries(known_keys | st.text(max_size=12), json_values, max_size=10) | st.fixed_dictionaries(
    {
        "Type": st.sampled_from(["Delivered", "Failed", "Tracking", "Queued", "Bogus", "", "validation"]),
        "trackingtype": st.sampled_from(["Click", "open", 2, "9"]),
        "DateTime": st.sampled_from(["2024-05-01T10:00:00Z", "Mon, 13 Aug 2018 20:29:59 GMT", "", "nope"]) | st.text(),
        "TrackingType": json_values,
        "FailureType": json_values,
        "FailureCode": json_values,
        "Address": json_values,
    }
)


@settings(max_examples=300, deadline=None)
@given(events)
def test_the_normaliser_returns_an_event_or_says_why(data: dict[str, Any]) -> None:
    try:
        result = parse_event(data, received_at=RECEIVED)
    except PayloadError as exc:
        assert str(exc)
        return
    assert result is None or isinstance(result, ParsedEvent)
    if result is not None:
        assert result.occurred_at.tzinfo is not None
        assert len(result.address) <= 320
        json.dumps(result.extra)  # storable


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=300),
    st.sampled_from(["application/json", "application/x-www-form-urlencoded", "", "text/plain"]),
)
def test_the_decoder_returns_an_object_or_says_why(body: bytes, content_type: str) -> None:
    try:
        data, kind = decode_body(body, content_type)
    except PayloadError as exc:
        assert str(exc)
        return
    assert isinstance(data, dict) and kind in ("json", "form")
    for text in strings(data):
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogates: PostgreSQL can store it


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_the_dedup_key_ignores_key_order(data: dict[str, Any]) -> None:
    reordered = dict(reversed(list(data.items())))

    assert dedup_key(1, canonical_json(data)) == dedup_key(1, canonical_json(reordered))
    assert dedup_key(1, canonical_json(data)) != dedup_key(2, canonical_json(data))
