"""The query bench's scaled history: copies of one simulated year, ids renamed per copy,
fold to exactly the renamed records of the original (so a million deals can be made from
a few thousand checked events without changing what the reducer does)."""

from __future__ import annotations

from functools import cache

import orjson
import pytest

from projections.facts import Change, Record, apply
from services.readmodels.codec import decode
from services.simulate.scaled import _ID, Template, copied, plan, renamed, template


@cache
def small() -> Template:
    return template(60, seed=3)


def fold(changes: list[Change]) -> dict[str, dict[str, Record]]:
    records: dict[str, dict[str, Record]] = {}
    for change in changes:
        kind = records.setdefault(change.kind, {})
        updated = apply(kind.get(change.key), change)
        if updated is not None:
            kind[change.key] = updated
    return records


def test_a_renamed_copy_folds_to_the_renamed_records_of_the_original() -> None:
    original = fold(small().changes)
    copy = fold(renamed(small().changes, 7))
    assert orjson.loads(_ID.sub(rb"\1-7.", orjson.dumps(original))) == copy


def test_copy_0s_records_renamed_are_what_folding_another_copy_gives() -> None:
    records = fold(renamed(small().changes, 0))
    written = copied(records, 5)
    assert {kind: {key.decode(): decode(value) for key, value in fields.items()}
            for kind, fields in written.items()} == fold(renamed(small().changes, 5))


def test_copies_share_no_deal_lead_customer_or_rep() -> None:
    first, second = fold(renamed(small().changes, 0)), fold(renamed(small().changes, 1))
    for kind in ("deal", "lead", "customer", "order", "rep"):
        assert first[kind] and not set(first[kind]) & set(second[kind]), kind
    assert len(first["deal"]) == len(second["deal"]) == small().deals


def test_renaming_leaves_times_amounts_and_names_alone() -> None:
    [deal] = [c.event for c in renamed(small().changes, 4) if c.event["type"] == "deal.created"][:1]
    [before] = [c.event for c in small().changes if c.event["type"] == "deal.created"][:1]
    assert deal["data"]["deal_id"] == before["data"]["deal_id"].replace("D-", "D-4.")
    assert deal["occurred_at"] == before["occurred_at"]
    assert deal["data"]["amount"] == before["data"]["amount"]
    assert deal["data"]["product"] == before["data"]["product"]


@pytest.mark.parametrize(("deals", "copies"), [(1, 1), (2_000, 1), (10_000, 2), (100_001, 21)])
def test_the_plan_covers_the_deals_asked_for_in_copies_of_at_most_5000(
        deals: int, copies: int) -> None:
    planned, per_copy = plan(deals)
    assert planned == copies and per_copy <= 5_000 and planned * per_copy >= deals


def test_no_deals_is_refused() -> None:
    with pytest.raises(ValueError, match="deals"):
        plan(0)
