"""One row per rep, team, region, source, product, segment, month or quarter."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from events.vocabulary import GROUPINGS, PERIODS
from projections.snapshot import Activity, Deal, Filters, Lead, Snapshot
from projections.stats import average_money, days_between, mean, median, money, ratio


def _keyers(snapshot: Snapshot, by: str) -> tuple[Callable[[Deal], str | None],
                                                   Callable[[Lead], str | None],
                                                   Callable[[Activity], str | None]]:
    if by in PERIODS:
        return (lambda d: snapshot.period_key(d.period_at, by),
                lambda lead: snapshot.period_key(lead.created_at, by),
                lambda a: snapshot.period_key(a.at, by))
    return (lambda d: d.dims[by], lambda lead: lead.dims[by], lambda a: a.dims[by])


def breakdown(snapshot: Snapshot, filters: Filters, by: str) -> dict[str, Any]:
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}")
    deal_key, lead_key, activity_key = _keyers(snapshot, by)
    deals: dict[str | None, list[Deal]] = defaultdict(list)
    leads: dict[str | None, list[Lead]] = defaultdict(list)
    activities: dict[str | None, int] = defaultdict(int)
    for deal in snapshot.select_deals(filters, by_period=by in PERIODS):
        deals[deal_key(deal)].append(deal)
    for lead in snapshot.select_leads(filters):
        leads[lead_key(lead)].append(lead)
    for activity in snapshot.select_activities(filters):
        activities[activity_key(activity)] += 1
    keys = set(deals) | set(leads) | set(activities)
    ordered = sorted(k for k in keys if k is not None) + ([None] if None in keys else [])
    return {"by": by, "rows": [_row(k, deals[k], leads[k], activities[k]) for k in ordered]}


def _row(key: str | None, deals: list[Deal], leads: list[Lead], activities: int) -> dict[str, Any]:
    won = [d for d in deals if d.status == "won"]
    lost = sum(1 for d in deals if d.status == "lost")
    won_value = sum((d.amount for d in won), Decimal(0))
    cycles = [days_between(d.created_at, d.closed_at) for d in won if d.closed_at]
    return {
        "key": key,
        "deals": len(deals),
        "open": sum(1 for d in deals if d.status == "open"),
        "won": len(won),
        "lost": lost,
        "win_rate": ratio(len(won), len(won) + lost),
        "won_value": money(won_value),
        "avg_won_value": average_money(won_value, len(won)),
        "cycle_days_mean": mean(cycles),
        "cycle_days_median": median(cycles),
        "activities": activities,
        "leads": len(leads),
        "lead_conversion": ratio(sum(1 for lead in leads if lead.converted), len(leads)),
    }
