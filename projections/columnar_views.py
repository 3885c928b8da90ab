"""The funnel and the breakdowns over `Columns`: the same answers as `funnel.py` and
`breakdown.py` give over a `Snapshot` (a test holds them equal), in numpy.

Exactness: counts are integer sums; money is summed in integer millionths and given
the exponent Python's `Decimal` sum would have; medians and quantiles use the shared
definition in `stats.py` over the same values; means use `math.fsum` as `stats.mean`.

Why numpy rather than DuckDB over the same columns: it answered a new question faster
when both were measured, and DuckDB's `avg` is not exactly rounded, which would break
byte-identical answers (docs/PERFORMANCE.md has the figures).
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import NDArray

from events.vocabulary import GROUPINGS, PERIODS
from projections import columnar
from projections.columnar import Columns, months
from projections.columnar_table import AMOUNT_SCALE, INT64_MAX
from projections.snapshot import Filters
from projections.stats import average_money, mean, ratio


def money_sum(columns: Columns, rows: NDArray[np.bool_] | NDArray[np.intp]) -> Decimal:
    """`sum(amounts, Decimal(0))` of the rows, exactly."""
    return decimal_sum(columns.deals["amount"][rows], columns.deals["amount_exp"][rows])


def decimal_sum(amounts: NDArray[Any], exponents: NDArray[np.int8]) -> Decimal:
    """`sum(amounts, Decimal(0))` of amounts in integer millionths with their `Decimal`
    exponents, exactly."""
    if amounts.size == 0:
        return Decimal(0)
    exponent = min(0, int(exponents.min()))
    if amounts.dtype != object and int(amounts.max()) * amounts.size < INT64_MAX:
        total = int(amounts.sum())
    else:  # beyond int64: Python's integers
        total = sum(int(a) for a in amounts)
    return as_decimal(total, exponent)


def as_decimal(millionths: int, exponent: int) -> Decimal:
    """Integer millionths as the `Decimal` with `exponent` (what a `Decimal` sum gives)."""
    return Decimal(millionths).scaleb(-AMOUNT_SCALE).quantize(Decimal(1).scaleb(exponent))


def quantile_of(values: NDArray[np.float64], q: float) -> float | None:
    """`stats.quantile` of the values that are not NaN, without leaving numpy: the same
    two order statistics, interpolated with the same float arithmetic."""
    present = values[~np.isnan(values)]
    if not present.size:
        return None
    position = q * (present.size - 1)
    low = int(position)
    high = min(low + 1, present.size - 1)
    picked = np.partition(present, (low, high)) if present.size > 2 else np.sort(present)
    low_value, high_value = float(picked[low]), float(picked[high])
    return low_value + (high_value - low_value) * (position - low)


def mean_of(values: NDArray[np.float64]) -> float | None:
    present = values[~np.isnan(values)]
    return mean(present.tolist()) if present.size else None


def _status(columns: Columns, status: str) -> int:
    return columns.strings.find(status) or -1


def _counted(columns: Columns, codes: NDArray[np.int32]) -> dict[str, int]:
    counts = np.bincount(codes, minlength=1) if codes.size else np.zeros(1, dtype=np.int64)
    values = columns.strings.values
    return dict(sorted((str(values[code]), int(n)) for code, n in enumerate(counts)
                       if n and code != 0))


def funnel(columns: Columns, filters: Filters) -> dict[str, Any]:
    d = columns.deals
    keep = columns.select("deal", filters.dims, filters.start, filters.end, day="created_day")
    status = d["status"]
    is_open = keep & (status == _status(columns, "open"))
    rows = []
    for i, stage in enumerate(columns.stages):
        open_here = is_open & (d["last_stage"] == i)
        entered = keep & d["entered"][:, i]
        advanced = entered & d["advanced"][:, i]
        dwell = d["dwell"][:, i][entered]
        rows.append({
            "stage": stage,
            "open_deals": int(open_here.sum()),
            "open_amount": str(money_sum(columns, open_here)),
            "entered": int(entered.sum()),
            "advanced": int(advanced.sum()),
            "conversion": ratio(int(advanced.sum()), int(entered.sum())),
            "dwell_days_median": quantile_of(dwell, 0.5),
            "dwell_days_p90": quantile_of(dwell, 0.9),
        })
    won = keep & (status == _status(columns, "won"))
    lost = keep & (status == _status(columns, "lost"))
    n_won, n_lost = int(won.sum()), int(lost.sum())
    return {
        "stages": rows,
        "won": n_won,
        "lost": n_lost,
        "won_value": str(money_sum(columns, won)),
        "win_rate": ratio(n_won, n_won + n_lost),
        "loss_reasons": _counted(columns, d["lost_reason"][lost]),
        "competitors": _counted(columns, d["competitor"][lost]),
        "stage_skips": int(d["skips"][keep].sum()),
        "regressions": int(d["regressions"][keep].sum()),
    }


def _period_label(period: int, by: str) -> str:
    """A month (year * 12 + month - 1) or quarter (year * 4 + quarter - 1) as the views
    label it."""
    year, index = divmod(period, 12 if by == "month" else 4)
    return f"{year:04d}-{index + 1:02d}" if by == "month" else f"{year:04d}-Q{index + 1}"


def _grouped_by(columns: Columns, what: str, by: str, day: str) -> NDArray[np.int32]:
    """What `what`'s rows are grouped by: the joined dimension, or the day of the period."""
    return columns.table(what)[day] if by in PERIODS else columns.dim(what, by)


def _group_codes(grouped_by: NDArray[np.int32], keep: NDArray[np.bool_], by: str,
                 rows: slice = slice(None)) -> NDArray[np.int64] | NDArray[np.int32]:
    """Each kept row's group as an integer (of `rows` only, when given): a period, or the
    code of the dimension's value."""
    if by in PERIODS:
        codes = months(grouped_by[rows][keep])
        if by == "quarter":
            codes = codes // 12 * 4 + codes % 12 // 3
        return codes
    return grouped_by[rows][keep]


def _label(columns: Columns, by: str, code: int) -> str | None:
    """A group's label: its period, or its dimension value (code 0 is None)."""
    return _period_label(code, by) if by in PERIODS else columns.strings.values[code]


def _counts(codes: NDArray[np.int64] | NDArray[np.int32]) -> dict[int, int]:
    """How many times each code occurs (bincount over the codes' range: no sort)."""
    if not codes.size:
        return {}
    lowest = int(codes.min())
    counts = np.bincount(codes - lowest)
    return {int(code) + lowest: int(counts[code]) for code in np.flatnonzero(counts)}


def _groups(columns: Columns, keep: NDArray[np.bool_], by: str
            ) -> dict[str | None, NDArray[np.intp]]:
    """The kept deals of each group, in row order."""
    codes = _group_codes(_grouped_by(columns, "deal", by, "period_day"), keep, by)
    if not codes.size:
        return {}
    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    rows = np.flatnonzero(keep)[order]
    del order
    starts = [0, *(np.flatnonzero(codes[1:] != codes[:-1]) + 1).tolist(), len(rows)]
    return {_label(columns, by, int(codes[s])): rows[s:e] for s, e in pairwise(starts)}


def _counted_by_group(columns: Columns, what: str, filters: Filters, by: str, day: str,
                      flag: str | None = None) -> tuple[dict[int, int], dict[int, int]]:
    """How many kept rows of `what` each group has, and how many of them have `flag` set;
    `columnar.BLOCK_ROWS` rows at a time, so the temporaries are a block long, not the
    table's."""
    tests = columns.tests(what, filters.dims)
    grouped_by = _grouped_by(columns, what, by, day)
    table = columns.table(what)
    counts: Counter[int] = Counter()
    flagged: Counter[int] = Counter()
    for rows in columnar.blocks(table.size):
        keep = columns.keeps(what, tests, filters.start, filters.end, day=day, rows=rows)
        codes = _group_codes(grouped_by, keep, by, rows)
        counts.update(_counts(codes))
        if flag is not None:
            flagged.update(_counts(codes[table[flag][rows][keep]]))
    return counts, flagged


def breakdown(columns: Columns, filters: Filters, by: str) -> dict[str, Any]:
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}")
    period = by in PERIODS
    deals = columns.select("deal", filters.dims, filters.start, filters.end,
                           day="period_day" if period else "created_day")
    deal_groups = _groups(columns, deals, by)
    del deals
    leads, converted = _counted_by_group(columns, "lead", filters, by, "created_day",
                                         flag="converted")
    activities, _ = _counted_by_group(columns, "activity", filters, by, "day")
    lead_counts = {_label(columns, by, code): (n, converted[code]) for code, n in leads.items()}
    activity_counts = {_label(columns, by, code): n for code, n in activities.items()}
    keys = set(deal_groups) | set(lead_counts) | set(activity_counts)
    ordered = sorted(k for k in keys if k is not None) + ([None] if None in keys else [])
    empty = np.zeros(0, dtype=np.intp)
    return {"by": by, "rows": [
        _row(columns, key, deal_groups.get(key, empty), lead_counts.get(key, (0, 0)),
             activity_counts.get(key, 0)) for key in ordered]}


def _row(columns: Columns, key: str | None, deals: NDArray[np.intp], leads: tuple[int, int],
         activities: int) -> dict[str, Any]:
    status = columns.deals["status"][deals]
    won = deals[status == _status(columns, "won")]
    lost = int((status == _status(columns, "lost")).sum())
    won_value = money_sum(columns, won)
    cycles = columns.deals["cycle_days"][won]
    n_leads, converted = leads
    return {
        "key": key,
        "deals": int(deals.size),
        "open": int((status == _status(columns, "open")).sum()),
        "won": int(won.size),
        "lost": lost,
        "win_rate": ratio(int(won.size), int(won.size) + lost),
        "won_value": str(won_value),
        "avg_won_value": average_money(won_value, int(won.size)),
        "cycle_days_mean": mean_of(cycles),
        "cycle_days_median": quantile_of(cycles, 0.5),
        "activities": activities,
        "leads": n_leads,
        "lead_conversion": ratio(converted, n_leads),
    }
