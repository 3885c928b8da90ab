"""Independent oracle for `GET /v1/customers` and `GET /v1/customers/rfm` (docs/METRICS.md),
pandas over the raw events: per-customer aggregates, `rank(method="average")` for the RFM
quintiles, `np.select` for the segment rules."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from tests import oracle
from tests.oracles.orders import (
    MICRO,
    keep_dates,
    keep_dims,
    orders_and_payments,
    to_money,
)
from tests.oracles.revenue import _period

SEGMENTS = ["champions", "new", "loyal", "potential", "at_risk", "hibernating",
            "needs_attention"]


def _score(values: pd.Series, n: int) -> pd.Series:
    """ceil(5 r / n) with r the average rank among ties, computed in integers."""
    twice = (values.rank(method="average") * 2).round().astype("int64")
    return -(-5 * twice // (2 * n))


def _segment(t: pd.DataFrame) -> pd.Series:
    r, f, m, n = t["r"], t["f"], t["m"], t["frequency"]
    conditions = [(r >= 4) & (f >= 4) & (m >= 4), (r >= 4) & (n == 1), (r >= 3) & (f >= 3),
                  r >= 4, (r <= 2) & (f >= 3), r <= 2]
    return pd.Series(np.select(conditions, SEGMENTS[:-1], SEGMENTS[-1]), index=t.index)


def _table(events: list[dict], as_of: Any, tz: str, filters: dict | None
           ) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """(per customer: first_at, last_at, frequency, booked, collected, r, f, m, segment;
    the selected orders; as_of)."""
    at = oracle._ts(as_of, tz)
    orders, paid = orders_and_payments(events, tz)
    known = keep_dims(orders, filters)
    known = known[known["booked_at"] <= at].copy()
    paid = paid[paid["order_id"].isin(known.index) & (paid["at"] <= at)].copy()
    paid["customer"] = oracle._align(paid["order_id"], known["customer"])
    t = known.groupby("customer").agg(first_at=("booked_at", "min"), last_at=("booked_at", "max"),
                                      frequency=("amount", "size"), booked=("amount", "sum"))
    t["collected"] = paid.groupby("customer")["amount"].sum().reindex(t.index).fillna(0)
    t["collected"] = t["collected"].astype("int64")
    n = len(t)
    if n:
        t["r"] = _score(t["last_at"].astype("int64"), n)
        t["f"] = _score(t["frequency"], n)
        t["m"] = _score(t["booked"], n)
        t["segment"] = _segment(t)
    return t.sort_index(), known, at


def _value(micro: pd.Series) -> dict[str, Any]:
    n = len(micro)
    total = to_money(int(micro.sum()))
    return {
        "total": total,
        "mean": (total / n).quantize(oracle.CENT, oracle.ROUND_HALF_EVEN) if n else None,
        "median": Decimal(float(micro.median())) / MICRO if n else None,
    }


def customers(events: list[dict], *, as_of: Any, by: str = "month", tz: str = "Asia/Shanghai",
              filters: dict | None = None) -> dict[str, Any]:
    """`GET /v1/customers` recomputed from the raw events."""
    t, known, at = _table(events, as_of, tz, filters)
    new = keep_dates(t, filters, "first_at", tz)
    by_period = _period(new["first_at"], by, tz).value_counts().sort_index() if len(new) \
        else pd.Series(dtype="int64")

    local = known["booked_at"].dt.tz_convert(tz)
    known["month"] = local.dt.year * 12 + local.dt.month - 1
    first_month = known.groupby("customer")["month"].min()
    known["cohort"] = oracle._align(known["customer"], first_month)
    known = known[known["customer"].isin(new.index)]
    known["k"] = known["month"] - known["cohort"]
    counts = known.groupby(["cohort", "k"])["customer"].nunique()
    as_of_local = at.tz_convert(tz)
    as_of_month = as_of_local.year * 12 + as_of_local.month - 1
    retention = []
    for cohort in sorted(known["cohort"].unique()):
        size = int(counts[cohort][0])
        retained = [int(counts[cohort].get(k, 0)) for k in range(as_of_month - cohort + 1)]
        retention.append({"cohort": f"{cohort // 12:04d}-{cohort % 12 + 1:02d}",
                          "customers": size, "retained": retained,
                          "rates": [c / size for c in retained]})

    repeat = int((t["frequency"] >= 2).sum())
    segments = t["segment"].value_counts() if len(t) else pd.Series(dtype="int64")
    return {
        "as_of": at.isoformat(),
        "by": by,
        "customers": len(t),
        "active": int((t["last_at"] > at - pd.Timedelta(days=90)).sum()),
        "new": len(new),
        "new_by_period": [{"key": k, "new": int(v)} for k, v in by_period.items()],
        "repeat_customers": repeat,
        "repeat_rate": repeat / len(t) if len(t) else None,
        "lifetime_value": {"booked": _value(t["booked"]), "collected": _value(t["collected"])},
        "retention": retention,
        "rfm_segments": {name: int(segments.get(name, 0)) for name in SEGMENTS},
    }


def rfm(events: list[dict], *, as_of: Any, tz: str = "Asia/Shanghai",
        filters: dict | None = None, segment: str | None = None) -> list[dict[str, Any]]:
    """Every selected customer's RFM row (unpaged), by customer id."""
    t, _, at = _table(events, as_of, tz, filters)
    if segment is not None:
        t = t[t["segment"] == segment]
    return [{
        "customer": customer,
        "first_order_at": row["first_at"],
        "last_order_at": row["last_at"],
        "recency_days": (at - row["last_at"]).total_seconds() / 86400,
        "frequency": int(row["frequency"]),
        "monetary": to_money(row["booked"]),
        "collected": to_money(row["collected"]),
        "r": int(row["r"]), "f": int(row["f"]), "m": int(row["m"]),
        "segment": row["segment"],
    } for customer, row in t.iterrows()]
