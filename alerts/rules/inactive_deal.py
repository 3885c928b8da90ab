"""An open deal with no activity for too long and no next step still ahead."""

from __future__ import annotations

from datetime import datetime

from alerts.rules.context import Context
from alerts.rules.settings import Assessment, fmt_days, span_of_days
from events.vocabulary import ts
from projections.stats import days_between


def inactive_deal(ctx: Context, key: str, now: datetime) -> Assessment:
    deal = ctx.at("deal", key, now)
    if deal is None or deal["status"] != "open":
        return Assessment("inactive_deal", key, None)
    last = ts(deal.get("last_activity_at") or deal["created_at"])
    due = last + span_of_days(ctx.settings.inactive_days)
    next_step = ts(deal["next_step_due"]) if deal.get("next_step_due") else None
    if next_step is not None and next_step > due:
        due = next_step  # a planned next step: not stalled until it is overdue
    idle = max(days_between(last, now), 0.0)
    evidence = (f"no activity for {fmt_days(idle)} days; threshold "
                f"{fmt_days(ctx.settings.inactive_days)}")
    if next_step is not None and next_step > last:
        evidence += f"; next step due {next_step.isoformat()}"
    severity = "high" if ctx.is_key_customer(deal.get("customer")) else "medium"
    return Assessment("inactive_deal", key, due, None, evidence, severity, deal["owner"],
                      {"last_activity_at": last.isoformat(), "idle_days": idle,
                       "customer": deal.get("customer"), "amount": deal.get("amount")})

