"""The alert rules' shared indexes, kept in step change by change, equal the same indexes
listed afresh from the records (and the key tier a ranking of every customer); the
engagement windows' counts by bisection equal a count of every activity, and their edges,
merged lazily, every edge listed and sorted."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from alerts.rules import (
    Context,
    RuleSettings,
    WonDeals,
    _edges_after,
    _edges_until,
    _window_counts,
    ts,
)

T1, T2 = "2017-03-01T10:00:00+08:00", "2017-03-05T09:30:00+08:00"


def _deal(status: str, owner: str, closed_at: str | None, amount: str) -> dict[str, Any]:
    return {"status": status, "owner": owner, "closed_at": closed_at, "amount": amount,
            "stages": [["prospecting", "2017-02-01T09:00:00+08:00"]]}


def _listing(won: dict[str, WonDeals]) -> dict[str, list[tuple[Any, Decimal]]]:
    """Per rep, (closed, amount) pairs; deals closed at the same moment in any order."""
    for deals in won.values():
        assert deals.closed == sorted(deals.closed) and len(deals.closed) == len(deals.amounts)
    return {rep: sorted(zip(deals.closed, deals.amounts, strict=True))
            for rep, deals in won.items() if deals.closed}


def test_won_deals_per_rep_kept_in_step_equal_a_fresh_listing() -> None:
    deals: dict[str, dict[str, Any]] = {"d0": _deal("won", "r1", T2, "70")}
    ctx = Context({"deal": deals}, RuleSettings())
    assert _listing(ctx.won_by_rep()) == {"r1": [(ctx.won_by_rep()["r1"].closed[0],
                                                  Decimal("70"))]}
    steps = [
        ("d1", _deal("won", "r1", T1, "100")),
        ("d2", _deal("won", "r1", T1, "50")),  # the same moment, another amount
        ("d3", _deal("open", "r2", None, "10")),
        ("d3", _deal("won", "r2", T2, "10")),
        ("d4", _deal("won", "r1", T1, "100")),  # the same moment and amount as d1
        ("d1", _deal("won", "r2", T1, "100")),  # a won deal's owner changed
        ("d2", _deal("won", "r1", T1, "55")),  # a won deal's amount changed
        ("d2", _deal("lost", "r1", T1, "55")),  # no longer won
        ("d4", _deal("won", "r1", T2, "100")),  # a won deal's close moved
        ("d0", _deal("lost", "r1", T2, "70")),
    ]
    for key, record in steps:
        before = deals.get(key)
        deals[key] = record
        ctx.touch("deal", key, before)

        fresh = Context({"deal": dict(deals)}, RuleSettings())
        assert _listing(ctx.won_by_rep()) == _listing(fresh.won_by_rep()), key


def test_engagement_windows_count_each_activity_in_its_half_open_window() -> None:
    s = RuleSettings()
    start = datetime(2017, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    rng = random.Random(5)
    times = sorted(start + timedelta(hours=rng.randrange(0, 24 * 200)) for _ in range(300))
    recent, prior = timedelta(days=s.engagement_recent_days), timedelta(
        days=s.engagement_prior_days)
    # every activity's own moment and those just past it, where a boundary counts or not
    for at in [*times, *(t + recent for t in times), *(t + recent + prior for t in times),
               *(t + timedelta(microseconds=1) for t in times)]:
        expected = (sum(1 for t in times if at - recent < t <= at),
                    sum(1 for t in times if at - recent - prior < t <= at - recent))
        assert _window_counts(times, at, s) == expected, at


def _ranked_key_customers(orders: dict[str, dict[str, Any]], share: float) -> set[str]:
    """The top `share` of customers by booked value, ties at the cutoff included."""
    value: dict[str, Decimal] = {}
    for order in orders.values():
        value[order["customer"]] = value.get(order["customer"], Decimal(0)) + Decimal(
            order["amount"])
    ranked = sorted((v for v in value.values() if v > 0), reverse=True)
    count = int(len(ranked) * share)
    return {c for c, v in value.items() if count and v >= ranked[count - 1]}


def test_customer_and_deal_indexes_kept_in_step_equal_a_fresh_context() -> None:
    rng = random.Random(8)
    records: dict[str, dict[str, Any]] = {"deal": {}, "order": {}, "customer": {}}
    ctx = Context(records, RuleSettings(stall_min_samples=3))
    start = datetime(2017, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    stages = ["prospecting", "qualification", "proposal", "negotiation"]
    for step in range(400):
        at = (start + timedelta(hours=step * 7)).isoformat()
        kind = rng.choice(["deal", "deal", "order", "customer"])
        key = f"{kind[0]}{rng.randrange(12)}"
        before = records[kind].get(key)
        if kind == "deal":
            rec = dict(before) if before else {"status": "open", "owner": "r1", "amount": "10",
                                               "stages": [[stages[0], at]], "customer": "c1"}
            if rec["status"] == "open" and before is not None:
                move = rng.choice(["stage", "won", "lost"])
                if move == "stage":
                    rec["stages"] = [*rec["stages"], [rng.choice(stages), at]]
                else:
                    rec.update(status=move, closed_at=at)
        elif kind == "order":  # booked again, now and then, at another moment
            rec = {"customer": f"c{rng.randrange(6)}", "amount": str(rng.choice([5, 10, 40])),
                   "booked_at": at}
            if before is not None:
                rec["customer"] = before["customer"]
        else:
            rec = dict(before or {})
            rec["activities"] = [*rec.get("activities", ()),
                                 [at, "call", "r1", None, f"a{step}"]]
        records[kind][key] = rec
        ctx.touch(kind, key, before)

        fresh = Context(records, ctx.settings)
        for customer in [f"c{i}" for i in range(12)]:  # listed once, then kept in step
            assert ctx.booked(customer) == fresh.booked(customer), step
            assert ctx.customer_times(customer) == fresh.customer_times(customer), step
        assert ({s: d for s, d in ctx.open_deals.items() if d}
                == {s: d for s, d in fresh.open_deals.items() if d}), step
        assert ctx.thresholds() == fresh.thresholds(), step
        assert ctx.key_customers() == _ranked_key_customers(records["order"], 0.2), step
        assert {c for c in ("c0", "c1", "c2", "c3", "c4", "c5", None)
                if ctx.is_key_customer(c)} == ctx.key_customers(), step


def _listed_edges(times: list[datetime], shifts: tuple[timedelta, ...]) -> list[datetime]:
    """Every edge in a set, built in shift order, then sorted: the set keeps the first of
    equal instants."""
    edges: set[datetime] = set()
    for shift in shifts:
        edges |= {t + shift for t in times}
    return sorted(edges)


def test_window_edges_merged_lazily_equal_every_edge_listed() -> None:
    rng = random.Random(3)
    zones = [timezone(timedelta(hours=8)), UTC, timezone(timedelta(hours=-5))]
    start = datetime(2017, 1, 1, tzinfo=zones[0])
    # Moments on a coarse grid, in three zones: equal instants written differently
    times = sorted((start + timedelta(days=rng.randrange(0, 300))).astimezone(rng.choice(zones))
                   for _ in range(120))
    shifts = (timedelta(0), timedelta(days=30), timedelta(days=120))
    listed = _listed_edges(times, shifts)

    def written(edges: list[datetime]) -> list[str]:
        return [e.isoformat() for e in edges]

    for now in [times[0] - timedelta(days=1), *times[::7], times[-1] + timedelta(days=200)]:
        after = [e for e in listed if e > now]
        until = [e for e in reversed(listed) if e <= now]
        assert written(list(_edges_after(times, now, shifts))) == written(after), now
        assert written(list(_edges_until(times, now, shifts))) == written(until), now


def test_churn_reads_orders_in_booking_order_whatever_order_they_came_in() -> None:
    orders = {f"o{i}": {"customer": "c1", "amount": "10", "booked_at": at}
              for i, at in enumerate([T2, T1, "2017-02-01T08:00:00+08:00"])}
    ctx = Context({"order": orders}, RuleSettings())
    assert ctx.booked("c1") == sorted(ts(o["booked_at"]) for o in orders.values())
