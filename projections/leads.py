"""Leads: how many came in, how many were worth it, how fast they were answered.

Definitions (docs/METRICS.md, "GET /v1/leads"):

- A lead's *decision* is its current status: `qualified` counts converted leads too
  (a lead converted without an explicit `lead.qualified` was evidently valid);
  `disqualified` is a lead whose latest decision was `lead.disqualified`.
  `valid_lead_rate` = qualified / (qualified + disqualified).
- First response: the first `activity.logged` on the lead, measured from the clock start =
  the latest of its creation and its `lead.assigned` events at or before that activity.
- At `as_of`, only leads created by then count for responses; an activity after `as_of` is
  not a response yet. The SLA share counts answered leads (inside when hours <= SLA) plus
  leads still awaiting contact whose SLA ran out (outside); leads awaiting but still inside
  the SLA, and leads closed (disqualified / converted) by `as_of` without contact, are left
  out. `uncontacted` = leads awaiting contact at `as_of`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from events.vocabulary import DIMENSIONS, ts
from projections.snapshot import ALL_PERIODS, Filters, Lead, Snapshot
from projections.stats import days_between, mean, median, quantile, ratio

GROUPINGS = DIMENSIONS + ALL_PERIODS
DEFAULT_SLA_HOURS = 24.0


@dataclass(frozen=True)
class Response:
    """Where one lead stands on first response at `as_of`."""

    hours: float | None  # answered: hours from clock start to first activity
    overdue: bool  # awaiting contact past the SLA
    awaiting: bool  # no contact yet and still open


def response_at(lead: Lead, as_of: datetime, sla_hours: float) -> Response | None:
    """The lead's first-response standing at `as_of`; None when it did not exist yet."""
    if lead.created_at > as_of:
        return None
    rec = lead.record
    contacts = [ts(a[0]) for a in rec.get("activities", ()) if ts(a[0]) <= as_of]
    until = min(contacts) if contacts else as_of
    assigned = [t for t in map(ts, rec.get("assignments", ())) if t <= until]
    start = max([lead.created_at, *assigned])
    if contacts:
        return Response((until - start).total_seconds() / 3600, False, False)
    if _closed_by(lead, as_of):
        return Response(None, False, False)
    return Response(None, until - start > timedelta(hours=sla_hours), True)


def _closed_by(lead: Lead, as_of: datetime) -> bool:
    rec = lead.record
    converted = rec.get("converted_at")
    if converted and ts(converted) <= as_of:
        return True
    decided = rec.get("decided_at")
    return rec.get("status") == "disqualified" and decided is not None and ts(decided) <= as_of


def _keyer(snapshot: Snapshot, by: str) -> Callable[[Lead], str | None]:
    if by in ALL_PERIODS:
        return lambda lead: snapshot.period_key(lead.created_at, by)
    return lambda lead: lead.dims[by]


def leads(snapshot: Snapshot, filters: Filters, by: str, as_of: datetime,
          sla_hours: float = DEFAULT_SLA_HOURS) -> dict[str, Any]:
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}")
    key = _keyer(snapshot, by)
    selected = snapshot.select_leads(filters)
    groups: dict[str | None, list[Lead]] = defaultdict(list)
    for lead in selected:
        groups[key(lead)].append(lead)
    ordered = sorted(k for k in groups if k is not None) + ([None] if None in groups else [])
    return {
        "by": by,
        "as_of": as_of.isoformat(),
        "sla_hours": sla_hours,
        "rows": [{"key": k, **_figures(groups[k], as_of, sla_hours)} for k in ordered],
        "total": _figures(selected, as_of, sla_hours),
    }


def _figures(group: list[Lead], as_of: datetime, sla_hours: float) -> dict[str, Any]:
    status = [lead.record.get("status") for lead in group]
    qualified = sum(1 for s in status if s in ("qualified", "converted"))
    disqualified = sum(1 for s in status if s == "disqualified")
    converted = [lead for lead in group if lead.converted]
    cycle = [days_between(lead.created_at, ts(lead.record["converted_at"])) for lead in converted]
    standing = [r for lead in group if (r := response_at(lead, as_of, sla_hours)) is not None]
    hours = [r.hours for r in standing if r.hours is not None]
    inside = sum(1 for h in hours if h <= sla_hours)
    overdue = sum(1 for r in standing if r.overdue)
    return {
        "new": len(group),
        "qualified": qualified,
        "disqualified": disqualified,
        "valid_lead_rate": ratio(qualified, qualified + disqualified),
        "converted": len(converted),
        "lead_conversion": ratio(len(converted), len(group)),
        "lead_to_deal_days_mean": mean(cycle),
        "lead_to_deal_days_median": median(cycle),
        "answered": len(hours),
        "first_response_hours_median": median(hours),
        "first_response_hours_p90": quantile(hours, 0.9),
        "within_sla": ratio(inside, len(hours) + overdue),
        "uncontacted": sum(1 for r in standing if r.awaiting),
    }
