"""Targets over `Columns`: the answers `targets.py` gives over a `Snapshot` (a test holds
them byte-identical). The targets, their roll-ups and rows are `targets.py`'s own; only
the actuals are summed here, per (period, rep) and (period, team) groups in numpy.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray

from projections.columnar import NOW, Columns, months
from projections.columnar_scores import _grouped
from projections.columnar_table import micros
from projections.columnar_views import decimal_sum
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


def actuals(columns: Columns, metrics: set[str], as_of: datetime) -> dict[Key, Decimal]:
    """`targets.actuals` over the columns: every (scope, scope_id, period, metric) total."""
    totals: dict[Key, Decimal] = {}
    values = columns.strings.values
    for metric in metrics:
        days, reps, teams, amounts, exponents = occurrences(columns, metric, as_of)
        month = months(days)
        for by, periods in (("month", month), ("quarter", month // 12 * 4 + month % 12 // 3),
                            ("year", month // 12)):
            for scope, ids in (("company", np.zeros(len(days), dtype=np.int32)),
                               ("team", teams), ("rep", reps)):
                counted = np.flatnonzero(ids != 0) if scope != "company" \
                    else np.arange(len(days))
                # One group per (period, scope id): the period times the ids' range, plus
                # the id.
                group = periods[counted].astype(np.int64) * len(values) + ids[counted]
                for code, rows in _grouped(group, np.arange(len(counted))).items():
                    period, scope_id = divmod(code, len(values))
                    picked = counted[rows]
                    total = (decimal_sum(amounts[picked], exponents[picked])
                             if amounts is not None and exponents is not None
                             else Decimal(len(picked)))
                    key: Key = (scope, values[scope_id] if scope != "company" else None,
                                _label(period, by), metric)
                    totals[key] = total
    return totals


def column_targets(columns: Columns, as_of: datetime, **asked: str | None) -> dict[str, Any]:
    """`GET /v1/targets` over the columns (`targets.targets`'s parameters)."""
    return targets(columns, as_of, actuals_of=lambda metrics, moment: actuals(
        columns, metrics, moment), **asked)
