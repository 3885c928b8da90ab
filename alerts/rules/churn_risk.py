"""A customer whose gap since the last order outgrows its typical gap."""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime

from alerts.rules.context import Context
from alerts.rules.settings import Assessment, fmt_days, span_of_days
from projections.stats import days_between, median


def churn_risk(ctx: Context, key: str, now: datetime) -> Assessment:
    booked = ctx.booked(key)
    if not ctx.current(now):
        booked = booked[:bisect_right(booked, now)]
    s = ctx.settings
    if len(booked) < s.churn_min_orders:
        return Assessment("churn_risk", key, None)
    typical = median([days_between(a, b) for a, b in zip(booked, booked[1:], strict=False)])
    assert typical is not None
    since_last = max(days_between(booked[-1], now), 0.0)
    key_customer = ctx.is_key_customer(key)
    return Assessment(
        "churn_risk", key, booked[-1] + span_of_days(s.churn_gap_factor * typical), None,
        f"no order for {fmt_days(since_last)} days; typical gap {fmt_days(typical)} days "
        f"x {s.churn_gap_factor:g}", "high" if key_customer else "medium",
        ctx.account_owner(key),
        {"last_order_at": booked[-1].isoformat(), "typical_gap_days": typical,
         "orders": len(booked), "key_customer": key_customer})

