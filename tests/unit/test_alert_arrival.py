"""Alerts in event time: whatever order a history arrives in, the alert engine ends with the
alerts of the same history arriving sorted by business time; what a late event proves
never held is retracted, never silently dropped.

Pure: the engine fed `Change`s as the relay would (each subject's versions in arrival
order, its creating event first, as the ledger releases held events after their subject).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.engine import AlertEngine
from alerts.lifecycle import Transition
from alerts.rules import DEFAULT_STAGES, RuleSettings
from events.order import envelope_key
from events.parsing import parse_event
from events.rules import CREATES, subject_of
from projections.facts import Change
from services.simulate.arrival import late_and_early
from tests.depth import QUICK, examples
from tests.history import simulated

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2017, 3, 1, tzinfo=TZ)
# Short thresholds, so small histories raise, clear and re-judge alerts of every rule; two
# won deals teach a stage's stall threshold (cross-subject: a late win moves other deals').
SETTINGS = RuleSettings(stall_days=3, stall_min_samples=2, inactive_days=2, lead_sla_hours=24,
                        engagement_recent_days=3, engagement_prior_days=6)
CREATING = {"rep.joined", "deal.created", "lead.created", "customer.created", "order.booked",
            "target.set"}

Event = dict[str, Any]


def feed(events: list[Event], end: datetime, rules: RuleSettings = SETTINGS
         ) -> tuple[AlertEngine, list[Transition]]:
    engine = AlertEngine(rules)
    versions: Counter[tuple[str, str]] = Counter()
    out: list[Transition] = []
    for position, raw in enumerate(events, 1):
        event = parse_event(raw, tenant="default", tz="Asia/Shanghai")
        subject = subject_of(event)
        versions[subject.kind, subject.key] += 1
        out += engine.apply(Change(position, "default", subject.kind, subject.key,
                                   versions[subject.kind, subject.key], event.canonical()))
    out += engine.advance(end)
    return engine, out


def final(transitions: list[Transition]) -> dict[str, tuple[Any, ...]]:
    """Per alert id, as the last transition told it (retracted ones left out): what a sink
    that applies the transitions in order ends with."""
    last: dict[str, Transition] = {}
    for t in transitions:
        last[t.alert.id] = t
    return {aid: (t.alert.rule, t.alert.subject, t.alert.became_true_at, t.alert.resolved_at)
            for aid, t in last.items() if t.kind != "retracted"}


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    """A valid small history: deals moving through stages with activities, next steps and
    a close; leads assigned and contacted; customers with orders and interactions; a rep's
    activity target. Every instant distinct (events of one instant are judged together
    when the past is judged again, one by one in order: docs/ALERTS.md)."""
    moments = iter(range(1, 10_000))
    events: list[Event] = []

    def at(hours: int) -> str:  # distinct instants: a second apart at least
        return (T0 + timedelta(hours=hours, seconds=next(moments))).isoformat()

    def add(type_: str, hours: int, **data: Any) -> None:
        events.append({"id": f"e{len(events):03d}", "type": type_, "occurred_at": at(hours),
                       "data": data})

    add("rep.joined", -24, rep_id="R1", name="A", team_id="T1", manager_id="M1")
    if draw(st.booleans()):
        add("target.set", -12, scope="rep", scope_id="R1", period="2017-03",
            metric="activities", value=str(draw(st.integers(2, 12))))
    gap = st.integers(1, 100)
    for d in range(draw(st.integers(1, 4))):
        deal, t = f"D{d}", draw(st.integers(0, 150))
        add("deal.created", t, deal_id=deal, owner_id="R1", stage="prospecting", amount="100")
        for step in draw(st.lists(st.sampled_from(["stage", "activity", "next"]), max_size=5)):
            t += draw(gap)
            if step == "stage":
                add("deal.stage_changed", t, deal_id=deal,
                    stage=draw(st.sampled_from(DEFAULT_STAGES)))
            elif step == "activity":
                add("activity.logged", t, deal_id=deal, activity_id=f"a{len(events)}",
                    kind="call", rep_id="R1")
            else:
                due = T0 + timedelta(hours=t + draw(st.integers(1, 150)))
                add("activity.scheduled", t, deal_id=deal, activity_id=f"s{len(events)}",
                    kind="meeting", rep_id="R1", due_at=due.isoformat())
        close = draw(st.sampled_from(["open", "won", "won", "lost"]))
        if close != "open":
            t += draw(gap)
            add(f"deal.{close}", t, deal_id=deal)
            if draw(st.booleans()):  # post-sale work
                add("activity.logged", t + draw(gap), deal_id=deal,
                    activity_id=f"a{len(events)}", kind="visit", rep_id="R1")
    for n in range(draw(st.integers(0, 2))):
        lead, t = f"L{n}", draw(st.integers(0, 150))
        add("lead.created", t, lead_id=lead, owner_id=draw(st.sampled_from([None, "R1"])))
        for step in draw(st.lists(st.sampled_from(["assign", "activity"]), max_size=3)):
            t += draw(st.integers(1, 40))
            if step == "assign":
                add("lead.assigned", t, lead_id=lead, owner_id="R1")
            else:
                add("activity.logged", t, lead_id=lead, activity_id=f"a{len(events)}",
                    kind="email", rep_id="R1")
    for c in range(draw(st.integers(0, 2))):
        customer, t = f"C{c}", draw(st.integers(0, 50))
        add("customer.created", t, customer_id=customer)
        for step in draw(st.lists(st.sampled_from(["order", "touch"]), max_size=7)):
            t += draw(st.integers(1, 60))
            if step == "order":
                add("order.booked", t, order_id=f"O{len(events)}", customer_id=customer,
                    amount="50")
            else:
                add("activity.logged", t, customer_id=customer, activity_id=f"a{len(events)}",
                    kind="meeting", rep_id="R1")
    return events


def _subject(event: Event) -> str:
    data = event["data"]
    for field in ("deal_id", "lead_id", "order_id", "customer_id", "rep_id"):
        if data.get(field):
            return str(data[field])
    return "target"


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[list[Event], list[Event]]:
    """A history sorted by business time, and one arrival order of it: shuffled, except that
    the rep comes first and each subject's creating event before the rest of its own."""
    history = sorted(draw(histories()), key=envelope_key)
    rest = draw(st.permutations(history[1:]))
    arrived, seen, waiting = [history[0]], set(), []
    for event in rest:
        subject = _subject(event)
        if event["type"] in CREATING:
            seen.add(subject)
            arrived.append(event)
            arrived += [e for e in waiting if _subject(e) == subject]
            waiting = [e for e in waiting if _subject(e) != subject]
        elif subject in seen:
            arrived.append(event)
        else:
            waiting.append(event)  # held until its subject arrives
    return history, arrived


def _end(history: list[Event]) -> datetime:
    return max(datetime.fromisoformat(e["occurred_at"]) for e in history) + timedelta(days=5)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrivals())
def test_any_arrival_order_ends_with_the_alerts_of_the_sorted_arrival(
        case: tuple[list[Event], list[Event]]) -> None:
    history, arrived = case
    end = _end(history)
    sorted_engine, in_order = feed(history, end)
    engine, shuffled = feed(arrived, end)
    expected, got = final(in_order), final(shuffled)
    assert got == expected
    assert {a.id for a in engine.open_alerts("default")} == {
        a.id for a in sorted_engine.open_alerts("default")}
    # Nothing that never held is left standing silently: it ends retracted.
    last: dict[str, Transition] = {}
    for t in shuffled:
        last[t.alert.id] = t
    assert all(last[aid].kind == "retracted" for aid in last.keys() - expected.keys())
    assert len({t.id for t in shuffled}) == len(shuffled), "every transition id is new"
    # A restarted alerter reads the same log in the same order: it tells the same.
    assert [t.id for t in feed(arrived, end)[1]] == [t.id for t in shuffled]


def test_a_late_activity_retracts_the_inactivity_it_disproves() -> None:
    created = {"id": "e1", "type": "deal.created", "occurred_at": T0.isoformat(),
               "data": {"deal_id": "D1", "owner_id": "R1", "stage": "prospecting"}}
    rep = {"id": "e0", "type": "rep.joined", "occurred_at": (T0 - timedelta(days=1)).isoformat(),
           "data": {"rep_id": "R1", "name": "A", "team_id": "T1"}}
    call = {"id": "e2", "type": "activity.logged",
            "occurred_at": (T0 + timedelta(days=1)).isoformat(),
            "data": {"deal_id": "D1", "activity_id": "a1", "kind": "call", "rep_id": "R1"}}
    later = {"id": "e3", "type": "deal.stage_changed",
             "occurred_at": (T0 + timedelta(days=2, hours=12)).isoformat(),
             "data": {"deal_id": "D1", "stage": "proposal"}}
    _, told = feed([rep, created, later, call], T0 + timedelta(days=2, hours=12))
    kinds = [(t.kind, t.alert.rule, t.alert.became_true_at) for t in told]
    idle_from = T0 + timedelta(days=2)
    # Told inactive from day 2 (the stage change at day 2.5 is no activity), then the call
    # of day 1 arrives: the deal was never idle for two days, the alert is retracted.
    assert kinds == [("opened", "inactive_deal", idle_from),
                     ("retracted", "inactive_deal", idle_from)]
    retraction = told[-1]
    assert retraction.alert.state == "retracted" and not retraction.past
    assert retraction.id == f"{retraction.alert.id}:retracted:1"


def test_a_condition_that_held_only_in_the_past_is_told_as_past() -> None:
    def lead(id_: str, type_: str, day: float, **data: Any) -> Event:
        return {"id": id_, "type": type_, "occurred_at": (T0 + timedelta(days=day)).isoformat(),
                "data": {"lead_id": "L1", **data}}

    call = {"activity_id": "a1", "kind": "call", "rep_id": "R1"}
    # Contacted at half a day: no SLA owed. Then the assignment of day 1, arriving after the
    # call of day 3, shows the SLA clock restarted at day 1 and ran out at day 2, until the
    # call of day 3: a condition that held only in the past, told as past.
    _, told = feed([lead("e1", "lead.created", 0), lead("e2", "activity.logged", 0.5, **call),
                    lead("e3", "activity.logged", 3, **{**call, "activity_id": "a2"}),
                    lead("e4", "lead.assigned", 1, owner_id="R1")], T0 + timedelta(days=4))
    assert [(t.kind, t.past, t.alert.became_true_at, t.alert.resolved_at) for t in told] == [
        ("opened", True, T0 + timedelta(days=2), None),
        ("resolved", True, T0 + timedelta(days=2), T0 + timedelta(days=3))]
    assert all(t.known_at == T0 + timedelta(days=3) for t in told)


def released(arrival: list[Event]) -> list[Event]:
    """An arrival order as the ledger stores it: an event for a subject not created yet is
    held, and released after its subject, in business time."""
    known: set[tuple[str, str]] = set()
    held: dict[tuple[str, str], list[Event]] = {}
    out: list[Event] = []
    for raw in arrival:
        subject = subject_of(parse_event(raw, tenant="default", tz="Asia/Shanghai"))
        key = (subject.kind, subject.key)
        if CREATES.get(raw["type"]) == subject.kind:
            known.add(key)
            out += [raw, *sorted(held.pop(key, []), key=envelope_key)]
        elif key in known or subject.kind not in CREATES.values():  # targets: set, not created
            out.append(raw)
        else:
            held.setdefault(key, []).append(raw)
    assert not held
    return out


# A quick run (tests/depth.py) looks at a third of the year.
@pytest.mark.parametrize(("days", "early"), [(120 if QUICK else 365, 0.0), (120, 0.05)])
def test_simulated_history_arriving_late_and_early_ends_with_the_sorted_alerts(
        days: int, early: float) -> None:
    """20% of the events up to three days late (and 5% before their subject: held, then
    released after it; a short history, since such an event may be months ahead of its
    subject and every event after it in business time then arrives late)."""
    history = simulated(days=days)
    arrival = released(late_and_early(history, seed=5, early=early))
    assert arrival != history
    end = datetime.fromisoformat(history[-1]["occurred_at"])
    expected = final(feed(history, end, RuleSettings())[1])
    _, told = feed(arrival, end, RuleSettings())
    assert final(told) == expected
    kinds = Counter(t.kind for t in told)
    assert kinds["retracted"] > 0 and len(expected) > 400, kinds
