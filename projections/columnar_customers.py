"""Customers and RFM over `Columns`: the answers `customers.py` gives over a `Snapshot`
(a test holds them byte-identical). Definitions: docs/METRICS.md, "GET /v1/customers".

Each customer is one group of its selected order rows: first and last booking, order
count, booked and collected sums (exact integer millionths with the exponents `Decimal`
sums give). The grouping, the RFM ranks and the retention counts stay in numpy; only what
an answer shows becomes Python objects (the medians' sums, the page of an RFM list).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray

from events.vocabulary import DIMENSIONS
from projections.columnar import Columns, months
from projections.columnar_revenue import order_dims, period_keys
from projections.columnar_table import INT64_MAX, micros
from projections.columnar_views import as_decimal
from projections.customers import ACTIVE_DAYS, SEGMENT_NAMES, _value, scores, segment_of
from projections.snapshot import Filters
from projections.stats import average_money, days_between, money, ratio

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Below this exponent an int64 of millionths may need more than the 28 digits of the
# default `Decimal` context (9.2e18 x 10^8 < 10^28), and a `Decimal` sum would round.
_LOWEST_EXACT_EXPONENT = -14


@dataclass
class Sums:
    """Per group, `sum(amounts, Decimal(0))` as integer millionths and that sum's exponent.
    `totals` is int64 when no sum of the amounts can overflow it, else Python ints."""

    totals: NDArray[Any]
    exponents: NDArray[np.int64]

    @property
    def in_int64(self) -> bool:
        return self.totals.dtype != object

    def decimal(self, group: int) -> Decimal:
        return as_decimal(int(self.totals[group]), int(self.exponents[group]))

    def decimals(self) -> list[Decimal]:
        return [as_decimal(int(v), e) for v, e in
                zip(self.totals.tolist(), self.exponents.tolist(), strict=True)]


@dataclass
class Buyers:
    """The customers with a selected order by as_of, in customer id order, as parallel
    columns."""

    customer: NDArray[np.int64]  # the customer's row (its id: `columns.customers.keys`)
    orders: NDArray[np.int64]  # order count
    first: NDArray[np.int64]  # the first order's row
    last: NDArray[np.int64]  # the last order's row
    booked: Sums
    collected: Sums
    order_rows: NDArray[np.int64]  # every selected order's row
    order_buyer: NDArray[np.int64]  # its customer's position in the columns above


def _group_sums(amounts: NDArray[Any], exponents: NDArray[np.int8], group: NDArray[np.int64],
                groups: int, by_group: NDArray[np.intp] | None = None) -> Sums:
    """Per group, `sum(amounts, Decimal(0))` of amounts in millionths, exactly. Summed as
    runs of the rows put in group order (`by_group`, when the caller has one): integer
    sums do not depend on the order, and `np.add.at` is slow on int64."""
    if by_group is None:
        by_group = np.argsort(group)
    runs = group[by_group]
    starts = np.flatnonzero(np.diff(runs, prepend=-1))  # each present group's first row
    present = runs[starts]
    exponent = np.zeros(groups, dtype=np.int64)  # Decimal(0)'s exponent takes part
    if starts.size:
        exponent[present] = np.minimum(np.minimum.reduceat(exponents[by_group], starts), 0)
    if amounts.dtype != object and (not amounts.size
                                    or int(np.abs(amounts).max()) * amounts.size < INT64_MAX):
        totals = np.zeros(groups, dtype=np.int64)
        if starts.size:
            totals[present] = np.add.reduceat(amounts[by_group], starts)
        return Sums(totals, exponent)
    values = [0] * groups  # beyond int64: Python's integers
    for g, amount in zip(group.tolist(), amounts.tolist(), strict=True):
        values[g] += int(amount)
    objects = np.empty(groups, dtype=object)
    objects[:] = values
    return Sums(objects, exponent)


def buyers(columns: Columns, filters: Filters, as_of: datetime) -> Buyers:
    """`customers.buyers`: customers with a selected order by as_of (`from`/`to` not
    applied)."""
    o, p = columns.orders.orders, columns.orders.payments
    moment = micros(as_of)
    keep = o["exists"] & (o["booked"] <= moment)
    for name, value in filters.dims.items():
        if name in DIMENSIONS:
            code = columns.strings.find(value)
            keep &= order_dims(columns, name) == code if code else False
    rows = np.flatnonzero(keep)
    customer = o["customer"][rows]
    keys = columns.customers.keys
    assert keys is not None
    seen = np.zeros(keys.size, dtype=bool)
    seen[customer] = True  # customer rows are dense: no sort to find the distinct ones
    unique = np.flatnonzero(seen)
    by_id = unique[keys.sorted_order(unique)]
    n = len(by_id)
    position = np.empty(len(seen), dtype=np.int64)
    position[by_id] = np.arange(n)
    group = position[customer]  # groups numbered in customer id order
    orders = np.bincount(group, minlength=n).astype(np.int64)
    # Each group's rows by booking time, ties in row order as `sorted` leaves them: the
    # rank of (group, booking, row) as one integer, which numpy sorts faster than lexsort.
    by_time = np.argsort(o["booked"][rows], kind="stable")
    time_rank = np.empty(len(rows), dtype=np.int64)
    time_rank[by_time] = np.arange(len(rows))
    ordered = np.argsort(group * len(rows) + time_rank)
    ends = np.cumsum(orders)  # every group has an order: its run ends here
    paid = np.flatnonzero(keep[p["order"]] & (p["at"] <= moment))
    payer = np.full(o.size, -1, dtype=np.int64)
    payer[rows] = group
    return Buyers(
        customer=by_id, orders=orders,
        first=rows[ordered[ends - orders]], last=rows[ordered[ends - 1]],
        booked=_group_sums(o["amount"][rows], o["amount_exp"][rows], group, n, ordered),
        collected=_group_sums(p["amount"][paid], p["amount_exp"][paid],
                              payer[p["order"][paid]], n),
        order_rows=rows, order_buyer=group)


def _scores(values: NDArray[Any]) -> NDArray[np.int64]:
    """`customers.scores` in numpy: ceil(5 r / n), r the average 1-based rank of the
    value's ties."""
    n = values.size
    if not n:
        return np.zeros(0, dtype=np.int64)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    below = np.cumsum(counts) - counts  # how many values are smaller
    twice_rank = 2 * below + counts + 1  # the first plus the last 1-based rank of the ties
    return (-(-5 * twice_rank // (2 * n)))[inverse]


def rfm_scores(columns: Columns, who: Buyers
               ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64],
                          NDArray[np.int64]]:
    """R, F, M and segment (its position in `SEGMENT_NAMES`) of each buyer
    (`customers.rfm`)."""
    r = _scores(columns.orders.orders["booked"][who.last])  # instants order as datetimes do
    f = _scores(who.orders)
    if who.booked.in_int64:  # exact millionths order as the `Decimal` sums do
        m = _scores(who.booked.totals)
    else:
        m = np.array(scores(who.booked.decimals()), dtype=np.int64)
    # The rules asked once per distinct (R, F, M, orders), not once per buyer.
    width = int(who.orders.max()) + 1 if who.orders.size else 1
    combo = ((r * 6 + f) * 6 + m) * width + who.orders
    _, first, inverse = np.unique(combo, return_index=True, return_inverse=True)
    named = [SEGMENT_NAMES.index(segment_of(int(r[i]), int(f[i]), int(m[i]),
                                            int(who.orders[i]))) for i in first.tolist()]
    return r, f, m, np.array(named, dtype=np.int64)[inverse]


def _at_rank(values: NDArray[np.int64], k: int) -> int:
    """`np.argsort(values, kind="stable")[k]` (what `sorted` puts at k: equal values in
    their order) without sorting them all."""
    value = np.partition(values, k)[k]
    ties = np.flatnonzero(values == value)
    return int(ties[k - np.count_nonzero(values < value)])


def _lifetime(sums: Sums) -> dict[str, Any]:
    """`customers._value` of the sums, making `Decimal`s of the total and the median's one
    or two sums only."""
    n = sums.totals.size
    exponent = min(0, int(sums.exponents.min())) if n else 0
    if not n or not sums.in_int64 or exponent < _LOWEST_EXACT_EXPONENT:
        return _value(sums.decimals())
    # Exact: the int64 bound on the amounts bounds their total too.
    total = as_decimal(int(sums.totals.sum()), exponent)
    # Which sum, not only its value: equal sums may differ in exponent, so in digits.
    median = sums.decimal(_at_rank(sums.totals, n // 2))
    if n % 2 == 0:
        median = (sums.decimal(_at_rank(sums.totals, n // 2 - 1)) + median) / 2
    return {"total": money(total), "mean": average_money(total, n), "median": money(median)}


def _moment(columns: Columns, row: int) -> datetime:
    """An order's booking time, with the offset it was written with."""
    o = columns.orders.orders
    offset = timezone(timedelta(seconds=int(o["booked_offset"][row])))
    return (_EPOCH + timedelta(microseconds=int(o["booked"][row]))).astimezone(offset)


def _retention(columns: Columns, who: Buyers, new: NDArray[np.int64],
               as_of: datetime) -> list[dict[str, Any]]:
    """`customers.retention` of each cohort of the new buyers, in one pass over the
    orders: the cohort is the month of the first order."""
    if not new.size:
        return []
    o = columns.orders.orders
    first_month = months(o["booked_day"][who.first])
    cohort_months, one, cohort_of, sizes = np.unique(
        first_month[new], return_index=True, return_inverse=True, return_counts=True)
    local = as_of.astimezone(columns.tz)
    spans = (local.year * 12 + local.month - 1 - cohort_months + 1).tolist()
    cohort = np.full(len(who.orders), -1, dtype=np.int64)
    cohort[new] = cohort_of
    chosen = cohort[who.order_buyer] >= 0
    buyer = who.order_buyer[chosen]
    offset = months(o["booked_day"][who.order_rows[chosen]]) - first_month[buyer]
    width = max(max(spans), int(offset.max()) + 1)
    pairs = np.unique(buyer * width + offset)  # each month once per buyer
    retained = np.bincount(cohort[pairs // width] * width + pairs % width,
                           minlength=len(spans) * width).reshape(len(spans), width)
    labels = period_keys(o["booked_day"][who.first[new[one]]], "month").tolist()
    result = []
    for label, c in sorted(zip(labels, range(len(spans)), strict=True)):
        counts = retained[c, :spans[c]].tolist()
        size = int(sizes[c])
        result.append({"cohort": label, "customers": size, "retained": counts,
                       "rates": [count / size for count in counts]})
    return result


def customers(columns: Columns, filters: Filters, as_of: datetime,
              by: str = "month") -> dict[str, Any]:
    """`customers.customers` over the column store."""
    o = columns.orders.orders
    who = buyers(columns, filters, as_of)
    n = len(who.orders)
    first_day = o["booked_day"][who.first]
    new = np.ones(n, dtype=bool)
    if filters.start is not None:
        new &= first_day >= filters.start.toordinal()
    if filters.end is not None:
        new &= first_day <= filters.end.toordinal()
    new_rows = np.flatnonzero(new)
    days, per_day = np.unique(first_day[new_rows], return_counts=True)
    new_by_period: Counter[str] = Counter()
    for key, count in zip(period_keys(days, by).tolist(), per_day.tolist(), strict=True):
        new_by_period[key] += count
    repeat = int(np.count_nonzero(who.orders >= 2))
    since = micros(as_of - timedelta(days=ACTIVE_DAYS))
    segments = np.bincount(rfm_scores(columns, who)[3], minlength=len(SEGMENT_NAMES))
    return {
        "as_of": as_of.isoformat(),
        "by": by,
        "customers": n,
        "active": int(np.count_nonzero(o["booked"][who.last] > since)),
        "new": len(new_rows),
        "new_by_period": [{"key": k, "new": new_by_period[k]} for k in sorted(new_by_period)],
        "repeat_customers": repeat,
        "repeat_rate": ratio(repeat, n),
        "lifetime_value": {"booked": _lifetime(who.booked),
                           "collected": _lifetime(who.collected)},
        "retention": _retention(columns, who, new_rows, as_of),
        "rfm_segments": {name: int(segments[k]) for k, name in enumerate(SEGMENT_NAMES)},
    }


def rfm_list(columns: Columns, filters: Filters, as_of: datetime, *, limit: int, offset: int,
             segment: str | None = None) -> dict[str, Any]:
    """`customers.rfm_list` over the column store."""
    who = buyers(columns, filters, as_of)
    rs, fs, ms, segments = rfm_scores(columns, who)
    if segment is None:
        rows = np.arange(len(who.orders))
    else:  # a segment no rule names selects no one
        rows = np.flatnonzero(segments == (SEGMENT_NAMES.index(segment)
                                           if segment in SEGMENT_NAMES else -1))
    keys = columns.customers.keys
    assert keys is not None
    page = []
    for i in rows[offset:offset + limit].tolist():
        first, last = _moment(columns, int(who.first[i])), _moment(columns, int(who.last[i]))
        page.append({
            "customer": keys.key(int(who.customer[i])),
            "first_order_at": first.isoformat(),
            "last_order_at": last.isoformat(),
            "recency_days": days_between(last, as_of),
            "frequency": int(who.orders[i]),
            "monetary": money(who.booked.decimal(i)),
            "collected": money(who.collected.decimal(i)),
            "r": int(rs[i]), "f": int(fs[i]), "m": int(ms[i]),
            "segment": SEGMENT_NAMES[int(segments[i])],
        })
    return {"as_of": as_of.isoformat(), "total": len(rows), "limit": limit, "offset": offset,
            "customers": page}
