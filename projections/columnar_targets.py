"""Targets over `Columns`: the answers `targets.py` gives over a `Snapshot` (a test holds
them byte-identical). The targets, their roll-ups and rows are `targets.py`'s own; only
the actuals are summed here, per (scope id, month) cells in numpy.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray

from projections.columnar import NOW, Columns, months
from projections.columnar_table import INT64_MAX, dense_codes, micros
from projections.columnar_views import as_decimal
from projections.targets import AMOUNT_METRICS, Key, targets

# What counts toward a metric: (local day, rep code, team code, amounts, exponents or None).
Occurrences = tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.int32],
                    NDArray[Any] | None, NDArray[np.int8] | None]


def occurrences(columns: Columns, metric: str, as_of: datetime) -> Occurrences:
    """`targets.occurrences` as columns."""
    moment = micros(as_of)
    if metric in ("won_value", "won_deals"):
        d = columns.deals
        won = (d["exists"] & (d["status"] == (columns.strings.find("won") or -1))
               & (d["closed"] != NOW) & (d["closed"] <= moment))
        amounts = (d["amount"][won], d["amount_exp"][won]) if metric in AMOUNT_METRICS \
            else (None, None)
        return (d["period_day"][won], d["owner"][won], columns.dim("deal", "team")[won],
                *amounts)
    if metric == "new_leads":
        lead = columns.leads
        made = lead["exists"] & (lead["created"] <= moment)
        return (lead["created_day"][made], lead["owner"][made],
                columns.dim("lead", "team")[made], None, None)
    if metric == "activities":
        a = columns.activities
        done = a["at"] <= moment
        return a["day"][done], a["rep"][done], columns.dim("activity", "team")[done], None, None
    if metric == "collected":
        p, o = columns.orders.payments, columns.orders.orders
        paid = p["at"] <= moment
        order = p["order"][paid]
        reps = columns.orders.rep_of(columns.deals, columns.deals["owner"])[order]
        # The team of the order's rep when the order was booked.
        entries = columns.entries_at(reps, o["booked"][order])
        teams = np.array(columns.history_team, dtype=np.int32)[entries]
        return p["day"][paid], reps, teams, p["amount"][paid], p["amount_exp"][paid]
    raise ValueError(f"unknown metric {metric!r}")


def _label(period: int, by: str) -> str:
    if by == "year":
        return f"{period:04d}"
    year, index = divmod(period, 12 if by == "month" else 4)
    return f"{year:04d}-{index + 1:02d}" if by == "month" else f"{year:04d}-Q{index + 1}"


def _periods(month: NDArray[np.int64]) -> dict[str, NDArray[np.int64]]:
    """Each month (year * 12 + month - 1) as its month, quarter and year code."""
    return {"month": month, "quarter": month // 12 * 4 + month % 12 // 3, "year": month // 12}


def _grid(cell: NDArray[np.intp], shape: tuple[int, int],
          money: tuple[NDArray[Any], NDArray[np.int8]] | None
          ) -> tuple[NDArray[np.intp], NDArray[Any] | None, NDArray[np.int8] | None]:
    """Per cell of a `shape` grid: how many occurrences, and with `money` (amounts,
    exponents) their exact sum and `min(0, exponents)`."""
    size = shape[0] * shape[1]
    counts = np.bincount(cell, minlength=size).reshape(shape)
    if money is None:
        return counts, None, None
    sums = np.zeros(size, dtype=money[0].dtype)
    np.add.at(sums, cell, money[0])
    least = np.zeros(size, dtype=np.int8)
    np.minimum.at(least, cell, money[1])
    return counts, sums.reshape(shape), least.reshape(shape)


def actuals(columns: Columns, metrics: set[str], as_of: datetime) -> dict[Key, Decimal]:
    """`targets.actuals` over the columns: every (scope, scope_id, period, metric) total.

    Each scope's occurrences are counted (and their amounts summed, exactly) into a
    (scope id x month) grid in one pass; quarters and years are sums of the grid's months."""
    totals: dict[Key, Decimal] = {}
    values = columns.strings.values
    for metric in metrics:
        days, reps, teams, amounts, exponents = occurrences(columns, metric, as_of)
        if not len(days):
            continue
        month = months(days)
        first = int(month.min())
        # Only the months that occur: odd dates decades apart must not widen the grid.
        present, month_index = dense_codes(month - first, int(month.max()) - first + 1)
        spanned = len(present)
        periods = _periods(present + first)
        money = None
        if amounts is not None and exponents is not None:
            # Millionths summed in int64 where no sum can overflow it, else as Python ints.
            fits = amounts.dtype != object and \
                int(np.abs(amounts).max()) * len(amounts) < INT64_MAX
            money = (amounts if fits else amounts.astype(object), exponents)
        for scope, ids in (("company", np.zeros(len(days), dtype=np.int32)),
                           ("team", teams), ("rep", reps)):
            counted = ids != 0 if scope != "company" else np.ones(len(days), dtype=np.bool_)
            codes, index = dense_codes(ids[counted], len(values))
            cell = index * spanned + month_index[counted]
            counts, sums, least = _grid(cell, (len(codes), spanned),
                                        None if money is None else
                                        (money[0][counted], money[1][counted]))
            for by, code_of_month in periods.items():
                for period in np.unique(code_of_month).tolist():
                    within = code_of_month == period
                    count = counts[:, within].sum(axis=1)
                    total = sums[:, within].sum(axis=1) if sums is not None else None
                    exponent = least[:, within].min(axis=1) if least is not None else None
                    label = _label(period, by)
                    for row in np.flatnonzero(count).tolist():
                        scope_id = values[codes[row]] if scope != "company" else None
                        totals[scope, scope_id, label, metric] = (
                            as_decimal(int(total[row]), int(exponent[row]))
                            if total is not None and exponent is not None
                            else Decimal(int(count[row])))
    return totals


def column_targets(columns: Columns, as_of: datetime, **asked: str | None) -> dict[str, Any]:
    """`GET /v1/targets` over the columns (`targets.targets`'s parameters)."""
    return targets(columns, as_of, actuals_of=lambda metrics, moment: actuals(
        columns, metrics, moment), **asked)
