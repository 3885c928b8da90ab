"""The funnel and the breakdowns over `Columns`: the same answers as `funnel.py` and
`breakdown.py` give over a `Snapshot` (a test holds them equal), in numpy.

Exactness: counts are integer sums; money is summed in integer millionths and given
the exponent Python's `Decimal` sum would have; medians and quantiles use the shared
definition in `stats.py` over the same values; means use `math.fsum` as `stats.mean`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray

from projections.breakdown import GROUPINGS
from projections.columnar import AMOUNT_SCALE, Columns, months
from projections.snapshot import PERIODS, Filters
from projections.stats import average_money, mean, ratio

_INT64_MAX = int(np.iinfo(np.int64).max)


def money_sum(columns: Columns, rows: NDArray[np.bool_] | NDArray[np.intp]) -> Decimal:
    """`sum(amounts, Decimal(0))` of the rows, exactly."""
    amounts = columns.deals["amount"][rows]
    if amounts.size == 0:
        return Decimal(0)
    exponent = min(0, int(columns.deals["amount_exp"][rows].min()))
    if amounts.dtype != object and int(amounts.max()) * amounts.size < _INT64_MAX:
        total = int(amounts.sum())
    else:  # beyond int64: Python's integers
        total = sum(int(a) for a in amounts)
    return Decimal(total).scaleb(-AMOUNT_SCALE).quantize(Decimal(1).scaleb(exponent))


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


def _group_codes(columns: Columns, what: str, keep: NDArray[np.bool_], by: str,
                 day: str) -> tuple[NDArray[np.int64], dict[int, str | None]]:
    """Each kept row's group as an integer, and the label of each group."""
    if by in PERIODS:
        table = {"deal": columns.deals, "lead": columns.leads,
                 "activity": columns.activities}[what]
        codes = months(table[day][keep])
        if by == "quarter":
            codes = codes // 12 * 4 + codes % 12 // 3
        return codes, {m: _period_label(m, by) for m in _counts(codes)}
    codes = columns.dim(what, by)[keep].astype(np.int64)
    values = columns.strings.values  # code 0 is None: its label
    return codes, {c: values[c] for c in _counts(codes)}


def _counts(codes: NDArray[np.int64]) -> dict[int, int]:
    """How many times each code occurs (bincount over the codes' range: no sort)."""
    if not codes.size:
        return {}
    lowest = int(codes.min())
    counts = np.bincount(codes - lowest)
    return {int(code) + lowest: int(counts[code]) for code in np.flatnonzero(counts)}


def _groups(columns: Columns, what: str, keep: NDArray[np.bool_], by: str,
            day: str) -> dict[str | None, NDArray[np.intp]]:
    """The kept rows of each group, in row order."""
    codes, labels = _group_codes(columns, what, keep, by, day)
    rows = np.flatnonzero(keep)
    if not rows.size:
        return {}
    order = np.argsort(codes, kind="stable")
    unique, starts = np.unique(codes[order], return_index=True)
    ends = [*starts[1:], len(order)]
    return {labels[int(code)]: rows[order[s:e]]
            for code, s, e in zip(unique, starts, ends, strict=True)}


def breakdown(columns: Columns, filters: Filters, by: str) -> dict[str, Any]:
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}")
    period = by in PERIODS
    deals = columns.select("deal", filters.dims, filters.start, filters.end,
                           day="period_day" if period else "created_day")
    leads = columns.select("lead", filters.dims, filters.start, filters.end, day="created_day")
    activities = columns.select("activity", filters.dims, filters.start, filters.end, day="day")
    deal_groups = _groups(columns, "deal", deals, by, "period_day")
    lead_groups = _groups(columns, "lead", leads, by, "created_day")
    codes, labels = _group_codes(columns, "activity", activities, by, "day")
    activity_counts = {labels[code]: n for code, n in _counts(codes).items()}
    keys = set(deal_groups) | set(lead_groups) | set(activity_counts)
    ordered = sorted(k for k in keys if k is not None) + ([None] if None in keys else [])
    empty = np.zeros(0, dtype=np.intp)
    return {"by": by, "rows": [
        _row(columns, key, deal_groups.get(key, empty), lead_groups.get(key, empty),
             activity_counts.get(key, 0)) for key in ordered]}


def _row(columns: Columns, key: str | None, deals: NDArray[np.intp], leads: NDArray[np.intp],
         activities: int) -> dict[str, Any]:
    status = columns.deals["status"][deals]
    won = deals[status == _status(columns, "won")]
    lost = int((status == _status(columns, "lost")).sum())
    won_value = money_sum(columns, won)
    cycles = columns.deals["cycle_days"][won]
    converted = int(columns.leads["converted"][leads].sum())
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
        "leads": int(leads.size),
        "lead_conversion": ratio(converted, int(leads.size)),
    }
