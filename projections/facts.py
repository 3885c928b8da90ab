"""The fact projection: one JSON record per subject, built from its own events only.

A record is a pure function of the subject's events (`apply`), so the same code
serves live streaming, rebuilds and tests. Because a subject's events share a
Kafka partition, each record has one writer; joins across subjects (a deal's
team through its owner) happen when a view is read. `v` is the version of the
last event applied: a redelivered event is recognised and skipped.

Events are folded in business time (events/order.py), whatever order they arrived in:
`log` keeps a subject's events in that order, and one that arrives late is put in its
place and the record folded again from its log. Activities and payments are kept apart
(appended as they arrive, which readers may rely on) and every figure drawn from them
is order-free: a count, a sum, the latest instant.
"""

from __future__ import annotations

import functools
from bisect import bisect_right
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec

from events.order import after, compare_instants, event_key

Record = dict[str, Any]
# The relayed message's own format. A reader refuses a newer one (the producer was upgraded
# before it): it dead-letters the message rather than guess at fields it does not know.
MESSAGE_SCHEMA = 1


class _Message(msgspec.Struct, gc=False):
    """The relayed message as the AsyncAPI document describes it (`RelayedEvent`); fields
    it does not name are ignored, so a producer may add some within a schema."""

    position: int
    kind: str
    key: str
    version: int
    event: dict[str, Any]
    schema: int = 1
    relayed_at: float | None = None


_MESSAGE = msgspec.json.Decoder(_Message)


class Change(NamedTuple):
    """One stored event as the relay publishes it.

    A named tuple: as immutable as a frozen dataclass, and built in a fifth of the time
    (0.12 against 0.57 µs), which the projector pays for every event it folds."""

    position: int
    tenant: str
    kind: str
    key: str
    version: int
    event: dict[str, Any]
    relayed_at: float | None = None  # wall clock, seconds; for freshness only

    @classmethod
    def from_json(cls, raw: bytes) -> Change:
        """A relayed message's bytes, decoded and typed in one pass (msgspec: half the time of
        `orjson.loads` and then reading the dict); raises ValueError if unusable."""
        return _change(_MESSAGE.decode(raw))

    @classmethod
    def from_message(cls, body: dict[str, Any]) -> Change:
        """The same, from a message already decoded to a dict."""
        return _change(msgspec.convert(body, _Message))


# The tuple built straight from its seven fields: the named tuple's own `__new__` is a Python
# function, a third of what building a `Change` cost per message.
_new_change = functools.partial(tuple.__new__, Change)


def _change(message: _Message) -> Change:
    if not 1 <= message.schema <= MESSAGE_SCHEMA:
        raise ValueError(f"message schema {message.schema!r}: this reader knows 1 to "
                         f"{MESSAGE_SCHEMA}")
    event = message.event
    return _new_change((message.position, str(event["tenant"]), message.kind, message.key,
                        message.version, event, message.relayed_at))


def apply(record: Record | None, change: Change) -> Record | None:
    """The record after `change`; None when the change was already applied."""
    if record is not None and record["v"] >= change.version:
        return None
    rec: Record = dict(record) if record else {"id": change.key}
    rec["v"] = change.version
    event = change.event
    kind, at, data = event["type"], event["occurred_at"], event["data"]
    handler = _HANDLERS.get(kind)
    if handler is None:
        return rec
    if kind in _ARRIVAL_ORDERED:
        handler(rec, data, at)
        return rec
    entry = [at, kind, event["id"], data]
    log: list[list[Any]] = rec.get("log", [])
    if not log or after(at, kind, event["id"], log[-1]):
        rec["log"] = [*log, entry]
        handler(rec, data, at)
        return rec
    keys = [_key(e) for e in log]
    log = [*log]
    log.insert(bisect_right(keys, _key(entry)), entry)
    return _refold(rec, log)


def _key(entry: list[Any]) -> Any:
    return event_key(entry[0], entry[1], entry[2])


def _refold(rec: Record, log: list[list[Any]]) -> Record:
    """`rec` folded again from `log`, a late event put in its place."""
    out: Record = {"id": rec["id"], "v": rec["v"]}
    for at, kind, _id, data in log:
        _HANDLERS[kind](out, data, at)
    out.update({name: rec[name] for name in _KEPT_APART if name in rec})
    out["log"] = log
    return out


def as_of(rec: Record, moment: datetime) -> Record | None:
    """The record as it stood at `moment`: folded from the events that occurred by then
    (None: the subject did not exist yet; payments left out: nothing reads them so). For
    judging the past again after a late event."""
    log = [e for e in rec.get("log", ()) if datetime.fromisoformat(e[0]) <= moment]
    if not log:
        return None
    out: Record = {"id": rec["id"], "v": rec["v"]}
    for at, kind, _id, data in log:
        _HANDLERS[kind](out, data, at)
    for activity in rec.get("activities", ()):
        if datetime.fromisoformat(activity[0]) <= moment:
            _activity(out, {"kind": activity[1], "rep_id": activity[2],
                            "duration_min": activity[3], "activity_id": activity[4]},
                      activity[0])
    out["log"] = log
    return out


def _add(total: str | None, amount: str) -> str:
    return str(Decimal(total or "0") + Decimal(amount))


def _activity(rec: Record, d: dict[str, Any], at: str) -> None:
    # a new list: `apply` must not change the record it was given (the alerter compares them)
    rec["activities"] = [*rec.get("activities", ()),
                         [at, d["kind"], d["rep_id"], d.get("duration_min"), d["activity_id"]]]
    last = rec.get("last_activity_at")
    if last is None or compare_instants(at, last) > 0:
        rec["last_activity_at"] = at


def _scheduled(rec: Record, d: dict[str, Any], at: str) -> None:
    rec["next_step_due"] = d["due_at"]


def _rep_joined(rec: Record, d: dict[str, Any], at: str) -> None:
    rec["name"] = d.get("name")
    rec["history"] = [[at, d["team_id"], d.get("manager_id"), d.get("region")]]


def _rep_moved(rec: Record, d: dict[str, Any], at: str) -> None:
    _, _, manager, region = rec["history"][-1]
    rec["history"] = [*rec["history"], [at, d["team_id"], d.get("manager_id", manager),
                                         d.get("region", region)]]


def _customer_created(rec: Record, d: dict[str, Any], at: str) -> None:
    rec.update(created_at=at, name=d.get("name"), segment=d.get("segment"),
               industry=d.get("industry"), region=d.get("region"))


def _lead_created(rec: Record, d: dict[str, Any], at: str) -> None:
    rec.update(created_at=at, source=d.get("source"), region=d.get("region"),
               company=d.get("company"), owner=d.get("owner_id"), status="open",
               assigned_at=at if d.get("owner_id") else None)


def _lead_assigned(rec: Record, d: dict[str, Any], at: str) -> None:
    # every (re)assignment is kept: first-response time runs from the one before the contact
    rec.update(owner=d["owner_id"], assigned_at=at, assignments=[*rec.get("assignments", []), at])


def _lead_status(status: str) -> Any:
    def handler(rec: Record, d: dict[str, Any], at: str) -> None:
        rec.update(status=status, decided_at=at, reason=d.get("reason"))
    return handler


def _lead_converted(rec: Record, d: dict[str, Any], at: str) -> None:
    rec.update(status="converted", converted_at=at, deal=d["deal_id"])


def _deal_created(rec: Record, d: dict[str, Any], at: str) -> None:
    rec.update(created_at=at, owner=d["owner_id"], customer=d.get("customer_id"),
               lead=d.get("lead_id"), amount=d.get("amount", "0"), product=d.get("product"),
               source=d.get("source"), currency=d.get("currency"), status="open",
               stages=[[d["stage"], at]], expected_close=d.get("expected_close"))
    # Point-in-time history (forecasts as of any moment): [at, value] per change.
    rec.update(amounts=[[at, d.get("amount", "0")]], owners=[[at, d["owner_id"]]],
               close_dates=[[at, d["expected_close"]]] if d.get("expected_close") else [])


def _deal_amount(rec: Record, d: dict[str, Any], at: str) -> None:
    rec["amount"] = d["amount"]
    rec["amounts"] = [*rec.get("amounts", ()), [at, d["amount"]]]


def _deal_owner(rec: Record, d: dict[str, Any], at: str) -> None:
    rec["owner"] = d["owner_id"]
    rec["owners"] = [*rec.get("owners", ()), [at, d["owner_id"]]]


def _deal_stage(rec: Record, d: dict[str, Any], at: str) -> None:
    if rec["stages"][-1][0] != d["stage"]:  # a change to the current stage changes nothing
        rec["stages"] = [*rec["stages"], [d["stage"], at]]


def _deal_close_date(rec: Record, d: dict[str, Any], at: str) -> None:
    rec["close_date_pushes"] = rec.get("close_date_pushes", 0) + 1
    rec["expected_close"] = d["expected_close"]
    rec["close_dates"] = [*rec.get("close_dates", ()), [at, d["expected_close"]]]


def _quote(rec: Record, d: dict[str, Any], at: str) -> None:
    rec["quotes"] = rec.get("quotes", 0) + 1
    rec["quoted_value"] = _add(rec.get("quoted_value"), d["amount"])


def _won(rec: Record, d: dict[str, Any], at: str) -> None:
    rec.update(status="won", closed_at=at)
    if d.get("amount") is not None:
        _deal_amount(rec, d, at)


def _lost(rec: Record, d: dict[str, Any], at: str) -> None:
    rec.update(status="lost", closed_at=at, lost_reason=d.get("reason"),
               competitor=d.get("competitor"))


def _order_booked(rec: Record, d: dict[str, Any], at: str) -> None:
    rec.update(booked_at=at, customer=d["customer_id"], amount=d["amount"],
               deal=d.get("deal_id"), product=d.get("product"))
    rec.setdefault("paid", "0")
    rec.setdefault("payments", [])


def _payment(rec: Record, d: dict[str, Any], at: str) -> None:
    rec["payments"] = [*rec["payments"], [at, d["amount"], d["payment_id"]]]
    rec["paid"] = _add(rec["paid"], d["amount"])


def _target(rec: Record, d: dict[str, Any], at: str) -> None:
    rec.update(scope=d["scope"], scope_id=d.get("scope_id"), period=d["period"],
               metric=d["metric"], value=d["value"], set_at=at)


def _pipeline(rec: Record, d: dict[str, Any], at: str) -> None:
    rec.update(stages=d["stages"], win_probabilities=d.get("win_probabilities"),
               stall_days=d.get("stall_days"))


def _scoring(rec: Record, d: dict[str, Any], at: str) -> None:
    rec.update(weights=d["weights"], set_at=at)


# Events held by the ledger for a subject not known yet (kind "held", one record per
# subject waited for): what waits, and what was dropped and why.
def _held(rec: Record, d: dict[str, Any], at: str) -> None:
    event = d["event"]
    rec["pending"] = {**rec.get("pending", {}),
                      event["id"]: [event["occurred_at"], event["type"], at, d["reason"]]}
    rec["dropped"] = {k: v for k, v in rec.get("dropped", {}).items() if k != event["id"]}


def _released(rec: Record, d: dict[str, Any], at: str) -> None:
    gone = set(d["ids"])
    rec["pending"] = {k: v for k, v in rec.get("pending", {}).items() if k not in gone}
    rec["released"] = rec.get("released", 0) + len(gone)


def _dropped(rec: Record, d: dict[str, Any], at: str) -> None:
    pending = dict(rec.get("pending", {}))
    occurred_at, kind, held_at, _ = pending.pop(d["id"], [None, None, None, None])
    rec["pending"] = pending
    rec["dropped"] = {**rec.get("dropped", {}),
                      d["id"]: [occurred_at, kind, held_at, d["reason"], at]}


# Appended as they arrive, outside `log`: readers take new ones as a record's tail.
_ARRIVAL_ORDERED = frozenset({"activity.logged", "payment.received", "event.held",
                              "event.released", "event.dropped"})
_KEPT_APART = ("activities", "last_activity_at", "payments", "paid")

_HANDLERS: dict[str, Any] = {
    "rep.joined": _rep_joined,
    "rep.moved": _rep_moved,
    "customer.created": _customer_created,
    "lead.created": _lead_created,
    "lead.assigned": _lead_assigned,
    "lead.qualified": _lead_status("qualified"),
    "lead.disqualified": _lead_status("disqualified"),
    "lead.converted": _lead_converted,
    "activity.logged": _activity,
    "activity.scheduled": _scheduled,
    "deal.created": _deal_created,
    "deal.stage_changed": _deal_stage,
    "deal.amount_changed": _deal_amount,
    "deal.owner_changed": _deal_owner,
    "deal.close_date_changed": _deal_close_date,
    "quote.sent": _quote,
    "deal.won": _won,
    "deal.lost": _lost,
    "order.booked": _order_booked,
    "payment.received": _payment,
    "target.set": _target,
    "pipeline.configured": _pipeline,
    "scoring.configured": _scoring,
    "event.held": _held,
    "event.released": _released,
    "event.dropped": _dropped,
}
