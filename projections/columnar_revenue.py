"""Revenue over `Columns`: the answers `revenue.py` gives over a `Snapshot` (a test holds
them byte-identical), in numpy. Definitions: docs/METRICS.md, "GET /v1/revenue".

Money is summed in integer millionths with the exponent Python's `Decimal` arithmetic
would give (an amount owed has the smaller of its order's and its payments' exponents);
a DSO divides the same exact `Decimal`s; moments compare as whole microseconds. Balances
are read off the tenant's kept receivables (`columnar_receivables`), a few slices per
period end, except when sums could leave int64: then off each order's payments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from events.vocabulary import DIMENSIONS
from projections.columnar import KEPT_WHOLE, Columns
from projections.columnar_grouped import DecimalSums, FsumMeans, medians
from projections.columnar_receivables import nothing_owed, receivables
from projections.columnar_table import dense_codes, micros, running_min_in_runs, split_by_code
from projections.columnar_views import decimal_sum
from projections.derived import kept, kept_for
from projections.revenue import AGING_BUCKETS, DSO_WINDOW_DAYS, GROUPINGS, MONTHS_PER_PERIOD
from projections.snapshot import ALL_PERIODS, Filters
from projections.stats import average_money, money

_DAY_MICROS = 86_400 * 10**6


def order_dims(columns: Columns, name: str) -> NDArray[np.int32]:
    """Each order's dimension `name` (`Snapshot._order`): its deal's rep, that rep's team,
    manager and region at booking, its deal's source, its own product else its deal's,
    its customer's segment. Kept until one of the kinds it reads changes: finding every
    order's team at booking is most of a team's revenue question (0.1 s at 1M deals)."""
    version = tuple(sorted(columns.versions.items()))  # any record put: made again
    return kept(columns, ("order dims", name), version, lambda: _order_dims(columns, name))


def _order_dims(columns: Columns, name: str) -> NDArray[np.int32]:
    o, d = columns.orders.orders, columns.deals
    deal = o["deal"]
    has_deal = d["exists"][deal]
    rep = columns.orders.rep_of(d, d["owner"])
    if name == "rep":
        return rep
    if name in ("team", "manager", "region"):
        history = np.array({"team": columns.history_team, "manager": columns.history_manager,
                            "region": columns.history_region}[name], dtype=np.int32)
        return history[columns.entries_at(rep, o["booked"])]
    if name == "source":
        return np.where(has_deal, columns.dim("deal", "source")[deal], 0)
    if name == "product":
        return np.where(o["product"] != 0, o["product"],
                        np.where(has_deal, d["product"][deal], 0))
    customers = columns.customers
    segments: NDArray[np.int32] = np.where(customers["exists"], customers["segment"], 0)
    of_orders: NDArray[np.int32] = segments[o["customer"]]
    return of_orders


def period_keys(days: NDArray[np.int32], by: str) -> NDArray[np.object_]:
    """`Snapshot.period_key` of each local day (as an ordinal)."""
    unique, where = np.unique(days, return_inverse=True)
    keys = [_period_key(date.fromordinal(int(day)), by) for day in unique.tolist()]
    return np.array(keys, dtype=object)[where] if keys else np.zeros(0, dtype=object)


def _period_key(day: date, by: str) -> str:
    if by == "day":
        return day.isoformat()
    if by == "week":
        year, week, _ = day.isocalendar()
        return f"{year:04d}-W{week:02d}"
    if by == "month":
        return f"{day.year:04d}-{day.month:02d}"
    if by == "quarter":
        return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"
    return f"{day.year:04d}"


def _period_end(columns: Columns, day: date, by: str) -> int:
    """`revenue.period_end` of a day in the period, in microseconds."""
    if by == "day":
        following = day + timedelta(days=1)
    elif by == "week":
        following = day + timedelta(days=7 - day.weekday())
    else:
        step = MONTHS_PER_PERIOD[by]
        months = day.year * 12 + (day.month - 1) // step * step + step
        following = date(months // 12, months % 12 + 1, 1)
    return micros(datetime.combine(following, time(), columns.tz))


class Payments:
    """Orders' payments, each order's in the order they occurred, summed as they came: what
    such an order was paid by any moment is then one of these running sums (its payments
    by a moment are a prefix of its own), with no scatter over all payments. Made over
    every payment of the orders, whatever the question's `as_of`: a question asks only
    about moments up to its own, and only of orders booked by then."""

    def __init__(self, columns: Columns, orders: NDArray[np.bool_]) -> None:
        o, p = columns.orders.orders, columns.orders.payments
        rows = np.flatnonzero(orders[p["order"]])
        order, at = p["order"][rows], p["at"][rows]
        step = np.diff(order)
        if ((step > 0) | ((step == 0) & (np.diff(at) >= 0))).all():  # as they usually come
            by_time = rows
        else:
            by_time = rows[np.lexsort((at, order))]
        of = p["order"][by_time]
        amounts = p["amount"][by_time]
        self.paid_at = p["at"][by_time]
        new_run = np.r_[True, of[1:] != of[:-1]] if len(of) else np.zeros(0, dtype=bool)
        self.starts = np.flatnonzero(new_run)
        self.ends = np.r_[self.starts[1:], len(of)].astype(np.intp)
        self.of = of[self.starts]  # each run's order
        self.run_of = np.full(o.size, -1, dtype=np.intp)
        self.run_of[self.of] = np.arange(len(self.of))
        # Summed across orders, each run's sums less what came before it: in int64 any
        # wrap cancels, as the per-order sums `np.add.at` gave (beyond int64: objects).
        self.running = np.cumsum(amounts)
        self.before = self.running[self.starts] - amounts[self.starts]
        # The least exponent so far within each run.
        self.least_exp = running_min_in_runs(p["amount_exp"][by_time], self.ends - self.starts)
        self.done = self._fully_paid_at(columns)

    def _fully_paid_at(self, columns: Columns) -> NDArray[np.int64]:
        """`revenue.fully_paid_at` of every order (-1: never): the time of the payment that
        brought it to its amount, in the order the payments occurred."""
        o = columns.orders.orders
        done = np.where(o["amount"] <= 0, o["booked"], -1).astype(np.int64)
        if not len(self.starts):
            return done
        counts = np.diff(np.r_[self.starts, len(self.running)])
        of = np.repeat(self.of, counts)
        reached = np.flatnonzero((self.running - np.repeat(self.before, counts))
                                 >= o["amount"][of])
        orders, first = np.unique(of[reached], return_index=True)
        at = self.paid_at[reached[first]]
        not_yet = done[orders] < 0
        done[orders[not_yet]] = at[not_yet]
        return done


class Ledger:
    """The orders and payments one revenue question reads, as row numbers."""

    def __init__(self, columns: Columns, filters: Filters, as_of: datetime) -> None:
        self.columns, self.as_of = columns, micros(as_of)
        o, p = columns.orders.orders, columns.orders.payments
        orders = o["exists"].copy()
        dims = [(name, value) for name, value in filters.dims.items() if name in DIMENSIONS]
        for name, value in dims:
            code = columns.strings.find(value)
            orders &= order_dims(columns, name) == code if code else False
        keep = orders & (o["booked"] <= self.as_of)
        self.known = np.flatnonzero(keep)
        paid = np.flatnonzero(keep[p["order"]] & (p["at"] <= self.as_of))
        if filters.start is None and filters.end is None:  # every day: no mask to apply
            self.bookings, self.receipts = self.known, paid
        else:
            self.bookings = self.known[self._on_days(o["booked_day"][self.known], filters)]
            self.receipts = paid[self._on_days(p["day"][paid], filters)]
        # The tenant's receivables are kept until an order changes, since dashboards ask
        # again with each `as_of`; a team's or rep's question reads its own orders of them.
        whole = receivables(columns)
        self.receivables = whole if whole is None or not dims else whole.subset(orders)
        self._balances: dict[tuple[int, bool], dict[str, Any]] = {}
        self._flows: _Flows | None = None
        if whole is None:  # sums beyond int64: every order's payments read as they come
            self.payments = Payments(columns, orders)
            self.done = self.payments.done
        else:
            self.done = whole.done

    @staticmethod
    def _on_days(days: NDArray[np.int32], filters: Filters) -> NDArray[np.bool_]:
        keep = np.ones(len(days), dtype=bool)
        if filters.start is not None:
            keep &= days >= filters.start.toordinal()
        if filters.end is not None:
            keep &= days <= filters.end.toordinal()
        return keep

    def owing(self, rows: NDArray[np.intp], moment: int, inclusive: bool) -> NDArray[np.intp]:
        """The orders of `rows` (booked by `moment`) still owed something then. Amounts and
        payments are never negative, so what an order was paid only grows: it owes until
        the payment that completed it (`done`), and no payment needs summing to know."""
        done = self.done[rows]
        return rows[(done < 0) | ((done > moment) if inclusive else (done >= moment))]

    def paid_by(self, rows: NDArray[np.intp], moment: int, inclusive: bool
                ) -> tuple[NDArray[np.int64], NDArray[np.int8]]:
        """What each order of `rows` was paid by `moment`, and that sum's exponent: the
        running sum at its last payment by then, reading only these orders' payments."""
        pay = self.payments
        paid = np.zeros(rows.size, dtype=pay.running.dtype)
        exponent = np.zeros(rows.size, dtype=np.int8)
        run = pay.run_of[rows]
        some = np.flatnonzero(run >= 0)
        if not some.size:
            return paid, exponent
        run = run[some]
        first = pay.starts[run]
        counts = pay.ends[run] - first
        # Each order's payments, one run after another, as indexes into the sorted payments.
        offsets = np.cumsum(counts) - counts
        flat = np.arange(int(counts.sum())) - np.repeat(offsets - first, counts)
        at = pay.paid_at[flat]
        covered = (at <= moment) if inclusive else (at < moment)
        by_then = np.add.reduceat(covered, offsets, dtype=np.int64)  # a prefix of each run
        has = by_then > 0
        last = (first + by_then - 1)[has]
        paid[some[has]] = pay.running[last] - pay.before[run[has]]
        exponent[some[has]] = np.minimum(pay.least_exp[last], 0)
        return paid, exponent

    def balance_of_all(self, moment: int, inclusive: bool) -> dict[str, Any]:
        """`revenue.balance` of every known order at `moment` (at most `as_of`)."""
        if self.receivables is not None:
            return self.receivables.balance(moment, inclusive)
        found = self._balances.get((moment, inclusive))
        if found is None:
            found = self._balances[(moment, inclusive)] = \
                self.balance(self.known, moment, inclusive)
        return found

    def balance(self, rows: NDArray[np.intp], moment: int, inclusive: bool) -> dict[str, Any]:
        """`revenue.balance` of the orders `rows` at `moment`, reading their payments (the
        path for sums beyond int64)."""
        o = self.columns.orders.orders
        booked = o["booked"][rows]
        before = (booked <= moment) if inclusive else (booked < moment)
        recent = before & (booked > moment - DSO_WINDOW_DAYS * _DAY_MICROS)
        trailing = decimal_sum(o["amount"][rows[recent]], o["amount_exp"][rows[recent]])
        owing = self.owing(rows[before], moment, inclusive)
        paid, paid_exp = self.paid_by(owing, moment, inclusive)
        owed = o["amount"][owing] - paid
        owed_exp = np.minimum(o["amount_exp"][owing], paid_exp)
        whole_days = np.floor((moment - o["booked"][owing]).astype(np.float64) / 1e6 / 86400)
        aging = {}
        for low, high, label in AGING_BUCKETS:
            inside = (whole_days >= low) & (whole_days <= (np.inf if high is None else high))
            aging[label] = money(decimal_sum(owed[inside], owed_exp[inside]))
        outstanding = decimal_sum(owed, owed_exp)
        return {
            "outstanding": money(outstanding),
            "aging": aging,
            "dso": float(outstanding / trailing) * DSO_WINDOW_DAYS if trailing else None,
        }

    def flows_by(self, booking_groups: NDArray[np.intp], receipt_groups: NDArray[np.intp],
                 count: int) -> list[dict[str, Any]]:
        """`revenue._flows` of each of `count` groups of the bookings and receipts, given
        each booking's and receipt's group (0 to `count` - 1)."""
        if self._flows is None:
            self._flows = _Flows(self)
        flows = self._flows
        orders = np.bincount(booking_groups, minlength=count).tolist()
        booked = flows.booked.by(booking_groups, orders)
        collected = flows.collected.by(receipt_groups,
                                       np.bincount(receipt_groups, minlength=count).tolist())
        of_cycles = booking_groups[flows.finished]
        completed = np.bincount(of_cycles, minlength=count).tolist()
        means = flows.means.by(of_cycles, count)
        middles = medians(flows.cycles, of_cycles, count)
        return [{
            "booked": money(booked[group]),
            "collected": money(collected[group]),
            "orders": orders[group],
            "avg_order_value": average_money(booked[group], orders[group]),
            "collection_orders": completed[group],
            "collection_days_mean": means[group],
            "collection_days_median": middles[group],
        } for group in range(count)]


class _Flows:
    """What every grouping of a question's flows reads, gathered and prepared once: the
    bookings' amounts, the receipts', and the days to collect each booking paid in full."""

    def __init__(self, ledger: Ledger) -> None:
        o, p = ledger.columns.orders.orders, ledger.columns.orders.payments
        bookings, receipts = ledger.bookings, ledger.receipts
        done = ledger.done[bookings]
        self.finished = np.flatnonzero((done >= 0) & (done <= ledger.as_of))
        self.cycles = (done[self.finished] - o["booked"][bookings[self.finished]]
                       ).astype(np.float64) / 1e6 / 86400
        self.booked = DecimalSums(o["amount"][bookings], o["amount_exp"][bookings])
        self.collected = DecimalSums(p["amount"][receipts], p["amount_exp"][receipts])
        self.means = FsumMeans(self.cycles)


def revenue(columns: Columns, filters: Filters, by: str, as_of: datetime) -> dict[str, Any]:
    """`revenue.revenue` over the columns."""
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}")
    ledger = Ledger(columns, filters, as_of)
    flows = _settled(ledger, filters, by)
    return {
        "by": by,
        "as_of": as_of.isoformat(),
        "rows": _rows(ledger, by, flows.rows),
        "products": _rows(ledger, "product", flows.products),
        "total": {**flows.total, **ledger.balance_of_all(ledger.as_of, True)},
    }


@dataclass(frozen=True)
class _Grouped:
    """A grouping's flows: by period (each period's key, a day in it, its flows), or by
    dimension code (each code's flows; `empty` those of a code with none)."""

    keys: list[str]
    days: list[int]
    flows: list[dict[str, Any]]
    by_code: dict[int, dict[str, Any]]
    empty: dict[str, Any]


@dataclass(frozen=True)
class _Settled:
    rows: _Grouped
    products: _Grouped
    total: dict[str, Any]


_KEPT_QUESTIONS = 64


def _settled(ledger: Ledger, filters: Filters, by: str) -> _Settled:
    """The flows (booked, collected, orders, collection days) of the question: what the
    bookings, the receipts and the orders paid in full by `as_of` give. Each of those
    sets only grows with `as_of`, so for the same filters and records, the same three
    sizes are the same sets and the same flows: kept until the records change, for the
    next `as_of` a dashboard asks at (the flows are 0.3 s of a whole tenant's 0.4 s at 1M
    deals). Balances are at `as_of` itself: never kept."""
    columns = ledger.columns
    done = ledger.done[ledger.bookings]
    finished = int(np.count_nonzero((done >= 0) & (done <= ledger.as_of)))
    question = (by, filters.start, filters.end, tuple(sorted(filters.dims.items())),
                ledger.bookings.size, ledger.receipts.size, finished)
    version = tuple(sorted((kind, n) for kind, n in columns.versions.items()
                           if kind not in KEPT_WHOLE))
    return kept_for(columns, "revenue flows", version, question, lambda: _Settled(
        _grouped(ledger, by), _grouped(ledger, "product"),
        ledger.flows_by(np.zeros(ledger.bookings.size, dtype=np.intp),
                        np.zeros(ledger.receipts.size, dtype=np.intp), 1)[0]),
        _KEPT_QUESTIONS)


def _period_groups(ledger: Ledger, by: str
                   ) -> tuple[list[str], NDArray[np.intp], NDArray[np.intp], list[int]]:
    """The periods the bookings and receipts fall in, in order, each booking's and receipt's
    period among them, and a day in each: the days numbered as integers, each distinct
    day's key made once (sorting the keys themselves, Python strings, cost 0.3 s a question
    at 100k deals)."""
    o, p = ledger.columns.orders.orders, ledger.columns.orders.payments
    days = np.concatenate((o["booked_day"][ledger.bookings], p["day"][ledger.receipts]))
    if not days.size:
        return [], np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp), []
    first = int(days.min())
    unique, where = dense_codes(days - first)
    keys = [_period_key(date.fromordinal(day + first), by) for day in unique.tolist()]
    ordered = sorted(set(keys))
    numbered = {key: n for n, key in enumerate(ordered)}
    inside = {key: day + first for key, day in zip(keys, unique.tolist(), strict=True)}
    groups = np.array([numbered[key] for key in keys], dtype=np.intp)[where]
    split = ledger.bookings.size
    return ordered, groups[:split], groups[split:], [inside[key] for key in ordered]


def _grouped(ledger: Ledger, by: str) -> _Grouped:
    if by in ALL_PERIODS:
        periods, booking_groups, receipt_groups, days = _period_groups(ledger, by)
        return _Grouped(periods, days,
                        ledger.flows_by(booking_groups, receipt_groups, len(periods)), {}, {})
    dims = order_dims(ledger.columns, by)
    p = ledger.columns.orders.payments
    booking_codes, receipt_codes = dims[ledger.bookings], dims[p["order"][ledger.receipts]]
    # Each code with a booking or a receipt a group, and one more with neither: a code that
    # only owes (nothing booked or paid in from/to) still shows, with that one's flows.
    present, where = dense_codes(np.concatenate((booking_codes, receipt_codes)))
    split = booking_codes.size
    *flows, empty = ledger.flows_by(where[:split], where[split:], len(present) + 1)
    return _Grouped([], [], [], dict(zip(present.tolist(), flows, strict=True)), empty)


def _rows(ledger: Ledger, by: str, grouped: _Grouped) -> list[dict[str, Any]]:
    columns = ledger.columns
    if by in ALL_PERIODS:
        balances = []
        for day in grouped.days:
            end = _period_end(columns, date.fromordinal(day), by)
            balances.append(ledger.balance_of_all(ledger.as_of, True) if ledger.as_of < end
                            else ledger.balance_of_all(end, False))
        return [{"key": key, **flow, **balance}
                for key, flow, balance in zip(grouped.keys, grouped.flows, balances,
                                              strict=True)]
    by_code = _balances_by(ledger, order_dims(columns, by))
    owes = [code for code, (_, owing) in by_code.items() if owing]
    present = {*grouped.by_code, *owes}
    values = columns.strings.values
    codes = sorted((code for code in present if code), key=lambda code: str(values[code])) \
        + ([0] if 0 in present else [])
    return [{"key": values[code], **grouped.by_code.get(code, grouped.empty),
             **(by_code[code][0] if code in by_code else nothing_owed())} for code in codes]


def _balances_by(ledger: Ledger, dims: NDArray[np.int32]
                 ) -> dict[int, tuple[dict[str, Any], bool]]:
    """The balance at `as_of` of each dimension code (`dims`, by order row) of the known
    orders, and whether it owes anything then."""
    if ledger.receivables is not None:
        return ledger.receivables.balances(ledger.as_of, True, dims)
    known = ledger.known
    if not known.size:
        return {}
    found, where = dense_codes(dims[known])
    return {code: (ledger.balance(group, ledger.as_of, True),
                   bool(ledger.owing(group, ledger.as_of, True).size))
            for code, group in zip(found.tolist(), split_by_code(where, len(found), known),
                                   strict=True)}
