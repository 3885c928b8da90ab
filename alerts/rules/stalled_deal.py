"""An open deal in one stage for longer than the stage's threshold."""

from __future__ import annotations

from datetime import datetime

from alerts.rules.context import Context
from alerts.rules.settings import Assessment, fmt_days, span_of_days
from events.vocabulary import ts
from projections.stats import days_between


def stalled_deal(ctx: Context, key: str, now: datetime) -> Assessment:
    deal = ctx.at("deal", key, now)
    if deal is None or deal["status"] != "open":
        return Assessment("stalled_deal", key, None)
    stage, entered = deal["stages"][-1][0], ts(deal["stages"][-1][1])
    threshold, basis = ctx.thresholds_at(now).get(stage, (ctx.settings.stall_days, "default"))
    in_stage = max(days_between(entered, now), 0.0)
    severity = "high" if ctx.is_key_customer(deal.get("customer")) else "medium"
    return Assessment(
        "stalled_deal", key, entered + span_of_days(threshold), None,
        f"in {stage} {fmt_days(in_stage)} days; threshold {fmt_days(threshold)} ({basis})",
        severity, deal["owner"],
        {"stage": stage, "entered_at": entered.isoformat(), "days_in_stage": in_stage,
         "threshold_days": threshold, "customer": deal.get("customer"),
         "amount": deal.get("amount")})

