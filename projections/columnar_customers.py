"""Customers and RFM over `Columns`: the answers `customers.py` gives over a `Snapshot`
(a test holds them byte-identical). Definitions: docs/METRICS.md, "GET /v1/customers".

Each customer is one run of its selected orders in the kept customer ledger
(`columnar_ledger.py`): first and last booking, order count, booked and collected sums
(exact integer millionths with the exponents `Decimal` sums give), read off running counts
and sums with no sort. The RFM ranks (a count or one partition) and the retention counts
stay in numpy; only what an answer shows becomes Python objects (the medians' sums, the
page of an RFM list).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from events.vocabulary import DIMENSIONS
from projections.columnar import Columns
from projections.columnar_ledger import (
    CustomerLedger,
    Sums,
    customer_ledger,
    first_sums,
    kept_before,
    kept_sums,
)
from projections.columnar_revenue import order_dims, period_keys
from projections.columnar_table import dense_codes, micros
from projections.columnar_views import as_decimal
from projections.customers import ACTIVE_DAYS, SEGMENT_NAMES, _value, scores, segment_of
from projections.snapshot import Filters
from projections.stats import average_money, days_between, money, ratio

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Below this exponent an int64 of millionths may need more than the 28 digits of the
# default `Decimal` context (9.2e18 x 10^8 < 10^28), and a `Decimal` sum would round.
_LOWEST_EXACT_EXPONENT = -14


@dataclass
class Buyers:
    """The customers with a selected order by as_of, in customer id order, as parallel
    columns."""

    ledger: CustomerLedger
    customer: NDArray[np.int64]  # the customer's row (its id: `columns.customers.keys`)
    orders: NDArray[np.int64]  # order count
    first: NDArray[np.int64]  # the first order's ledger position
    last: NDArray[np.int64]  # the last order's ledger position
    booked: Sums
    collected: Sums
    # The orders of buyer i are `chosen[begin[i]:begin[i] + orders[i]]`; with no `chosen`,
    # the ledger's positions from `begin[i]` on.
    begin: NDArray[np.int64]
    chosen: NDArray[np.int64] | None

    def positions(self, which: NDArray[np.int64]) -> NDArray[np.int64]:
        """The ledger positions of the orders of buyers `which`, each one's by time."""
        counts = self.orders[which]
        before = np.cumsum(counts) - counts
        at: NDArray[np.int64] = np.arange(int(counts.sum())) + np.repeat(
            self.begin[which] - before, counts)
        return at if self.chosen is None else self.chosen[at]


def buyers(columns: Columns, filters: Filters, as_of: datetime) -> Buyers:
    """`customers.buyers`: customers with a selected order by as_of (`from`/`to` not
    applied)."""
    ledger = customer_ledger(columns)
    o, p = ledger.orders, ledger.payments
    moment = micros(as_of)
    keep = o.at <= moment
    matching = _matching(columns, filters)
    if matching is None:  # each customer's first orders: read off the kept running sums
        counts = np.diff(kept_before(keep, o.starts))
        runs = np.flatnonzero(counts)
        begin, orders = o.starts[runs], counts[runs]
        paid = np.diff(kept_before(p.at <= moment, p.starts))[runs]
        return Buyers(
            ledger=ledger, customer=ledger.customer[runs], orders=orders,
            first=begin, last=begin + orders - 1,
            booked=first_sums(o, runs, orders), collected=first_sums(p, runs, paid),
            begin=begin, chosen=None)
    keep &= matching[ledger.order_rows]
    before = kept_before(keep, o.starts)
    runs = np.flatnonzero(np.diff(before))
    orders = np.diff(before)[runs]
    chosen = np.flatnonzero(keep)
    return Buyers(
        ledger=ledger, customer=ledger.customer[runs], orders=orders,
        first=chosen[before[runs]], last=chosen[before[runs] + orders - 1],
        booked=kept_sums(o, keep, runs),
        collected=kept_sums(p, keep[ledger.paid_order] & (p.at <= moment), runs),
        begin=before[runs], chosen=chosen)


def _matching(columns: Columns, filters: Filters) -> NDArray[np.bool_] | None:
    """Which order rows the dimension filters select (None: no dimension filter)."""
    dims = [(name, value) for name, value in filters.dims.items() if name in DIMENSIONS]
    if not dims:
        return None
    matching = np.ones(columns.orders.orders.size, dtype=bool)
    for name, value in dims:
        code = columns.strings.find(value)
        matching &= order_dims(columns, name) == code if code else False
    return matching


def _partitioned(values: NDArray[np.int64]) -> NDArray[np.int64]:
    """The values partitioned at every place the quintile scores (ceil(n s / 5) - 1) and
    the median (n // 2 and n // 2 - 1) read: one partition serves both."""
    n = values.size
    places = {-(-n * s // 5) - 1 for s in range(1, 5)} | {n // 2, max(n // 2 - 1, 0)}
    return np.partition(values, sorted(places)) if n else values


def quintile_scores(values: NDArray[Any], parted: NDArray[np.int64] | None = None
                    ) -> NDArray[np.int64]:
    """`customers.scores` in numpy: ceil(5 r / n), r the average 1-based rank of the
    value's ties. Few distinct values: each one's ties counted. Else the score, rising
    with the value, is 1 plus the number of four thresholds a value reaches; the s-th is
    the value at sorted place ceil(n s / 5) - 1 (`parted`: `_partitioned(values)`), or
    the next one up when that value's ties rank too low."""
    n = values.size
    score = np.ones(n, dtype=np.int64)
    if not n:
        return score
    low = int(values.min())
    span = int(values.max()) - low + 1
    if span <= 4 * n + 4096:
        each = np.bincount(values - low, minlength=span)
        twice_rank = 2 * (np.cumsum(each) - each) + each + 1
        scored: NDArray[np.int64] = (-(-5 * twice_rank // (2 * n)))[values - low]
        return scored
    if parted is None:
        parted = _partitioned(values)
    for s in range(1, 5):
        value = parted[-(-n * s // 5) - 1]
        below = int(np.count_nonzero(values < value))
        ties = int(np.count_nonzero(values == value))
        if 5 * (2 * below + ties + 1) > 2 * n * s:  # the value itself scores above s
            score += values >= value
        else:
            score += values > value
    return score


def rfm_scores(who: Buyers, booked: NDArray[np.int64] | None = None
               ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64],
                          NDArray[np.int64]]:
    """R, F, M and segment (its position in `SEGMENT_NAMES`) of each buyer
    (`customers.rfm`); `booked`: the booked sums `_partitioned`, if at hand."""
    r = quintile_scores(who.ledger.orders.at[who.last])  # instants order as datetimes do
    f = quintile_scores(who.orders)
    if who.booked.in_int64:  # exact millionths order as the `Decimal` sums do
        m = quintile_scores(who.booked.totals, booked)
    else:
        m = np.array(scores(who.booked.decimals()), dtype=np.int64)
    return r, f, m, _segments(r, f, m, who.orders)


def _segments(r: NDArray[np.int64], f: NDArray[np.int64], m: NDArray[np.int64],
              orders: NDArray[np.int64]) -> NDArray[np.int64]:
    """The rules asked once per distinct (R, F, M, orders), not once per buyer."""
    width = int(orders.max()) + 1 if orders.size else 1
    combo = (((r - 1) * 5 + f - 1) * 5 + m - 1) * width + orders
    distinct, where = _distinct(combo)
    quintiles, counts = np.divmod(distinct, width)
    named = [_segment(q // 25 + 1, q // 5 % 5 + 1, q % 5 + 1, count)
             for q, count in zip(quintiles.tolist(), counts.tolist(), strict=True)]
    return np.array(named, dtype=np.int64)[where]


@cache
def _segment(r: int, f: int, m: int, orders: int) -> int:
    """`segment_of` as its position in `SEGMENT_NAMES`; the rules are fixed, so an
    answer once found serves every question."""
    return SEGMENT_NAMES.index(segment_of(r, f, m, orders))


def _at_ranks(values: NDArray[np.int64], ranks: list[int], parted: NDArray[np.int64]
              ) -> list[int]:
    """`np.argsort(values, kind="stable")[k]` for each k (what `sorted` puts at k: equal
    values in their order), from `parted` (`_partitioned(values)`) instead of a sort."""
    found = []
    for k in ranks:
        value = parted[k]
        ties = np.flatnonzero(values == value)
        found.append(int(ties[k - np.count_nonzero(values < value)]))
    return found


def _lifetime(sums: Sums, parted: NDArray[np.int64] | None = None) -> dict[str, Any]:
    """`customers._value` of the sums, making `Decimal`s of the total and the median's one
    or two sums only; `parted`: the totals `_partitioned`, if at hand."""
    n = sums.totals.size
    exponent = min(0, int(sums.exponents.min())) if n else 0
    if not n or not sums.in_int64 or exponent < _LOWEST_EXACT_EXPONENT:
        return _value(sums.decimals())
    # Exact: the int64 bound on the amounts bounds their total too.
    total = as_decimal(int(sums.totals.sum()), exponent)
    # Which sum, not only its value: equal sums may differ in exponent, so in digits.
    parted = _partitioned(sums.totals) if parted is None else parted
    middle = [sums.decimal(i) for i in _at_ranks(sums.totals, [n // 2 - 1, n // 2][n % 2:],
                                                 parted)]
    median = middle[0] if n % 2 else (middle[0] + middle[1]) / 2
    return {"total": money(total), "mean": average_money(total, n), "median": money(median)}


def _distinct(values: NDArray[Any]) -> tuple[NDArray[Any], NDArray[np.intp]]:
    """`np.unique(values, return_inverse=True)`, by a count over the values' range when
    that is small."""
    if not values.size:
        return values, np.zeros(0, dtype=np.intp)
    low = int(values.min())
    span = int(values.max()) - low + 1
    if span > 4 * values.size + 4096:
        return np.unique(values, return_inverse=True)
    distinct, where = dense_codes(values - low, span)
    return distinct + low, where


def _moment(columns: Columns, row: int) -> datetime:
    """An order's booking time, with the offset it was written with."""
    o = columns.orders.orders
    offset = timezone(timedelta(seconds=int(o["booked_offset"][row])))
    return (_EPOCH + timedelta(microseconds=int(o["booked"][row]))).astimezone(offset)


def _retention(columns: Columns, who: Buyers, new: NDArray[np.int64],
               as_of: datetime) -> list[dict[str, Any]]:
    """`customers.retention` of each cohort of the new buyers, in one pass over their
    orders: the cohort is the month of the first order."""
    if not new.size:
        return []
    ledger = who.ledger
    first_month = ledger.month[who.first[new]]
    cohort_months, cohort_of = _distinct(first_month)
    sizes = np.bincount(cohort_of)
    local = as_of.astimezone(columns.tz)
    spans = (local.year * 12 + local.month - 1 - cohort_months + 1).tolist()
    # The new buyers' orders, each buyer's by booking time: its months never go down.
    buyer = np.repeat(np.arange(len(new)), who.orders[new])
    offset = ledger.month[who.positions(new)] - first_month[buyer]
    width = max(max(spans), int(offset.max()) + 1)
    # Each month once per buyer: where the buyer or the month changes.
    fresh = np.ones(len(buyer), dtype=bool)
    fresh[1:] = (buyer[1:] != buyer[:-1]) | (offset[1:] != offset[:-1])
    retained = np.bincount(cohort_of[buyer[fresh]] * width + offset[fresh],
                           minlength=len(spans) * width).reshape(len(spans), width)
    one = np.empty(len(spans), dtype=np.int64)
    one[cohort_of] = new  # a buyer of each cohort
    labels = period_keys(ledger.day[who.first[one]], "month").tolist()
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
    who = buyers(columns, filters, as_of)
    n = len(who.orders)
    first_day = who.ledger.day[who.first]
    new = np.ones(n, dtype=bool)
    if filters.start is not None:
        new &= first_day >= filters.start.toordinal()
    if filters.end is not None:
        new &= first_day <= filters.end.toordinal()
    new_rows = np.flatnonzero(new)
    days, of_day = _distinct(first_day[new_rows])
    new_by_period: Counter[str] = Counter()
    for key, count in zip(period_keys(days, by).tolist(), np.bincount(of_day).tolist(),
                          strict=True):
        new_by_period[key] += count
    repeat = int(np.count_nonzero(who.orders >= 2))
    since = micros(as_of - timedelta(days=ACTIVE_DAYS))
    booked = _partitioned(who.booked.totals) if who.booked.in_int64 else None
    segments = np.bincount(rfm_scores(who, booked)[3], minlength=len(SEGMENT_NAMES))
    return {
        "as_of": as_of.isoformat(),
        "by": by,
        "customers": n,
        "active": int(np.count_nonzero(who.ledger.orders.at[who.last] > since)),
        "new": len(new_rows),
        "new_by_period": [{"key": k, "new": new_by_period[k]} for k in sorted(new_by_period)],
        "repeat_customers": repeat,
        "repeat_rate": ratio(repeat, n),
        "lifetime_value": {"booked": _lifetime(who.booked, booked),
                           "collected": _lifetime(who.collected)},
        "retention": _retention(columns, who, new_rows, as_of),
        "rfm_segments": {name: int(segments[k]) for k, name in enumerate(SEGMENT_NAMES)},
    }


def rfm_list(columns: Columns, filters: Filters, as_of: datetime, *, limit: int, offset: int,
             segment: str | None = None) -> dict[str, Any]:
    """`customers.rfm_list` over the column store."""
    who = buyers(columns, filters, as_of)
    rs, fs, ms, segments = rfm_scores(who)
    if segment is None:
        rows = np.arange(len(who.orders))
    else:  # a segment no rule names selects no one
        rows = np.flatnonzero(segments == (SEGMENT_NAMES.index(segment)
                                           if segment in SEGMENT_NAMES else -1))
    keys = columns.customers.keys
    assert keys is not None
    rows_of = who.ledger.order_rows
    page = []
    for i in rows[offset:offset + limit].tolist():
        first = _moment(columns, int(rows_of[who.first[i]]))
        last = _moment(columns, int(rows_of[who.last[i]]))
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
