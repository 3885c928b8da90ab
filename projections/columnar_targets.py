"""Targets over `Columns`: the answers `targets.py` gives over a `Snapshot` (a test holds
them byte-identical), for a tenant with hundreds of thousands of targets.

What does not depend on `as_of` is kept beside the columns (`_plan`) until a target or a
rep is put again: the targets and their roll-ups (`targets.target_values`) in answer
order, and what each row shows before its period and once it is over. The actuals are
counted into (scope id x month) grids once per change of the other records (`_Counts`);
a question takes away the latest occurrences after its `as_of` (one further back counts
its own grids). The rows are made from numpy columns, the pace of a period under way in
`Decimal`s; a figure outside the bounds within which the floats are proven exact
(`_fast_division`) leaves its row to `targets.target_row`.
"""

from __future__ import annotations

import decimal
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray

from projections.columnar import KEPT_WHOLE, NOW, Columns, months
from projections.columnar_table import AMOUNT_SCALE, INT64_MAX, dense_codes, micros
from projections.columnar_views import as_decimal
from projections.derived import kept
from projections.targets import (
    AMOUNT_METRICS,
    STANDINGS,
    Key,
    Period,
    answer_order,
    figure,
    period_standing,
    target_row,
    target_values,
    teams_at_start,
)

# What counts toward a metric: (moment, local day, rep code, team code, amounts,
# exponents or None).
Occurrences = tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int32],
                    NDArray[np.int32], NDArray[Any] | None, NDArray[np.int8] | None]

SCOPE_CODES = {"company": 0, "team": 1, "rep": 2}
NOT_BEGUN, UNDER_WAY, OVER = range(len(STANDINGS))  # places in `STANDINGS`
EXACT_FLOATS = 1 << 53  # integers below this are exact as float64
TAIL_ROWS = 1 << 16  # at least this many of the latest occurrences are kept apart


def occurrences(columns: Columns, metric: str, moment: int) -> Occurrences:
    """`targets.occurrences` up to `moment` (microseconds; `NOW`: all of them) as columns."""
    if metric in ("won_value", "won_deals"):
        d = columns.deals
        won = (d["exists"] & (d["status"] == (columns.strings.find("won") or -1))
               & (d["closed"] != NOW) & (d["closed"] <= moment))
        amounts = (d["amount"][won], d["amount_exp"][won]) if metric in AMOUNT_METRICS \
            else (None, None)
        return (d["closed"][won], d["period_day"][won], d["owner"][won],
                columns.dim("deal", "team")[won], *amounts)
    if metric == "new_leads":
        lead = columns.leads
        made = lead["exists"] & (lead["created"] <= moment)
        return (lead["created"][made], lead["created_day"][made], lead["owner"][made],
                columns.dim("lead", "team")[made], None, None)
    if metric == "activities":
        a = columns.activities
        if moment == NOW:
            return a["at"], a["day"], a["rep"], columns.dim("activity", "team"), None, None
        done = a["at"] <= moment
        return (a["at"][done], a["day"][done], a["rep"][done],
                columns.dim("activity", "team")[done], None, None)
    if metric == "collected":
        p, o = columns.orders.payments, columns.orders.orders
        paid = p["at"] <= moment
        order = p["order"][paid]
        reps = columns.orders.rep_of(columns.deals, columns.deals["owner"])[order]
        # The team of the order's rep when the order was booked.
        entries = columns.entries_at(reps, o["booked"][order])
        teams = np.array(columns.history_team, dtype=np.int32)[entries]
        return (p["at"][paid], p["day"][paid], reps, teams, p["amount"][paid],
                p["amount_exp"][paid])
    raise ValueError(f"unknown metric {metric!r}")


@dataclass
class _Grid:
    """One scope's occurrences per (scope id, month)."""

    codes: NDArray[np.intp]  # the scope ids present (string codes), ascending
    counts: NDArray[np.int64]  # (ids, months)
    sums: NDArray[Any] | None  # (ids, months) amounts in millionths, exactly
    classes: NDArray[np.int64] | None  # (exponents, ids, months): how many of each exponent


@dataclass
class _Counts:
    """A metric's occurrences counted per scope into (scope id x month) grids."""

    months: NDArray[np.int64]  # the months present (year * 12 + month - 1), ascending
    exponents: NDArray[np.int64]  # the amounts' negative exponents present, ascending
    grids: list[_Grid]  # company, team, rep
    # The latest occurrences, by time: each one's cell per scope (a first row: no team/rep).
    tail_at: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    tail_cells: list[NDArray[np.int64]] = field(default_factory=list)
    tail_amounts: NDArray[Any] | None = None
    tail_classes: NDArray[np.int64] | None = None


def _count(found: Occurrences, strings: int, tail: int) -> _Counts:
    """The grids of `found`, and about its `tail` latest occurrences apart (0: none).

    A team's or rep's grid has a first row for the occurrences without one (code 0), so
    that every occurrence has a cell there."""
    at, days, reps, teams, amounts, exponents = found
    n = len(days)
    money = amounts is not None and exponents is not None
    if not n:
        empty = np.zeros((0, 0), dtype=np.int64)
        grid = _Grid(np.zeros(0, dtype=np.intp), empty, empty if money else None,
                     np.zeros((0, 0, 0), dtype=np.int64) if money else None)
        return _Counts(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), [grid] * 3)
    low, high = int(days.min()), int(days.max())
    if high - low < max(n, 1 << 16):  # each day's month looked up: a short table
        of_day = months(np.arange(low, high + 1, dtype=np.int32))
        present = np.arange(int(of_day[0]), int(of_day[-1]) + 1, dtype=np.int64)
        month_index = (of_day - of_day[0]).astype(np.int32)[days - low]
    else:  # odd dates decades apart: only the months that occur, lest the grid widen
        month = months(days)
        first = int(month.min())
        present, month_index = dense_codes(month - first, int(month.max()) - first + 1)
        present = present + first
    spanned = len(present)
    classes = np.zeros(0, dtype=np.int64)
    kind = np.zeros(0, dtype=np.int64)
    if amounts is not None and exponents is not None:
        # Millionths summed in int64 where no sum can overflow it, else as Python ints.
        if amounts.dtype == object or int(np.abs(amounts).max()) * n >= INT64_MAX:
            amounts = amounts.astype(object)
        classes = np.unique(exponents[exponents < 0]).astype(np.int64)
        kind = np.where(exponents < 0, np.searchsorted(classes, exponents), -1)
    rows = _latest(at, tail)
    counts = _Counts(present, classes, [], at[rows],
                     tail_amounts=None if amounts is None else amounts[rows],
                     tail_classes=kind[rows] if money else None)
    for ids in (None, teams, reps):
        if ids is None:
            codes = np.zeros(1, dtype=np.intp)
            cell = month_index.astype(np.int64)
        else:
            occurs = np.bincount(ids, minlength=strings) > 0
            occurs[0] = True
            codes = np.flatnonzero(occurs)
            cell = (np.cumsum(occurs) - 1)[ids] * spanned
            cell += month_index
        shape = (len(codes), spanned)
        size = shape[0] * spanned
        grid = _Grid(codes, np.bincount(cell, minlength=size).reshape(shape), None, None)
        if amounts is not None:
            sums = np.zeros(size, dtype=amounts.dtype)
            np.add.at(sums, cell, amounts)
            grid.sums = sums.reshape(shape)
            of_kind = kind >= 0
            grid.classes = np.bincount(kind[of_kind] * size + cell[of_kind],
                                       minlength=len(classes) * size
                                       ).reshape(len(classes), *shape)
        counts.grids.append(grid)
        counts.tail_cells.append(cell[rows])
    return counts


def _latest(at: NDArray[np.int64], tail: int) -> NDArray[np.intp]:
    """About the `tail` latest of moments `at` (all those from a moment on), by time."""
    if not tail:
        return np.zeros(0, dtype=np.intp)
    if tail >= len(at):
        rows = np.arange(len(at))
    else:  # from where a sample puts the tail's start: no partition of them all
        sample = at[::max(1, len(at) // (1 << 16))]
        place = max(0, len(sample) - 1 - len(sample) * tail // len(at))
        rows = np.flatnonzero(at >= np.partition(sample, place)[place])
    return rows[np.argsort(at[rows], kind="stable")]


def _minus_tail(counts: _Counts, after: int) -> list[_Grid]:
    """The grids without the tail's occurrences from `after` on."""
    if after == len(counts.tail_at):
        return counts.grids
    grids = []
    for grid, cells in zip(counts.grids, counts.tail_cells, strict=True):
        cell = cells[after:]
        size = grid.counts.size
        less = _Grid(grid.codes, grid.counts - np.bincount(cell, minlength=size).reshape(
            grid.counts.shape), None, None)
        if grid.sums is not None and counts.tail_amounts is not None:
            sums = grid.sums.copy().reshape(-1)
            np.subtract.at(sums, cell, counts.tail_amounts[after:])
            less.sums = sums.reshape(grid.sums.shape)
        if grid.classes is not None and counts.tail_classes is not None:
            kind = counts.tail_classes[after:]
            of_kind = kind >= 0
            less.classes = grid.classes - np.bincount(
                kind[of_kind] * size + cell[of_kind], minlength=grid.classes.size
            ).reshape(grid.classes.shape)
        grids.append(less)
    return grids


def _data_version(columns: Columns) -> Hashable:
    return tuple(sorted((kind, n) for kind, n in columns.versions.items()
                        if kind not in KEPT_WHOLE))


def _grids_at(columns: Columns, metric: str, moment: int) -> tuple[_Counts, list[_Grid]]:
    """The metric's grids of what happened by `moment`."""
    def count() -> _Counts:
        everything = occurrences(columns, metric, NOW)
        tail = min(len(everything[0]), max(TAIL_ROWS, len(everything[0]) >> 6))
        return _count(everything, len(columns.strings.values), tail)

    counts = kept(columns, ("counts", metric), _data_version(columns), count)
    if len(counts.tail_at) and moment >= counts.tail_at[0]:
        after = int(np.searchsorted(counts.tail_at, moment, side="right"))
        return counts, _minus_tail(counts, after)
    if not len(counts.months):
        return counts, counts.grids
    fresh = _count(occurrences(columns, metric, moment), len(columns.strings.values), 0)
    return fresh, fresh.grids


@dataclass
class _Plan:
    """The targets, set or rolled up, in answer order: each one's columns that do not
    depend on `as_of`."""

    keys: list[Key]
    values: dict[Key, Decimal]
    derived: set[Key]
    periods: list[Period]
    period_index: dict[str, int]
    first_month: NDArray[np.int64]  # per period: its first month, and the one after it
    after_month: NDArray[np.int64]
    period_of: NDArray[np.intp]  # per key: its period
    scope: NDArray[np.int8]
    metrics: list[str]  # the metrics targeted
    metric: NDArray[np.intp]  # per key: its metric's place among them
    scope_id: NDArray[Any]  # str | None
    rep_team: NDArray[Any]  # a rep target's team at its period's start
    # The keys of each scope id and each rep team: a rep's or a team's targets found
    # without comparing every key's string (17 ms a question at 1M deals).
    by_scope_id: dict[str | None, NDArray[np.intp]]
    by_rep_team: dict[str | None, NDArray[np.intp]]
    id_code: NDArray[np.int64]  # its scope id's string code (-1: none yet)
    unresolved: list[int]  # keys whose scope id had no string code
    strings_seen: int
    head: list[NDArray[Any]]  # scope, scope_id, period, metric, target, derived
    head_lists: list[list[Any]]  # the same, as lists
    amount: NDArray[np.bool_]
    fast: NDArray[np.bool_]  # `_fast_division` holds for the target
    numerator: NDArray[np.int64]  # count: its multiplier; amount: the millionths' divisor
    denominator: NDArray[np.int64]
    limit: NDArray[np.int64]  # the largest count whose numerator stays exact
    on_pace: NDArray[np.int64]  # the least actual (count, or millionths) on pace once over
    expected: list[NDArray[Any]]  # expected_at_as_of before the period and once over
    figure_id: NDArray[np.intp]  # per key: its (target, period's length, metric)
    # Per key: the amount actual last written (millionths, exponent) as text and in cents.
    money: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[Any], NDArray[Any]]
    figure_of: list[tuple[Decimal, int, str]]


def _ceil(value: Decimal, scale: int) -> int:
    numerator, denominator = value.as_integer_ratio()
    return -((-numerator * scale) // denominator)


def _fast_division(target: Decimal, amount: bool) -> tuple[int, int, int] | None:
    """(numerator factor, denominator, count limit) with which `float(actual / target)`
    is the float64 quotient of two integers below 2**53, or None.

    `Decimal` rounds the quotient q = N / D to 28 digits, and `float()` that to 53 bits;
    numpy rounds q once. They agree unless a midpoint m between two floats lies between q
    and its 28-digit rounding, within 5e-28 q of q. For D < 1e11 every such m = M 2**j
    (M odd, below 2**54) other than q is further off: |q - m| >= 2**j / D > 5.5e-28 q
    (j < 0), or >= 1 / D >= q / N (j >= 0). And if q is itself such an m, then
    2**-j divides D: with D not a multiple of 2**17, q has at most 28 digits and is exact.
    """
    sign, digits, exponent = target.as_tuple()
    if sign or not isinstance(exponent, int) or not target:
        return None
    coefficient = int("".join(map(str, digits)))
    if amount:
        if not -AMOUNT_SCALE <= exponent <= 0:
            return None
        numerator, denominator = 10 ** (AMOUNT_SCALE + exponent), coefficient
        limit = 0
    else:
        numerator = 10 ** max(0, -exponent)
        denominator = coefficient * 10 ** max(0, exponent)
        limit = (EXACT_FLOATS - 1) // numerator
    if denominator >= 10 ** 11 or denominator % (1 << 17) == 0 or numerator >= EXACT_FLOATS:
        return None
    return numerator, denominator, limit


def _plan(columns: Columns) -> _Plan:
    """The targets' plan, made again when a target or a rep was put."""
    version = (columns.versions.get("target", 0), columns.versions.get("rep", 0))
    plan = kept(columns, "plan", version, lambda: _make_plan(columns))
    if plan.strings_seen != len(columns.strings.values):
        _resolve(plan, columns)
    return plan


def _resolve(plan: _Plan, columns: Columns) -> None:
    """The string codes of scope ids that had none (strings are only ever added)."""
    still = []
    for i in plan.unresolved:
        code = columns.strings.find(plan.scope_id[i])
        if code is None:
            still.append(i)
        else:
            plan.id_code[i] = code
    plan.unresolved = still
    plan.strings_seen = len(columns.strings.values)


def _figures(target: Decimal, total: int, metric: str) -> tuple[Any, ...]:
    """A target's expected figure before its period and once over, and its fast path's
    (usable, numerator factor, denominator, count limit, least actual on pace once over)."""
    expected = target * total / total
    figures = (figure(target * 0 / total, metric), figure(expected, metric))
    amount = metric in AMOUNT_METRICS
    division = _fast_division(target, amount)
    if division is not None and expected.is_finite():
        least = _ceil(expected, 10 ** AMOUNT_SCALE if amount else 1)
        if -INT64_MAX <= least <= INT64_MAX:
            return (*figures, True, *division, least)
    return (*figures, False, 1, 1, 0, 0)


def _make_plan(columns: Columns) -> _Plan:
    team_at = teams_at_start(columns)
    values, derived = target_values(columns, team_at)
    periods = {p: Period.parse(p, columns.tz) for p in {key[2] for key in values}}
    keys = sorted(values, key=answer_order(periods))
    listed = list(periods.values())
    period_index = {p.key: i for i, p in enumerate(listed)}
    totals = [p.elapsed(p.end)[1] for p in listed]
    n = len(keys)
    metrics = sorted({k[3] for k in keys})
    place = {metric: i for i, metric in enumerate(metrics)}

    def column(values: list[Any], dtype: Any = object) -> NDArray[Any]:
        array = np.empty(n, dtype=dtype)
        array[:] = values
        return array

    scope_id = column([k[1] for k in keys])
    scopes = np.array([SCOPE_CODES.get(k[0], -1) for k in keys], dtype=np.int8)
    amount = np.array([k[3] in AMOUNT_METRICS for k in keys], dtype=np.bool_)
    texts = [str(values[k]) for k in keys]
    # Tens of distinct targets per period and metric: each one's figures worked out once.
    figures: dict[tuple[str, int, str], int] = {}
    figure_of: list[tuple[Decimal, int, str]] = []
    worked: list[tuple[Any, ...]] = []
    rows, figure_id = [], []
    for k, text in zip(keys, texts, strict=True):
        known = (text, totals[period_index[k[2]]], k[3])
        found = figures.get(known)
        if found is None:
            found = figures[known] = len(figure_of)
            figure_of.append((values[k], *known[1:]))
            worked.append(_figures(values[k], *known[1:]))
        rows.append(worked[found])
        figure_id.append(found)
    before, over, fast, numerator, denominator, limit, on_pace = (
        list(column) for column in zip(*rows, strict=True)) if rows else ([],) * 7
    head_lists: list[list[Any]] = [[k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
                  [k[3] for k in keys], texts, [k in derived for k in keys]]
    id_code = np.full(n, -1, dtype=np.int64)
    unresolved = []
    for i, (scope, scope_id_of, _, _) in enumerate(keys):
        if scope == "company":
            id_code[i] = 0
        elif scope_id_of is not None:
            code = columns.strings.find(scope_id_of)
            if code is None:
                unresolved.append(i)
            else:
                id_code[i] = code
    rep_team = column([team_at(k[1], k[2]) if k[0] == "rep" else None for k in keys])
    return _Plan(
        keys=keys, values=values, derived=derived, periods=listed, period_index=period_index,
        first_month=np.array([p.start.year * 12 + p.start.month - 1 for p in listed],
                             dtype=np.int64),
        after_month=np.array([p.end.year * 12 + p.end.month - 1 for p in listed],
                             dtype=np.int64),
        period_of=np.array([period_index[k[2]] for k in keys], dtype=np.intp),
        scope=scopes, metrics=metrics, metric=np.array([place[k[3]] for k in keys], dtype=np.intp),
        scope_id=scope_id, rep_team=rep_team,
        by_scope_id=_rows_by(scope_id), by_rep_team=_rows_by(rep_team),
        id_code=id_code, unresolved=unresolved, strings_seen=len(columns.strings.values),
        head=[column(h) for h in head_lists], head_lists=head_lists,
        amount=amount, fast=np.array(fast, dtype=np.bool_),
        numerator=np.array(numerator, dtype=np.int64),
        denominator=np.array(denominator, dtype=np.int64),
        limit=np.array(limit, dtype=np.int64), on_pace=np.array(on_pace, dtype=np.int64),
        expected=[column(before), column(over)],
        figure_id=np.array(figure_id, dtype=np.intp), figure_of=figure_of,
        money=(np.zeros(n, dtype=np.int64), np.full(n, 2, dtype=np.int64),
               np.empty(n, dtype=object), np.empty(n, dtype=object)))


def _chosen(plan: _Plan, tz: Any, state_of: NDArray[np.int8], scope: str | None,
            period: str | None, metric: str | None, team: str | None, rep: str | None,
            standing: str | None) -> NDArray[np.intp]:
    """The keys the filters keep (`targets.targets`'s `keeps`), in answer order;
    `state_of`: where each period stands at the question's `as_of`."""
    keep = np.ones(len(plan.keys), dtype=np.bool_)
    if standing:
        keep &= state_of[plan.period_of] == (STANDINGS.index(standing)
                                             if standing in STANDINGS else -1)
    within = Period.parse(period, tz) if period else None
    if scope:
        keep &= plan.scope == SCOPE_CODES.get(scope, -1)
    if metric:
        keep &= plan.metric == (plan.metrics.index(metric) if metric in plan.metrics else -1)
    if within:
        inside = np.array([p.within(within) for p in plan.periods], dtype=np.bool_)
        keep &= inside[plan.period_of]
    if rep:
        keep &= (plan.scope == 2) & _marked(plan.by_scope_id, rep, keep.size)
    if team:
        keep &= ((plan.scope == 1) & _marked(plan.by_scope_id, team, keep.size)) | \
            ((plan.scope == 2) & _marked(plan.by_rep_team, team, keep.size))
    return np.flatnonzero(keep)


def _rows_by(values: NDArray[Any]) -> dict[str | None, NDArray[np.intp]]:
    rows: dict[str | None, list[int]] = {}
    for row, value in enumerate(values.tolist()):
        rows.setdefault(value, []).append(row)
    return {value: np.array(found, dtype=np.intp) for value, found in rows.items()}


def _marked(rows: dict[str | None, NDArray[np.intp]], value: str, size: int
            ) -> NDArray[np.bool_]:
    marked = np.zeros(size, dtype=np.bool_)
    marked[rows.get(value, np.zeros(0, dtype=np.intp))] = True
    return marked


def _within(cells: NDArray[Any], row: NDArray[np.intp], low: NDArray[np.intp],
            high: NDArray[np.intp]) -> NDArray[Any]:
    """Each `row`'s sum of its `cells` in the months `low` to `high` (excluded)."""
    running = np.zeros((cells.shape[0], cells.shape[1] + 1), dtype=cells.dtype)
    np.cumsum(cells, axis=1, out=running[:, 1:])
    return running[row, high] - running[row, low]


def _actuals(columns: Columns, plan: _Plan, chosen: NDArray[np.intp], moment: int
             ) -> tuple[NDArray[np.int64], NDArray[Any], NDArray[np.int64]]:
    """Each chosen key's (count, sum in millionths, exponent) by `moment`."""
    count = np.zeros(len(chosen), dtype=np.int64)
    total: NDArray[Any] = np.zeros(len(chosen), dtype=np.int64)
    exponent = np.zeros(len(chosen), dtype=np.int64)
    metric_of = plan.metric[chosen]
    for code in np.unique(metric_of).tolist():
        counts, grids = _grids_at(columns, plan.metrics[code], moment)
        mine = metric_of == code
        for scope, grid in enumerate(grids):
            at = np.flatnonzero(mine & (plan.scope[chosen] == scope))
            if not len(at) or not grid.codes.size:
                continue
            keys = chosen[at]
            ids = plan.id_code[keys]
            row = np.searchsorted(grid.codes, ids)
            found = (row < len(grid.codes)) & (ids >= 0)
            found[found] = grid.codes[row[found]] == ids[found]
            at, row, keys = at[found], row[found], keys[found]
            periods = plan.period_of[keys]
            span = (row, np.searchsorted(counts.months, plan.first_month)[periods],
                    np.searchsorted(counts.months, plan.after_month)[periods])
            count[at] = _within(grid.counts, *span)
            if grid.sums is not None:
                if grid.sums.dtype == object and total.dtype != object:
                    total = total.astype(object)
                total[at] = _within(grid.sums, *span)
            if grid.classes is not None:
                least = np.zeros(len(at), dtype=np.int64)
                for exp, cells in zip(counts.exponents.tolist(), grid.classes, strict=True):
                    least[(least == 0) & (_within(cells, *span) > 0)] = exp
                exponent[at] = least
    return count, total, exponent


def _decimal_context_is_default() -> bool:
    context = decimal.getcontext()
    return context.prec == 28 and context.rounding == ROUND_HALF_EVEN


def _digits(value: int, exponent: int) -> str:
    """`str` of the non-negative `Decimal` value * 10 ** exponent (-6 <= exponent <= 0)."""
    if not exponent:
        return str(value)
    text = str(value).rjust(1 - exponent, "0")
    return text[:exponent] + "." + text[exponent:]


def _money_texts(plan: _Plan, keys: NDArray[np.intp], counted: NDArray[np.bool_],
                 millionths: NDArray[np.int64], exponent: NDArray[np.int64]
                 ) -> tuple[NDArray[Any], NDArray[Any]]:
    """Amounts' actual as `str(Decimal)` and in cents (`targets._amount`), for the keys'
    (millionths, exponent): written only for those not written for the same before (an
    over period's actual stays as it is from one question to the next)."""
    made_millionths, made_exponent, made_texts, made_cents = plan.money
    exponent = np.where(counted, exponent, 1)  # 1: nothing counted, `Decimal(0)`
    millionths = np.where(counted, millionths, 0)
    stale = (made_millionths[keys] != millionths) | (made_exponent[keys] != exponent)
    if stale.any():
        made_millionths, made_exponent = made_millionths.copy(), made_exponent.copy()
        made_texts, made_cents = made_texts.copy(), made_cents.copy()
        places = np.flatnonzero(stale)
        texts, cents = [], []
        whole = 10 ** AMOUNT_SCALE // 100
        for value, exp in zip(millionths[places].tolist(), exponent[places].tolist(),
                              strict=True):
            if exp == 1:
                texts.append("0")
                cents.append("0.00")
                continue
            texts.append(_digits(value // 10 ** (AMOUNT_SCALE + exp), exp))
            if exp == -2:
                cents.append(texts[-1])
                continue
            hundredths, rest = divmod(value, whole)  # rounded half to even
            if rest * 2 > whole or (rest * 2 == whole and hundredths % 2):
                hundredths += 1
            cents.append(_digits(hundredths, -2))
        at = keys[places]
        made_millionths[at], made_exponent[at] = millionths[places], exponent[places]
        made_texts[at], made_cents[at] = texts, cents
        plan.money = (made_millionths, made_exponent, made_texts, made_cents)  # at once
    return made_texts[keys], made_cents[keys]


def _under_way(plan: _Plan, chosen: NDArray[np.intp], under: NDArray[np.bool_],
               elapsed: list[tuple[int, int]], expected: NDArray[Any],
               least: NDArray[np.int64], fast: NDArray[np.bool_]) -> None:
    """The expected figure and the least actual on pace of the rows whose period is under
    way (`expected`, `least`; `fast` unset where the latter is out of bounds): worked out
    once per distinct target of each period."""
    periods = plan.period_of[chosen]
    for period in np.unique(periods[under]).tolist():
        rows = np.flatnonzero(under & (periods == period))
        distinct, inverse = np.unique(plan.figure_id[chosen[rows]], return_inverse=True)
        figures, leasts, usable = [], [], []
        for target, total, metric in (plan.figure_of[f] for f in distinct.tolist()):
            value = target * elapsed[period][0] / total
            figures.append(figure(value, metric))
            bound = _ceil(value, 10 ** AMOUNT_SCALE if metric in AMOUNT_METRICS else 1) \
                if value.is_finite() else INT64_MAX + 1
            usable.append(-INT64_MAX <= bound <= INT64_MAX)
            leasts.append(bound if usable[-1] else 0)
        worked = np.empty(len(figures), dtype=object)
        worked[:] = figures
        expected[rows] = worked[inverse]
        least[rows] = np.array(leasts, dtype=np.int64)[inverse]
        fast[rows] &= np.array(usable, dtype=np.bool_)[inverse]


def column_targets(columns: Columns, as_of: datetime, **asked: str | None) -> dict[str, Any]:
    """`GET /v1/targets` over the columns (`targets.targets`'s parameters)."""
    plan = _plan(columns)
    elapsed = [p.elapsed(as_of) for p in plan.periods]
    state_of = np.array([STANDINGS.index(period_standing(e)) for e in elapsed], dtype=np.int8)
    chosen = _chosen(plan, columns.tz, state_of, asked.get("scope"), asked.get("period"),
                     asked.get("metric"), asked.get("team"), asked.get("rep"),
                     asked.get("standing"))
    count, total, exponent = _actuals(columns, plan, chosen, micros(as_of))
    share = np.empty(len(elapsed), dtype=object)
    share[:] = [e / t for e, t in elapsed]
    periods = plan.period_of[chosen]
    state = state_of[periods]
    over, under = state == OVER, state == UNDER_WAY
    amount = plan.amount[chosen]
    if total.dtype == object:  # sums beyond int64: those rows are `target_row`'s
        small = np.array([abs(t) < INT64_MAX for t in total.tolist()], dtype=np.bool_)
        total_int = np.zeros(len(chosen), dtype=np.int64)
        total_int[small] = total[small].astype(np.int64)
    else:
        total_int, small = total, np.ones(len(chosen), dtype=np.bool_)
    # attainment = top / denominator: counts times a factor, or millionths by a divisor.
    numerator, denominator = plan.numerator[chosen], plan.denominator[chosen]
    counted = count <= plan.limit[chosen]
    divisible = small & (total_int >= 0) & (total_int % numerator == 0)
    top = np.where(amount, np.where(divisible, total_int // numerator, 0),
                   np.where(counted, count, 0) * numerator)
    # `as_decimal` quantizes exactly: a sum's millionths are whole in its exponent.
    whole = (exponent >= -AMOUNT_SCALE) & (exponent <= 0)
    whole[whole] &= total_int[whole] % 10 ** (AMOUNT_SCALE + exponent[whole]) == 0
    fast = plan.fast[chosen] & np.where(
        amount, divisible & (top < EXACT_FLOATS) & whole, counted)
    if not _decimal_context_is_default():
        fast[:] = False
    expected = np.where(over, plan.expected[1][chosen], plan.expected[0][chosen])
    least = plan.on_pace[chosen]
    if under.any():
        _under_way(plan, chosen, under, elapsed, expected, least, fast)
    attainment: list[Any] = (top.astype(np.float64) / denominator.astype(np.float64)).tolist()
    nothing = np.full(len(chosen), None, dtype=object)
    on_pace = np.where(state == NOT_BEGUN, nothing,
                       (np.where(amount, total_int, count) >= least).astype(object))
    actual = count.astype(object)
    pace = np.full(len(chosen), None, dtype=object)
    pace[over] = count[over].astype(np.float64)  # counts' pace once over: the actual
    money = np.flatnonzero(fast & amount)
    if len(money):
        texts, cents = _money_texts(plan, chosen[money], count[money] > 0,
                                    total_int[money], exponent[money])
        actual[money] = texts
        pace[money[over[money]]] = cents[over[money]]
    actual_of: list[Any] = actual.tolist()
    pace_of: list[Any] = pace.tolist()
    pace_attainment_of: list[Any] = np.where(over, np.array(attainment, dtype=object),
                                             nothing).tolist()
    # The run rate of a period under way, in `Decimal`s: once per distinct actual.
    running = np.flatnonzero(fast & under)
    paces: dict[tuple[int, int, Any], tuple[Any, float]] = {}
    for i, figured, period in zip(running.tolist(), plan.figure_id[chosen[running]].tolist(),
                                  periods[running].tolist(), strict=True):
        known = (figured, period, actual_of[i])
        found = paces.get(known)
        if found is None:
            target, length, metric = plan.figure_of[figured]
            run = Decimal(actual_of[i]) * length / elapsed[period][0]  # str(actual) or int
            found = paces[known] = (figure(run, metric), float(run / target))
        pace_of[i], pace_attainment_of[i] = found
    head = plan.head_lists if len(chosen) == len(plan.keys) else \
        [column[chosen].tolist() for column in plan.head]
    rows = [{"scope": s, "scope_id": i, "period": p, "metric": m, "target": t, "derived": d,
             "actual": a, "attainment": at, "elapsed_share": es, "expected_at_as_of": ex,
             "pace": pc, "pace_attainment": pa, "on_pace": op}
            for s, i, p, m, t, d, a, at, es, ex, pc, pa, op in zip(
                *head, actual_of, attainment, share[periods].tolist(), expected.tolist(),
                pace_of, pace_attainment_of, on_pace.tolist(), strict=True)]
    for i in np.flatnonzero(~fast).tolist():
        key = plan.keys[chosen[i]]
        period = int(periods[i])
        rows[i] = target_row(key, plan.values[key], _actual(key[3], int(count[i]), total[i],
                                                           exponent[i]),
                             key in plan.derived, plan.periods[period], elapsed[period])
    return {"as_of": as_of.isoformat(), "targets": rows}


def _actual(metric: str, count: int, total: Any, exponent: Any) -> Decimal:
    """What `targets.actuals` sums: nothing counted is `Decimal(0)`."""
    if not count:
        return Decimal(0)
    if metric in AMOUNT_METRICS:
        return as_decimal(int(total), int(exponent))
    return Decimal(count)
