"""Receivables at many moments: `revenue.balance` of a set of orders for each period end
of a revenue question, each read off a few slices instead of every order.

Orders are kept sorted by booking, so "booked by a moment" is a prefix, a DSO window or
an aging bucket a range of it, and each order's payments follow it in time order, so a
range of orders has a range of payments. An order owes from its booking until the
payment that completed it (`done`; amounts and payments are never negative, so what it
was paid only grows). Most orders are paid within a few weeks (`span`): those (the short
run) can owe at a moment only if booked within `span` before it, and only that slice is
read; the others (never paid in full, or slowly) form the long run, read up to the
moment. What an order owes is its amount less its payments by the moment, so a bucket's
outstanding is the sum of its owing orders' amounts less the sum of their payments by
then, with the least exponent of those amounts, as `Decimal` sums give.

Pure: no I/O. Made once per version of the orders and kept (`derived.kept`), with the
balances read of it (a few hundred bytes each).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from projections.columnar import Columns
from projections.columnar_table import INT64_MAX
from projections.columnar_views import as_decimal
from projections.derived import kept
from projections.revenue import AGING_BUCKETS, DSO_WINDOW_DAYS
from projections.stats import money

_DAY_MICROS = 86_400 * 10**6
NEVER = INT64_MAX  # `done` of an order never paid in full
_READ_MOST = 4096  # balances kept at most (a year by day asks 366)
Sums = tuple[int, int, bool]  # integer millionths, exponent, whether anything was summed
_NOTHING: Sums = (0, 0, False)


def _whole_days(delta: int) -> float:
    """Completed days in `delta` microseconds, with the float arithmetic `balance` uses."""
    return float(np.floor(np.float64(delta) / 1e6 / 86400))


def _least_delta(days: int) -> int:
    """The least delta (microseconds) of `days` completed days or more: the arithmetic is
    monotone in the delta, so a bisection finds it exactly."""
    low, high = 0, (days + 1) * _DAY_MICROS
    while low < high:
        middle = (low + high) // 2
        if _whole_days(middle) >= days:
            high = middle
        else:
            low = middle + 1
    return low


# Each aging bucket's least age in microseconds, oldest first (bucket i: at least
# _AGES[i], below _AGES[i - 1]).
_OLDEST_FIRST = tuple(reversed(AGING_BUCKETS))
_AGES = tuple(_least_delta(low) for low, _, _ in _OLDEST_FIRST)


@dataclass(frozen=True)
class Run:
    """Orders sorted by booking (ties in row order) and their payments, order by order,
    each order's in the order they occurred."""

    rows: NDArray[np.intp]  # each order's row
    booked: NDArray[np.int64]
    done: NDArray[np.int64]  # the moment it was paid in full (NEVER: not yet)
    amount: NDArray[np.int64]
    exponent: NDArray[np.int8]
    pay_start: NDArray[np.int64]  # each order's first payment, then the end
    paid_at: NDArray[np.int64]
    pay_done: NDArray[np.int64]  # its order's `done`
    paid: NDArray[np.int64]
    pay_exponent: NDArray[np.int8]
    pay_order: NDArray[np.int32]  # its order's position
    span: int | None  # every order's done - booked lies in [0, span]; None: no bound

    def subset(self, kept: NDArray[np.intp]) -> Run:
        """The orders at positions `kept` (ascending) and their payments: gathers of their
        size, not passes over every order (a rep's question keeps a few hundredth)."""
        first, counts = self.pay_start[kept], np.diff(self.pay_start)[kept]
        starts = np.r_[0, np.cumsum(counts)].astype(np.int64)
        # Each kept order's payments, one range after another.
        paying = np.arange(int(starts[-1])) + np.repeat(first - starts[:-1], counts)
        return Run(self.rows[kept], self.booked[kept], self.done[kept], self.amount[kept],
                   self.exponent[kept], starts, self.paid_at[paying], self.pay_done[paying],
                   self.paid[paying], self.pay_exponent[paying],
                   np.repeat(np.arange(kept.size, dtype=np.int32), counts), self.span)


@dataclass(frozen=True)
class Receivables:
    """A tenant's orders in two runs (see the module's docstring), with each order's
    `done` by row."""

    short: Run
    long: Run
    done: NDArray[np.int64]  # by order row: -1 never paid in full, as `revenue.fully_paid_at`
    exponent: int | None  # the one exponent of every amount and payment, if only one
    # Balances already read, by (microsecond, inclusive): a balance depends on nothing
    # after its moment, so a dashboard's next `as_of` finds its period ends here.
    read: dict[tuple[int, bool], dict[str, Any]] = field(default_factory=dict)

    def subset(self, keep: NDArray[np.bool_]) -> Receivables:
        """The orders whose rows `keep` keeps."""
        return Receivables(self.short.subset(np.flatnonzero(keep[self.short.rows])),
                           self.long.subset(np.flatnonzero(keep[self.long.rows])), self.done,
                           self.exponent)

    def balance(self, moment: int, inclusive: bool) -> dict[str, Any]:
        """`revenue.balance` of every order at `moment` (microseconds)."""
        found = self.read.get((moment, inclusive))
        if found is None:
            if len(self.read) >= _READ_MOST:
                self.read.clear()
            found = self.read[(moment, inclusive)] = self.balances(moment, inclusive, None)[0][0]
        return {**found, "aging": dict(found["aging"])}  # a copy: answers are handed out

    def balances(self, moment: int, inclusive: bool, codes: NDArray[np.int32] | None
                 ) -> dict[int, tuple[dict[str, Any], bool]]:
        """`revenue.balance` at `moment` of the orders of each code of `codes` (by order row;
        None: all orders, as code 0), and whether they owe anything then; codes with no
        order owing or booked in the DSO window are left out (their balance: `nothing_owed`)."""
        cut = moment if inclusive else moment - 1  # whole microseconds: "< m" is "<= m - 1"
        found: dict[int, tuple[list[Sums], Sums]] = {}
        for run in (self.short, self.long):
            for code, (aging, trailing) in self._run_sums(run, moment, cut, codes).items():
                had = found.get(code)
                found[code] = (aging, trailing) if had is None else \
                    ([_add(a, b) for a, b in zip(had[0], aging, strict=True)],
                     _add(had[1], trailing))
        return {code: (_balance(aging, trailing), any(owes for _, _, owes in aging))
                for code, (aging, trailing) in found.items()}

    def _run_sums(self, run: Run, moment: int, cut: int, codes: NDArray[np.int32] | None
                  ) -> dict[int, tuple[list[Sums], Sums]]:
        booked = run.booked
        high = int(np.searchsorted(booked, cut, "right"))
        low = 0 if run.span is None else min(int(np.searchsorted(booked, cut - run.span)), high)
        owing = np.flatnonzero(run.done[low:high] > cut) + low
        pay_low, pay_high = int(run.pay_start[low]), int(run.pay_start[high])
        counted = np.flatnonzero((run.paid_at[pay_low:pay_high] <= cut)
                                 & (run.pay_done[pay_low:pay_high] > cut)) + pay_low
        # Bucket bounds as positions: the oldest bucket first, up to the moment.
        bounds = np.clip(np.searchsorted(booked, moment - np.array(_AGES[:-1]), "right"),
                         low, high)
        edges: NDArray[np.intp] = np.r_[low, bounds, high].astype(np.intp)
        recent = np.arange(int(np.searchsorted(booked, moment - DSO_WINDOW_DAYS * _DAY_MICROS,
                                                "right")), high)
        if codes is None:
            groups = {0: (owing, counted, recent)}
        else:
            of_orders = codes[run.rows]
            groups = _split(of_orders, owing, of_orders[run.pay_order[counted]], counted,
                            recent)
        sums = {}
        for code, (orders, payments, window) in groups.items():
            at = np.searchsorted(orders, edges).tolist()
            pay_at = np.searchsorted(payments, run.pay_start[edges]).tolist()
            aging = []
            for bucket in range(len(_AGES)):
                owed = self._sum(run.amount, run.exponent, orders[at[bucket]:at[bucket + 1]])
                less = self._sum(run.paid, run.pay_exponent,
                                 payments[pay_at[bucket]:pay_at[bucket + 1]])
                aging.append((owed[0] - less[0], min(owed[1], less[1]), owed[2]))
            sums[code] = (aging, self._sum(run.amount, run.exponent, window))
        return sums

    def _sum(self, values: NDArray[np.int64], exponents: NDArray[np.int8],
             rows: NDArray[np.intp]) -> Sums:
        """`sum(amounts, Decimal(0))` of `values[rows]`: exact in int64 (`receivables`
        keeps no amounts whose sums could leave it)."""
        if not rows.size:
            return _NOTHING
        if rows[-1] - rows[0] + 1 == rows.size:  # a range: no gather
            picked, exps = values[rows[0]:rows[-1] + 1], exponents[rows[0]:rows[-1] + 1]
        else:
            picked, exps = values[rows], exponents[rows]
        least = self.exponent if self.exponent is not None else int(exps.min())
        return int(picked.sum()), min(least, 0), True


def _add(a: Sums, b: Sums) -> Sums:
    if not b[2]:
        return a
    if not a[2]:
        return b
    return a[0] + b[0], min(a[1], b[1]), True


def _balance(aging: list[Sums], trailing: Sums) -> dict[str, Any]:
    total, least = 0, 0
    for owed, exponent, _ in aging:
        total, least = total + owed, min(least, exponent)
    outstanding = as_decimal(total, least)
    in_window = as_decimal(trailing[0], trailing[1])
    return {
        "outstanding": money(outstanding),
        "aging": {label: money(as_decimal(owed, exponent)) for (_, _, label), (owed, exponent, _)
                  in zip(_OLDEST_FIRST[::-1], aging[::-1], strict=True)},
        "dso": float(outstanding / in_window) * DSO_WINDOW_DAYS if in_window else None,
    }


def nothing_owed() -> dict[str, Any]:
    """The balance of orders that owe nothing and were booked before the DSO window."""
    return _balance([_NOTHING] * len(_AGES), _NOTHING)


def _split(of_orders: NDArray[np.int32], owing: NDArray[np.intp],
           pay_codes: NDArray[np.int32], counted: NDArray[np.intp], recent: NDArray[np.intp]
           ) -> dict[int, tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]]:
    """Each code's owing orders, counted payments and orders in the DSO window (each
    still in ascending position)."""
    parts = [_by_code(of_orders[owing], owing), _by_code(pay_codes, counted),
             _by_code(of_orders[recent], recent)]
    empty = np.zeros(0, dtype=np.intp)
    found = set(parts[0]) | set(parts[1]) | set(parts[2])
    return {code: (parts[0].get(code, empty), parts[1].get(code, empty),
                   parts[2].get(code, empty)) for code in found}


def _by_code(codes: NDArray[np.int32], rows: NDArray[np.intp]) -> dict[int, NDArray[np.intp]]:
    if not rows.size:
        return {}
    order = np.argsort(codes, kind="stable")
    codes, rows = codes[order], rows[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    return dict(zip(codes[starts].tolist(), np.split(rows, starts[1:]), strict=True))


def receivables(columns: Columns) -> Receivables | None:
    """Every existing order's receivables, kept until an order changes; None when an
    amount's sums could leave int64 (the caller then sums otherwise)."""
    return kept(columns, "receivables", columns.versions.get("order", 0),
                lambda: _make(columns))


def _make(columns: Columns) -> Receivables | None:
    o, p = columns.orders.orders, columns.orders.payments
    if o["amount"].dtype == object or p["amount"].dtype == object:
        return None
    rows = np.flatnonzero(o["exists"])
    rows = rows[np.argsort(o["booked"][rows], kind="stable")]
    position = np.full(o.size, -1, dtype=np.int64)
    position[rows] = np.arange(rows.size)
    paying = np.flatnonzero(position[p["order"]] >= 0)
    of, at = position[p["order"][paying]], p["at"][paying]
    # Payments in time order within each order: as they usually come (by row, then time),
    # a stable sort by position keeps each order's in time order.
    row, moment = p["order"][paying], p["at"][paying]
    step = np.diff(row)
    if ((step > 0) | ((step == 0) & (np.diff(moment) >= 0))).all():
        paying = paying[np.argsort(of, kind="stable")]
    else:
        paying = paying[np.lexsort((moment, of))]
    of, at = position[p["order"][paying]], p["at"][paying]
    amount, paid = o["amount"][rows], p["amount"][paying]
    for values in (amount, paid):
        if values.size and int(values.max()) * values.size >= INT64_MAX:
            return None
    counts = np.bincount(of, minlength=rows.size)
    pay_start = np.r_[0, np.cumsum(counts)].astype(np.int64)
    done = _done(o["booked"][rows], amount, pay_start, at, paid)
    by_row = np.full(o.size, -1, dtype=np.int64)
    by_row[rows] = np.where(done == NEVER, -1, done)
    exponents = np.r_[o["amount_exp"][rows], p["amount_exp"][paying]]
    whole = Run(rows, o["booked"][rows], done, amount, o["amount_exp"][rows], pay_start, at,
                done[of], paid, p["amount_exp"][paying], of.astype(np.int32), None)
    duration = done - whole.booked
    span = _short_span(duration, whole.booked)
    short = (duration >= 0) & (duration <= span) & (done != NEVER)
    return Receivables(_as_short(whole.subset(np.flatnonzero(short)), span),
                       whole.subset(np.flatnonzero(~short)), by_row,
                       int(exponents[0]) if exponents.size and
                       (exponents == exponents[0]).all() else None)


def _as_short(run: Run, span: int) -> Run:
    return Run(run.rows, run.booked, run.done, run.amount, run.exponent, run.pay_start,
               run.paid_at, run.pay_done, run.paid, run.pay_exponent, run.pay_order, span)


def _short_span(duration: NDArray[np.int64], booked: NDArray[np.int64]) -> int:
    """The span that reads fewest orders a moment: those paid within it in a slice of
    `span` of the bookings, the rest whole."""
    finite = duration[(duration >= 0) & (duration < NEVER // 2)]
    if not finite.size:
        return 0
    history = max(int(booked[-1] - booked[0]), 1)
    places = [min(int(q * finite.size), finite.size - 1)
              for q in (0.5, 0.75, 0.9, 0.95, 0.98, 0.99, 1.0)]
    finite = np.partition(finite, places)  # those order statistics, not a whole sort
    best, best_cost = int(finite[-1]), float("inf")
    for at in places:
        span = int(finite[at])
        cost = (booked.size - at - 1) + at * min(span / history, 1.0)
        if cost < best_cost:
            best, best_cost = span, cost
    return best


def _done(booked: NDArray[np.int64], amount: NDArray[np.int64], pay_start: NDArray[np.int64],
          at: NDArray[np.int64], paid: NDArray[np.int64]) -> NDArray[np.int64]:
    """`revenue.fully_paid_at` of each order (NEVER: not yet): its booking when its amount
    is 0, else the time of the payment that brought it to its amount."""
    done = np.where(amount <= 0, booked, NEVER).astype(np.int64)
    if not at.size:
        return done
    counts = np.diff(pay_start)
    of = np.repeat(np.arange(booked.size), counts)
    running = np.cumsum(paid)
    before = np.repeat(_before(running, paid, pay_start), counts)
    reached = np.flatnonzero(running - before >= amount[of])
    # Payments run order by order, so each order's first is where the order changes.
    reaching = of[reached]
    first = np.flatnonzero(np.r_[True, reaching[1:] != reaching[:-1]]) if reaching.size \
        else np.zeros(0, dtype=np.intp)
    orders, moment = reaching[first], at[reached[first]]
    not_yet = done[orders] == NEVER
    done[orders[not_yet]] = moment[not_yet]
    return done


def _before(running: NDArray[np.int64], paid: NDArray[np.int64],
            pay_start: NDArray[np.int64]) -> NDArray[np.int64]:
    """The running sum before each order's first payment."""
    first = np.minimum(pay_start[:-1], max(running.size - 1, 0))
    return running[first] - paid[first]
