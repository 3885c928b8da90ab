"""GET /v1/activities over `Columns`: the answers `activity.py` gives over a `Snapshot` (a
test holds them byte-identical), in numpy.

A question reads each activity at most once, and the few columns it needs of the ones it
selects: the whole tenant's counts and minutes, and the deals' last activities (the cadence),
come from `columnar_activity_index`, with the rows appended since it was made (the tail)
read apart; a window or dimension filters read every activity's day or dimension once.

Days since a deal's last activity are whole microseconds as floats over 10**6 and then
86,400: the float steps `timedelta.total_seconds` takes.
"""

from __future__ import annotations

from datetime import datetime
from itertools import islice
from typing import Any

import numpy as np
from numpy.typing import NDArray

from projections.activity import CADENCE_BUCKETS
from projections.columnar import Columns
from projections.columnar_activity_index import (
    NO_ACTIVITY,
    ActivityIndex,
    Counted,
    Minutes,
    activity_index,
    merged,
    rep_kind_counts,
    totals,
)
from projections.columnar_rows import chosen, indexed
from projections.columnar_table import dense_codes, micros
from projections.columnar_views import as_decimal, day_buckets, decimal_sum, quantiles_of
from projections.snapshot import Filters
from projections.stats import money, ratio

_DAYS = np.iinfo(np.int32)
Tests = list[tuple[NDArray[np.int32], int]] | None


def activities(columns: Columns, filters: Filters, as_of: datetime) -> dict[str, Any]:
    index = activity_index(columns)
    reps, kinds, counts, minutes = _counted(columns, index, filters)
    by_kind, per_rep = _named(columns.strings.values, reps, kinds, counts)
    d = columns.deals
    # The selected deals' rows (a window's are a few in ten): their figures gathered.
    deals = np.flatnonzero(columns.select("deal", filters.dims, filters.start, filters.end,
                                          day="created_day"))
    n_deals = int(deals.size)
    on_deals = int(d["activities"][deals].sum())
    quotes = columns.activity_facts.quotes_of(d.size)
    return {
        "as_of": as_of.isoformat(),
        "activities": int(counts.sum()),
        "by_kind": by_kind,
        "reps": per_rep,
        "deals": n_deals,
        "activities_on_deals": on_deals,
        "activities_per_deal": ratio(on_deals, n_deals),
        "talk_minutes": _money(columns, minutes, "call"),
        "visit_minutes": _money(columns, minutes, "visit"),
        "quotes_sent": int(quotes["quotes"][deals].sum()),
        "quoted_value": money(decimal_sum(quotes["quoted"][deals], quotes["quoted_exp"][deals])),
        "cadence": cadence(columns, deals, as_of, index),
    }


def _named(values: list[str | None], reps: NDArray[np.intp], kinds: NDArray[np.intp],
           counts: NDArray[np.intp]) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """The counts by kind name, and per rep name (in name order) by kind name, from the
    (rep code, kind code, count) triples."""
    kind_codes, kind_at = dense_codes(kinds)
    kind_names = [str(values[code]) for code in kind_codes.tolist()]
    per_kind = np.bincount(kind_at, counts, len(kind_codes)).astype(np.int64).tolist()
    by_kind = dict(sorted(zip(kind_names, per_kind, strict=True)))
    rep_codes, rep_at = dense_codes(reps)
    rep_names = [str(values[code]) for code in rep_codes.tolist()]
    if len(set(rep_names)) < len(rep_names) or len(set(kind_names)) < len(kind_names):
        return by_kind, _named_one_by_one(values, reps, kinds, counts)  # None and "None"
    # Names ranked once, so the triples sort as numbers: by rep name, then kind name.
    by_name = sorted(range(len(rep_names)), key=rep_names.__getitem__)
    rep_rank = np.empty(len(rep_names), dtype=np.intp)
    rep_rank[by_name] = np.arange(len(rep_names))
    kind_rank = np.empty(len(kind_names), dtype=np.intp)
    kind_rank[sorted(range(len(kind_names)), key=kind_names.__getitem__)] = \
        np.arange(len(kind_names))
    order = np.lexsort((kind_rank[kind_at], rep_rank[rep_at]))
    kind_of = np.array(kind_names, dtype=object)[kind_at[order]].tolist()
    count_of = counts[order].tolist()
    lengths = np.bincount(rep_at, minlength=len(rep_names))[by_name].tolist()
    totals = np.bincount(rep_at, counts, len(rep_names))[by_name].astype(np.int64).tolist()
    pairs = zip(kind_of, count_of, strict=True)  # each rep's take the next `length`
    per_rep = [{"rep": rep_names[i], "activities": total, "by_kind": dict(islice(pairs, length))}
               for i, length, total in zip(by_name, lengths, totals, strict=True)]
    return by_kind, per_rep


def _named_one_by_one(values: list[str | None], reps: NDArray[np.intp],
                      kinds: NDArray[np.intp], counts: NDArray[np.intp]) -> list[dict[str, Any]]:
    """`_named`'s per rep where two codes share a name (None and "None"): merged by name."""
    grouped: dict[str, dict[str, int]] = {}
    for rep, kind, n in zip(reps.tolist(), kinds.tolist(), counts.tolist(), strict=True):
        grouped.setdefault(str(values[rep]), {})[str(values[kind])] = n
    return [{"rep": rep_name, "activities": sum(rep_kinds.values()),
             "by_kind": dict(sorted(rep_kinds.items()))}
            for rep_name, rep_kinds in sorted(grouped.items())]


def _counted(columns: Columns, index: ActivityIndex, filters: Filters) -> Counted:
    """The selected activities' (rep, kind, count) triples and minutes per kind."""
    tests = columns.tests("activity", filters.dims)
    if tests is None:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty, empty, {}
    if not tests and filters.start is None and filters.end is None:
        # The whole tenant: the counts kept for the index's rows, and the tail's.
        whole = totals(columns, index)
        tail = _kept_rows(columns, tests, filters, whole.rows)
        return merged([(whole.reps, whole.kinds, whole.counts, whole.minutes),
                       _of_rows(columns, index, tail)])
    return _of_rows(columns, index, _kept_rows(columns, tests, filters, 0))


def _kept_rows(columns: Columns, tests: Tests, filters: Filters, low: int
               ) -> tuple[NDArray[np.intp], NDArray[np.int32]]:
    """The rows from `low` on that the filters keep, and their reps."""
    a = columns.activities
    rows = slice(low, a.size)
    start, end = filters.start, filters.end
    if low == 0 and indexed(filters.dims):  # a team's, a rep's
        found = chosen(columns, "activity", filters.dims, start, end, day="day")
        return found, a["rep"][found]
    if tests or tests is None or (start is None and end is None):
        keep = columns.keeps("activity", tests, start, end, day="day", rows=rows)
    else:  # `keeps` of a window alone, without its mask of ones and one pass less
        days = a["day"][rows]
        keep = days >= (start.toordinal() if start is not None else _DAYS.min)
        keep &= days <= (end.toordinal() if end is not None else _DAYS.max)
    found = np.flatnonzero(keep)
    found += low
    return found, a["rep"][found]


def _of_rows(columns: Columns, index: ActivityIndex,
             selected: tuple[NDArray[np.intp], NDArray[np.int32]]) -> Counted:
    rows, reps = selected
    kinds = columns.activities["kind"][rows]
    codes = len(columns.strings.values)
    kind_codes, places = index.kind_places(kinds, codes)
    return (*rep_kind_counts(reps, kind_codes, places, codes),
            index.kind_minutes(columns, rows, kinds, kind_codes, places))


def _money(columns: Columns, minutes: dict[int, Minutes], kind: str) -> str:
    """`activity._minutes`: the selected activities of `kind` that have a duration."""
    code = columns.strings.find(kind)
    parts = minutes.get(code, Minutes()) if code else Minutes()
    return money(as_decimal(parts.total, parts.exponent))


def cadence(columns: Columns, deals: NDArray[np.intp], as_of: datetime,
            index: ActivityIndex | None = None) -> dict[str, Any]:
    """`activity.cadence` of the selected deals (rows, ascending)."""
    d = columns.deals
    moment = micros(as_of)
    open_then = deals[(d["created"][deals] <= moment) & (d["closed"][deals] > moment)]
    last_of_open = (index or activity_index(columns)).last_activity(
        open_then, moment, columns.activities)
    touched = last_of_open[last_of_open != NO_ACTIVITY]
    quiet = (moment - touched).astype(np.float64) / 1e6 / 86400
    median, p90 = quantiles_of(quiet, (0.5, 0.9))
    return {
        "open_deals": int(last_of_open.size),
        "never_touched": int(last_of_open.size - touched.size),
        "days_since_activity_median": median,
        "days_since_activity_p90": p90,
        "buckets": day_buckets(quiet, CADENCE_BUCKETS),
    }
