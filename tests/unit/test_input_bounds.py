"""Every string field has a documented bound, enforced naming the field; decimals as strings
are exactly the published pattern; one id with two contents in a batch is a conflict."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.contract import DATA_MODELS, DECIMAL_MAX_LENGTH, DECIMAL_PATTERN, json_schema
from events.errors import InvalidEvent
from events.parsing import parse_event
from services.eventstore.ledger import BatchRefused, SalesLedger
from tests.depth import examples

# The required fields of each event type with a string field that is not an id.
BASES: dict[str, dict[str, Any]] = {
    "rep.joined": {"rep_id": "R", "name": "Li", "team_id": "T"},
    "rep.moved": {"rep_id": "R", "team_id": "T"},
    "customer.created": {"customer_id": "C"},
    "lead.created": {"lead_id": "L"},
    "lead.qualified": {"lead_id": "L"},
    "lead.disqualified": {"lead_id": "L"},
    "activity.logged": {"activity_id": "A", "kind": "call", "rep_id": "R", "deal_id": "D"},
    "deal.created": {"deal_id": "D", "owner_id": "R", "stage": "proposal"},
    "deal.stage_changed": {"deal_id": "D", "stage": "proposal"},
    "deal.close_date_changed": {"deal_id": "D", "expected_close": "2017-05-01"},
    "deal.lost": {"deal_id": "D"},
    "order.booked": {"order_id": "O", "customer_id": "C", "amount": "1"},
}


def string_fields(event_type: str) -> dict[str, int | None]:
    """Each string property of the type's `data` in its JSON Schema, with its maxLength."""
    schema = json_schema(event_type)
    data = schema["$defs"][schema["properties"]["data"]["$ref"].rsplit("/", 1)[1]]
    fields: dict[str, int | None] = {}
    for name, prop in data["properties"].items():
        options = prop.get("anyOf", [prop])
        strings = [o for o in options if o.get("type") == "string" and "enum" not in o
                   and "const" not in o and "pattern" not in o and "format" not in o]
        if strings:
            fields[name] = strings[0].get("maxLength")
    return fields


SUBJECTS = {"lead_id", "deal_id", "customer_id"}  # an activity names exactly one


def event(event_type: str, **data: Any) -> dict[str, Any]:
    base = BASES.get(event_type, {})
    if event_type.startswith("activity.") and SUBJECTS & set(data):
        base = {k: v for k, v in base.items() if k not in SUBJECTS}
    return {"id": "e-1", "type": event_type, "occurred_at": "2017-03-01T10:00:00+08:00",
            "data": {**base, **data}}


@pytest.mark.parametrize("event_type", list(DATA_MODELS))
def test_every_string_field_of_every_event_type_has_a_bound_in_its_schema(
        event_type: str) -> None:
    unbounded = [name for name, most in string_fields(event_type).items() if most is None]
    assert not unbounded, f"{event_type}: {unbounded} have no maxLength"


CASES = [(t, name, most) for t in BASES for name, most in string_fields(t).items()]


@pytest.mark.parametrize(("event_type", "name", "most"), CASES)
def test_a_string_at_its_bound_is_accepted_and_one_more_character_is_refused_naming_it(
        event_type: str, name: str, most: int) -> None:
    parse_event(event(event_type, **{name: "x" * most}))
    with pytest.raises(InvalidEvent) as refused:
        parse_event(event(event_type, **{name: "x" * (most + 1)}))
    assert [e.field for e in refused.value.errors] == [f"data.{name}"]


def accepted_amount(text: str) -> bool:
    try:
        parse_event(event("order.booked", amount=text))
    except InvalidEvent:
        return False
    return True


@settings(max_examples=examples(300), deadline=None, derandomize=True)
@given(text=st.one_of(st.from_regex(DECIMAL_PATTERN, fullmatch=True), st.text(max_size=12),
                      st.sampled_from([" 1 ", "1_000", "1e3", "+1", "-0", "1.", ".5", "0x10",
                                       "١٢", "NaN", "Infinity", "1.0000001", "0" * 41,
                                       "0." + "0" * 38])))
def test_an_amount_string_is_accepted_exactly_when_it_matches_the_published_pattern(
        text: str) -> None:
    matches = re.fullmatch(DECIMAL_PATTERN, text) is not None and len(text) <= DECIMAL_MAX_LENGTH
    try:  # at most the maximum, and 6 places once trailing zeros are dropped
        value = Decimal(text)
        within = value <= Decimal("99999999999999.999999") and \
            -value.normalize().as_tuple().exponent <= 6  # type: ignore[operator]
    except InvalidOperation:
        within = False
    assert accepted_amount(text) == (matches and within), text


def ledger(tmp_path: Any) -> SalesLedger:
    return SalesLedger(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                            "SQLITE_DBNAME": str(tmp_path / "events.db")})


def test_one_id_twice_in_a_batch_with_other_content_is_a_conflict_naming_both_indexes(
        tmp_path: Any) -> None:
    first = event("rep.joined")
    other = event("rep.joined", rep_id="R-2")  # the same id, another subject
    with pytest.raises(BatchRefused) as refused:
        ledger(tmp_path).record([event("rep.joined", rep_id="R-0") | {"id": "e-0"}, first,
                                 other], tenant="default")
    assert refused.value.status == 409
    [(index, error)] = refused.value.errors
    assert (index, error.field) == (2, "id") and "indexes 1 and 2" in error.message


def test_one_id_twice_in_a_batch_with_the_same_content_is_a_duplicate(tmp_path: Any) -> None:
    same = event("rep.joined")
    outcomes = ledger(tmp_path).record([same, dict(same)], tenant="default")
    assert [o.status for o in outcomes] == ["accepted", "duplicate"]
