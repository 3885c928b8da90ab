"""A lead not contacted within the SLA of its assignment (or creation)."""

from __future__ import annotations

from datetime import datetime, timedelta

from alerts.rules.context import Context
from alerts.rules.settings import Assessment
from events.vocabulary import ts


def lead_sla(ctx: Context, key: str, now: datetime) -> Assessment:
    lead = ctx.at("lead", key, now)
    if lead is None or lead.get("status", "open") != "open":
        return Assessment("lead_sla", key, None)  # qualified, disqualified or converted
    start = ts(lead.get("assigned_at") or lead["created_at"])
    if lead.get("last_activity_at") and ts(lead["last_activity_at"]) >= start:
        return Assessment("lead_sla", key, None)  # contacted
    hours = max((now - start).total_seconds() / 3600, 0.0)
    what = "assigned" if lead.get("assigned_at") else "created"
    return Assessment("lead_sla", key, start + timedelta(hours=ctx.settings.lead_sla_hours),
                      None, f"{what} {hours:.1f} h ago, not contacted; SLA "
                            f"{ctx.settings.lead_sla_hours:g} h", "medium", lead.get("owner"),
                      {"start": start.isoformat(), "hours": hours})

