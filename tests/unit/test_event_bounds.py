"""Whatever the contract accepts, every later step can write: depth, size, numbers, text."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.bounds import MAX_DATA_BYTES, MAX_DEPTH, MAX_KEY, MAX_TEXT
from events.errors import InvalidEvent
from events.parsing import check_event, parse_event
from tests.depth import examples


def rep(**extra: Any) -> dict[str, Any]:
    return {"id": "e-1", "type": "rep.joined", "occurred_at": "2017-03-01T10:00:00+08:00",
            "data": {"rep_id": "R-1", "name": "Li", "team_id": "T-1", **extra}}


def nested(levels: int) -> Any:
    """A value `levels` containers deep, alternating objects and arrays."""
    value: Any = "leaf"
    for level in range(levels):
        value = {"x": value} if level % 2 else [value]
    return value


def refusal(raw: Any) -> list[tuple[str, str]]:
    with pytest.raises(InvalidEvent) as refused:
        parse_event(raw)
    with pytest.raises(InvalidEvent):
        check_event(raw)
    return [(e.field, e.message) for e in refused.value.errors]


@settings(max_examples=examples(60), deadline=None, derandomize=True)
@given(levels=st.integers(1, 1200))
def test_nesting_is_refused_beyond_the_bound_at_any_depth_naming_the_field(levels: int) -> None:
    raw = rep(extra=nested(levels))  # `data` is the first level, `extra` the second
    if levels + 1 <= MAX_DEPTH:
        event = parse_event(raw)
        check_event(raw)
        assert orjson.loads(orjson.dumps({"m": {"e": event.canonical()}}))  # 3 levels more
    else:
        [(field, message)] = refusal(raw)
        assert field.startswith("data.extra") and f"deeper than {MAX_DEPTH}" in message


def test_data_over_its_size_bound_is_refused() -> None:
    fits = rep(notes=["x" * MAX_TEXT] * ((MAX_DATA_BYTES // MAX_TEXT) - 1))
    parse_event(fits)
    [(field, message)] = refusal(rep(notes=["x" * MAX_TEXT] * (MAX_DATA_BYTES // MAX_TEXT + 1)))
    assert field == "data" and "bytes as JSON" in message


@pytest.mark.parametrize(("extra", "field", "says"), [
    ({"note": "x" * (MAX_TEXT + 1)}, "data.note", "characters"),
    ({"k" * (MAX_KEY + 1): 1}, "data." + "k" * MAX_KEY + "…", "key longer"),
    ({"n": 2**64}, "data.n", "64 bits"),
    ({"n": [-(2**63) - 1]}, "data.n.0", "64 bits"),
    ({"n": float("inf")}, "data.n", "finite"),
    ({"n": "\ud800"}, "data", "not representable as JSON"),
])
def test_unwritable_values_are_refused_naming_the_field(
        extra: dict[str, Any], field: str, says: str) -> None:
    [(where, message)] = refusal(rep(**extra))
    assert where == field and says in message


def test_values_at_the_bounds_are_accepted_and_written() -> None:
    event = parse_event(rep(big=2**64 - 1, small=-(2**63), huge=1.7976931348623157e308,
                            note="\U0010ffff" * MAX_TEXT))
    assert orjson.loads(orjson.dumps(event.canonical()))["data"]["big"] == 2**64 - 1
