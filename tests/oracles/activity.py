"""Independent oracle for `GET /v1/activities` and `GET /v1/cycle`, pandas over raw events.

Reuses only the base oracle's helpers (`tests/oracle.py`); the definitions are
docs/METRICS.md's, restated: activities selected on `occurred_at` and their own
dimensions; deals on `created_at` and theirs; "open at as_of" = created at or before
`as_of` and not closed at or before it; buckets count completed days.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pandas as pd

from tests.oracle import (
    ZERO,
    _dec,
    _entities,
    _first_by,
    _of_type,
    _rate,
    _raw,
    _select,
    _stat,
    _ts,
)

CADENCE = ((0, 7, "0-7"), (8, 14, "8-14"), (15, 30, "15-30"), (31, None, ">30"))
AGES = ((0, 30, "0-30"), (31, 60, "31-60"), (61, 90, "61-90"), (91, None, ">90"))


def _buckets(days: pd.Series, bounds: tuple) -> dict[str, int]:
    whole = days.apply(lambda d: int(d // 1))
    return {label: int(((whole >= lo) & ((whole <= hi) if hi is not None else True)).sum())
            for lo, hi, label in bounds}


def _open_at(deals: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
    still = deals["closed_at"].isna() | (deals["closed_at"] > at)
    return deals[(deals["created_at"] <= at) & still]


def _counts(kinds: pd.Series) -> dict[str, int]:
    return {k: int(v) for k, v in sorted(kinds.value_counts().items())}


def activities(events: list[dict], *, as_of: datetime, stages: list[str],
               tz: str = "Asia/Shanghai", filters: dict | None = None) -> dict:
    raw = _raw(events, tz)
    ent = _entities(events, stages, tz)
    at_of = _ts(as_of, tz)
    logged = _first_by(_of_type(raw, "activity.logged", [
        "activity_id", "kind", "duration_min", "deal_id"]), "activity_id").set_index("activity_id")
    acts = ent["activities"].join(logged[["kind", "duration_min"]])
    sel = _select(acts, filters, "at", tz)
    deals = _select(ent["deals"], filters, "created_at", tz)

    on_deals = logged[logged["deal_id"].isin(deals.index)]
    quotes = _of_type(raw, "quote.sent", ["deal_id", "amount"])
    quotes = quotes[quotes["deal_id"].isin(deals.index)]

    def minutes(kind: str) -> Decimal:
        return sum((_dec(v) or ZERO for v in sel.loc[sel["kind"] == kind, "duration_min"]), ZERO)

    open_deals = _open_at(deals, at_of)
    touched = logged[(logged["at"] <= at_of) & logged["deal_id"].isin(open_deals.index)]
    last = touched.groupby("deal_id")["at"].max()
    quiet = (at_of - last).dt.total_seconds() / 86400
    return {
        "activities": len(sel),
        "by_kind": _counts(sel["kind"]),
        "reps": [{"rep": rep, "activities": len(g), "by_kind": _counts(g["kind"])}
                 for rep, g in sorted(sel.groupby("rep"), key=lambda item: item[0])],
        "deals": len(deals),
        "activities_on_deals": len(on_deals),
        "activities_per_deal": _rate(len(on_deals), len(deals)),
        "talk_minutes": minutes("call"),
        "visit_minutes": minutes("visit"),
        "quotes_sent": len(quotes),
        "quoted_value": sum((_dec(v) for v in quotes["amount"]), ZERO),
        "cadence": {
            "open_deals": len(open_deals),
            "never_touched": len(open_deals) - len(last),
            "days_since_activity_median": _stat(quiet, "median"),
            "days_since_activity_p90": _stat(quiet, "p90"),
            "buckets": _buckets(quiet, CADENCE),
        },
    }


def cycle(events: list[dict], *, as_of: datetime, stages: list[str],
          tz: str = "Asia/Shanghai", filters: dict | None = None) -> dict:
    ent = _entities(events, stages, tz)
    at_of = _ts(as_of, tz)
    deals = _select(ent["deals"], filters, "created_at", tz)
    won = deals[deals["status"] == "won"]
    won_days = (won["closed_at"] - won["created_at"]).dt.total_seconds() / 86400

    # dwell per (deal, stage): all visits summed; a stage the deal still sits in is excluded
    hist = ent["history"][ent["history"]["deal_id"].isin(deals.index)].copy()
    hist["seconds"] = (hist["left_at"] - hist["at"]).dt.total_seconds()
    hist["open_visit"] = hist["seconds"].isna()
    dwell = hist.groupby(["deal_id", "stage"]).agg(
        seconds=("seconds", "sum"), still_there=("open_visit", "any")).reset_index()
    dwell = dwell[~dwell["still_there"]]
    rows = []
    for stage in stages:
        days = dwell.loc[dwell["stage"] == stage, "seconds"] / 86400
        rows.append({"stage": stage, "deals": len(days), "dwell_days_mean": _stat(days, "mean"),
                     "dwell_days_median": _stat(days, "median"),
                     "dwell_days_p90": _stat(days, "p90")})

    ages = (at_of - _open_at(deals, at_of)["created_at"]).dt.total_seconds() / 86400
    return {
        "won": len(won),
        "won_days_mean": _stat(won_days, "mean"),
        "won_days_median": _stat(won_days, "median"),
        "won_days_p90": _stat(won_days, "p90"),
        "stages": rows,
        "ageing": {
            "open_deals": len(ages),
            "age_days_median": _stat(ages, "median"),
            "age_days_p90": _stat(ages, "p90"),
            "buckets": _buckets(ages, AGES),
        },
    }
