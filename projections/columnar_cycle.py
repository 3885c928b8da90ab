"""Cycle times and ageing over `Columns`: the answers `cycle.py` gives over a `Snapshot`
(a test holds them byte-identical), in numpy.

An age is `days_between(created_at, as_of)`: the whole microseconds between them, as a
float, over 10**6 and then 86,400, the float steps `timedelta.total_seconds` takes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from projections.activity import buckets
from projections.columnar import Columns
from projections.columnar_table import micros
from projections.columnar_views import mean_of, quantile_of
from projections.cycle import AGE_BUCKETS
from projections.snapshot import Filters


def cycle(columns: Columns, filters: Filters, as_of: datetime) -> dict[str, Any]:
    d = columns.deals
    keep = columns.select("deal", filters.dims, filters.start, filters.end, day="created_day")
    won = d["cycle_days"][keep]
    won = won[~np.isnan(won)]
    stages = []
    for i, stage in enumerate(columns.stages):
        dwell = d["dwell"][:, i][keep]
        dwell = dwell[~np.isnan(dwell)]
        stages.append({
            "stage": stage,
            "deals": int(dwell.size),
            "dwell_days_mean": mean_of(dwell),
            "dwell_days_median": quantile_of(dwell, 0.5),
            "dwell_days_p90": quantile_of(dwell, 0.9),
        })
    moment = micros(as_of)
    open_then = keep & (d["created"] <= moment) & (d["closed"] > moment)
    ages = (moment - d["created"][open_then]).astype(np.float64) / 1e6 / 86400
    return {
        "as_of": as_of.isoformat(),
        "won": int(won.size),
        "won_days_mean": mean_of(won),
        "won_days_median": quantile_of(won, 0.5),
        "won_days_p90": quantile_of(won, 0.9),
        "stages": stages,
        "ageing": {
            "open_deals": int(ages.size),
            "age_days_median": quantile_of(ages, 0.5),
            "age_days_p90": quantile_of(ages, 0.9),
            "buckets": buckets(ages.tolist(), AGE_BUCKETS),
        },
    }
