"""The alert engine's state as plain JSON values, and back. Pure.

What a restarted alerter needs to go on exactly as one that never stopped: each tenant's
fact records and the indexes `Context.touch` keeps that a fresh `Context` would not
rebuild the same way from the records (booked values, the subjects seen per customer, the
thresholds before the last win), its alerts told, open and due, its clock and timers, and how
many transitions each alert has told (the numbered ids). Everything else a `Context`
holds is derived from its records and built again on first use.

Moments keep their zone object: a due time in the tenant's zone stays in that zone (its
arithmetic and its `isoformat`, which alert ids hash, depend on it), one with a fixed
offset keeps that offset. `STATE_VERSION` names this layout; a reader ignores any other.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sortedcontainers import SortedList

from alerts.engine import AlertEngine, TenantAlerts
from alerts.lifecycle import Alert
from alerts.rules import Context

STATE_VERSION = 1
Moment = str | list[Any]


def moment(value: datetime) -> Moment:
    if isinstance(value.tzinfo, ZoneInfo):
        return [value.replace(tzinfo=None).isoformat(), value.tzinfo.key, value.fold]
    return value.isoformat()


def from_moment(value: Moment) -> datetime:
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    wall, zone, fold = value
    return datetime.fromisoformat(wall).replace(tzinfo=ZoneInfo(zone), fold=fold)


def _maybe(value: datetime | None) -> Moment | None:
    return None if value is None else moment(value)


def _from_maybe(value: Moment | None) -> datetime | None:
    return None if value is None else from_moment(value)


def _alert(a: Alert) -> list[Any]:
    return [a.id, a.tenant, a.rule, a.subject_kind, a.subject, moment(a.became_true_at),
            a.evidence, a.severity, a.owner, a.manager, a.team, a.facts,
            _maybe(a.resolved_at), _maybe(a.retracted_at)]


def _from_alert(v: list[Any]) -> Alert:
    return Alert(v[0], v[1], v[2], v[3], v[4], from_moment(v[5]), v[6], v[7], v[8], v[9],
                 v[10], v[11], _from_maybe(v[12]), _from_maybe(v[13]))


def _table(value: dict[str, tuple[float, str]] | None) -> dict[str, list[Any]] | None:
    return None if value is None else {stage: list(entry) for stage, entry in value.items()}


def _from_table(value: dict[str, list[Any]] | None) -> dict[str, tuple[float, str]] | None:
    return None if value is None else {stage: (float(days), str(basis))
                                       for stage, (days, basis) in value.items()}


def _tenant(state: TenantAlerts) -> dict[str, Any]:
    ctx = state.ctx
    return {
        "records": ctx.records,
        "horizon": _maybe(ctx.horizon),
        "thresholds": _table(ctx._thresholds),
        "previous_thresholds": _table(ctx._previous_thresholds),
        "customer_value": {c: str(v) for c, v in ctx.customer_value.items()},
        "orders_by_customer": {c: sorted(o) for c, o in ctx.orders_by_customer.items()},
        "deals_by_customer": {c: sorted(d) for c, d in ctx.deals_by_customer.items()},
        "open": [[rule, key, _alert(a)] for (rule, key), a in state.open.items()],
        "due": [[rule, key, moment(at)] for (rule, key), at in state.due.items()],
        "alerts": [[rule, key, [_alert(a) for a in told]]
                   for (rule, key), told in state.alerts.items()],
        "clock": _maybe(state.clock),
        # Stale timers too (their pair rescheduled since): one fires again if its pair is
        # put back to that moment, and its place orders the transitions of an instant.
        "timers": [[seq, moment(due), rule, key] for _, seq, due, rule, key in state.heap],
    }


def _from_tenant(engine: AlertEngine, name: str, data: dict[str, Any]) -> TenantAlerts:
    ctx = Context(data["records"], engine._settings(name))
    ctx.horizon = _from_maybe(data["horizon"])
    ctx._thresholds = _from_table(data["thresholds"])
    ctx._previous_thresholds = _from_table(data["previous_thresholds"])
    ctx.customer_value = defaultdict(Decimal, {c: Decimal(v) for c, v in
                                               data["customer_value"].items()})
    ctx._values = SortedList(v for v in ctx.customer_value.values() if v > 0)
    ctx.orders_by_customer = defaultdict(set, {c: set(o) for c, o in
                                               data["orders_by_customer"].items()})
    ctx.deals_by_customer = defaultdict(set, {c: set(d) for c, d in
                                              data["deals_by_customer"].items()})
    heap = []
    for seq, due_at, rule, key in data["timers"]:
        due = from_moment(due_at)
        heap.append((due.astimezone(UTC), int(seq), due, rule, key))
    heapq.heapify(heap)
    return TenantAlerts(
        ctx,
        open={(rule, key): _from_alert(a) for rule, key, a in data["open"]},
        due={(rule, key): from_moment(at) for rule, key, at in data["due"]},
        alerts={(rule, key): [_from_alert(a) for a in told]
                for rule, key, told in data["alerts"]},
        clock=_from_maybe(data["clock"]), heap=heap)


def state_of(engine: AlertEngine) -> dict[str, Any]:
    """The engine's state as JSON values (dicts, lists, str, numbers, None)."""
    return {"version": STATE_VERSION, "clock": _maybe(engine.clock),
            "ticked": _maybe(engine.ticked), "seq": engine._seq, "issued": engine._issued,
            "tenants": {name: _tenant(state) for name, state in engine.tenants.items()}}


def restore(engine: AlertEngine, state: dict[str, Any]) -> None:
    """Put `state` (from `state_of`) into a new engine; ValueError if it is another layout."""
    if state.get("version") != STATE_VERSION:
        raise ValueError(f"engine state version {state.get('version')!r}, this reader knows "
                         f"{STATE_VERSION}")
    if engine.tenants or engine.clock is not None:
        raise ValueError("restore into a new engine only")
    engine.tenants = {name: _from_tenant(engine, name, data)
                      for name, data in state["tenants"].items()}
    engine.clock = _from_maybe(state["clock"])
    engine.ticked = _from_maybe(state["ticked"])
    engine._seq = int(state["seq"])
    engine._issued = {str(k): int(v) for k, v in state["issued"].items()}
