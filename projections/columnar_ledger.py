"""The customer ledger: every order by customer id, then booking time (ties in row order,
as `sorted` leaves them), and each customer's payments beside its orders, by the moment
each starts to count. Made once per version of the orders and kept (`derived.kept`): it
depends on no `as_of` and no filter, so a question about customers reads it, never sorts.

A customer's orders (payments) are one run of positions. What a question asks of each
customer (how many, the first, the last, the sums) is read at the runs' ends off running
counts and running sums. With no dimension filter the orders a question keeps are the
first ones of each run, those counting by `as_of`, and their sums are read off the kept
running sums; a dimension filter masks the runs and sums what it keeps. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray

from projections.columnar import Columns, months
from projections.columnar_table import running_min_in_runs
from projections.columnar_views import as_decimal
from projections.derived import kept

# Running int64 sums of amounts whose magnitudes add up to less than this cannot overflow
# (the magnitudes summed in float64: its rounding is far inside the factor of two).
_EXACT_BELOW = float(2 ** 62)


@dataclass(frozen=True)
class Entries:
    """Orders, or payments, in ledger order."""

    at: NDArray[np.int64]  # the moment each counts from (microseconds), rising in a run
    exponent: NDArray[np.int8]  # each amount's `Decimal` exponent, at most 0
    lowest: NDArray[np.int8]  # the lowest exponent in its run up to each position
    running: NDArray[Any]  # the sum of the amounts before each position, then the total;
    #                        int64 millionths, or Python's integers when int64 could overflow
    starts: NDArray[np.int64]  # each customer's first position, then the end
    scales: tuple[int, ...]  # the exponents below 0 among them, highest first


@dataclass(frozen=True)
class CustomerLedger:
    customer: NDArray[np.int64]  # each customer with an order: its row, in id order
    order_rows: NDArray[np.int32]  # each order's row
    day: NDArray[np.int32]  # each order's local booking date (ordinal)
    month: NDArray[np.int32]  # and its month, as year * 12 + month - 1
    orders: Entries
    payments: Entries  # counting from the later of their receipt and their order's booking
    paid_order: NDArray[np.int32]  # each payment's order, as its ledger position


@dataclass
class Sums:
    """Per customer, `sum(amounts, Decimal(0))` as integer millionths and that sum's
    exponent. `totals` is int64 when no sum of the amounts can overflow it, else Python
    ints."""

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


def customer_ledger(columns: Columns) -> CustomerLedger:
    """The ledger of the columns' orders as they are now."""
    return kept(columns, "customer ledger", columns.versions.get("order", 0),
                lambda: _make(columns))


def kept_before(keep: NDArray[np.bool_], starts: NDArray[np.int64]) -> NDArray[np.int64]:
    """How many positions `keep` keeps before each of `starts`."""
    running = np.zeros(len(keep) + 1, dtype=np.int64)
    np.cumsum(keep, out=running[1:])
    return running[starts]


def first_sums(entries: Entries, runs: NDArray[np.int64], counts: NDArray[np.int64]) -> Sums:
    """Per run of `runs`, the sum of its first `counts` entries."""
    begin = entries.starts[runs]
    end = begin + counts
    exponents = np.zeros(len(runs), dtype=np.int64)
    if len(entries.at):
        exponents = np.where(counts > 0, entries.lowest[np.maximum(end - 1, 0)], 0)
    return Sums(entries.running[end] - entries.running[begin], exponents.astype(np.int64))


def kept_sums(entries: Entries, keep: NDArray[np.bool_], runs: NDArray[np.int64]) -> Sums:
    """Per run of `runs`, the sum of the entries `keep` keeps."""
    begin, end = entries.starts[runs], entries.starts[runs + 1]
    exponents = np.zeros(len(runs), dtype=np.int64)  # Decimal(0)'s exponent takes part
    for scale in entries.scales:  # highest first: the lowest present is left
        before = kept_before(keep & (entries.exponent == scale), entries.starts)
        exponents[before[runs + 1] > before[runs]] = scale
    amounts = np.where(keep, np.diff(entries.running), 0)
    running = np.concatenate((np.zeros(1, dtype=amounts.dtype), np.cumsum(amounts)))
    return Sums(running[end] - running[begin], exponents)


def _entries(at: NDArray[np.int64], amount: NDArray[Any], exponent: NDArray[np.int8],
             starts: NDArray[np.int64]) -> Entries:
    if amount.dtype == object or (
            amount.size and max(-int(amount.min()), int(amount.max())) * amount.size >= 2 ** 62
            and float(np.abs(amount.astype(np.float64)).sum()) >= _EXACT_BELOW):
        amount = amount.astype(object)  # Python's integers do not overflow
    running = np.concatenate((np.zeros(1, dtype=amount.dtype), np.cumsum(amount)))
    exponent = np.minimum(exponent, 0)  # a sum starts from Decimal(0)
    lowest = running_min_in_runs(exponent, np.diff(starts)).astype(np.int8)
    scales = np.flatnonzero(np.bincount(-exponent.astype(np.int64), minlength=1)[1:]) + 1
    return Entries(at, exponent, lowest, running, starts,
                   tuple(-int(s) for s in scales.tolist()))


def _make(columns: Columns) -> CustomerLedger:
    o, p = columns.orders.orders, columns.orders.payments
    rows = np.flatnonzero(o["exists"])
    keys = columns.customers.keys
    assert keys is not None
    seen = np.zeros(keys.size, dtype=bool)
    seen[o["customer"][rows]] = True  # customer rows are dense: no sort to find them
    present = np.flatnonzero(seen)
    by_id = present[keys.sorted_order(present)]
    place = np.empty(keys.size, dtype=np.int64)
    place[by_id] = np.arange(len(by_id))
    customer_of = place[o["customer"][rows]]
    ordered = np.lexsort((o["booked"][rows], customer_of))  # stable: ties in row order
    rows, customer_of = rows[ordered], customer_of[ordered]
    starts = np.concatenate(([0], np.cumsum(np.bincount(customer_of, minlength=len(by_id)))))
    position = np.full(o.size, -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    of_payment = position[p["order"]]
    listed = np.flatnonzero(of_payment >= 0)  # payments of orders that exist
    # A payment counts once it is received and its order booked.
    counts_from = np.maximum(p["at"][listed], o["booked"][p["order"][listed]])
    by_customer = np.lexsort((counts_from, customer_of[of_payment[listed]]))
    paying, counts_from = listed[by_customer], counts_from[by_customer]
    paid_order = of_payment[paying]
    paid_by = np.bincount(customer_of[paid_order], minlength=len(by_id))
    return CustomerLedger(
        customer=by_id, order_rows=rows.astype(np.int32), day=o["booked_day"][rows],
        month=months(o["booked_day"][rows]).astype(np.int32),
        orders=_entries(o["booked"][rows], o["amount"][rows], o["amount_exp"][rows], starts),
        payments=_entries(counts_from, p["amount"][paying], p["amount_exp"][paying],
                          np.concatenate(([0], np.cumsum(paid_by)))),
        paid_order=paid_order.astype(np.int32))
