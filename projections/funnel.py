"""The funnel: per open stage, how many deals entered, advanced, and how long they dwelt."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from itertools import pairwise
from typing import Any

from projections.snapshot import Deal, Filters, Snapshot
from projections.stats import days_between, median, money, quantile, ratio


def stage_dwell_days(deal: Deal, stage: str) -> float | None:
    """Total days `deal` spent in `stage` over all visits, once it has left it; else None."""
    if stage not in (s for s, _ in deal.stages):
        return None
    if deal.status == "open" and deal.stages[-1][0] == stage:
        return None  # still there: its dwell is not finished
    total = 0.0
    for index, (name, entered_at) in enumerate(deal.stages):
        if name != stage:
            continue
        left_at = (deal.stages[index + 1][1] if index + 1 < len(deal.stages)
                   else deal.closed_at)
        assert left_at is not None
        total += days_between(entered_at, left_at)
    return total


def advanced_from(deal: Deal, stage: str, order: dict[str, int]) -> bool:
    """Whether, after first entering `stage`, the deal reached a later stage or was won."""
    names = [s for s, _ in deal.stages]
    first = names.index(stage)
    later = [order[s] for s in names[first + 1:] if s in order]
    return deal.status == "won" or any(i > order[stage] for i in later)


def funnel(snapshot: Snapshot, filters: Filters) -> dict[str, Any]:
    deals = snapshot.select_deals(filters)
    order = {stage: i for i, stage in enumerate(snapshot.stages)}
    rows = []
    for stage in snapshot.stages:
        open_here = [d for d in deals if d.status == "open" and d.stages[-1][0] == stage]
        entered = [d for d in deals if any(s == stage for s, _ in d.stages)]
        advanced = [d for d in entered if advanced_from(d, stage, order)]
        dwell = [x for d in entered if (x := stage_dwell_days(d, stage)) is not None]
        rows.append({
            "stage": stage,
            "open_deals": len(open_here),
            "open_amount": money(sum((d.amount for d in open_here), Decimal(0))),
            "entered": len(entered),
            "advanced": len(advanced),
            "conversion": ratio(len(advanced), len(entered)),
            "dwell_days_median": median(dwell),
            "dwell_days_p90": quantile(dwell, 0.9),
        })
    won = [d for d in deals if d.status == "won"]
    lost = sum(1 for d in deals if d.status == "lost")
    return {
        "stages": rows,
        "won": len(won),
        "lost": lost,
        "won_value": money(sum((d.amount for d in won), Decimal(0))),
        "win_rate": ratio(len(won), len(won) + lost),
        **losses_and_moves(deals, order),
    }


def losses_and_moves(deals: list[Deal], order: dict[str, int]) -> dict[str, Any]:
    """Why lost deals were lost and to whom; stage moves that skipped or went back.

    A move is a `deal.stage_changed` between two pipeline stages (creation and the close
    are not moves); a skip jumps over at least one stage, a regression goes to an earlier
    one. Lost deals without a reason count as "unspecified"; without a competitor, nowhere.
    """
    lost = [d for d in deals if d.status == "lost"]
    reasons = Counter(d.record.get("lost_reason") or "unspecified" for d in lost)
    competitors = Counter(c for d in lost if (c := d.record.get("competitor")))
    steps = [order[b] - order[a] for d in deals
             for (a, _), (b, _) in pairwise(d.stages) if a in order and b in order]
    return {
        "loss_reasons": dict(sorted(reasons.items())),
        "competitors": dict(sorted(competitors.items())),
        "stage_skips": sum(1 for step in steps if step > 1),
        "regressions": sum(1 for step in steps if step < 0),
    }
