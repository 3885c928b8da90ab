"""Process: how much selling effort went where, and which open deals are going quiet.

Definitions (docs/METRICS.md, "GET /v1/activities"):

- Activities are those the filters select (`occurred_at` in from/to, their own dimensions).
- Per deal: every activity logged on the selected deals (any rep, any time) / selected deals.
- Talk and visit time: the sum of `duration_min` of the selected calls and visits.
- Quotes: every `quote.sent` on the selected deals, count and value.
- Cadence: selected deals open at `as_of` (created by then, not closed by then); days since
  their last activity at or before `as_of`; deals without one are "never touched". Buckets
  are on completed days: 0–7, 8–14, 15–30, >30.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from events.vocabulary import ts
from projections.snapshot import Deal, Filters, Snapshot
from projections.stats import days_between, median, money, quantile, ratio

CADENCE_BUCKETS = ((0, 7, "0-7"), (8, 14, "8-14"), (15, 30, "15-30"), (31, None, ">30"))


def open_at(deal: Deal, as_of: datetime) -> bool:
    """Open at `as_of`: created by then and not (yet) won or lost."""
    return deal.created_at <= as_of and (deal.closed_at is None or deal.closed_at > as_of)


def buckets(days: Iterable[float],
            bounds: Sequence[tuple[int, int | None, str]]) -> dict[str, int]:
    """Counts per bucket of completed days (7.9 days is in 0–7; 8.0 is in 8–14)."""
    counts = {label: 0 for _, _, label in bounds}
    for value in days:
        whole = int(value // 1)
        for low, high, label in bounds:
            if whole >= low and (high is None or whole <= high):
                counts[label] += 1
                break
    return counts


def _minutes(values: Iterable[Decimal | None]) -> str:
    return money(sum((v for v in values if v is not None), Decimal(0)))


def activities(snapshot: Snapshot, filters: Filters, as_of: datetime) -> dict[str, Any]:
    selected = snapshot.select_activities(filters)
    per_rep: dict[str, Counter[str]] = defaultdict(Counter)
    for activity in selected:
        per_rep[activity.rep][activity.kind] += 1
    deals = snapshot.select_deals(filters)
    on_deals = sum(len(d.record.get("activities", ())) for d in deals)
    return {
        "as_of": as_of.isoformat(),
        "activities": len(selected),
        "by_kind": dict(sorted(Counter(a.kind for a in selected).items())),
        "reps": [{"rep": rep, "activities": sum(kinds.values()),
                  "by_kind": dict(sorted(kinds.items()))}
                 for rep, kinds in sorted(per_rep.items())],
        "deals": len(deals),
        "activities_on_deals": on_deals,
        "activities_per_deal": ratio(on_deals, len(deals)),
        "talk_minutes": _minutes(a.duration_min for a in selected if a.kind == "call"),
        "visit_minutes": _minutes(a.duration_min for a in selected if a.kind == "visit"),
        "quotes_sent": sum(int(d.record.get("quotes", 0)) for d in deals),
        "quoted_value": money(sum((Decimal(d.record.get("quoted_value") or 0) for d in deals),
                                  Decimal(0))),
        "cadence": cadence(deals, as_of),
    }


def cadence(deals: Iterable[Deal], as_of: datetime) -> dict[str, Any]:
    """Days since the last activity of each deal open at `as_of`."""
    quiet: list[float] = []
    never = 0
    for deal in deals:
        if not open_at(deal, as_of):
            continue
        touched = [t for a in deal.record.get("activities", ()) if (t := ts(a[0])) <= as_of]
        if touched:
            quiet.append(days_between(max(touched), as_of))
        else:
            never += 1
    return {
        "open_deals": len(quiet) + never,
        "never_touched": never,
        "days_since_activity_median": median(quiet),
        "days_since_activity_p90": quantile(quiet, 0.9),
        "buckets": buckets(quiet, CADENCE_BUCKETS),
    }
