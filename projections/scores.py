"""The rep score and leaderboard: results, process and customer, weighted per tenant.

Pure: reads a `Snapshot`, a time window and the moment `as_of`. Definitions are in
docs/METRICS.md ("Score and leaderboard"). Scores are always computed over every rep
of the company (the best rep sets the scale); filters only choose which rows to show.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from events.vocabulary import ts
from projections.facts import Record
from projections.snapshot import Snapshot
from projections.stats import mean, money, ratio

DEFAULT_WEIGHTS = {"results": Decimal(60), "process": Decimal(30), "customer": Decimal(10)}
COMPONENTS = ("results", "process", "customer")
FOLLOW_UP_DAYS = 14  # an open deal untouched for longer is not being followed up
ROW_DIMS = ("rep", "team", "manager", "region")


@dataclass(frozen=True)
class Window:
    """Events at `start <= t < end` that occurred by `as_of`; None = unbounded."""

    start: datetime | None
    end: datetime | None
    as_of: datetime

    @property
    def closes(self) -> datetime:
        """The moment the window is judged at: its end, or `as_of` if that is earlier."""
        return self.as_of if self.end is None else min(self.end, self.as_of)

    def settled(self) -> Window:
        """The same window judged at its end when `as_of` is past it: what it holds and
        its close are then the same whatever `as_of`, so one board serves every later
        moment (a past quarter's, asked again at each as_of step); only the `as_of` an
        answer names differs."""
        if self.end is not None and self.as_of > self.end:
            return Window(self.start, self.end, self.end)
        return self

    def holds(self, moment: datetime) -> bool:
        return (moment <= self.as_of and (self.start is None or moment >= self.start)
                and (self.end is None or moment < self.end))


def weights_of(snapshot: Snapshot) -> dict[str, Decimal]:
    """The tenant's weights (`PUT /v1/scoring`), else 60/30/10; scaled to sum to 100."""
    return weights_from(next(iter(snapshot.records.get("scoring", {}).values()), None))


def weights_from(record: Record | None) -> dict[str, Decimal]:
    """The weights of a scoring record (None: the default), scaled to sum to 100."""
    raw = {k: Decimal(v) for k, v in record["weights"].items()} if record else DEFAULT_WEIGHTS
    total = sum(raw.values(), Decimal(0))
    return {k: raw[k] * 100 / total for k in COMPONENTS}


def _share(value: Decimal | int, best: Decimal | int) -> float:
    return float(Decimal(value) / Decimal(best)) * 100 if best else 0.0


def _mean_of_defined(*parts: float | None) -> float:
    defined = [p for p in parts if p is not None]
    return sum(defined) / len(defined) if defined else 0.0


def rep_figures(snapshot: Snapshot, window: Window) -> dict[str, dict[str, Any]]:
    """The raw figures behind each rep's score, for every rep that had joined by the close."""
    closes = window.closes
    reps = {rid: r for rid, r in snapshot.records.get("rep", {}).items()
            if ts(r["history"][0][0]) <= closes}
    figures: dict[str, dict[str, Any]] = {rid: {
        "won_value": Decimal(0), "won_deals": 0, "activities": 0, "open_deals": 0,
        "followed_up": 0, "collected": Decimal(0), "customers": set()} for rid in reps}
    since = closes - timedelta(days=FOLLOW_UP_DAYS)
    for deal in snapshot.deals:
        mine = figures.get(deal.dims["rep"] or "")
        if mine is None:
            continue
        if deal.status == "won" and deal.closed_at and window.holds(deal.closed_at):
            mine["won_value"] += deal.amount
            mine["won_deals"] += 1
            if deal.record.get("customer"):
                mine["customers"].add(deal.record["customer"])
        if deal.created_at <= closes and (deal.closed_at is None or deal.closed_at > closes):
            mine["open_deals"] += 1
            if any(since < ts(a[0]) <= closes for a in deal.record.get("activities", ())):
                mine["followed_up"] += 1
    for activity in snapshot.activities:
        if activity.rep in figures and window.holds(activity.at):
            figures[activity.rep]["activities"] += 1
    orders_by_customer: dict[str, int] = defaultdict(int)
    for order in snapshot.orders:
        if order.booked_at <= closes:
            orders_by_customer[order.customer] += 1
        mine = figures.get(order.dims["rep"] or "")
        if mine is not None:
            mine["collected"] += sum((a for at, a in order.payments if window.holds(at)),
                                     Decimal(0))
    for rid, mine in figures.items():
        customers = mine.pop("customers")
        repeat = sum(1 for c in customers if orders_by_customer[c] >= 2)
        mine.update(customers=len(customers), repeat_customers=repeat,
                    repeat_rate=ratio(repeat, len(customers)),
                    follow_up_rate=ratio(mine["followed_up"], mine["open_deals"]),
                    **{"rep": rid, "name": reps[rid].get("name"),
                       **snapshot.rep_at(rid, closes)})
    return figures


def leaderboard(snapshot: Snapshot, window: Window,
                select: dict[str, str] | None = None) -> dict[str, Any]:
    """Every rep's components, score (0-100), rank in company and team, and team averages."""
    return board(rep_figures(snapshot, window), weights_of(snapshot), window, select)


def board(figures: dict[str, dict[str, Any]], weights: dict[str, Decimal], window: Window,
          select: dict[str, str] | None = None) -> dict[str, Any]:
    """The leaderboard of reps' raw figures (`rep_figures`), whatever computed them."""
    best = {k: max((f[k] for f in figures.values()), default=0)
            for k in ("won_value", "activities", "collected")}
    rows: list[dict[str, Any]] = []
    for f in figures.values():
        rate_fu, rate_rep = f["follow_up_rate"], f["repeat_rate"]
        components = {
            "results": _share(f["won_value"], best["won_value"]),
            "process": _mean_of_defined(_share(f["activities"], best["activities"]),
                                        None if rate_fu is None else 100 * rate_fu),
            "customer": _mean_of_defined(_share(f["collected"], best["collected"]),
                                         None if rate_rep is None else 100 * rate_rep),
        }
        score = sum(float(weights[k]) * components[k] for k in COMPONENTS) / 100
        rows.append({
            "rep": f["rep"], "name": f["name"], "team": f["team"], "manager": f["manager"],
            "region": f["region"], "score": score, "components": components,
            "figures": {"won_value": money(f["won_value"]), "won_deals": f["won_deals"],
                        "activities": f["activities"], "open_deals": f["open_deals"],
                        "followed_up": f["followed_up"], "follow_up_rate": rate_fu,
                        "collected": money(f["collected"]), "customers": f["customers"],
                        "repeat_customers": f["repeat_customers"], "repeat_rate": rate_rep},
        })
    _rank(rows, "rank_company", lambda row: None)
    _rank(rows, "rank_team", lambda row: row["team"])
    teams: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        teams[row["team"]].append(row)
    for row in rows:
        mates = teams[row["team"]]
        row["team_size"] = len(mates)
        row["team_average"] = {
            "score": mean([m["score"] for m in mates]),
            **{k: mean([m["components"][k] for m in mates]) for k in COMPONENTS}}
    rows.sort(key=lambda row: (row["rank_company"], row["rep"]))
    return board_answer(window, weights, rows, select)


def board_answer(window: Window, weights: dict[str, Decimal], ranked: list[dict[str, Any]],
                 select: dict[str, str] | None) -> dict[str, Any]:
    """The leaderboard's answer: the rows ranked, those `select` chooses."""
    shown = [r for r in ranked if all(r[k] == v for k, v in (select or {}).items())]
    return {
        "as_of": window.as_of.isoformat(),
        "from": window.start.isoformat() if window.start else None,
        "to": window.end.isoformat() if window.end else None,
        "weights": {k: float(v) for k, v in weights.items()},
        "rows": shown,
    }


def _rank(rows: list[dict[str, Any]], field: str, group: Any) -> None:
    """Competition ranking by score, highest first: equal scores share a rank (1, 2, 2, 4)."""
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[group(row)].append(row)
    for members in groups.values():
        scores = sorted(row["score"] for row in members)  # thousands of reps: no n² count
        for row in members:
            row[field] = 1 + len(scores) - bisect_right(scores, row["score"])
