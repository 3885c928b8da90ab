"""The rules each sales aggregate enforces: pure functions, no I/O.

Every event belongs to one subject (a lead, deal, customer, order, rep, target or
the tenant's pipeline). `decide` refuses an event its subject cannot accept;
`evolve` is the state after an accepted one. The event store wraps these.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from events.errors import Refused
from events.parsing import SalesEvent


@dataclass(frozen=True)
class Subject:
    kind: str  # lead | deal | customer | order | rep | target | pipeline | scoring
    key: str
    key_field: str  # the data field that names it, for error messages


@dataclass(frozen=True)
class State:
    last_at: datetime
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
    """Raise `Refused` if `state` (None: the subject does not exist yet) cannot accept `event`."""
    creates = CREATES.get(event.type) == subject.kind
    if state is None and not (creates or event.type in UPSERTS):
        raise Refused(subject.key_field, f"unknown {subject.kind} {subject.key!r}")
    if state is not None and creates:
        raise Refused(subject.key_field, f"{subject.kind} {subject.key!r} already exists",
                      status=409)
    if state is not None and event.occurred_at < state.last_at:
        raise Refused("occurred_at", f"earlier than this {subject.kind}'s previous event "
                      f"({state.last_at.isoformat()})")
    check = _CHECKS.get(event.type)
    if check:
        check(event, subject, state, world)


def evolve(event: SalesEvent, state: State | None) -> State:
    base = state or State(last_at=event.occurred_at)
    change = _CHANGES.get(event.type)
    # One copy of the state per event: `replace` is most of what evolving costs.
    return replace(base, last_at=event.occurred_at, **(change(event, base) if change else {}))


# --- checks -----------------------------------------------------------------

def _refs_exist(world: World, event: SalesEvent, *kinds: str) -> None:
    for kind in kinds:
        key = getattr(event.data, f"{kind}_id", None)
        if key and not world.exists(kind, key):
            raise Refused(f"data.{kind}_id", f"unknown {kind} {key!r}")


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


def _check_activity(event: SalesEvent, subject: Subject, state: State | None,
                    world: World) -> None:
    _deal_is_open(subject, state)


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
    "activity.logged": _check_activity,
    "activity.scheduled": _check_activity,
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
