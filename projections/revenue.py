"""Revenue: what was booked and collected, what is still owed and for how long.

Definitions (docs/METRICS.md, "GET /v1/revenue"); only events at or before `as_of` count:

- Flows, per group and in total: `booked` = sum of the amounts of the selected orders
  (dimension filters, `from`/`to` on `booked_at`), `orders` = their count,
  `avg_order_value` = booked / orders (half-even, cents); `collected` = sum of the payments
  of orders matching the dimension filters, selected and grouped by the payment's own time.
- Balances at a moment m (as_of; for a period row the end of the period, if earlier), over
  every order matching the dimension filters booked by m, `from`/`to` aside:
  `outstanding` = sum of (amount - paid by m); `aging` splits it by completed days since
  booking (0-30, 31-60, 61-90, >90); `dso` = outstanding / (booked in the 90 days up to m)
  x 90, null when nothing was booked then.
- Collection cycle: days from booking to the payment that completed the order, over the
  selected orders fully paid by as_of (an order of amount 0 is paid at booking).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from events.vocabulary import DIMENSIONS
from projections.snapshot import ALL_PERIODS, Filters, Order, Snapshot
from projections.stats import average_money, days_between, mean, median, money

GROUPINGS = ALL_PERIODS + DIMENSIONS
AGING_BUCKETS = ((0, 30, "0-30"), (31, 60, "31-60"), (61, 90, "61-90"), (91, None, ">90"))
DSO_WINDOW_DAYS = 90
ZERO = Decimal(0)
MONTHS_PER_PERIOD = {"month": 1, "quarter": 3, "year": 12}


@dataclass(frozen=True)
class Moment:
    """A balance's cut-off: events at or before `at` (inclusive) or strictly before it."""

    at: datetime
    inclusive: bool

    def covers(self, moment: datetime) -> bool:
        return moment <= self.at if self.inclusive else moment < self.at


def paid_by(order: Order, moment: Moment) -> Decimal:
    return sum((amount for at, amount in order.payments if moment.covers(at)), ZERO)


def fully_paid_at(order: Order) -> datetime | None:
    """The time of the payment that brought the order to its amount (booking, if 0)."""
    paid = ZERO
    if paid >= order.amount:
        return order.booked_at
    for at, amount in order.payments:
        paid += amount
        if paid >= order.amount:
            return at
    return None


def _aging_bucket(days: float) -> str:
    whole = int(days // 1)
    for low, high, label in AGING_BUCKETS:
        if whole >= low and (high is None or whole <= high):
            return label
    raise AssertionError(days)  # a booking after its balance moment is never counted


def balance(orders: Iterable[Order], moment: Moment) -> dict[str, Any]:
    """Outstanding receivables, their ageing and DSO at `moment`."""
    aging = {label: ZERO for _, _, label in AGING_BUCKETS}
    outstanding = trailing = ZERO
    window_start = moment.at - timedelta(days=DSO_WINDOW_DAYS)
    for order in orders:
        if not moment.covers(order.booked_at):
            continue
        if order.booked_at > window_start:
            trailing += order.amount
        owed = order.amount - paid_by(order, moment)
        if owed > 0:
            outstanding += owed
            aging[_aging_bucket(days_between(order.booked_at, moment.at))] += owed
    return {
        "outstanding": money(outstanding),
        "aging": {label: money(value) for label, value in aging.items()},
        "dso": float(outstanding / trailing) * DSO_WINDOW_DAYS if trailing else None,
    }


def period_end(snapshot: Snapshot, moment: datetime, by: str) -> datetime:
    """The start of the `by` period after the one holding `moment`, in the tenant's zone."""
    day = snapshot.local_day(moment)
    if by == "day":
        following = day + timedelta(days=1)
    elif by == "week":
        following = day + timedelta(days=7 - day.weekday())
    elif by in MONTHS_PER_PERIOD:
        step = MONTHS_PER_PERIOD[by]
        months = day.year * 12 + (day.month - 1) // step * step + step
        following = date(months // 12, months % 12 + 1, 1)
    else:
        raise ValueError(f"unknown period {by!r}")
    return datetime.combine(following, time(), snapshot.tz)


Payment = tuple[Order, datetime, Decimal]


def revenue(snapshot: Snapshot, filters: Filters, by: str, as_of: datetime) -> dict[str, Any]:
    """Flows and balances per `by` group (a period or a dimension), per product and in total."""
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}")
    known = [o for o in snapshot.orders if filters.keeps_dims(o.dims) and o.booked_at <= as_of]
    bookings = [o for o in known if filters.keeps_day(snapshot.local_day(o.booked_at))]
    receipts = [(o, at, amount) for o in known for at, amount in o.payments
                if at <= as_of and filters.keeps_day(snapshot.local_day(at))]
    now = Moment(as_of, True)
    return {
        "by": by,
        "as_of": as_of.isoformat(),
        "rows": _rows(snapshot, by, as_of, known, bookings, receipts),
        "products": _rows(snapshot, "product", as_of, known, bookings, receipts),
        "total": {**_flows(bookings, receipts, as_of), **balance(known, now)},
    }


def _rows(snapshot: Snapshot, by: str, as_of: datetime, known: list[Order],
          bookings: list[Order], receipts: list[Payment]) -> list[dict[str, Any]]:
    by_period = by in ALL_PERIODS
    booked_in: dict[str | None, list[Order]] = defaultdict(list)
    paid_in: dict[str | None, list[Payment]] = defaultdict(list)
    owing: dict[str | None, list[Order]] = defaultdict(list)
    for order in bookings:
        booked_in[snapshot.period_key(order.booked_at, by) if by_period
                  else order.dims[by]].append(order)
    for receipt in receipts:
        paid_in[snapshot.period_key(receipt[1], by) if by_period
                else receipt[0].dims[by]].append(receipt)
    keys = set(booked_in) | set(paid_in)
    now = Moment(as_of, True)
    if not by_period:
        for order in known:
            owing[order.dims[by]].append(order)
        # a group that only owes (nothing booked or paid in from/to) still shows
        keys |= {k for k, orders in owing.items()
                 if any(o.amount > paid_by(o, now) for o in orders)}
    rows = []
    for key in sorted(k for k in keys if k is not None) + ([None] if None in keys else []):
        if by_period:
            inside = booked_in[key][0].booked_at if booked_in[key] else paid_in[key][0][1]
            end = period_end(snapshot, inside, by)
            balances = balance(known, now if as_of < end else Moment(end, False))
        else:
            balances = balance(owing[key], now)
        rows.append({"key": key, **_flows(booked_in[key], paid_in[key], as_of), **balances})
    return rows


def _flows(bookings: list[Order], receipts: list[Payment], as_of: datetime) -> dict[str, Any]:
    booked = sum((o.amount for o in bookings), ZERO)
    cycles = [days_between(o.booked_at, done) for o in bookings
              if (done := fully_paid_at(o)) is not None and done <= as_of]
    return {
        "booked": money(booked),
        "collected": money(sum((amount for _, _, amount in receipts), ZERO)),
        "orders": len(bookings),
        "avg_order_value": average_money(booked, len(bookings)),
        "collection_orders": len(cycles),
        "collection_days_mean": mean(cycles),
        "collection_days_median": median(cycles),
    }
