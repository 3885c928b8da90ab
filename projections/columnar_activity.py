"""GET /v1/activities over `Columns`: the answers `activity.py` gives over a `Snapshot` (a
test holds them byte-identical), in numpy.

Days since a deal's last activity are whole microseconds as floats over 10**6 and then
86,400: the float steps `timedelta.total_seconds` takes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from projections.activity import CADENCE_BUCKETS, buckets
from projections.columnar import Columns
from projections.columnar_table import dense_codes, micros
from projections.columnar_views import decimal_sum, quantile_of
from projections.snapshot import Filters
from projections.stats import money, ratio

_NO_ACTIVITY = int(np.iinfo(np.int64).min)  # a deal's "last activity" when none by `as_of`


def activities(columns: Columns, filters: Filters, as_of: datetime) -> dict[str, Any]:
    a = columns.activities
    selected = columns.select("activity", filters.dims, filters.start, filters.end, day="day")
    values = columns.strings.values
    kinds, reps = a["kind"][selected], a["rep"][selected]
    by_kind = _named_counts(values, kinds)
    per_rep = []
    # One group per rep, in the order of their names: (rep, kind) pairs counted at once, by
    # counting codes (small string ids) rather than sorting the activities.
    rep_codes, rep_index = dense_codes(reps)
    kind_codes, kind_index = dense_codes(kinds)
    shape = (len(rep_codes), len(kind_codes))
    counts = np.bincount(rep_index * shape[1] + kind_index,
                         minlength=shape[0] * shape[1]).reshape(shape)
    grouped: dict[str, dict[str, int]] = {}
    for rep, kind in zip(*(found.tolist() for found in np.nonzero(counts)), strict=True):
        name = str(values[rep_codes[rep]])
        grouped.setdefault(name, {})[str(values[kind_codes[kind]])] = int(counts[rep, kind])
    for rep_name, rep_kinds in sorted(grouped.items()):
        per_rep.append({"rep": rep_name, "activities": sum(rep_kinds.values()),
                        "by_kind": dict(sorted(rep_kinds.items()))})
    d = columns.deals
    deals = columns.select("deal", filters.dims, filters.start, filters.end, day="created_day")
    n_deals = int(deals.sum())
    on_deals = int(d["activities"][deals].sum())
    quotes = columns.activity_facts.quotes_of(d.size)
    return {
        "as_of": as_of.isoformat(),
        "activities": int(selected.sum()),
        "by_kind": by_kind,
        "reps": per_rep,
        "deals": n_deals,
        "activities_on_deals": on_deals,
        "activities_per_deal": ratio(on_deals, n_deals),
        "talk_minutes": _minutes(columns, selected, "call"),
        "visit_minutes": _minutes(columns, selected, "visit"),
        "quotes_sent": int(quotes["quotes"][:d.size][deals].sum()),
        "quoted_value": money(decimal_sum(quotes["quoted"][:d.size][deals],
                                          quotes["quoted_exp"][:d.size][deals])),
        "cadence": cadence(columns, deals, as_of),
    }


def _named_counts(values: list[str | None], codes: NDArray[np.int32]) -> dict[str, int]:
    counts = np.bincount(codes)
    found = np.flatnonzero(counts)
    return dict(sorted((str(values[c]), int(n))
                       for c, n in zip(found.tolist(), counts[found].tolist(), strict=True)))


def _minutes(columns: Columns, selected: NDArray[np.bool_], kind: str) -> str:
    """`activity._minutes`: the selected activities of `kind` that have a duration."""
    durations = columns.activity_facts.durations
    code = columns.strings.find(kind)
    rows = selected & (columns.activities["kind"] == code) & durations["timed"] \
        if code else np.zeros(durations.size, dtype=bool)
    return money(decimal_sum(durations["minutes"][rows], durations["minutes_exp"][rows]))


def cadence(columns: Columns, deals: NDArray[np.bool_], as_of: datetime) -> dict[str, Any]:
    """`activity.cadence` of the selected deals."""
    d, a = columns.deals, columns.activities
    moment = micros(as_of)
    open_then = deals & (d["created"] <= moment) & (d["closed"] > moment)
    last = np.full(d.size, _NO_ACTIVITY, dtype=np.int64)
    on_deal = (a["parent_kind"] == 0) & (a["at"] <= moment)
    parents = a["parent"][on_deal]
    mine = open_then[parents]
    np.maximum.at(last, parents[mine], a["at"][on_deal][mine])
    last_of_open = last[open_then]
    touched = last_of_open[last_of_open != _NO_ACTIVITY]
    quiet = (moment - touched).astype(np.float64) / 1e6 / 86400
    return {
        "open_deals": int(last_of_open.size),
        "never_touched": int(last_of_open.size - touched.size),
        "days_since_activity_median": quantile_of(quiet, 0.5),
        "days_since_activity_p90": quantile_of(quiet, 0.9),
        "buckets": buckets(quiet.tolist(), CADENCE_BUCKETS),
    }
