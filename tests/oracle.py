"""Independent oracle for `GET /v1/funnel` and `GET /v1/breakdown`.

A second implementation of docs/METRICS.md, written the pandas way over the raw
event list, so that tests can compare it with the service's live projections.
It deliberately imports nothing from `projections/`, `services/` or `events/`:
a bug shared by both implementations would otherwise go unnoticed.

Amounts are `decimal.Decimal` in object columns so that sums are exact.

Choices where docs/METRICS.md leaves room (the service must follow the same):

- Duplicate event ids: the first occurrence counts, later ones are ignored.
  Entities created twice (same deal/lead/customer/activity id): the first wins.
- Events naming an unknown deal (or preceding its `deal.created`) are ignored.
- A deal's first `deal.won` / `deal.lost` closes it; later close events and
  `deal.stage_changed` after the close are ignored (the service should refuse
  them). `deal.amount_changed` / `deal.owner_changed` after the close still
  apply ("latest").
- Only the amount of the effective `deal.won` counts.
- `rep.moved` fields that are absent *or null* are kept from the previous entry.
  Entries of one rep with equal `occurred_at`: the one accepted last wins.
- A deal's lead is `deal.created.lead_id`, else the lead whose
  `lead.converted` names the deal. A lead's deal (for product / segment) is
  only the one named by its `lead.converted` (the first one).
- "Later in the pipeline" compares positions in `stages`; a stage not in
  `stages` is never later than anything, and is not a funnel row.
- Dwell: a deal "has left" a stage when it is not open and sitting in it now;
  a deal that left a stage and came back to it (still open there) is excluded
  from that stage's dwell altogether. A closed deal's last visit ends at
  `closed_at`. Per deal the seconds of all visits are summed, then / 86400.
- Activity dimensions follow the table literally: an activity on a lead has
  the lead's source but no product and no segment; an activity on a customer
  has that customer's segment but no source or product.
- `lead_conversion` counts leads converted at any time (not only within
  `from`/`to`); the deals/leads/activities linked to an entity need not be
  selected themselves to lend it a dimension.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pandas as pd

DIMENSIONS = ("rep", "team", "manager", "region", "source", "product", "segment")
PERIODS = ("month", "quarter")
FILTER_KEYS = ("from", "to", *DIMENSIONS)
REP_FIELDS = ["team_id", "manager_id", "region"]
CENT = Decimal("0.01")
ZERO = Decimal(0)


# --------------------------------------------------------------------------- helpers


def _ts(value: str | datetime, tz: str) -> pd.Timestamp:
    """`occurred_at` as a Timestamp in `tz`; a value without offset is local time in `tz`."""
    ts = pd.Timestamp(value)
    ts = ts.tz_localize(tz) if ts.tzinfo is None else ts.tz_convert(tz)
    return ts.as_unit("ns")


def _dec(value: Any) -> Decimal | None:
    if _missing(value):
        return None
    if isinstance(value, float):
        return Decimal(str(value))  # the shortest repr, not the binary expansion
    return Decimal(value) if isinstance(value, int | Decimal) else Decimal(str(value))


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str | Decimal) and bool(pd.isna(value)))


def _py(value: Any) -> Any:
    """NaN/NA -> None, so results compare cleanly with JSON."""
    return None if _missing(value) else value


def _days(delta: pd.Series) -> pd.Series:
    return delta.dt.total_seconds() / 86400


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def _stat(values: pd.Series, how: str) -> float | None:
    values = values.dropna()
    if values.empty:
        return None
    if how == "median":
        return float(values.median())
    if how == "p90":
        return float(values.quantile(0.9))  # linear interpolation, the pandas default
    return float(values.mean())


def _as_date(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(value)


def _first_by(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """One row per `key` (first accepted), missing keys dropped."""
    return frame.dropna(subset=[key]).sort_values("seq").drop_duplicates(key, keep="first")


def _last_value(parts: Iterable[pd.DataFrame], key: str, col: str) -> pd.Series:
    """Per `key`, the last non-null `col` in acceptance order."""
    frames = [p[["seq", key, col]] for p in parts]
    both = pd.concat(frames, ignore_index=True).dropna(subset=[key, col]).sort_values("seq")
    return both.groupby(key)[col].last()


def _align(keys: pd.Series, table: pd.Series) -> pd.Series:
    """`table[k]` for each k in `keys`, keeping `table`'s dtype (NaN/NaT where absent)."""
    return table.reindex(keys.to_numpy()).set_axis(keys.index)


def _lookup(keys: pd.Series, table: pd.Series) -> pd.Series:
    """`table[k]` for each k in `keys` (None where absent), as an object column."""
    mapping = {k: v for k, v in table.items() if not _missing(v)}
    return keys.map(lambda k: mapping.get(k) if not _missing(k) else None).astype(object)


# --------------------------------------------------------------------------- raw events


def _raw(events: list[dict], tz: str) -> pd.DataFrame:
    raw = pd.DataFrame(
        [{"id": e["id"], "type": e["type"], "occurred_at": e["occurred_at"],
          "data": e.get("data") or {}} for e in events],
        columns=["id", "type", "occurred_at", "data"],
    )
    raw["seq"] = range(len(raw))  # acceptance order
    raw = raw.drop_duplicates("id", keep="first")
    raw["at"] = pd.Series([_ts(v, tz) for v in raw["occurred_at"]], index=raw.index,
                          dtype=f"datetime64[ns, {tz}]")
    return raw


def _of_type(raw: pd.DataFrame, type_: str, fields: list[str]) -> pd.DataFrame:
    """Events of one type: `seq`, `at` and the named data fields (object columns)."""
    sub = raw[raw["type"] == type_]
    data = pd.DataFrame(list(sub["data"]), index=sub.index, columns=fields, dtype=object)
    data = data.astype(object).where(data.notna(), None)
    return pd.concat([sub[["seq", "at"]], data], axis=1).reset_index(drop=True)


# --------------------------------------------------------------------------- entities


def _rep_history(raw: pd.DataFrame) -> pd.DataFrame:
    fields = ["rep_id", *REP_FIELDS]
    hist = pd.concat([_of_type(raw, "rep.joined", fields), _of_type(raw, "rep.moved", fields)])
    hist = hist.dropna(subset=["rep_id"]).sort_values("seq", kind="stable")
    # omitted fields of a move are kept from the previous entry
    hist[REP_FIELDS] = hist.groupby("rep_id")[REP_FIELDS].ffill()
    hist = hist.sort_values(["at", "seq"], kind="stable")
    # equal times: the entry accepted last is the one in force
    return hist.drop_duplicates(["rep_id", "at"], keep="last").reset_index(drop=True)


def _rep_at(hist: pd.DataFrame, rep: pd.Series, at: pd.Series) -> pd.DataFrame:
    """`rep_at(rep, at)` per row (NaT `at` = the rep's current entry), aligned to `rep`."""
    out = pd.DataFrame(None, index=rep.index, columns=REP_FIELDS, dtype=object)
    known = rep.notna() & rep.isin(hist["rep_id"])
    if not known.any():
        return out
    # whole entries (groupby.first/last would skip nulls field by field)
    first = hist.drop_duplicates("rep_id", keep="first").set_index("rep_id")[REP_FIELDS]
    current = hist.drop_duplicates("rep_id", keep="last").set_index("rep_id")[REP_FIELDS]

    now = known & at.isna()
    out.loc[now, REP_FIELDS] = current.reindex(rep[now]).to_numpy()

    timed = known & at.notna()
    if timed.any():
        left = pd.DataFrame({"rep_id": rep[timed], "at": at[timed].dt.as_unit("ns")})
        left["row"] = left.index
        right = hist[["rep_id", "at", *REP_FIELDS]].assign(hit=True)
        right["at"] = right["at"].dt.as_unit("ns").dt.tz_convert(left["at"].dt.tz)
        matched = pd.merge_asof(left.sort_values("at"), right, on="at", by="rep_id",
                                direction="backward").set_index("row")
        # before the first entry: the first entry
        before = matched["hit"].isna()
        matched.loc[before, REP_FIELDS] = first.reindex(matched.loc[before, "rep_id"]).to_numpy()
        out.loc[matched.index, REP_FIELDS] = matched[REP_FIELDS].to_numpy()
    return out.astype(object).where(out.notna(), None)


def _customers(raw: pd.DataFrame) -> pd.DataFrame:
    c = _first_by(_of_type(raw, "customer.created", ["customer_id", "segment"]), "customer_id")
    return c.set_index("customer_id")


def _deals(raw: pd.DataFrame, stages: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(deals, stage history) before dimensions are resolved."""
    created = _first_by(_of_type(raw, "deal.created", [
        "deal_id", "owner_id", "customer_id", "lead_id", "amount", "product", "source",
        "stage"]), "deal_id")
    created = created.rename(columns={"at": "created_at", "seq": "created_seq"})
    deals = created.set_index("deal_id")

    def of_deals(type_: str, fields: list[str]) -> pd.DataFrame:
        ev = _of_type(raw, type_, ["deal_id", *fields])
        ev = ev[ev["deal_id"].isin(deals.index)]
        return ev[ev["seq"] > _align(ev["deal_id"], deals["created_seq"])]

    # the first close event decides the outcome
    won = of_deals("deal.won", ["amount"]).assign(status="won")
    lost = of_deals("deal.lost", ["reason", "competitor"]).assign(status="lost")
    closes = pd.concat([won, lost]).sort_values("seq").drop_duplicates("deal_id", keep="first")
    closes = closes.set_index("deal_id")
    deals["status"] = closes["status"].reindex(deals.index).fillna("open")
    deals["closed_at"] = closes["at"].reindex(deals.index)
    deals["closed_seq"] = closes["seq"].reindex(deals.index)
    deals["lost_reason"] = closes["reason"].reindex(deals.index).astype(object)
    deals["competitor"] = closes["competitor"].reindex(deals.index).astype(object)

    creation = created.rename(columns={"created_seq": "seq"})
    deals["owner"] = _last_value(
        [creation, of_deals("deal.owner_changed", ["owner_id"])], "deal_id", "owner_id",
    ).reindex(deals.index).astype(object)
    amount = _last_value(
        [creation, of_deals("deal.amount_changed", ["amount"]),
         closes[closes["status"] == "won"].reset_index()],
        "deal_id", "amount",
    )
    deals["amount"] = [ZERO if _missing(v) else _dec(v) for v in amount.reindex(deals.index)]

    # stage history: the creation stage, then the changes made while the deal was open
    start = created[["deal_id", "created_seq", "created_at", "stage"]].set_axis(
        ["deal_id", "seq", "at", "stage"], axis=1)
    start["stage"] = start["stage"].where(start["stage"].notna(), stages[0])
    changes = of_deals("deal.stage_changed", ["stage"])
    changes = changes[~(changes["seq"] > _align(changes["deal_id"], deals["closed_seq"]))]
    hist = pd.concat([start, changes[["deal_id", "seq", "at", "stage"]]], ignore_index=True)
    hist = hist.sort_values(["deal_id", "seq"], kind="stable")
    # a change to the current stage changes nothing
    hist = hist[hist["stage"] != hist.groupby("deal_id")["stage"].shift()].copy()
    hist["pos"] = hist.groupby("deal_id").cumcount()
    # a visit ends when the next one starts, the last one at the close (NaT while open)
    hist["left_at"] = hist.groupby("deal_id")["at"].shift(-1)
    last = ~hist["deal_id"].duplicated(keep="last")
    hist["left_at"] = hist["left_at"].where(~last, _align(hist["deal_id"], deals["closed_at"]))
    deals["stage"] = hist[last].set_index("deal_id")["stage"].reindex(deals.index)
    return deals, hist.reset_index(drop=True)


def _entities(events: list[dict], stages: list[str], tz: str) -> dict[str, pd.DataFrame]:
    """Deals, stage history, leads and activities, each with its resolved dimensions."""
    raw = _raw(events, tz)
    reps = _rep_history(raw)
    segment_of = _customers(raw)["segment"]
    deals, hist = _deals(raw, stages)

    leads = _first_by(_of_type(raw, "lead.created", [
        "lead_id", "source", "region", "owner_id"]), "lead_id")
    leads = leads.rename(columns={"at": "created_at"}).set_index("lead_id")
    leads["owner"] = _last_value(
        [leads.reset_index(), _of_type(raw, "lead.assigned", ["lead_id", "owner_id"])],
        "lead_id", "owner_id",
    ).reindex(leads.index).astype(object)
    conversions = _first_by(_of_type(raw, "lead.converted", ["lead_id", "deal_id"]), "lead_id")
    deal_of_lead = conversions.set_index("lead_id")["deal_id"]
    leads["converted"] = leads.index.isin(deal_of_lead.index)
    leads["deal_id"] = _lookup(pd.Series(leads.index, index=leads.index), deal_of_lead)

    # --- deals
    converted_from = _first_by(conversions, "deal_id").set_index("deal_id")["lead_id"]
    lead_of_deal = deals["lead_id"].where(
        deals["lead_id"].notna(), _lookup(pd.Series(deals.index, index=deals.index),
                                          converted_from))
    deals["rep"] = deals["owner"]
    deals[["team", "manager", "region"]] = _rep_at(
        reps, deals["owner"], deals["closed_at"]).to_numpy()  # NaT (open) = current entry
    deals["source"] = deals["source"].where(
        deals["source"].notna(), _lookup(lead_of_deal, leads["source"]))
    deals["segment"] = _lookup(deals["customer_id"], segment_of)
    deals["period_at"] = deals["closed_at"].fillna(deals["created_at"])

    # --- leads
    at_creation = _rep_at(reps, leads["owner"], leads["created_at"])
    leads["rep"] = leads["owner"]
    leads["team"] = at_creation["team_id"]
    leads["manager"] = at_creation["manager_id"]
    leads["region"] = leads["region"].where(leads["region"].notna(), at_creation["region"])
    leads["product"] = _lookup(leads["deal_id"], deals["product"])
    leads["segment"] = _lookup(leads["deal_id"], deals["segment"])

    # --- activities
    acts = _first_by(_of_type(raw, "activity.logged", [
        "activity_id", "rep_id", "lead_id", "deal_id", "customer_id"]), "activity_id")
    acts = acts.set_index("activity_id")
    acts["rep"] = acts["rep_id"]
    acts[["team", "manager", "region"]] = _rep_at(reps, acts["rep_id"], acts["at"]).to_numpy()
    on_deal = acts["deal_id"].notna()
    acts["source"] = _lookup(acts["deal_id"], deals["source"]).where(
        on_deal, _lookup(acts["lead_id"], leads["source"]))
    acts["product"] = _lookup(acts["deal_id"], deals["product"])
    acts["segment"] = _lookup(acts["deal_id"], deals["segment"]).where(
        on_deal, _lookup(acts["customer_id"], segment_of))

    for frame in (deals, leads, acts):
        frame[list(DIMENSIONS)] = frame[list(DIMENSIONS)].astype(object)
    return {"deals": deals, "history": hist, "leads": leads, "activities": acts}


# --------------------------------------------------------------------------- selection


def _select(frame: pd.DataFrame, filters: dict | None, time_col: str, tz: str) -> pd.DataFrame:
    keep = pd.Series(True, index=frame.index)
    for key, value in (filters or {}).items():
        if key not in FILTER_KEYS:
            raise ValueError(f"unknown filter {key!r}")
        if value is None:
            continue
        if key in DIMENSIONS:
            keep &= frame[key].map(lambda v, value=value: not _missing(v) and v == value)
            continue
        local_date = frame[time_col].dt.tz_convert(tz).dt.date
        bound = _as_date(value)
        keep &= (local_date >= bound) if key == "from" else (local_date <= bound)
    return frame[keep.astype(bool)]


# --------------------------------------------------------------------------- public API


def funnel(events: list[dict], *, stages: list[str], tz: str = "Asia/Shanghai",
           filters: dict | None = None) -> dict:
    """`GET /v1/funnel` recomputed from the raw events (deals selected on `created_at`)."""
    ent = _entities(events, stages, tz)
    deals = _select(ent["deals"], filters, "created_at", tz)
    hist = ent["history"][ent["history"]["deal_id"].isin(deals.index)].copy()
    hist["idx"] = hist["stage"].map({s: i for i, s in enumerate(stages)})
    won_ids = set(deals.index[deals["status"] == "won"])

    # advancement: after the first entry of the stage, a later-pipeline stage was entered
    first = hist.groupby(["deal_id", "stage"], as_index=False).agg(
        first_pos=("pos", "min"), idx=("idx", "first"))
    pairs = first.merge(hist[["deal_id", "pos", "idx"]], on="deal_id", suffixes=("", "_next"))
    moved_on = pairs[(pairs["pos"] > pairs["first_pos"]) & (pairs["idx_next"] > pairs["idx"])]
    advanced_pairs = set(zip(moved_on["deal_id"], moved_on["stage"], strict=True))

    # dwell per (deal, stage): seconds over all visits; NaT = still sitting there
    hist["seconds"] = (hist["left_at"] - hist["at"]).dt.total_seconds()
    hist["open_visit"] = hist["seconds"].isna()
    dwell = hist.groupby(["deal_id", "stage"]).agg(
        seconds=("seconds", "sum"), still_there=("open_visit", "any"))
    dwell = dwell[~dwell["still_there"]].reset_index()
    dwell["days"] = dwell["seconds"] / 86400

    open_deals = deals[deals["status"] == "open"]
    rows = []
    for stage in stages:
        entered_ids = set(first.loc[first["stage"] == stage, "deal_id"])
        advanced = sum(1 for d in entered_ids if d in won_ids or (d, stage) in advanced_pairs)
        in_stage = open_deals[open_deals["stage"] == stage]
        days = dwell.loc[dwell["stage"] == stage, "days"]
        rows.append({
            "stage": stage,
            "open_deals": len(in_stage),
            "open_amount": sum(in_stage["amount"], ZERO),
            "entered": len(entered_ids),
            "advanced": advanced,
            "conversion": _rate(advanced, len(entered_ids)),
            "dwell_days_median": _stat(days, "median"),
            "dwell_days_p90": _stat(days, "p90"),
        })
    won = int((deals["status"] == "won").sum())
    lost = int((deals["status"] == "lost").sum())
    return {
        "stages": rows,
        "won": won,
        "lost": lost,
        "won_value": sum(deals.loc[deals["status"] == "won", "amount"], ZERO),
        "win_rate": _rate(won, won + lost),
        **_losses_and_moves(deals, hist),
    }


def _losses_and_moves(deals: pd.DataFrame, hist: pd.DataFrame) -> dict:
    """Loss reasons (null: "unspecified"), named competitors of lost deals, and stage moves
    between pipeline stages that skip a stage (step > 1) or go back (step < 0)."""
    lost = deals[deals["status"] == "lost"]
    reasons = lost["lost_reason"].map(lambda v: "unspecified" if _missing(v) else v)
    competitors = lost["competitor"].dropna()
    moves = hist.sort_values(["deal_id", "pos"])
    step = moves["idx"] - moves.groupby("deal_id")["idx"].shift()
    return {
        "loss_reasons": {k: int(v) for k, v in sorted(reasons.value_counts().items())},
        "competitors": {k: int(v) for k, v in sorted(competitors.value_counts().items())},
        "stage_skips": int((step > 1).sum()),
        "regressions": int((step < 0).sum()),
    }


def _period_key(times: pd.Series, by: str, tz: str) -> pd.Series:
    local = times.dt.tz_convert(tz)
    if by == "month":
        keys = local.dt.strftime("%Y-%m")
    else:
        keys = local.dt.year.astype(str) + "-Q" + local.dt.quarter.astype(str)
    return keys.astype(object)


def _group(frame: pd.DataFrame, key: str | None) -> pd.DataFrame:
    mask = frame["key"].isna() if key is None else frame["key"] == key
    return frame[mask.astype(bool)]


def breakdown(events: list[dict], *, by: str, stages: list[str], tz: str = "Asia/Shanghai",
              filters: dict | None = None) -> dict:
    """`GET /v1/breakdown?by=...` recomputed from the raw events."""
    if by not in DIMENSIONS + PERIODS:
        raise ValueError(f"unknown breakdown {by!r}")
    ent = _entities(events, stages, tz)
    # by month/quarter a deal lives at its period time, for the date filter too
    deal_time = "period_at" if by in PERIODS else "created_at"
    deals = _select(ent["deals"], filters, deal_time, tz).copy()
    leads = _select(ent["leads"], filters, "created_at", tz).copy()
    acts = _select(ent["activities"], filters, "at", tz).copy()
    for frame, time_col in ((deals, deal_time), (leads, "created_at"), (acts, "at")):
        if by in PERIODS:
            frame["key"] = _period_key(frame[time_col], by, tz)
        else:
            frame["key"] = frame[by].map(lambda v: None if _missing(v) else str(v)).astype(object)

    keys = {_py(k) for f in (deals, leads, acts) for k in f["key"]}
    ordered: list[str | None] = sorted(k for k in keys if k is not None)
    if None in keys:
        ordered.append(None)

    rows = []
    for key in ordered:
        d, ls, a = _group(deals, key), _group(leads, key), _group(acts, key)
        won = d[d["status"] == "won"]
        n_won, n_lost = len(won), int((d["status"] == "lost").sum())
        won_value = sum(won["amount"], ZERO)
        cycle = _days(won["closed_at"] - won["created_at"])
        rows.append({
            "key": key,
            "deals": len(d),
            "open": int((d["status"] == "open").sum()),
            "won": n_won,
            "lost": n_lost,
            "win_rate": _rate(n_won, n_won + n_lost),
            "won_value": won_value,
            "avg_won_value": (won_value / n_won).quantize(CENT, ROUND_HALF_EVEN)
            if n_won else None,
            "cycle_days_mean": _stat(cycle, "mean"),
            "cycle_days_median": _stat(cycle, "median"),
            "activities": len(a),
            "leads": len(ls),
            "lead_conversion": _rate(int(ls["converted"].sum()), len(ls)),
        })
    return {"by": by, "rows": rows}
