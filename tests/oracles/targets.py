"""Independent oracle for `GET /v1/targets` (docs/METRICS.md, "Targets").

pandas over the raw events; imports no service code (only the entity helpers of the
funnel/breakdown oracle, `tests/oracle.py`, which is itself independent).

Period bounds are computed with pandas offsets in the tenant's zone; actuals are
grouped with `dt.strftime` / `dt.quarter` period keys; elapsed time is measured in
nanoseconds of real time.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pandas as pd

from tests.oracle import _entities, _of_type, _raw, _rep_at, _rep_history, _ts

AMOUNT_METRICS = {"won_value", "collected"}
SCOPE_ORDER = {"company": 0, "team": 1, "rep": 2}
CENT = Decimal("0.01")
STAGES = ["prospecting", "qualification", "proposal", "negotiation"]


def period_bounds(period: str, tz: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    year = int(period[:4])
    if len(period) == 4:
        start, months = pd.Timestamp(year=year, month=1, day=1), 12
    elif "Q" in period:
        start, months = pd.Timestamp(year=year, month=3 * int(period[-1]) - 2, day=1), 3
    else:
        start, months = pd.Timestamp(year=year, month=int(period[5:]), day=1), 1
    return start.tz_localize(tz), (start + pd.DateOffset(months=months)).tz_localize(tz)


def _keys(times: pd.Series, tz: str) -> pd.DataFrame:
    local = times.dt.tz_convert(tz)
    return pd.DataFrame({
        "month": local.dt.strftime("%Y-%m"),
        "quarter": local.dt.year.astype(str) + "-Q" + local.dt.quarter.astype(str),
        "year": local.dt.year.astype(str),
    }, index=times.index)


def occurrences(events: list[dict], tz: str, as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per thing that counts: metric, at, value (Decimal), rep, team."""
    ent = _entities(events, STAGES, tz)
    raw = _raw(events, tz)
    deals, leads, acts = ent["deals"], ent["leads"], ent["activities"]
    won = deals[deals["status"] == "won"]
    parts = [
        pd.DataFrame({"metric": "won_value", "at": won["closed_at"], "value": won["amount"],
                      "rep": won["rep"], "team": won["team"]}),
        pd.DataFrame({"metric": "won_deals", "at": won["closed_at"], "value": Decimal(1),
                      "rep": won["rep"], "team": won["team"]}),
        pd.DataFrame({"metric": "new_leads", "at": leads["created_at"], "value": Decimal(1),
                      "rep": leads["rep"], "team": leads["team"]}),
        pd.DataFrame({"metric": "activities", "at": acts["at"], "value": Decimal(1),
                      "rep": acts["rep"], "team": acts["team"]}),
    ]
    # collections: each payment, through its order (rep = its deal's owner, team at booking)
    orders = _of_type(raw, "order.booked", ["order_id", "deal_id"])
    orders = orders.sort_values("seq").drop_duplicates("order_id").set_index("order_id")
    orders["rep"] = orders["deal_id"].map(
        lambda d: deals["rep"].get(d) if d else None).astype(object)
    orders["team"] = _rep_at(_rep_history(raw), orders["rep"], orders["at"])["team_id"]
    pays = _of_type(raw, "payment.received", ["order_id", "amount"])
    pays = pays[pays["order_id"].isin(orders.index)]
    parts.append(pd.DataFrame({
        "metric": "collected", "at": pays["at"], "value": pays["amount"].map(Decimal),
        "rep": pays["order_id"].map(orders["rep"]), "team": pays["order_id"].map(orders["team"]),
    }))
    frame = pd.concat(parts, ignore_index=True)
    frame = frame[frame["at"] <= as_of]
    return pd.concat([frame, _keys(frame["at"], tz)], axis=1)


def target_table(events: list[dict], tz: str) -> pd.DataFrame:
    """Set targets (latest per key) plus team and company roll-ups, `derived` marked."""
    raw = _raw(events, tz)
    t = _of_type(raw, "target.set", ["scope", "scope_id", "period", "metric", "value"])
    t.loc[t["scope"] == "company", "scope_id"] = None
    t["sid"] = t["scope_id"].fillna("")
    t = t.sort_values("seq").drop_duplicates(["scope", "sid", "period", "metric"], keep="last")
    t["target"] = t["value"].map(lambda v: Decimal(str(v)))
    t["derived"] = False
    direct = t[["scope", "scope_id", "period", "metric", "target", "derived"]]

    def missing(rows: pd.DataFrame) -> pd.DataFrame:
        have = set(zip(direct["scope"], direct["scope_id"].fillna(""), direct["period"],
                       direct["metric"], strict=True))
        mask = [k not in have for k in zip(rows["scope"], rows["scope_id"].fillna(""),
                                           rows["period"], rows["metric"], strict=True)]
        return rows[mask]

    reps = direct[direct["scope"] == "rep"].copy()
    starts = pd.Series([period_bounds(p, tz)[0] for p in reps["period"]], index=reps.index)
    reps["team"] = _rep_at(_rep_history(raw), reps["scope_id"].astype(object),
                           starts)["team_id"]
    teams = (reps.dropna(subset=["team"]).groupby(["team", "period", "metric"])["target"]
             .agg(lambda v: sum(v, Decimal(0))).reset_index()
             .rename(columns={"team": "scope_id"}).assign(scope="team", derived=True))
    teams = missing(teams)
    all_teams = pd.concat([direct[direct["scope"] == "team"], teams], ignore_index=True)
    company = (all_teams.groupby(["period", "metric"])["target"]
               .agg(lambda v: sum(v, Decimal(0))).reset_index()
               .assign(scope="company", scope_id=None, derived=True))
    company = missing(company)
    table = pd.concat([direct, teams, company], ignore_index=True)
    # a rep row's team for the `team` filter: the rep's team at the period's start
    rep_team = {(r, p): tm for r, p, tm in zip(reps["scope_id"], reps["period"], reps["team"],
                                               strict=True)}
    table["team_at_start"] = [rep_team.get((s, p)) if sc == "rep" else None for sc, s, p in
                              zip(table["scope"], table["scope_id"], table["period"], strict=True)]
    return table


def _cents(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_EVEN))


def targets(events: list[dict], as_of: str, *, tz: str = "Asia/Shanghai",
            filters: dict[str, str] | None = None) -> dict[str, Any]:
    """`GET /v1/targets` recomputed from the raw events."""
    when = _ts(as_of, tz)
    f = filters or {}
    table = target_table(events, tz)
    occ = occurrences(events, tz, when)
    rows = []
    for row in table.itertuples(index=False):
        start, end = period_bounds(row.period, tz)
        if f.get("scope") and row.scope != f["scope"]:
            continue
        if f.get("metric") and row.metric != f["metric"]:
            continue
        if f.get("period"):
            w_start, w_end = period_bounds(f["period"], tz)
            if not (w_start <= start and end <= w_end):
                continue
        if f.get("rep") and not (row.scope == "rep" and row.scope_id == f["rep"]):
            continue
        if f.get("team") and not ((row.scope == "team" and row.scope_id == f["team"]) or (
                row.scope == "rep" and row.team_at_start == f["team"])):
            continue
        by = "year" if len(row.period) == 4 else "quarter" if "Q" in row.period else "month"
        mine = occ[(occ["metric"] == row.metric) & (occ[by] == row.period)]
        if row.scope != "company":
            mine = mine[mine[row.scope] == row.scope_id]
        actual = sum(mine["value"], Decimal(0))
        total = (end - start).value
        elapsed = (min(max(when, start), end) - start).value
        standing = "not_begun" if elapsed == 0 else "over" if elapsed == total else "under_way"
        if f.get("standing") and standing != f["standing"]:
            continue
        target = row.target
        expected = target * Decimal(elapsed) / Decimal(total)
        pace = None if elapsed == 0 else actual if elapsed == total else \
            actual * Decimal(total) / Decimal(elapsed)
        money = row.metric in AMOUNT_METRICS
        rows.append({
            "scope": row.scope, "scope_id": row.scope_id, "period": row.period,
            "metric": row.metric, "target": target, "derived": bool(row.derived),
            "actual": actual if money else int(actual),
            "attainment": float(actual) / float(target) if target else None,
            "elapsed_share": elapsed / total,
            "expected_at_as_of": _cents(expected) if money else float(expected),
            "pace": None if pace is None else _cents(pace) if money else float(pace),
            "pace_attainment": None if pace is None or not target
            else float(pace) / float(target),
            "on_pace": None if elapsed == 0 else bool(actual >= expected),
            "_order": (start, -end.value, row.metric, SCOPE_ORDER[row.scope], row.scope_id or ""),
        })
    rows.sort(key=lambda r: r["_order"])
    return {"targets": [{k: v for k, v in r.items() if k != "_order"} for r in rows]}
