"""A rep's or team's target whose run-rate projects below the floor."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from alerts.rules.context import Context
from alerts.rules.periods import period_bounds
from alerts.rules.settings import PACE_METRICS, Assessment
from projections.facts import Record


def pace_actual(ctx: Context, target: Record, start: datetime, now: datetime) -> Decimal:
    """The target's metric achieved in [start, now]; activities by `rep_id`, won deals by
    owner, each in the team the rep belonged to at that moment."""
    scope, scope_id, metric = target["scope"], target.get("scope_id") or "", target["metric"]
    spans = [(scope_id, None, None)] if scope == "rep" else ctx.members(scope_id)
    total = Decimal(0)
    start, now = start.astimezone(UTC), now.astimezone(UTC)
    for rep, begin, stop in spans:
        low = max(start, begin) if begin else start
        if metric == "activities":
            times = ctx.activity_times.get(rep, [])
            i, j = bisect_left(times, low), bisect_right(times, now)
            if stop is not None:
                j = min(j, bisect_left(times, stop))
            total += max(j - i, 0)
            continue
        won = ctx.won_by_rep().get(rep)
        if won is None:
            continue
        i, j = bisect_left(won.closed, low), bisect_right(won.closed, now)
        if stop is not None:
            j = min(j, bisect_left(won.closed, stop))
        if metric == "won_value":
            total = sum(won.amounts[i:j], total)  # exact: the same sum in any order
        else:
            total += max(j - i, 0)
    return total


def pace(ctx: Context, key: str, now: datetime) -> Assessment:
    target = ctx.at("target", key, now)
    s = ctx.settings
    if target is None or target["scope"] not in ("rep", "team") or (
            target["metric"] not in PACE_METRICS):
        return Assessment("pace", key, None)
    start, end = period_bounds(target["period"], ctx.tz)
    value = Decimal(target["value"])
    if now >= end or value <= 0:
        return Assessment("pace", key, None)
    actual = pace_actual(ctx, target, start, now)
    length = (end - start).total_seconds()
    floor = Decimal(str(s.pace_floor)) * value
    # projected = actual * length / elapsed < floor  <=>  elapsed > actual * length / floor;
    # at or past the floor already, never within the period (and a far-off crossing, such as
    # a target set in the wrong unit, would overflow a datetime).
    crossing = start + timedelta(seconds=float(actual / floor) * length) \
        if actual < floor else end
    since = max(start + timedelta(seconds=length * s.pace_from), crossing)
    elapsed = max((now - start).total_seconds(), 1.0)
    projected = actual * Decimal(length) / Decimal(elapsed)
    owner = target.get("scope_id") if target["scope"] == "rep" else None
    share = float(projected / value)
    return Assessment(
        "pace", key, since if since < end else None, end,
        f"{target['metric']} {actual} of {value} for {target['period']}; projected "
        f"{share:.0%} at the current run-rate; floor {s.pace_floor:.0%}",
        "high" if share < s.pace_floor / 2 else "medium", owner,
        {"scope": target["scope"], "scope_id": target.get("scope_id"),
         "period": target["period"], "metric": target["metric"], "actual": str(actual),
         "target": str(value), "projected_share": share})

