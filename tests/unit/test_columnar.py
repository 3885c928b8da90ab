"""The column store answers the funnel and the breakdowns exactly as the Snapshot views
do, whichever filters are asked and however the records arrived (all at once, or
changed record by record as the projector applies events)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date
from functools import cache
from typing import Any

import pytest

from events.parsing import parse_event
from events.rules import subject_of
from events.vocabulary import DIMENSIONS
from projections import columnar, columnar_views
from projections.breakdown import GROUPINGS, breakdown
from projections.columnar import Columns
from projections.facts import Change, Record, apply
from projections.funnel import funnel
from projections.snapshot import Filters, Snapshot
from services.simulate.scaled import Template, template
from tests.builders import ev
from tests.depth import QUICK
from tests.history import one_change_at_a_time

TZ = "Asia/Shanghai"


@cache
def year() -> Template:
    return template(300, seed=11)


def fold(changes: list[Change]) -> dict[str, dict[str, Record]]:
    records: dict[str, dict[str, Record]] = {}
    for change in changes:
        kind = records.setdefault(change.kind, {})
        updated = apply(kind.get(change.key), change)
        if updated is not None:
            kind[change.key] = updated
    return records


def columns_of(records: dict[str, dict[str, Record]]) -> Columns:
    """Fed as the API's loader feeds it: reps first, then the rest in any order."""
    stages = Snapshot({"pipeline": records.get("pipeline", {})}).stages
    columns = Columns(TZ, stages)
    for kind in ("rep", "customer", "deal", "lead"):
        chunk = list(records.get(kind, {}).values())
        for start in range(0, len(chunk), 500):
            columns.put_many(kind, chunk[start:start + 500])
    return columns


def filter_cases(records: dict[str, dict[str, Record]], count: int, seed: int
                 ) -> Iterator[Filters]:
    """No filter, each dimension's values, a date window, and random mixes of them."""
    snapshot = Snapshot(records, TZ)
    values = {name: sorted({v for d in snapshot.deals if (v := d.dims.get(name))})
              for name in DIMENSIONS}
    yield Filters()
    for name in DIMENSIONS:
        for value in values[name][:3]:
            yield Filters(dims={name: value})
    yield Filters(dims={"rep": "nobody"})
    yield Filters(date(2017, 3, 1), date(2017, 5, 31))
    pick = random.Random(seed)
    for _ in range(count):
        dims = {name: pick.choice(values[name]) for name in pick.sample(DIMENSIONS, 2)
                if values[name]}
        start = date(2017, pick.randint(1, 12), 1)
        yield Filters(start if pick.random() < 0.5 else None,
                      date(2017, 12, 31) if pick.random() < 0.5 else None, dims)


def same_answers(records: dict[str, dict[str, Record]], columns: Columns, cases: int = 12,
                 seed: int = 1) -> None:
    snapshot = Snapshot(records, TZ)
    for filters in filter_cases(records, cases, seed):
        assert columnar_views.funnel(columns, filters) == funnel(snapshot, filters), filters
        for by in GROUPINGS:
            assert (columnar_views.breakdown(columns, filters, by)
                    == breakdown(snapshot, filters, by)), (filters, by)


def test_a_simulated_year_gives_the_snapshot_views_answers_under_any_filter() -> None:
    records = fold(year().changes)
    assert len(records["deal"]) > 250
    same_answers(records, columns_of(records), cases=25)


def test_trimmed_columns_with_no_room_for_joined_dimensions_answer_the_same(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Every joined dimension is evicted as soon as the next one is made.
    monkeypatch.setattr(columnar, "JOINED_BYTES", 0)
    changes = year().changes
    columns = columns_of(fold(changes[:len(changes) // 2]))
    columns.trim()
    records = fold(changes)  # then the rest: new rows, new keys, more activities
    for kind in ("rep", "customer", "deal", "lead"):
        columns.put_many(kind, list(records.get(kind, {}).values()))
    same_answers(records, columns, cases=8, seed=3)


@pytest.mark.parametrize("block", [1, 2, 7, 64, 1000])
def test_joins_and_counts_a_block_of_rows_at_a_time_answer_the_same_at_any_block_size(
        monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    # Blocks that split the tables at many places, evenly or not; with no room for joined
    # dimensions, each one is joined again, block by block, for every question.
    monkeypatch.setattr(columnar, "BLOCK_ROWS", block)
    monkeypatch.setattr(columnar, "JOINED_BYTES", 0)
    changes = year().changes
    if QUICK and block < 64:  # a row a Python step: the inner loop splits an eighth of the year
        changes = changes[:len(changes) // 8]
    records = fold(changes)
    columns = columns_of(records)
    assert columns.leads.size > block and columns.activities.size > block
    same_answers(records, columns, cases=3, seed=block)


def test_a_load_reserved_for_every_kind_first_never_grows_its_keyed_tables() -> None:
    # Deals name their leads and customers before those load: the room reserved for the
    # leads holds them too, instead of being reserved again on top of them.
    records = fold(year().changes)
    stages = Snapshot({"pipeline": records.get("pipeline", {})}).stages
    columns = Columns(TZ, stages)
    kinds = ("rep", "customer", "deal", "lead")
    for kind in kinds:
        columns.reserve(kind, len(records.get(kind, {})))
    reserved = {name: len(table.cols["exists"]) for name, table in
                (("deal", columns.deals), ("lead", columns.leads),
                 ("customer", columns.customers))}
    for kind in kinds:
        columns.put_many(kind, list(records.get(kind, {}).values()))
    assert reserved == {"deal": columns.deals.size, "lead": columns.leads.size,
                        "customer": columns.customers.size}
    assert {name: len(table.cols["exists"]) for name, table in
            (("deal", columns.deals), ("lead", columns.leads),
             ("customer", columns.customers))} == reserved
    columns.trim()
    same_answers(records, columns, cases=3, seed=5)


def test_records_changed_one_batch_at_a_time_give_the_same_answers_at_every_step() -> None:
    for index, records, columns in one_change_at_a_time(year().changes, [7, 3]):
        same_answers(records, columns, cases=4, seed=index)


def world(*events: dict[str, Any]) -> dict[str, dict[str, Record]]:
    versions: dict[tuple[str, str], int] = {}
    changes = []
    for position, event in enumerate(events, 1):
        parsed = parse_event({**event, "tenant": "t"}, tenant="t")
        subject = subject_of(parsed)
        versions[subject.kind, subject.key] = versions.get((subject.kind, subject.key), 0) + 1
        changes.append(Change(position, "t", subject.kind, subject.key,
                              versions[subject.kind, subject.key], parsed.canonical()))
    return fold(changes)


def test_joins_follow_moves_late_leads_and_segments_whichever_record_arrives_last() -> None:
    events = [
        ev("rep.joined", "2017-01-01T09:00:00+08:00", rep_id="r1", name="A", team_id="north",
           manager_id="m1", region="east"),
        ev("rep.joined", "2017-01-01T09:00:00+08:00", rep_id="r2", name="B", team_id="south",
           manager_id="m2"),
        ev("customer.created", "2017-01-02T09:00:00+08:00", customer_id="c1", name="C",
           segment="smb"),
        ev("deal.created", "2017-01-03T09:00:00+08:00", deal_id="d1", owner_id="r1",
           stage="prospecting", amount="1200.50", customer_id="c1", lead_id="l1"),
        ev("deal.created", "2017-01-03T10:00:00+08:00", deal_id="d2", owner_id="r2",
           stage="prospecting", amount="7", product="suite"),
        ev("lead.created", "2017-01-04T09:00:00+08:00", lead_id="l1", source="web",
           owner_id="r1"),
        ev("lead.created", "2017-01-04T09:00:00+08:00", lead_id="l2", source="fair",
           owner_id="r2", region="west"),
        ev("lead.converted", "2017-01-05T09:00:00+08:00", lead_id="l2", deal_id="d2"),
        ev("activity.logged", "2017-01-06T09:00:00+08:00", activity_id="a1", kind="call",
           rep_id="r1", deal_id="d1"),
        ev("activity.logged", "2017-01-06T09:00:00+08:00", activity_id="a2", kind="visit",
           rep_id="r2", lead_id="l2", duration_min=30),
        ev("deal.stage_changed", "2017-01-07T09:00:00+08:00", deal_id="d1", stage="proposal"),
        ev("deal.won", "2017-02-07T09:00:00+08:00", deal_id="d1", amount="1300.25"),
        ev("rep.moved", "2017-03-01T09:00:00+08:00", rep_id="r1", team_id="south"),
        ev("rep.moved", "2017-03-01T09:00:00+08:00", rep_id="r2", team_id="north"),
        ev("deal.lost", "2017-03-07T09:00:00+08:00", deal_id="d2", reason="price",
           competitor="acme"),
    ]
    records = world(*events)
    shuffled = list(records.items())
    random.Random(5).shuffle(shuffled)
    for order in (records, dict(shuffled)):
        columns = Columns(TZ, Snapshot(records).stages)
        for kind in order:  # reps may come after the rows that point at them
            for record in order[kind].values():
                columns.put(kind, record)
        same_answers(records, columns, cases=20)


@pytest.mark.parametrize("amounts", [
    # amounts as strings are plain decimals (events/contract.py): exponents come from places
    ["0.000001", "3"], ["1000.000", "2.50"], ["99999999999999.999999"] * 3])
def test_money_sums_keep_decimals_exact_exponent(amounts: list[str]) -> None:
    events = [ev("rep.joined", "2017-01-01T09:00:00+08:00", rep_id="r1", name="A", team_id="t")]
    for i, amount in enumerate(amounts):
        events += [ev("deal.created", "2017-01-03T09:00:00+08:00", deal_id=f"d{i}",
                      owner_id="r1", stage="prospecting", amount=amount),
                   ev("deal.won", "2017-01-05T09:00:00+08:00", deal_id=f"d{i}")]
    records = world(*events)
    same_answers(records, columns_of(records), cases=0)
