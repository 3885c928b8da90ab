"""Hypothesis strategies for contract events at the edges of what the API accepts: every
Unicode plane, strings at their length bounds, nesting at the depth bound, extreme numbers
and amounts. Built from the contract's own bounds (events/bounds.py, events/contract.py)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from events.bounds import LARGEST_INT, MAX_DEPTH, MAX_KEY, MAX_TEXT, SMALLEST_INT
from events.contract import ID_MAX, NAME_MAX, TEXT_MAX
from events.vocabulary import DEFAULT_STAGES

# One character from any of the 17 planes; never a surrogate (JSON cannot carry one alone).
plane_char = st.integers(0, 16).flatmap(
    lambda plane: st.integers(plane * 0x10000, plane * 0x10000 + 0xFFFF)).filter(
    lambda code: not 0xD800 <= code <= 0xDFFF).map(chr)
odd_text = st.text(plane_char, min_size=0, max_size=40)


def long_text(most: int) -> st.SearchStrategy[str]:
    """A string of up to `most` characters: a run of one character (cheap to generate at
    any length), or a short odd one."""
    run = st.tuples(plane_char, st.integers(1, most)).map(lambda t: t[0] * t[1])
    return st.one_of(odd_text.map(lambda s: s[:most]), run, st.just("x" * most))


def ident() -> st.SearchStrategy[str]:
    """An id of up to 128 characters that is not blank (the contract strips whitespace),
    unique per draw so that creations are not refused as repeats."""
    return st.tuples(long_text(100), st.just(uuid.uuid4)).map(
        lambda t: f"{t[0][:100].strip() or 'i'}-{t[1]().hex[:8]}")


extreme_numbers = st.one_of(
    st.sampled_from([LARGEST_INT, SMALLEST_INT, 2**63 - 1, 0, -0.0, 5e-324,
                     1.7976931348623157e308, -1.7976931348623157e308]),
    st.integers(SMALLEST_INT, LARGEST_INT),
    st.floats(allow_nan=False, allow_infinity=False))
amounts = st.one_of(
    st.decimals(min_value=0, max_value=Decimal("99999999999999.999999"), places=6,
                allow_nan=False, allow_infinity=False).map(str),
    st.sampled_from(["0", "99999999999999.999999", "0.000001"]),
    st.integers(0, 10**14))
minutes = st.decimals(min_value=0, max_value=1_000_000, places=6).map(str)
json_leaves = st.one_of(st.none(), st.booleans(), extreme_numbers, long_text(MAX_TEXT))
json_values = st.recursive(
    json_leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(long_text(MAX_KEY), inner, max_size=4)), max_leaves=12)


def deep(levels: int, leaf: Any) -> Any:
    for level in range(levels):
        leaf = {"d": leaf} if level % 2 else [leaf]
    return leaf


# Fields of later versions: any JSON, and chains reaching the depth bound exactly
# (`data` is the first level, the field's own container the second).
extra_fields = st.dictionaries(
    long_text(MAX_KEY).map(lambda k: f"x_{k}"[:MAX_KEY]),
    st.one_of(json_values,
              st.tuples(st.integers(1, MAX_DEPTH - 1), json_leaves).map(lambda t: deep(*t))),
    max_size=3)


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


def creations(customer: str) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """(type, data) of events that create their subject, or touch `customer`; each string
    up to its field's bound."""
    name, label, text = long_text(NAME_MAX), long_text(ID_MAX), long_text(TEXT_MAX)
    kinds = st.sampled_from(["call", "visit", "email", "meeting", "message", "demo", "other"])
    return st.one_of(
        st.tuples(st.just("rep.joined"), st.fixed_dictionaries(
            {"rep_id": ident(), "name": name, "team_id": ident()}).flatmap(
            lambda d: optional(manager_id=ident(), region=label).map(lambda o: {**d, **o}))),
        st.tuples(st.just("customer.created"), st.fixed_dictionaries(
            {"customer_id": ident()}).flatmap(lambda d: optional(
                name=name, segment=label, industry=label, region=label).map(
                lambda o: {**d, **o}))),
        st.tuples(st.just("lead.created"), st.fixed_dictionaries({"lead_id": ident()}).flatmap(
            lambda d: optional(source=label, region=label, company=name, owner_id=ident()).map(
                lambda o: {**d, **o}))),
        st.tuples(st.just("deal.created"), st.fixed_dictionaries(
            {"deal_id": ident(), "owner_id": ident()}).flatmap(lambda d: optional(
                amount=amounts, product=label, source=label,
                stage=st.sampled_from(DEFAULT_STAGES)).map(lambda o: {**d, **o}))),
        st.tuples(st.just("activity.logged"), st.fixed_dictionaries(
            {"activity_id": ident(), "kind": kinds, "rep_id": ident(),
             "customer_id": st.just(customer)}).flatmap(lambda d: optional(
                duration_min=minutes, outcome=text).map(lambda o: {**d, **o}))),
        st.tuples(st.just("order.booked"), st.fixed_dictionaries(
            {"order_id": ident(), "customer_id": st.just(customer), "amount": amounts})),
        st.tuples(st.just("target.set"), st.fixed_dictionaries({
            "scope": st.just("company"), "metric": st.sampled_from(
                ["won_value", "won_deals", "new_leads", "activities", "collected"]),
            "period": st.integers(1900, 2999).map(str), "value": amounts})),
    )


def events(customer: str) -> st.SearchStrategy[dict[str, Any]]:
    """Whole events the API accepts (bar the rules: a repeated creation is refused)."""
    moments = st.datetimes().filter(lambda d: 1900 <= d.year <= 2999)
    offsets = st.sampled_from(["", "Z", "+08:00", "-12:00", "+14:00"])
    return st.builds(
        lambda kind, extra, at, offset: {
            "id": str(uuid.uuid4()), "type": kind[0], "occurred_at": at.isoformat() + offset,
            "data": {**extra, **kind[1]}},
        creations(customer), extra_fields, moments, offsets)
