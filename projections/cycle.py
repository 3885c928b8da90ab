"""Cycle: how long deals take to win, where they wait, and how old the open ones are.

Definitions (docs/METRICS.md, "GET /v1/cycle"):

- Created → won: `closed_at - created_at` in days over the selected won deals.
- Per-stage dwell: as in the funnel (`stage_dwell_days`), with the mean beside median and p90.
- Ageing: selected deals open at `as_of` (created by then, not closed by then), age =
  `as_of - created_at`; their status, stage and dimensions are today's, only open/closed is
  reconstructed at `as_of`. Buckets on completed days: 0–30, 31–60, 61–90, >90.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from projections.activity import buckets, open_at
from projections.funnel import stage_dwell_days
from projections.snapshot import Filters, Snapshot
from projections.stats import days_between, mean, median, quantile

AGE_BUCKETS = ((0, 30, "0-30"), (31, 60, "31-60"), (61, 90, "61-90"), (91, None, ">90"))


def cycle(snapshot: Snapshot, filters: Filters, as_of: datetime) -> dict[str, Any]:
    deals = snapshot.select_deals(filters)
    won = [days_between(d.created_at, d.closed_at) for d in deals
           if d.status == "won" and d.closed_at is not None]
    stages = []
    for stage in snapshot.stages:
        dwell = [x for d in deals if (x := stage_dwell_days(d, stage)) is not None]
        stages.append({
            "stage": stage,
            "deals": len(dwell),
            "dwell_days_mean": mean(dwell),
            "dwell_days_median": median(dwell),
            "dwell_days_p90": quantile(dwell, 0.9),
        })
    ages = [days_between(d.created_at, as_of) for d in deals if open_at(d, as_of)]
    return {
        "as_of": as_of.isoformat(),
        "won": len(won),
        "won_days_mean": mean(won),
        "won_days_median": median(won),
        "won_days_p90": quantile(won, 0.9),
        "stages": stages,
        "ageing": {
            "open_deals": len(ages),
            "age_days_median": median(ages),
            "age_days_p90": quantile(ages, 0.9),
            "buckets": buckets(ages, AGE_BUCKETS),
        },
    }
