"""Customers: who buys, who comes back, what they are worth, and their RFM standing.

Definitions (docs/METRICS.md, "GET /v1/customers"); only events at or before `as_of` count:

- A customer is seen through its orders that match the dimension filters (rep, team,
  manager and region via the order's deal, source, product, segment: the order's dims);
  it counts once it has at least one such order booked by as_of.
- `active`: last order in the 90 days up to as_of. `repeat_rate` = customers with >= 2
  orders / customers. Lifetime value: booked (order amounts) and collected (payments by
  as_of) per customer: total, mean (half-even, cents), median (exact).
- `from`/`to` select by the first order's local date: `new` customers, `new_by_period`
  and the retention cohorts (cohort = month of the first order; month k's rate = share of
  the cohort with an order in the k-th month after it, k = 0 up to as_of's month).
- RFM: R ranks the last order's time (later = higher), F the order count, M the booked
  sum; ties take their average rank r (1-based, of n customers); score = ceil(5 r / n).
  Segments: the first rule of `SEGMENTS` that matches.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from projections.snapshot import Filters, Order, Snapshot
from projections.stats import average_money, days_between, money, ratio

ACTIVE_DAYS = 90
ZERO = Decimal(0)


@dataclass(frozen=True)
class Buyer:
    """One customer as its selected orders (booked by as_of, in booking order) show it."""

    id: str
    orders: list[Order]
    collected: Decimal

    @property
    def first_at(self) -> datetime:
        return self.orders[0].booked_at

    @property
    def last_at(self) -> datetime:
        return self.orders[-1].booked_at

    @property
    def booked(self) -> Decimal:
        return sum((o.amount for o in self.orders), ZERO)


@dataclass(frozen=True)
class Rfm:
    buyer: Buyer
    r: int
    f: int
    m: int
    segment: str


# (name, rule on (R, F, M, orders)); the first match names the segment.
SEGMENTS: tuple[tuple[str, Callable[[int, int, int, int], bool]], ...] = (
    ("champions", lambda r, f, m, n: r >= 4 and f >= 4 and m >= 4),
    ("new", lambda r, f, m, n: r >= 4 and n == 1),
    ("loyal", lambda r, f, m, n: r >= 3 and f >= 3),
    ("potential", lambda r, f, m, n: r >= 4),
    ("at_risk", lambda r, f, m, n: r <= 2 and f >= 3),
    ("hibernating", lambda r, f, m, n: r <= 2),
    ("needs_attention", lambda r, f, m, n: True),
)
SEGMENT_NAMES = tuple(name for name, _ in SEGMENTS)


def buyers(snapshot: Snapshot, filters: Filters, as_of: datetime) -> list[Buyer]:
    """Customers with a selected order by as_of, by id (`from`/`to` not applied)."""
    orders: dict[str, list[Order]] = defaultdict(list)
    for order in snapshot.orders:
        if filters.keeps_dims(order.dims) and order.booked_at <= as_of:
            orders[order.customer].append(order)
    result = []
    for customer in sorted(orders):
        mine = sorted(orders[customer], key=lambda o: o.booked_at)
        collected = sum((amount for o in mine for at, amount in o.payments if at <= as_of), ZERO)
        result.append(Buyer(customer, mine, collected))
    return result


def scores(values: Sequence[Any]) -> list[int]:
    """Quintile scores 1-5: ceil(5 r / n), r = the average 1-based rank among equals."""
    n = len(values)
    order = sorted(range(n), key=lambda i: values[i])
    result = [0] * n
    start = 0
    while start < n:
        end = start
        while end + 1 < n and values[order[end + 1]] == values[order[start]]:
            end += 1
        twice_rank = (start + 1) + (end + 1)  # 2 x the average rank of the tied run
        for position in range(start, end + 1):
            result[order[position]] = -(-5 * twice_rank // (2 * n))
        start = end + 1
    return result


def rfm(customers: list[Buyer]) -> list[Rfm]:
    rs = scores([b.last_at for b in customers])
    fs = scores([len(b.orders) for b in customers])
    ms = scores([b.booked for b in customers])
    result = []
    for buyer, r, f, m in zip(customers, rs, fs, ms, strict=True):
        result.append(Rfm(buyer, r, f, m, segment_of(r, f, m, len(buyer.orders))))
    return result


def segment_of(r: int, f: int, m: int, orders: int) -> str:
    return next(name for name, rule in SEGMENTS if rule(r, f, m, orders))


def decimal_median(values: Sequence[Decimal]) -> Decimal | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _value(values: list[Decimal]) -> dict[str, Any]:
    total = sum(values, ZERO)
    middle = decimal_median(values)
    return {"total": money(total), "mean": average_money(total, len(values)),
            "median": money(middle) if middle is not None else None}


def _months_between(snapshot: Snapshot, start: datetime, end: datetime) -> int:
    a, b = start.astimezone(snapshot.tz), end.astimezone(snapshot.tz)
    return (b.year - a.year) * 12 + b.month - a.month


def retention(snapshot: Snapshot, cohort: list[Buyer], as_of: datetime) -> dict[str, Any]:
    months = _months_between(snapshot, cohort[0].first_at, as_of) + 1
    retained = [0] * months
    for buyer in cohort:
        for k in {_months_between(snapshot, buyer.first_at, o.booked_at) for o in buyer.orders}:
            retained[k] += 1
    return {
        "cohort": snapshot.period_key(cohort[0].first_at, "month"),
        "customers": len(cohort),
        "retained": retained,
        "rates": [count / len(cohort) for count in retained],
    }


def customers(snapshot: Snapshot, filters: Filters, as_of: datetime,
              by: str = "month") -> dict[str, Any]:
    everyone = buyers(snapshot, filters, as_of)
    new = [b for b in everyone if filters.keeps_day(snapshot.local_day(b.first_at))]
    cohorts: dict[str, list[Buyer]] = defaultdict(list)
    for buyer in sorted(new, key=lambda b: b.first_at):
        cohorts[snapshot.period_key(buyer.first_at, "month")].append(buyer)
    new_by_period = Counter(snapshot.period_key(b.first_at, by) for b in new)
    repeat = sum(1 for b in everyone if len(b.orders) >= 2)
    since = as_of - timedelta(days=ACTIVE_DAYS)
    segments = Counter(x.segment for x in rfm(everyone))
    return {
        "as_of": as_of.isoformat(),
        "by": by,
        "customers": len(everyone),
        "active": sum(1 for b in everyone if b.last_at > since),
        "new": len(new),
        "new_by_period": [{"key": k, "new": new_by_period[k]} for k in sorted(new_by_period)],
        "repeat_customers": repeat,
        "repeat_rate": ratio(repeat, len(everyone)),
        "lifetime_value": {"booked": _value([b.booked for b in everyone]),
                           "collected": _value([b.collected for b in everyone])},
        "retention": [retention(snapshot, cohorts[k], as_of) for k in sorted(cohorts)],
        "rfm_segments": {name: segments[name] for name in SEGMENT_NAMES},
    }


def rfm_list(snapshot: Snapshot, filters: Filters, as_of: datetime, *, limit: int, offset: int,
             segment: str | None = None) -> dict[str, Any]:
    """Each customer's R, F, M and segment, by customer id; scored over all selected
    customers, then narrowed to `segment` and paged."""
    rows = [x for x in rfm(buyers(snapshot, filters, as_of))
            if segment is None or x.segment == segment]
    return {
        "as_of": as_of.isoformat(),
        "total": len(rows),
        "limit": limit,
        "offset": offset,
        "customers": [{
            "customer": x.buyer.id,
            "first_order_at": x.buyer.first_at.isoformat(),
            "last_order_at": x.buyer.last_at.isoformat(),
            "recency_days": days_between(x.buyer.last_at, as_of),
            "frequency": len(x.buyer.orders),
            "monetary": money(x.buyer.booked),
            "collected": money(x.buyer.collected),
            "r": x.r, "f": x.f, "m": x.m,
            "segment": x.segment,
        } for x in rows[offset:offset + limit]],
    }
