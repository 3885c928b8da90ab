"""Properties of the sales ledger under any sequence of batches, valid or not.

A hypothesis state machine sends batches of generated contract events through the real
decision path (events/rules.py, services/eventstore/ledger.py) on the in-memory store: out of order,
for unknown or closed subjects, with duplicate ids, bad stages, negative or unparsable
amounts, unknown types, missing fields. It knows nothing of the sales rules; it checks
what must hold whatever the rules decide:

- the store holds exactly the accepted events, each once, in the order they were
  accepted (so no refused event, and nothing of a refused batch, is ever stored);
- a batch is refused as a whole or answered per event, and an event is `duplicate`
  exactly when its id was accepted before (earlier or in the same batch);
- each aggregate's state is its stored events replayed, and an answered duplicate
  changes nothing.

Event ids are reused the way clients retry: the same event again, or the same id on
the same subject. An id reused for *another* subject is a known gap, pinned by the xfail
test `test_event_id_reused_for_another_subject_is_never_stored_twice` (test_ledger.py).

Profiles: `HYPOTHESIS_PROFILE=ci` runs fewer, shorter sequences; `thorough` many more.
"""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from events.order import envelope_key
from events.parsing import parse_event
from events.rules import State, evolve, subject_of
from services.eventstore.ledger import BatchRefused, SalesLedger, SalesSubject

TENANT = "acme"
START = datetime(2017, 3, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
settings.register_profile("ci", max_examples=25, stateful_step_count=15, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=30, stateful_step_count=20, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=1000, stateful_step_count=40,
                          deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`good`, and one time in eight `bad`: most events pass, so later ones meet real state."""
    return st.sampled_from(range(8)).flatmap(lambda n: bad if n == 0 else good)


# Few keys, so events keep meeting the same subjects; the 9s are never created.
DEALS = mostly(st.sampled_from(["D1", "D1", "D2", "D3"]), st.just("D9"))
CUSTOMERS = mostly(st.sampled_from(["C1", "C1", "C2"]), st.just("C9"))
LEADS = mostly(st.sampled_from(["L1", "L1", "L2"]), st.just("L9"))
ORDERS = mostly(st.sampled_from(["O1", "O1", "O2"]), st.just("O9"))
REPS = st.sampled_from(["r1", "r2"])
STAGES = mostly(st.sampled_from(["prospecting", "qualification", "proposal", "negotiation"]),
                st.sampled_from(["demo", "won", "", "Proposal"]))
AMOUNTS = mostly(st.sampled_from(["0", "10", "100.5", "250", 75, 0.1, "1e3"]),
                 st.sampled_from(["-5", -1, "abc", "NaN", "1.0000001", None, True]))
# An event's time: None = the machine's clock (which only moves on), else a quirk: long ago
# (earlier than what its subject has seen), in another zone, or no date at all.
TIMES = mostly(st.none(), st.sampled_from([
    "2017-03-01T00:00:00", "2017-03-01T00:00:00Z", "2099-01-01T00:00:00-05:00", "soon",
    "2017-13-01T00:00:00", ""]))


def _data(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A data object whose optional fields (strategies that may give None) are left out."""
    return st.fixed_dictionaries(fields).map(
        lambda d: {k: v for k, v in d.items() if v is not None})


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


DATA: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "rep.joined": _data(rep_id=REPS, name=st.just("Rep"), team_id=st.just("north")),
    "customer.created": _data(customer_id=CUSTOMERS, segment=_maybe(st.just("smb"))),
    "lead.created": _data(lead_id=LEADS, source=_maybe(st.just("web"))),
    "lead.assigned": _data(lead_id=LEADS, owner_id=REPS),
    "lead.qualified": _data(lead_id=LEADS),
    "lead.disqualified": _data(lead_id=LEADS, reason=_maybe(st.just("budget"))),
    "lead.converted": _data(lead_id=LEADS, deal_id=DEALS),
    "deal.created": _data(deal_id=DEALS, owner_id=REPS, customer_id=_maybe(CUSTOMERS),
                          lead_id=_maybe(LEADS), amount=_maybe(AMOUNTS), stage=_maybe(STAGES)),
    "deal.stage_changed": _data(deal_id=DEALS, stage=STAGES),
    "deal.amount_changed": _data(deal_id=DEALS, amount=AMOUNTS),
    "deal.owner_changed": _data(deal_id=DEALS, owner_id=REPS),
    "quote.sent": _data(deal_id=DEALS, quote_id=st.just("Q1"), amount=AMOUNTS),
    "deal.won": _data(deal_id=DEALS, amount=_maybe(AMOUNTS)),
    "deal.lost": _data(deal_id=DEALS, reason=_maybe(st.just("price"))),
    "activity.logged": st.one_of(
        _data(activity_id=st.just("A1"), kind=mostly(st.just("call"), st.just("nap")),
              rep_id=REPS, **{kind: ids}) for kind, ids in
        (("deal_id", DEALS), ("lead_id", LEADS), ("customer_id", CUSTOMERS))),
    "order.booked": _data(order_id=ORDERS, customer_id=CUSTOMERS, amount=AMOUNTS,
                          deal_id=_maybe(DEALS)),
    "payment.received": _data(payment_id=st.just("P1"), order_id=ORDERS, amount=AMOUNTS),
    "target.set": _data(scope=mostly(st.sampled_from(["company", "rep"]), st.just("galaxy")),
                        scope_id=_maybe(REPS), period=mostly(st.just("2017"), st.just("2017-Q5")),
                        metric=st.just("won_value"), value=AMOUNTS),
    "pipeline.configured": _data(stages=mostly(
        st.just(["prospecting", "qualification", "proposal", "negotiation"]),
        st.lists(STAGES, max_size=4))),
}
# Creations twice as likely, so the few keys keep existing.
TYPES = st.sampled_from(sorted(DATA) + ["rep.joined", "customer.created", "lead.created",
                                        "deal.created", "order.booked"])
# Events the contract does not know, or that lack what their type needs.
MALFORMED = st.sampled_from([
    ("deal.teleported", {"deal_id": "D1"}),
    ("deal.stage_changed", {"stage": "proposal"}),
    ("order.booked", {"order_id": "O1"}),
    ("customer.created", {"customer_id": ""}),
    ("customer.created", {"customer_id": "C" * 129}),
    ("activity.logged", {"activity_id": "A2", "kind": "call", "rep_id": "r1"}),
    ("activity.logged", {"activity_id": "A2", "kind": "call", "rep_id": "r1",
                         "deal_id": "D1", "lead_id": "L1"}),
])


@st.composite
def events(draw: st.DrawFn) -> Any:
    """One raw event, without its id (the machine gives each a fresh one)."""
    if draw(st.integers(0, 79)) == 0:
        return draw(st.sampled_from(["not an event", 7, None, []]))
    type_, data = draw(mostly(TYPES.flatmap(lambda t: DATA[t].map(lambda d: (t, d))),
                              MALFORMED))
    raw = {"type": type_, "occurred_at": draw(TIMES), "data": data}
    envelope_quirk = draw(st.integers(0, 79))
    if envelope_quirk == 0:
        raw["tenant"] = "globex"  # another tenant than the caller's
    elif envelope_quirk == 1:
        raw["schema_version"] = 2
    elif envelope_quirk == 2:
        raw["surprise"] = True
    return raw


def replayed(stored: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[State, list[str]]]:
    """Each subject's state and event ids, folding the stored events with the rules' evolve
    in business time (CONTRACT.md: the order of a history, whatever its arrival)."""
    folded: dict[tuple[str, str], tuple[State | None, list[str]]] = defaultdict(
        lambda: (None, []))
    for envelope in sorted(stored, key=envelope_key):
        event = parse_event(envelope, tenant=TENANT)
        subject = subject_of(event)
        state, ids = folded[subject.kind, subject.key]
        folded[subject.kind, subject.key] = (evolve(event, state), [*ids, event.id])
    return {key: (state, ids) for key, (state, ids) in folded.items() if state is not None}


class LedgerUnderAnyInput(RuleBasedStateMachine):
    env: dict[str, str] = {"PERSISTENCE_MODULE": "eventsourcing.popo"}

    def __init__(self) -> None:
        super().__init__()
        self.ledger = SalesLedger(env=self.env)
        self.ids = (f"evt-{n}" for n in itertools.count())
        self.clock = (START + timedelta(minutes=m) for m in itertools.count(60))
        self.accepted: list[dict[str, Any]] = []  # the raw events accepted, in order
        self.refused: list[Any] = []  # raw events of refused batches

    # --- helpers ---------------------------------------------------------------

    def stored(self) -> list[dict[str, Any]]:
        notifications = self.ledger.recorder.select_notifications(
            0, 1_000_000, inclusive_of_start=False)
        return [self.ledger.mapper.to_domain_event(n).envelope for n in notifications]

    def accepted_ids(self) -> set[str]:
        return {raw["id"] for raw in self.accepted}

    def stamped(self, raw: Any) -> Any:
        """The event with a fresh id and, unless it brings its own, the clock's time."""
        if not isinstance(raw, dict):
            return raw
        at = raw["occurred_at"] or next(self.clock).isoformat()
        return {"id": next(self.ids), **raw, "occurred_at": at}

    def subject(self, raw: dict[str, Any]) -> SalesSubject | None:
        subject = subject_of(parse_event(raw, tenant=TENANT))
        return self.ledger.load(TENANT, subject.kind, subject.key)

    def send(self, batch: list[Any]) -> None:
        known = self.accepted_ids()
        before = self.stored()
        try:
            # unknown ids refused, not held: this machine pins accepted against refused
            outcomes = self.ledger.record(batch, tenant=TENANT, unknown="refuse")
        except BatchRefused as refused:
            assert refused.errors, "a refused batch names at least one problem"
            assert all(0 <= i < len(batch) for i, _ in refused.errors)
            assert refused.status in (409, 422)
            assert self.stored() == before, "a refused batch stored something"
            self.refused.extend(raw for raw in batch if isinstance(raw, dict))
            return
        assert all(isinstance(raw, dict) for raw in batch), "a non-object was accepted"
        assert [o.id for o in outcomes] == [raw["id"] for raw in batch]
        for raw, outcome in zip(batch, outcomes, strict=True):
            expected = "duplicate" if raw["id"] in known else "accepted"
            assert outcome.status == expected, (raw, outcome)
            if outcome.status == "accepted":
                self.accepted.append(raw)
                known.add(raw["id"])

    # --- rules -----------------------------------------------------------------

    @initialize()
    def the_ones_exist(self) -> None:
        # D1, C1, L1, O1 and r1 exist from the start, so most events find their subject.
        self.send([self.stamped({"type": t, "occurred_at": None, "data": d}) for t, d in [
            ("customer.created", {"customer_id": "C1"}),
            ("rep.joined", {"rep_id": "r1", "name": "One", "team_id": "north"}),
            ("deal.created", {"deal_id": "D1", "owner_id": "r1", "amount": "100"}),
            ("order.booked", {"order_id": "O1", "customer_id": "C1", "amount": "100"}),
            ("lead.created", {"lead_id": "L1"}),
        ]])
        assert len(self.accepted) == 5

    @rule(batch=st.lists(events(), min_size=1, max_size=4), data=st.data())
    def a_batch_arrives(self, batch: list[Any], data: st.DataObject) -> None:
        batch = [self.stamped(raw) for raw in batch]
        dicts = [raw for raw in batch if isinstance(raw, dict)]
        if dicts and data.draw(st.booleans(), label="repeat one inside the batch"):
            batch.insert(data.draw(st.integers(0, len(batch))), data.draw(st.sampled_from(dicts)))
        if self.accepted and data.draw(st.booleans(), label="mix in an accepted one"):
            batch.insert(data.draw(st.integers(0, len(batch))),
                         data.draw(st.sampled_from(self.accepted)))
        self.send(batch)

    @precondition(lambda self: bool(self.accepted))
    @rule(data=st.data(), later=st.booleans())
    def an_accepted_event_is_retried(self, data: st.DataObject, later: bool) -> None:
        raw = data.draw(st.sampled_from(self.accepted))
        if later:  # same id, same subject, another moment: still the same event
            raw = {**raw, "occurred_at": next(self.clock).isoformat()}
        aggregate = self.subject(raw)
        assert aggregate is not None
        state, version, high_water = aggregate.state, aggregate.version, len(self.stored())
        (outcome,) = self.ledger.record([raw], tenant=TENANT, unknown="refuse")
        assert outcome.status == "duplicate"
        after = self.subject(raw)
        assert after is not None
        assert (after.state, after.version) == (state, version)
        assert len(self.stored()) == high_water

    @precondition(lambda self: bool(self.refused))
    @rule(data=st.data())
    def an_event_of_a_refused_batch_is_sent_alone(self, data: st.DataObject) -> None:
        # Its id was never stored, so it is judged afresh: accepted or refused, never duplicate.
        raw = data.draw(st.sampled_from(self.refused))
        if raw["id"] not in self.accepted_ids():
            self.send([raw])

    # --- invariants ------------------------------------------------------------

    @invariant()
    def the_store_holds_exactly_the_accepted_events_in_order(self) -> None:
        stored = self.stored()
        assert [e["id"] for e in stored] == [raw["id"] for raw in self.accepted]
        assert [e["type"] for e in stored] == [raw["type"] for raw in self.accepted]

    @invariant()
    def every_aggregate_is_its_stored_events_replayed(self) -> None:
        for (kind, key), (state, ids) in replayed(self.stored()).items():
            aggregate = self.ledger.load(TENANT, kind, key)
            assert aggregate is not None, (kind, key)
            assert aggregate.state == state, (kind, key)
            assert aggregate.seen == set(ids), (kind, key)
            assert aggregate.version == len(ids), (kind, key)

    @invariant()
    def money_is_never_negative(self) -> None:
        for state, _ in replayed(self.stored()).values():
            assert state.amount >= Decimal(0) and state.paid >= Decimal(0)
            assert state.paid <= state.amount


class LedgerWithAggregateCache(LedgerUnderAnyInput):
    """The same, with the library's aggregate cache on: a refused batch must not leave
    changed aggregates behind in memory."""

    env = {"PERSISTENCE_MODULE": "eventsourcing.popo", "AGGREGATE_CACHE_MAXSIZE": "100"}


@pytest.mark.parametrize("machine", [LedgerUnderAnyInput, LedgerWithAggregateCache],
                         ids=["in-memory", "with-aggregate-cache"])
def test_ledger_stays_consistent_under_any_sequence_of_batches(
        machine: type[LedgerUnderAnyInput]) -> None:
    machine.TestCase.settings = PROFILE
    machine.TestCase().runTest()
