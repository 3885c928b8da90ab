"""Independent oracle for `GET /v1/revenue` (docs/METRICS.md), pandas over the raw events.

Every figure is recomputed from `orders_and_payments`; amounts stay integer micro-units
until the end. Period ends come from pandas periods (`W-SUN` weeks are ISO weeks).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tests import oracle
from tests.oracles.orders import DIMENSIONS, keep_dates, keep_dims, orders_and_payments, to_money

PERIOD_FREQ = {"day": "D", "week": "W-SUN", "month": "M", "quarter": "Q", "year": "Y"}
AGING_EDGES = [-np.inf, 30, 60, 90, np.inf]  # on completed days: (-inf,30], (30,60], ...
AGING_LABELS = ["0-30", "31-60", "61-90", ">90"]


def _period(times: pd.Series, by: str, tz: str) -> pd.Series:
    local = times.dt.tz_convert(tz)
    if by == "week":
        iso = local.dt.isocalendar()
        return (iso["year"].astype(str) + "-W" + iso["week"].map("{:02d}".format)).astype(object)
    if by == "quarter":
        return (local.dt.year.astype(str) + "-Q" + local.dt.quarter.astype(str)).astype(object)
    fmt = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}[by]
    return local.dt.strftime(fmt).astype(object)


def _period_end(times: pd.Series, by: str, tz: str) -> pd.Series:
    naive = times.dt.tz_convert(tz).dt.tz_localize(None)
    following = (naive.dt.to_period(PERIOD_FREQ[by]) + 1).dt.start_time
    return following.dt.tz_localize(tz).dt.as_unit("ns")


def _completed(orders: pd.DataFrame, paid: pd.DataFrame) -> pd.Series:
    """Per order, when the cumulative payments reached its amount (booking if amount 0)."""
    paid = paid.sort_values("seq").copy()
    paid["cum"] = paid.groupby("order_id")["amount"].cumsum()
    paid["target"] = oracle._align(paid["order_id"], orders["amount"])
    done = paid[paid["cum"] >= paid["target"]].groupby("order_id")["at"].first()
    done = done.reindex(orders.index)
    return done.where(orders["amount"] > 0, orders["booked_at"])


def _balance(orders: pd.DataFrame, paid: pd.DataFrame, at: pd.Timestamp,
             inclusive: bool) -> dict[str, Any]:
    def covered(times: pd.Series) -> pd.Series:
        return times <= at if inclusive else times < at

    o = orders[covered(orders["booked_at"])]
    p = paid[covered(paid["at"]) & paid["order_id"].isin(o.index)]
    owed = o["amount"] - p.groupby("order_id")["amount"].sum().reindex(o.index).fillna(0)
    owed = owed[owed > 0]
    age = np.floor(oracle._days(at - o.loc[owed.index, "booked_at"]))
    bucket = pd.cut(age, AGING_EDGES, labels=AGING_LABELS)
    aging = owed.groupby(bucket, observed=False).sum()
    trailing = int(o.loc[o["booked_at"] > at - pd.Timedelta(days=90), "amount"].sum())
    outstanding = int(owed.sum())
    return {
        "outstanding": to_money(outstanding),
        "aging": {label: to_money(int(aging.get(label, 0))) for label in AGING_LABELS},
        "dso": outstanding / trailing * 90 if trailing else None,
    }


def _flows(bookings: pd.DataFrame, receipts: pd.DataFrame, done: pd.Series,
           as_of: pd.Timestamp) -> dict[str, Any]:
    booked = int(bookings["amount"].sum())
    finished = done.reindex(bookings.index)
    finished = finished[finished.notna() & (finished <= as_of)]
    cycle = oracle._days(finished - bookings.loc[finished.index, "booked_at"])
    n = len(bookings)
    return {
        "booked": to_money(booked),
        "collected": to_money(int(receipts["amount"].sum())),
        "orders": n,
        "avg_order_value": (to_money(booked) / n).quantize(oracle.CENT, oracle.ROUND_HALF_EVEN)
        if n else None,
        "collection_orders": len(cycle),
        "collection_days_mean": oracle._stat(cycle, "mean"),
        "collection_days_median": oracle._stat(cycle, "median"),
    }


def _ordered(keys: set) -> list:
    keys = {oracle._py(k) for k in keys}
    return sorted(k for k in keys if k is not None) + ([None] if None in keys else [])


def _rows(by: str, known: pd.DataFrame, paid: pd.DataFrame, bookings: pd.DataFrame,
          receipts: pd.DataFrame, done: pd.Series, as_of: pd.Timestamp, tz: str) -> list:
    bookings, receipts = bookings.copy(), receipts.copy()
    if by in PERIOD_FREQ:
        bookings["key"] = _period(bookings["booked_at"], by, tz)
        receipts["key"] = _period(receipts["at"], by, tz)
        ends = pd.concat([
            pd.Series(_period_end(bookings["booked_at"], by, tz).to_numpy(),
                      index=bookings["key"].to_numpy()),
            pd.Series(_period_end(receipts["at"], by, tz).to_numpy(),
                      index=receipts["key"].to_numpy())])
        ends = ends[~ends.index.duplicated()]
        keys = set(ends.index)
    else:
        bookings["key"], receipts["key"] = bookings[by], receipts[by]
        paid_now = paid[paid["at"] <= as_of].groupby("order_id")["amount"].sum()
        debtors = known[known["amount"] > paid_now.reindex(known.index).fillna(0)]
        keys = set(bookings["key"]) | set(receipts["key"]) | set(debtors[by])
    rows = []
    for key in _ordered(keys):
        flows = _flows(oracle._group(bookings, key), oracle._group(receipts, key), done, as_of)
        if by in PERIOD_FREQ:
            end = pd.Timestamp(ends[key])
            balance = _balance(known, paid, as_of, True) if as_of < end else \
                _balance(known, paid, end, False)
        else:
            mine = known[known[by].isna()] if key is None else known[known[by] == key]
            balance = _balance(mine, paid, as_of, True)
        rows.append({"key": key, **flows, **balance})
    return rows


def revenue(events: list[dict], *, by: str, as_of: Any, tz: str = "Asia/Shanghai",
            filters: dict | None = None) -> dict[str, Any]:
    """`GET /v1/revenue?by=...&as_of=...` recomputed from the raw events."""
    if by not in (*PERIOD_FREQ, *DIMENSIONS):
        raise ValueError(f"unknown grouping {by!r}")
    at = oracle._ts(as_of, tz)
    orders, paid = orders_and_payments(events, tz)
    known = keep_dims(orders, filters)
    known = known[known["booked_at"] <= at]
    paid = paid[paid["order_id"].isin(known.index) & (paid["at"] <= at)]
    bookings = keep_dates(known, filters, "booked_at", tz)
    receipts = keep_dates(paid, filters, "at", tz)
    done = _completed(known, paid)
    return {
        "by": by,
        "as_of": at.isoformat(),
        "rows": _rows(by, known, paid, bookings, receipts, done, at, tz),
        "products": _rows("product", known, paid, bookings, receipts, done, at, tz),
        "total": {**_flows(bookings, receipts, done, at), **_balance(known, paid, at, True)},
    }
