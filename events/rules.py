"""The rules each sales aggregate enforces: pure functions, no I/O.

Every event belongs to one subject (a lead, deal, customer, order, rep, target or
the tenant's pipeline). `decide` refuses an event its subject cannot accept;
`evolve` is the state after an accepted one. A subject's `History` puts its events in
business time (events/order.py) and judges a late event where it falls in that history,
and every event after it again. The event store wraps these.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from events.errors import Refused, Unknown
from events.order import EventKey, event_key
from events.parsing import SalesEvent


@dataclass(frozen=True)
class Subject:
    kind: str  # lead | deal | customer | order | rep | target | pipeline | scoring
    key: str
    key_field: str  # the data field that names it, for error messages


@dataclass(frozen=True)
class State:
    last_at: datetime  # the latest event folded so far, in business time
    status: str = "open"
    stage: str | None = None
    amount: Decimal = Decimal(0)
    paid: Decimal = Decimal(0)
    stages: tuple[str, ...] = ()


class World(Protocol):
    """What a rule may ask about other subjects (answered by the event store)."""

    def stages(self) -> tuple[str, ...]: ...

    def exists(self, kind: str, key: str) -> bool: ...


CREATES: dict[str, str] = {
    "lead.created": "lead",
    "deal.created": "deal",
    "customer.created": "customer",
    "order.booked": "order",
    "rep.joined": "rep",
}
# Configuration events create their subject or replace its state.
UPSERTS = {"target.set", "pipeline.configured", "scoring.configured"}


def subject_of(event: SalesEvent) -> Subject:
    data = event.data
    prefix = event.type.split(".")[0]
    if prefix == "activity":
        for kind in ("deal", "lead", "customer"):
            key = getattr(data, f"{kind}_id")
            if key:
                return Subject(kind, key, f"data.{kind}_id")
    if prefix == "quote":
        return Subject("deal", data.deal_id, "data.deal_id")  # type: ignore[attr-defined]
    if prefix == "payment":
        return Subject("order", data.order_id, "data.order_id")  # type: ignore[attr-defined]
    if prefix == "target":
        t = data
        key = f"{t.scope}/{t.scope_id or '*'}/{t.period}/{t.metric}"  # type: ignore[attr-defined]
        return Subject("target", key, "data")
    if prefix == "pipeline":
        return Subject("pipeline", event.tenant, "data")
    if prefix == "scoring":
        return Subject("scoring", event.tenant, "data")
    return Subject(prefix, getattr(data, f"{prefix}_id"), f"data.{prefix}_id")


def decide(event: SalesEvent, subject: Subject, state: State | None, world: World) -> None:
    """Raise `Refused` if `state`, the subject as it stood at the event's own time (None:
    the subject does not exist yet), cannot accept `event`; `Unknown` if it names a subject
    not known at all."""
    creates = CREATES.get(event.type) == subject.kind
    if state is None and not (creates or event.type in UPSERTS):
        raise Unknown(subject.key_field, subject.kind, subject.key)
    if state is not None and creates:
        raise Refused(subject.key_field, f"{subject.kind} {subject.key!r} already exists",
                      status=409)
    check = _CHECKS.get(event.type)
    if check:
        check(event, subject, state, world)


def evolve(event: SalesEvent, state: State | None) -> State:
    base = state or State(last_at=event.occurred_at)
    change = _CHANGES.get(event.type)
    # One copy of the state per event: `replace` is most of what evolving costs.
    return replace(base, last_at=max(base.last_at, event.occurred_at),
                   **(change(event, base) if change else {}))


@dataclass
class History:
    """A subject's events that shape its state, in business time, and its state after them.

    Events that change no state and need none to be judged (activities) are not kept: only
    their latest time is. Appending in time order costs one `evolve`; a late event is judged
    against the state at its own time, and every later event is judged again after it."""

    entries: list[tuple[EventKey, SalesEvent]] = field(default_factory=list)
    state: State | None = None

    def judge(self, event: SalesEvent, subject: Subject, world: World) -> None:
        """Raise `Refused` unless `event`, put in its place, leaves a history that is valid
        at every step."""
        key = event_key(event.occurred_at, event.type, event.id)
        at = bisect_right(self.entries, key, key=lambda entry: entry[0])
        if at == len(self.entries):
            decide(event, subject, self.state, world)
            return
        if at == 0 and self.entries and not (event.type in UPSERTS
                                             or CREATES.get(event.type) == subject.kind):
            first = self.entries[0][1]
            raise Refused("occurred_at", f"earlier than this {subject.kind}'s creation "
                          f"({first.occurred_at.isoformat()})")
        state = _fold(e for _, e in self.entries[:at])
        decide(event, subject, state, world)
        state = evolve(event, state)
        for _, later in self.entries[at:]:
            try:
                _still_valid(later, subject, state)
            except Refused as refused:
                raise Refused(refused.errors[0].field, f"it would make the later {later.type} "
                              f"{later.id!r} ({later.occurred_at.isoformat()}) invalid: "
                              f"{refused.errors[0].message}", status=refused.status) from None
            state = evolve(later, state)

    def add(self, event: SalesEvent) -> None:
        if event.type not in _SHAPES_STATE:
            if self.state is not None:
                self.state = replace(self.state, last_at=max(self.state.last_at,
                                                             event.occurred_at))
            return
        key = event_key(event.occurred_at, event.type, event.id)
        if not self.entries or key > self.entries[-1][0]:
            self.entries.append((key, event))
            self.state = evolve(event, self.state)
            return
        self.entries.insert(bisect_right(self.entries, key, key=lambda entry: entry[0]),
                            (key, event))
        last_at = self.state.last_at if self.state else event.occurred_at
        state = _fold(e for _, e in self.entries)
        self.state = state and replace(state, last_at=max(state.last_at, last_at))


def _fold(events: Any) -> State | None:
    state: State | None = None
    for event in events:
        state = evolve(event, state)
    return state


def _still_valid(event: SalesEvent, subject: Subject, state: State) -> None:
    """The checks of an event already stored that depend on its subject's state, judged
    again when an earlier event arrives late."""
    recheck = _RECHECKS.get(event.type)
    if recheck:
        recheck(event, subject, state)


# --- checks -----------------------------------------------------------------

def _refs_exist(world: World, event: SalesEvent, *kinds: str) -> None:
    # Known at all, whenever it arrived: a CRM may date a deal before its lead's first contact.
    for kind in kinds:
        key = getattr(event.data, f"{kind}_id", None)
        if key and not world.exists(kind, key):
            raise Unknown(f"data.{kind}_id", kind, key)


def _stage_in_pipeline(world: World, stage: str | None) -> None:
    if stage is not None and stage not in world.stages():
        raise Refused("data.stage", f"{stage!r} is not a stage of this tenant's pipeline "
                      f"({', '.join(world.stages())})")


def _deal_is_open(subject: Subject, state: State | None) -> None:
    if subject.kind == "deal" and state is not None and state.status != "open":
        raise Refused("data.deal_id", f"deal {subject.key!r} is {state.status}: "
                      "a closed deal does not change", status=409)


def _check_deal_created(event: SalesEvent, subject: Subject, state: State | None,
                        world: World) -> None:
    _stage_in_pipeline(world, event.data.stage)  # type: ignore[attr-defined]
    _refs_exist(world, event, "customer", "lead")


def _check_deal_change(event: SalesEvent, subject: Subject, state: State | None,
                       world: World) -> None:
    _deal_is_open(subject, state)
    if event.type == "deal.stage_changed":
        _stage_in_pipeline(world, event.data.stage)  # type: ignore[attr-defined]


def _check_lead_change(event: SalesEvent, subject: Subject, state: State | None,
                       world: World) -> None:
    # Conversion is final: no requalifying, disqualifying or converting again.
    if state is not None and state.status == "converted":
        raise Refused("data.lead_id", f"lead {subject.key!r} is already converted", status=409)


def _check_order_booked(event: SalesEvent, subject: Subject, state: State | None,
                        world: World) -> None:
    _refs_exist(world, event, "customer", "deal")


def _check_payment(event: SalesEvent, subject: Subject, state: State | None,
                   world: World) -> None:
    assert state is not None  # decide() refused payments for unknown orders
    amount: Decimal = event.data.amount  # type: ignore[attr-defined]
    if state.paid + amount > state.amount:
        raise Refused("data.amount", f"payment of {amount} would bring order {subject.key!r} "
                      f"to {state.paid + amount} paid of {state.amount}", status=409)


def _check_target(event: SalesEvent, subject: Subject, state: State | None,
                  world: World) -> None:
    data = event.data
    if data.scope != "company" and not data.scope_id:  # type: ignore[attr-defined]
        raise Refused("data.scope_id", f"a {data.scope} target names its "  # type: ignore[attr-defined]
                      "scope_id")


def _check_pipeline(event: SalesEvent, subject: Subject, state: State | None,
                    world: World) -> None:
    stages = event.data.stages  # type: ignore[attr-defined]
    if len(set(stages)) != len(stages):
        raise Refused("data.stages", "stages must be distinct")
    if {"won", "lost"} & set(stages):
        raise Refused("data.stages", "won and lost are outcomes, not open stages")


_DEAL_CHANGES = ("deal.stage_changed", "deal.amount_changed", "deal.owner_changed",
                 "deal.close_date_changed", "quote.sent", "deal.won", "deal.lost")
_CHECKS: dict[str, Any] = {
    "deal.created": _check_deal_created,
    **dict.fromkeys(_DEAL_CHANGES, _check_deal_change),
    "lead.converted": _check_lead_change,
    "lead.qualified": _check_lead_change,
    "lead.disqualified": _check_lead_change,
    "order.booked": _check_order_booked,
    "payment.received": _check_payment,
    "target.set": _check_target,
    "pipeline.configured": _check_pipeline,
}


# --- changes ----------------------------------------------------------------

# Each change names the fields an event sets (besides `last_at`, which every event sets).

def _deal_created(event: SalesEvent, state: State) -> dict[str, Any]:
    d = event.data
    return {"stage": d.stage, "amount": d.amount or Decimal(0)}  # type: ignore[attr-defined]


_CHANGES: dict[str, Any] = {
    "deal.created": _deal_created,
    "deal.stage_changed": lambda e, s: {"stage": e.data.stage},
    "deal.amount_changed": lambda e, s: {"amount": e.data.amount},
    "deal.won": lambda e, s: {"status": "won",
                              "amount": s.amount if e.data.amount is None else e.data.amount},
    "deal.lost": lambda e, s: {"status": "lost"},
    "lead.qualified": lambda e, s: {"status": "qualified"},
    "lead.disqualified": lambda e, s: {"status": "disqualified"},
    "lead.converted": lambda e, s: {"status": "converted"},
    "order.booked": lambda e, s: {"amount": e.data.amount},
    "payment.received": lambda e, s: {"paid": s.paid + e.data.amount},
    "target.set": lambda e, s: {"amount": e.data.value},
    "pipeline.configured": lambda e, s: {"stages": tuple(e.data.stages)},
}

_NO_WORLD: Any = None  # these checks ask nothing of other subjects
# What is judged again, against the state at its own time, when an earlier event arrives.
_RECHECKS: dict[str, Any] = {
    **dict.fromkeys(_DEAL_CHANGES, lambda e, subject, state: _deal_is_open(subject, state)),
    **dict.fromkeys(("lead.converted", "lead.qualified", "lead.disqualified"),
                    lambda e, subject, state: _check_lead_change(e, subject, state, _NO_WORLD)),
    "payment.received": lambda e, subject, state: _check_payment(e, subject, state, _NO_WORLD),
}
# Events whose place in time matters to a subject's state or to a check of it.
_SHAPES_STATE = frozenset(_CHANGES) | frozenset(_RECHECKS) | frozenset(CREATES)
