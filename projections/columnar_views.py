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
from collections.abc import Sequence
from decimal import Decimal
from itertools import pairwise
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from events.vocabulary import GROUPINGS, PERIODS
from projections import columnar
from projections.columnar import Columns, months
from projections.columnar_rows import chosen, indexed
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
    return quantiles_of(values, (q,))[0]


def quantiles_of(values: NDArray[np.float64], qs: Sequence[float]) -> list[float | None]:
    """`quantile_of(values, q)` for each q, with one partition for them all (each is a
    pass over the values: a stage's median and p90 of a million deals took two)."""
    present = values[~np.isnan(values)]
    if not present.size:
        return [None] * len(qs)
    ranks = [_ranks(present.size, q) for q in qs]
    picked = np.partition(present, sorted({r for low, high, _ in ranks for r in (low, high)})) \
        if present.size > 2 else np.sort(present)
    return [_between(float(picked[low]), float(picked[high]), frac) for low, high, frac in ranks]


def mean_of(values: NDArray[np.float64]) -> float | None:
    """`stats.mean` of the values that are not NaN: from their exact sum (`means_by_group`)
    past a few thousand, where `math.fsum` over a Python list took 17 ms a million."""
    present = values[~np.isnan(values)]
    if not _EXACT_SUM_FROM <= present.size < 1 << 27 or not np.isfinite(present).all():
        return mean(present.tolist()) if present.size else None
    return means_by_group(present, _NO_GROUPS, 1)[1]


_EXACT_SUM_FROM = 4096
_NO_GROUPS = np.zeros(0, dtype=np.intp)  # (one group: `means_by_group` reads none)


def day_buckets(days: NDArray[np.float64], bounds: Sequence[tuple[int, int | None, str]]
                ) -> dict[str, int]:
    """`activity.buckets(days, bounds)` in numpy: each value counted in the first bucket
    whose bounds hold its completed days (`value // 1`)."""
    whole = np.floor_divide(days, 1)
    left = np.ones(whole.size, dtype=bool)
    counts = {}
    for low, high, label in bounds:
        mine = left & (whole >= low)
        if high is not None:
            mine &= whole <= high
        counts[label] = int(mine.sum())
        left &= ~mine
    return counts


def _status(columns: Columns, status: str) -> int:
    return columns.strings.find(status) or -1


def _counted(columns: Columns, codes: NDArray[np.int32]) -> dict[str, int]:
    counts = np.bincount(codes, minlength=1) if codes.size else np.zeros(1, dtype=np.int64)
    values = columns.strings.values
    return dict(sorted((str(values[code]), int(n)) for code, n in enumerate(counts)
                       if n and code != 0))


def funnel(columns: Columns, filters: Filters) -> dict[str, Any]:
    d = columns.deals
    # The kept rows, gathered: a rep's or a team's few deals are then read alone, where
    # masks over every deal took 25 ms a question at 1M deals whatever was kept.
    kept_rows = chosen(columns, "deal", filters.dims, filters.start, filters.end,
                       day="created_day")
    status = d["status"][kept_rows]
    is_open = status == _status(columns, "open")
    open_rows, open_stages = kept_rows[is_open], d["last_stage"][kept_rows[is_open]]
    rows = []
    for i, stage in enumerate(columns.stages):
        open_here = open_rows[open_stages == i]
        entered = kept_rows[d["entered"][kept_rows, i]]
        n_entered, n_advanced = int(entered.size), int(d["advanced"][entered, i].sum())
        dwell_median, dwell_p90 = quantiles_of(d["dwell"][entered, i], (0.5, 0.9))
        rows.append({
            "stage": stage,
            "open_deals": int(open_here.size),
            "open_amount": str(money_sum(columns, open_here)),
            "entered": n_entered,
            "advanced": n_advanced,
            "conversion": ratio(n_advanced, n_entered),
            "dwell_days_median": dwell_median,
            "dwell_days_p90": dwell_p90,
        })
    won = kept_rows[status == _status(columns, "won")]
    lost = kept_rows[status == _status(columns, "lost")]
    n_won, n_lost = int(won.size), int(lost.size)
    return {
        "stages": rows,
        "won": n_won,
        "lost": n_lost,
        "won_value": str(money_sum(columns, won)),
        "win_rate": ratio(n_won, n_won + n_lost),
        "loss_reasons": _counted(columns, d["lost_reason"][lost]),
        "competitors": _counted(columns, d["competitor"][lost]),
        "stage_skips": int(d["skips"][kept_rows].sum()),
        "regressions": int(d["regressions"][kept_rows].sum()),
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
    table's; a team's or a rep's rows alone (`columnar_rows`)."""
    grouped_by = _grouped_by(columns, what, by, day)
    table = columns.table(what)
    counts: Counter[int] = Counter()
    flagged: Counter[int] = Counter()
    if indexed(filters.dims):
        found = chosen(columns, what, filters.dims, filters.start, filters.end, day=day)
        codes = _group_codes(grouped_by[found], np.ones(found.size, dtype=bool), by)
        counts.update(_counts(codes))
        if flag is not None:
            flagged.update(_counts(codes[table[flag][found]]))
        return counts, flagged
    tests = columns.tests(what, filters.dims)
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


class GroupQuantiles(NamedTuple):
    per_group: list[list[float | None]]  # each group's quantiles, in the order asked
    whole: list[float | None]  # all values' quantiles
    at_most: list[int]  # how many of each group's values are <= the threshold (if given)


def quantiles_by_group(values: NDArray[np.float64], groups: NDArray[np.intp], count: int,
                       qs: tuple[float, ...], at_most: float | None = None) -> GroupQuantiles:
    """`quantile_of(values of group g, q)` for each group 0 to `count` - 1 and each q, and
    `quantile_of(values, q)` of all of them: one count over buckets of the values' bits
    finds the bucket of every order statistic asked for, and only those buckets' values
    are sorted, where a partition per group and quantile reads every value each time.
    With `at_most`, also how many of each group's values are <= it (the same count).

    No NaN among the values; the zeros' signs are not told apart (nor are they by a
    partition)."""
    if not values.size:
        return GroupQuantiles([[None] * len(qs) for _ in range(count)], [None] * len(qs),
                              [0] * count if at_most is not None else [])
    # A float's bits as an integer in the floats' order: a negative one's run backwards.
    key = values.view(np.int64)
    if int(key.min()) < 0:
        key = key ^ ((key >> 63) & np.int64(INT64_MAX))
    # Buckets between the 1/64th and 63/64th of a sample of the values, as fine as keeps
    # `count` times their number within `cells`; the values beyond go to the first or
    # last bucket (where a quantile that far out finds more values to sort).
    sample = np.sort(key[::max(1, key.size // 4096)])
    low, high = int(sample[sample.size // 64]), int(sample[-1 - sample.size // 64])
    # (At least a thousand buckets a group: each asked bucket's values are sorted.)
    cells = min(max(1 << 8, min(1 << 18, values.size // 8), count << 10), 1 << 21)
    shift = 0
    while shift < 64 and ((high >> shift) - (low >> shift) + 1) * count > cells:
        shift += 1
    span = (high >> shift) - (low >> shift) + 1
    cell = key >> shift
    cell -= low >> shift
    np.clip(cell, 0, span - 1, out=cell)
    if count > 1:
        cell += groups * span
    table = np.bincount(cell, minlength=count * span)
    # Order statistics as (group, rank): each group's, then all values' (their buckets
    # counted over every group). A group's two ranks per q and how far between them, in
    # `quantile_of`'s float steps (q * (size - 1), truncated), for all groups at once.
    tables = table.reshape(count, span)
    sizes = tables.sum(axis=1)
    filled = np.flatnonzero(sizes)
    last = (sizes[filled] - 1)[:, None]
    position = last.astype(np.float64) * np.array(qs, dtype=np.float64)[None, :]
    low_rank = position.astype(np.int64)
    between = position - low_rank
    rank = np.stack((low_rank, np.minimum(low_rank + 1, last)), axis=2).reshape(len(filled), -1)
    running = np.cumsum(tables, axis=1).ravel()
    # Each group's running count raised above the last's: one search for every rank.
    raise_by = np.arange(count, dtype=np.int64) * (values.size + 1)
    at = np.searchsorted(running + np.repeat(raise_by, span),
                         (rank + raise_by[filled][:, None]).ravel(), side="right")
    within = rank.ravel() - (running[at] - table[at])
    whole = tables.sum(axis=0)
    whole_ranks = [r for q in qs for r in _ranks(values.size, q)[:2]]
    whole_running = np.cumsum(whole)
    whole_at = np.searchsorted(whole_running, whole_ranks, side="right")
    whole_within = (np.array(whole_ranks) - (whole_running - whole)[whole_at]).tolist()
    # The cells whose values are read: 1 a group's, 2 all values', 4 the threshold's.
    wanted = np.zeros(count * span, dtype=np.uint8)
    wanted[at] = 1
    wanted.reshape(count, span)[:, whole_at] |= 2
    if at_most is not None:  # its bucket: every group's values there are compared
        bound = np.array([at_most + 0.0]).view(np.int64)  # (+ 0.0: no negative zero)
        if int(bound[0]) < 0:
            bound = bound ^ ((bound >> 63) & np.int64(INT64_MAX))
        bound_at = min(max((int(bound[0]) >> shift) - (low >> shift), 0), span - 1)
        wanted.reshape(count, span)[:, bound_at] |= 4
    picked = np.flatnonzero((wanted != 0)[cell])  # (a bool mask: numpy's fast nonzero)
    picked_cell, picked_value = cell[picked], values[picked]
    flags = wanted[picked_cell]
    mine = (flags & 1).astype(bool)
    group_cell, group_value = picked_cell[mine], picked_value[mine]
    order = np.lexsort((group_value, group_cell))
    chosen = group_value[order][np.searchsorted(group_cell[order], at) + within]
    chosen = chosen.reshape(len(filled), len(qs), 2)
    quantiles = chosen[:, :, 0] + (chosen[:, :, 1] - chosen[:, :, 0]) * between
    per_group: list[list[float | None]] = [[None] * len(qs) for _ in range(count)]
    for g, row in zip(filled.tolist(), quantiles.tolist(), strict=True):
        per_group[g] = row
    bucket = picked_cell % span
    of_whole = (flags & 2).astype(bool)
    bucket_values = {b: np.sort(picked_value[of_whole & (bucket == b)])
                     for b in set(whole_at.tolist())}
    whole_chosen = iter(float(bucket_values[b][r])
                        for b, r in zip(whole_at.tolist(), whole_within, strict=True))
    total: list[float | None] = [
        _between(next(whole_chosen), next(whole_chosen), _ranks(values.size, q)[2])
        for q in qs]
    below: list[int] = []
    if at_most is not None:  # the buckets before its own, and in its own those <= it
        in_bound = (bucket == bound_at) & (picked_value <= at_most)
        below = (tables[:, :bound_at].sum(axis=1)
                 + np.bincount(picked_cell[in_bound] // span, minlength=count)).tolist()
    return GroupQuantiles(per_group, total, below)


def _ranks(size: int, q: float) -> tuple[int, int, float]:
    """The two order statistics (0-based) `quantile_of` interpolates between over `size`
    values, and how far between (its float arithmetic); (0, 0, 0.0) for no values."""
    if not size:
        return 0, 0, 0.0
    position = q * (size - 1)
    low = int(position)
    return low, min(low + 1, size - 1), position - low


def _between(low_value: float, high_value: float, frac: float) -> float:
    return low_value + (high_value - low_value) * frac


_MANTISSA_HALF = (1 << 26) - 1


def means_by_group(values: NDArray[np.float64], groups: NDArray[np.intp], count: int
                   ) -> tuple[list[float | None], float | None]:
    """`mean_of(values of group g)` for each group 0 to `count` - 1, and `mean_of(values)`.

    `math.fsum` is the exactly rounded sum: here that exact sum is made from integers, each
    value's mantissa counted in two 26-bit halves per (group, sign and exponent), sums a
    float64 `bincount` holds exactly (below 2**53 for fewer than 2**27 values), and then
    rounded once by Python's correctly rounded integer division. No NaN among the values."""
    if not values.size:
        return [None] * count, None
    if values.size >= 1 << 27 or not np.isfinite(values).all():
        return [mean_of(values[groups == g]) for g in range(count)], mean_of(values)
    bits = values.view(np.uint64)
    top = (bits >> np.uint64(52)).view(np.int64)  # sign and exponent
    first = int(top.min())
    span = int(top.max()) - first + 1
    cell = top - first
    if count > 1:
        cell += groups * span
    size = count * span
    counts = np.bincount(cell, minlength=size).reshape(count, span)
    # As float64 here: `bincount` would cast unsigned weights one by one, at thrice the time.
    high = np.bincount(cell, weights=((bits >> np.uint64(26)) & np.uint64(_MANTISSA_HALF))
                       .astype(np.float64), minlength=size).reshape(count, span)
    low = np.bincount(cell, weights=(bits & np.uint64(_MANTISSA_HALF)).astype(np.float64),
                      minlength=size).reshape(count, span)
    # Each group's sum in units of 2**-1074, the smallest subnormal: Python's integers, one
    # sign and exponent at a time for every group at once.
    sums = np.zeros(count, dtype=object)
    for e in np.flatnonzero(counts.any(axis=0)).tolist():
        sign_exponent = e + first
        exponent = sign_exponent & 2047
        mantissas = (high[:, e].astype(np.int64).astype(object) << 26) \
            + low[:, e].astype(np.int64).astype(object)
        if exponent:  # a normal number's leading 1
            mantissas += counts[:, e].astype(object) << 52
        mantissas <<= max(exponent, 1) - 1
        sums += -mantissas if sign_exponent >> 11 else mantissas
    sizes = counts.sum(axis=1).tolist()
    unit = 1 << 1074
    means: list[float | None] = [s / unit / n if n else None
                                 for s, n in zip(sums.tolist(), sizes, strict=True)]
    return means, int(sums.sum()) / unit / values.size
