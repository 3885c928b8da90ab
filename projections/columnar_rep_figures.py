"""The raw figures behind each rep's score (`scores.rep_figures`) over `Columns`: one array
per figure, over every rep that had joined by the window's close.

Nothing loops over reps (6,400 at a million deals) or reads every activity. What does not
depend on the window is kept per data version (`derived.kept`): the reps, and the won
deals in close order; the activities are read in (rep, day) order
(`columnar_rep_activity`). Money is summed exactly in integer millionths, with the
exponent a `Decimal` sum would have.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from events.vocabulary import ts
from projections.columnar import NOW, Columns
from projections.columnar_rep_activity import local_day, rep_activities
from projections.columnar_table import INT64_MAX, micros
from projections.derived import kept
from projections.scores import FOLLOW_UP_DAYS, Window

_LOW_BITS = 26  # money summed as two float64 bincounts: exact below 2**53 each


@dataclass(frozen=True)
class RepFigures:
    """`scores.rep_figures` as columns: entry i is rep `reps[i]`'s. Money in integer
    millionths (int64, or Python integers beyond it) with its `Decimal` exponent."""

    reps: list[str]
    names: list[Any]
    teams: list[str | None]
    managers: list[str | None]
    regions: list[str | None]
    won_value: NDArray[Any]
    won_exponent: NDArray[np.int64]
    won_deals: NDArray[np.int64]
    activities: NDArray[np.int64]
    open_deals: NDArray[np.int64]
    followed_up: NDArray[np.int64]
    collected: NDArray[Any]
    collected_exponent: NDArray[np.int64]
    customers: NDArray[np.int64]
    repeat_customers: NDArray[np.int64]


@dataclass(frozen=True)
class _Reps:
    ids: list[str]
    codes: NDArray[np.int32]
    joined: NDArray[np.int64]  # the moment of each one's first history entry
    names: list[Any]


@dataclass(frozen=True)
class _Won:
    """Deals won (and closed), by close."""

    closed: NDArray[np.int64]
    owner: NDArray[np.int32]
    customer: NDArray[np.int32]
    amount: NDArray[Any]
    exponent: NDArray[np.int8]
    previous: NDArray[np.intp]  # the place of the one before with its owner and customer


def _reps(columns: Columns) -> _Reps:
    def make() -> _Reps:
        records = columns.rep_records
        return _Reps(list(records), np.array([columns.strings.find(rid) or 0 for rid in records],
                                             dtype=np.int32),
                     np.array([micros(ts(r["history"][0][0])) for r in records.values()],
                              dtype=np.int64),
                     [r.get("name") for r in records.values()])
    return kept(columns, "scored reps", columns.versions.get("rep", 0), make)


def _won(columns: Columns) -> _Won:
    def make() -> _Won:
        d = columns.deals
        won = np.flatnonzero(d["exists"] & (d["status"] == (columns.strings.find("won") or -1))
                             & (d["closed"] != NOW))
        rows = won[np.argsort(d["closed"][won], kind="stable")]
        owner, customer = d["owner"][rows], d["customer"][rows]
        pairs = np.argsort(owner.astype(np.int64) * (int(customer.max(initial=0)) + 1)
                           + customer, kind="stable")
        same = ((owner[pairs][1:] == owner[pairs][:-1])
                & (customer[pairs][1:] == customer[pairs][:-1]))
        previous = np.full(len(rows), -1, dtype=np.intp)
        previous[pairs[1:][same]] = pairs[:-1][same]
        return _Won(d["closed"][rows], owner, customer, d["amount"][rows],
                    d["amount_exp"][rows], previous)
    return kept(columns, "won by close", columns.versions.get("deal", 0), make)


def money_by(groups: NDArray[Any], amounts: NDArray[Any], exponents: NDArray[np.int8],
             size: int) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """Per group (0 to `size` - 1): `sum(amounts, Decimal(0))` as integer millionths and
    the exponent it has (`columnar_views.decimal_sum`)."""
    exponent = np.zeros(size, dtype=np.int64)
    for value in sorted(np.unique(exponents[exponents < 0]).tolist(), reverse=True):
        exponent[np.bincount(groups[exponents == value], minlength=size) > 0] = value
    n = len(amounts)
    if amounts.dtype != object and n < 1 << _LOW_BITS and (
            not n or int(np.abs(amounts).max()) * n < INT64_MAX):
        low = np.bincount(groups, (amounts & ((1 << _LOW_BITS) - 1)).astype(np.float64), size)
        high = np.bincount(groups, (amounts >> _LOW_BITS).astype(np.float64), size)
        totals: NDArray[Any] = (high.astype(np.int64) << _LOW_BITS) + low.astype(np.int64)
        return totals, exponent
    totals = np.zeros(size, dtype=object)  # beyond int64: Python's integers
    np.add.at(totals, groups, amounts.astype(object))
    return totals, exponent


def _bounds(window: Window) -> tuple[int | None, int]:
    """`Window.holds` as [low, high) in microseconds (low None: unbounded)."""
    high = micros(window.as_of) + 1
    if window.end is not None:
        high = min(high, micros(window.end))
    return (None if window.start is None else micros(window.start)), high


def rep_figures(columns: Columns, window: Window) -> RepFigures:
    """`scores.rep_figures` over the columns."""
    closes = micros(window.closes)
    low, high = _bounds(window)
    reps = _reps(columns)
    chosen = np.flatnonzero(reps.joined <= closes)
    codes = reps.codes[chosen]
    size = len(columns.strings.values)
    won = _won(columns)
    first = 0 if low is None else int(np.searchsorted(won.closed, low))
    last = max(first, int(np.searchsorted(won.closed, high)))
    owner = won.owner[first:last]
    won_value, won_exponent = money_by(owner, won.amount[first:last],
                                       won.exponent[first:last], size)
    # Each (owner, customer) once: where the one before it is before the window.
    new = (won.previous[first:last] < first) & (won.customer[first:last] != 0)
    o = columns.orders.orders  # each customer's orders booked by the close
    booked = np.bincount(o["customer"][o["exists"] & (o["booked"] <= closes)],
                         minlength=columns.customers.size)
    repeat = booked[won.customer[first:last][new]] >= 2
    d = columns.deals
    still_open = d["exists"] & (d["created"] <= closes) & (d["closed"] > closes)
    collected, collected_exponent = _collected(columns, low, high, size)
    entries = columns.entries_at(codes, np.full(len(codes), closes, dtype=np.int64)).tolist()
    values = columns.strings.values
    return RepFigures(
        reps=[reps.ids[i] for i in chosen.tolist()],
        names=[reps.names[i] for i in chosen.tolist()],
        teams=[values[columns.history_team[e]] for e in entries],
        managers=[values[columns.history_manager[e]] for e in entries],
        regions=[values[columns.history_region[e]] for e in entries],
        won_value=won_value[codes], won_exponent=won_exponent[codes],
        won_deals=np.bincount(owner, minlength=size)[codes],
        activities=_logged(columns, low, high, size)[codes],
        open_deals=np.bincount(d["owner"][still_open], minlength=size)[codes],
        followed_up=np.bincount(d["owner"][still_open & _touched(columns, window)],
                                minlength=size)[codes],
        collected=collected[codes], collected_exponent=collected_exponent[codes],
        customers=np.bincount(owner[new], minlength=size)[codes],
        repeat_customers=np.bincount(owner[new][repeat], minlength=size)[codes])


def _logged(columns: Columns, low: int | None, high: int, size: int) -> NDArray[np.int64]:
    """Activities logged in [low, high), per rep code."""
    counts = np.zeros(size, dtype=np.int64)
    if low is not None and low >= high:
        return counts
    index, a = rep_activities(columns), columns.activities
    at = a["at"]
    logged = index.logged_before(high, at, columns.tz)
    if low is not None:
        logged -= index.logged_before(low, at, columns.tz)
    counts[index.reps] = logged
    tail = at[index.rows:a.size]
    held = tail < high
    if low is not None:
        held &= tail >= low
    counts += np.bincount(a["rep"][index.rows:a.size][held], minlength=size)
    return counts


def _touched(columns: Columns, window: Window) -> NDArray[np.bool_]:
    """The deals with an activity in the `FOLLOW_UP_DAYS` up to the window's close."""
    closes = micros(window.closes)
    since = micros(window.closes - timedelta(days=FOLLOW_UP_DAYS))  # wall-clock days
    index, a = rep_activities(columns), columns.activities
    first, last = local_day(since + 1, columns.tz), local_day(closes, columns.tz)
    # Only the first and the last day's moments need comparing: the days between are in.
    inner = index.on_days(first + 1, last - 1) if last - first > 1 else np.zeros(0, np.int32)
    edges = np.concatenate([index.on_days(first, first),
                            index.on_days(last, last) if last != first else inner[:0],
                            np.arange(index.rows, a.size, dtype=np.int32)])
    inner = inner[a["parent_kind"][inner] == 0]
    edges = edges[a["parent_kind"][edges] == 0]
    at = a["at"][edges]
    touched = np.zeros(columns.deals.size, dtype=bool)
    touched[a["parent"][inner]] = True
    touched[a["parent"][edges[(at > since) & (at <= closes)]]] = True
    return touched


def _collected(columns: Columns, low: int | None, high: int, size: int
               ) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """Payments received in [low, high) on orders of each rep's deals, per rep code."""
    p, o, d = columns.orders.payments, columns.orders.orders, columns.deals
    held = p["at"] < high
    if low is not None:
        held &= p["at"] >= low
    paid = np.flatnonzero(held)
    deal = o["deal"][p["order"][paid]]
    rep = np.where(d["exists"][deal], d["owner"][deal], 0)
    return money_by(rep, p["amount"][paid], p["amount_exp"][paid], size)
