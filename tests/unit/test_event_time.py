"""Order of arrival never changes a figure (CONTRACT.md, "Order of arrival").

A simulated history is sent to the ledger (the real eventsourcing code, in memory) once
sorted by business time and once shuffled and cut into random batches, as unordered
webhook senders and late mobile syncs deliver it: early events are held until their
subject arrives. The stored events are then folded into fact records exactly as the
projector folds the relayed messages, and every view is computed from them. Both
arrivals must give the same records and the same answers.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.vocabulary import HELD
from projections.facts import Change, Record, apply
from services.eventstore.ledger import SalesLedger
from services.simulate.arrival import late_and_early
from tests.history import simulated

TENANT = "default"


def stored_records(batches: list[list[dict[str, Any]]]) -> dict[str, dict[str, Record]]:
    """The fact records after sending `batches` in turn, folded as the projector folds."""
    ledger = SalesLedger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    for batch in batches:
        outcomes = ledger.record(batch, tenant=TENANT)
        assert {o.status for o in outcomes} <= {"accepted", "held", "duplicate"}
    records: dict[str, dict[str, Record]] = defaultdict(dict)
    for n in ledger.recorder.select_notifications(0, 10_000_000, inclusive_of_start=False):
        stored = ledger.mapper.to_domain_event(n)
        change = Change(n.id, TENANT, stored.kind, stored.key, n.originator_version,
                        stored.envelope)
        updated = apply(records[stored.kind].get(stored.key), change)
        if updated is not None:
            records[stored.kind][stored.key] = updated
    return dict(records)


def figures(records: dict[str, dict[str, Record]]) -> dict[str, dict[str, Record]]:
    """The records as views read them: what waited is not a figure, and activities and
    payments are kept as they arrived (every figure drawn from them is order-free)."""
    out: dict[str, dict[str, Record]] = {}
    for kind, by_key in records.items():
        if kind == HELD:
            continue
        out[kind] = {}
        for key, rec in by_key.items():
            rec = dict(rec)
            for name in ("activities", "payments"):
                if name in rec:
                    rec[name] = sorted(rec[name], key=lambda entry: entry[-1])
            out[kind][key] = rec
    return out


def in_time_order(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=lambda e: datetime.fromisoformat(e["occurred_at"]))


def shuffled(events: list[dict[str, Any]], seed: int, max_batch: int) -> list[list[dict]]:
    rng = random.Random(seed)
    order = list(events)
    rng.shuffle(order)
    batches: list[list[dict[str, Any]]] = []
    while order:
        size = rng.randint(1, max_batch)
        batches.append(order[:size])
        order = order[size:]
    return batches


HISTORY = simulated(seed=5, days=120)
SORTED = figures(stored_records([in_time_order(HISTORY)]))


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), max_batch=st.sampled_from([1, 7, 200]))
def test_any_arrival_order_gives_the_records_of_the_sorted_history(seed: int,
                                                                   max_batch: int) -> None:
    records = stored_records(shuffled(HISTORY, seed, max_batch))
    assert figures(records) == SORTED
    # what waited for its subject was applied once the subject came, and nothing was lost
    waited = records.get(HELD, {}).values()
    assert all(not r.get("pending") and not r.get("dropped") for r in waited), waited
    assert sum(r.get("released", 0) for r in waited) > 0


def test_the_history_is_rich_enough_to_mean_something() -> None:
    deals = SORTED["deal"].values()
    assert sum(d["status"] == "won" for d in deals) >= 5
    assert sum(len(d["stages"]) > 2 for d in deals) >= 10
    assert sum(len(d.get("activities", ())) for d in deals) >= 100
    assert any(r.get("payments") for r in SORTED["order"].values())


@pytest.mark.parametrize("late_kind", ["deal.stage_changed", "deal.amount_changed",
                                       "deal.owner_changed", "deal.close_date_changed"])
def test_one_late_change_gives_the_record_of_the_sorted_history(late_kind: str) -> None:
    events = in_time_order(HISTORY)
    late = next(i for i, e in enumerate(events) if e["type"] == late_kind
                and any(later["data"].get("deal_id") == e["data"]["deal_id"]
                        and later["type"].startswith("deal.") for later in events[i + 1:]))
    arrival = [*events[:late], *events[late + 1:], events[late]]
    assert figures(stored_records([arrival])) == SORTED


def test_a_feed_with_late_and_early_events_gives_the_records_of_the_sorted_history() -> None:
    arrival = late_and_early(in_time_order(HISTORY), seed=3)
    moved = sum(a is not b for a, b in zip(arrival, in_time_order(HISTORY), strict=True))
    assert sorted(map(id, arrival)) == sorted(map(id, HISTORY)) and moved > len(HISTORY) / 10
    assert figures(stored_records([arrival[i:i + 500] for i in range(0, len(arrival), 500)])) \
        == SORTED
