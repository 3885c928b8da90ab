"""Independent oracle for `GET /v1/leaderboard` (docs/METRICS.md, "Score and leaderboard").

pandas over the raw events; imports no service code (only the entity helpers of the
independent funnel/breakdown oracle, `tests/oracle.py`). Ranks use pandas'
`rank(method="min")` (competition ranking).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd

from tests.oracle import _entities, _of_type, _raw, _rep_at, _rep_history, _ts

STAGES = ["prospecting", "qualification", "proposal", "negotiation"]
DEFAULT = {"results": 60.0, "process": 30.0, "customer": 10.0}


def _share(values: pd.Series) -> pd.Series:
    as_float = values.map(float)
    best = as_float.max()
    return as_float / best * 100 if best else as_float * 0.0


def leaderboard(events: list[dict], *, as_of: str, start: str | None = None,
                end: str | None = None, tz: str = "Asia/Shanghai") -> dict[str, Any]:
    """Scores over [start, end) (ISO moments; None = unbounded), by `as_of`."""
    when = _ts(as_of, tz)
    lo = _ts(start, tz) if start else None
    hi = _ts(end, tz) if end else None
    closes = min(when, hi) if hi is not None else when

    def within(times: pd.Series) -> pd.Series:
        keep = times.notna() & (times <= when)
        if lo is not None:
            keep &= times >= lo
        if hi is not None:
            keep &= times < hi
        return keep

    raw = _raw(events, tz)
    ent = _entities(events, STAGES, tz)
    deals, acts = ent["deals"], ent["activities"]
    history = _rep_history(raw)
    joined = history.groupby("rep_id")["at"].min()
    reps = pd.DataFrame(index=pd.Index(sorted(joined[joined <= closes].index), name="rep"))
    reps[["team", "manager", "region"]] = _rep_at(
        history, pd.Series(reps.index, index=reps.index, dtype=object),
        pd.Series(closes, index=reps.index)).to_numpy()

    won = deals[(deals["status"] == "won") & within(deals["closed_at"])]
    reps["won_value"] = [sum(won.loc[won["rep"] == r, "amount"], Decimal(0)) for r in reps.index]
    reps["activities"] = acts[within(acts["at"])].groupby("rep").size().reindex(
        reps.index, fill_value=0)

    # follow-up: deals open at the close, touched in the 14 days before it
    open_then = deals[(deals["created_at"] <= closes) & ~(deals["closed_at"] <= closes)]
    deal_acts = acts[acts["deal_id"].notna()]
    recent = deal_acts[(deal_acts["at"] > closes - pd.Timedelta(days=14))
                       & (deal_acts["at"] <= closes)]
    touched = open_then.index.isin(set(recent["deal_id"]))
    reps["open_deals"] = open_then.groupby("rep").size().reindex(reps.index, fill_value=0)
    reps["followed_up"] = open_then[touched].groupby("rep").size().reindex(
        reps.index, fill_value=0)

    # collections on orders of the rep's deals; repeat customers
    orders = _of_type(raw, "order.booked", ["order_id", "customer_id", "deal_id"])
    orders = orders.sort_values("seq").drop_duplicates("order_id").set_index("order_id")
    orders["rep"] = orders["deal_id"].map(lambda d: deals["rep"].get(d) if d else None)
    pays = _of_type(raw, "payment.received", ["order_id", "amount"])
    pays = pays[within(pays["at"]) & pays["order_id"].isin(orders.index)].copy()
    pays["rep"] = pays["order_id"].map(orders["rep"])
    reps["collected"] = [sum(pays.loc[pays["rep"] == r, "amount"].map(Decimal), Decimal(0))
                         for r in reps.index]
    booked = orders[orders["at"] <= closes].groupby("customer_id").size()
    won_customers = won.dropna(subset=["customer_id"]).groupby("rep")["customer_id"].agg(set)
    reps["customers"] = [len(won_customers.get(r, set())) for r in reps.index]
    reps["repeat_customers"] = [sum(1 for c in won_customers.get(r, set()) if booked.get(c, 0) >= 2)
                                for r in reps.index]

    fu = reps["followed_up"] / reps["open_deals"].where(reps["open_deals"] > 0)
    rr = reps["repeat_customers"] / reps["customers"].where(reps["customers"] > 0)
    reps["results"] = _share(reps["won_value"])
    reps["process"] = pd.concat([_share(reps["activities"]), fu * 100], axis=1).mean(axis=1)
    reps["customer"] = pd.concat([_share(reps["collected"]), rr * 100], axis=1).mean(axis=1)

    weights = DEFAULT
    for e in events:  # the latest scoring.configured wins
        if e["type"] == "scoring.configured":
            w = {k: float(v) for k, v in e["data"]["weights"].items()}
            weights = {k: v * 100 / sum(w.values()) for k, v in w.items()}
    reps["score"] = sum(reps[k] * weights[k] for k in weights) / 100
    reps["rank_company"] = reps["score"].rank(method="min", ascending=False).astype(int)
    reps["team_key"] = reps["team"].fillna("\0none")
    reps["rank_team"] = reps.groupby("team_key")["score"].rank(
        method="min", ascending=False).astype(int)
    averages = reps.groupby("team_key")[["score", "results", "process", "customer"]].mean()
    reps["team_size"] = reps.groupby("team_key")["score"].transform("size")

    rows = []
    for rep, r in reps.sort_values(["rank_company"]).iterrows():
        avg = averages.loc[r["team_key"]]
        rows.append({
            "rep": rep, "team": r["team"], "score": float(r["score"]),
            "components": {k: float(r[k]) for k in ("results", "process", "customer")},
            "won_value": r["won_value"], "activities": int(r["activities"]),
            "open_deals": int(r["open_deals"]), "followed_up": int(r["followed_up"]),
            "collected": r["collected"], "customers": int(r["customers"]),
            "repeat_customers": int(r["repeat_customers"]),
            "rank_company": int(r["rank_company"]), "rank_team": int(r["rank_team"]),
            "team_size": int(r["team_size"]),
            "team_average": {k: float(avg[k]) for k in ("score", "results", "process",
                                                        "customer")},
        })
    rows.sort(key=lambda row: (row["rank_company"], row["rep"]))
    return {"weights": weights, "rows": rows}
