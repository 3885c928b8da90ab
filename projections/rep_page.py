"""One rep's page: their breakdown figures beside their team's average per rep, their
activity by kind and by day, and their score and ranks."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from projections.breakdown import _row
from projections.scores import Window, leaderboard
from projections.snapshot import Filters, Snapshot
from projections.stats import CENT, mean

AMOUNTS = ("won_value", "avg_won_value")


class UnknownRep(LookupError):
    """No `rep.joined` names this rep."""


def figures(snapshot: Snapshot, filters: Filters, rep: str) -> dict[str, Any]:
    """The rep's breakdown row (docs/METRICS.md) over what `filters` select."""
    only = replace(filters, dims={**filters.dims, "rep": rep})
    deals = snapshot.select_deals(only)
    leads = snapshot.select_leads(only)
    row = _row(rep, deals, leads, len(snapshot.select_activities(only)))
    row.pop("key")
    return row


def team_average(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure averaged over the team's reps (a rep with no value for a rate is skipped);
    amounts as decimal strings rounded half-even to cents."""
    out: dict[str, Any] = {}
    for name in rows[0]:
        values = [r[name] for r in rows if r[name] is not None]
        if name in AMOUNTS:
            total = sum((Decimal(v) for v in values), Decimal(0))
            out[name] = (str((total / len(values)).quantize(CENT, rounding=ROUND_HALF_EVEN))
                         if values else None)
        else:
            out[name] = mean(values)
    return out


def rep_page(snapshot: Snapshot, filters: Filters, window: Window, rep: str) -> dict[str, Any]:
    if rep not in snapshot.records.get("rep", {}):
        raise UnknownRep(rep)
    board = leaderboard(snapshot, window)["rows"]
    standing = next((r for r in board if r["rep"] == rep), None)
    team = snapshot.rep_at(rep, window.closes)["team"]
    mates = [r["rep"] for r in board if r["team"] == team] or [rep]
    activities = snapshot.select_activities(replace(filters, dims={**filters.dims, "rep": rep}))
    return {
        "rep": rep,
        "name": snapshot.records["rep"][rep].get("name"),
        **snapshot.rep_at(rep, window.closes),
        "figures": figures(snapshot, filters, rep),
        "team_reps": len(mates),
        "team_average": team_average([figures(snapshot, filters, m) for m in mates]),
        "activities_by_kind": dict(sorted(Counter(a.kind for a in activities).items())),
        "activities_by_day": dict(sorted(Counter(
            snapshot.local_day(a.at).isoformat() for a in activities).items())),
        "score": standing["score"] if standing else None,
        "components": standing["components"] if standing else None,
        "rank_team": standing["rank_team"] if standing else None,
        "rank_company": standing["rank_company"] if standing else None,
        "team_average_score": standing["team_average"]["score"] if standing else None,
    }
