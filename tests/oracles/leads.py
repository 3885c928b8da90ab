"""Independent oracle for `GET /v1/leads`, pandas over the raw events.

Reuses only the base oracle's private helpers (`tests/oracle.py`: raw events, entities and
dimensions, selection); the lead definitions below are docs/METRICS.md's, restated:

- status: converted if the lead has a `lead.converted`, else its last `lead.qualified` /
  `lead.disqualified` (in acceptance order), else open. Qualified = qualified or converted.
- first response at `as_of`: first `activity.logged` on the lead at or before `as_of`, from
  the latest of creation and its `lead.assigned` at or before that activity (or `as_of`).
- closed by `as_of`: converted by then, or disqualified (status) by the last decision's time.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from tests.oracle import (
    DIMENSIONS,
    _align,
    _entities,
    _first_by,
    _missing,
    _of_type,
    _rate,
    _raw,
    _select,
    _stat,
    _ts,
)

PERIODS = ("day", "week", "month", "quarter", "year")


def period_keys(times: pd.Series, by: str, tz: str) -> pd.Series:
    """Local day, ISO week, month, quarter or year labels, as docs/METRICS.md spells them."""
    local = times.dt.tz_convert(tz)
    if by == "day":
        keys = local.dt.strftime("%Y-%m-%d")
    elif by == "week":
        iso = local.dt.isocalendar()
        keys = iso["year"].astype(str).str.zfill(4) + "-W" + iso["week"].astype(str).str.zfill(2)
    elif by == "month":
        keys = local.dt.strftime("%Y-%m")
    elif by == "quarter":
        keys = local.dt.strftime("%Y") + "-Q" + local.dt.quarter.astype(str)
    else:
        keys = local.dt.strftime("%Y")
    return keys.astype(object)


def lead_table(events: list[dict], stages: list[str], tz: str, as_of: datetime,
               sla_hours: float) -> pd.DataFrame:
    """Every lead with its dimensions, status, conversion time and response standing."""
    raw = _raw(events, tz)
    leads = _entities(events, stages, tz)["leads"].copy()
    at_of = _ts(as_of, tz)

    conv = _first_by(_of_type(raw, "lead.converted", ["lead_id"]), "lead_id").set_index("lead_id")
    leads["converted_at"] = conv["at"].reindex(leads.index)
    decisions = pd.concat([
        _of_type(raw, "lead.qualified", ["lead_id"]).assign(decision="qualified"),
        _of_type(raw, "lead.disqualified", ["lead_id"]).assign(decision="disqualified"),
    ]).sort_values("seq")
    last = decisions.groupby("lead_id").last()
    leads["decision"] = last["decision"].reindex(leads.index)
    leads["decided_at"] = last["at"].reindex(leads.index)
    leads["status"] = leads["decision"].where(leads["converted_at"].isna(), "converted")
    leads["status"] = leads["status"].where(leads["status"].notna(), "open")

    acts = _first_by(_of_type(raw, "activity.logged", ["activity_id", "lead_id"]), "activity_id")
    acts = acts.dropna(subset=["lead_id"])
    contacts = acts[acts["at"] <= at_of].groupby("lead_id")["at"].min()
    leads["contact_at"] = contacts.reindex(leads.index)
    leads["until"] = leads["contact_at"].fillna(at_of)

    assigned = _of_type(raw, "lead.assigned", ["lead_id"])
    assigned = assigned[assigned["lead_id"].isin(leads.index)]
    assigned = assigned.assign(until=_align(assigned["lead_id"], leads["until"]))
    assigned = assigned[assigned["at"] <= assigned["until"]]
    latest = assigned.groupby("lead_id")["at"].max().reindex(leads.index)
    leads["clock_from"] = latest.where(latest > leads["created_at"], leads["created_at"])

    exists = leads["created_at"] <= at_of
    waited_h = (leads["until"] - leads["clock_from"]).dt.total_seconds() / 3600
    contacted = exists & leads["contact_at"].notna()
    closed = (leads["converted_at"] <= at_of) | (
        (leads["status"] == "disqualified") & (leads["decided_at"] <= at_of))
    awaiting = exists & ~contacted & ~closed
    leads["response_hours"] = waited_h.where(contacted)
    leads["awaiting"] = awaiting
    leads["overdue"] = awaiting & (waited_h > sla_hours)
    return leads


def _figures(g: pd.DataFrame, sla_hours: float) -> dict:
    qualified = int(g["status"].isin(["qualified", "converted"]).sum())
    disqualified = int((g["status"] == "disqualified").sum())
    converted = g[g["converted_at"].notna()]
    cycle = (converted["converted_at"] - converted["created_at"]).dt.total_seconds() / 86400
    hours = g["response_hours"].dropna()
    overdue = int(g["overdue"].sum())
    return {
        "new": len(g),
        "qualified": qualified,
        "disqualified": disqualified,
        "valid_lead_rate": _rate(qualified, qualified + disqualified),
        "converted": len(converted),
        "lead_conversion": _rate(len(converted), len(g)),
        "lead_to_deal_days_mean": _stat(cycle, "mean"),
        "lead_to_deal_days_median": _stat(cycle, "median"),
        "answered": len(hours),
        "first_response_hours_median": _stat(hours, "median"),
        "first_response_hours_p90": _stat(hours, "p90"),
        "within_sla": _rate(int((hours <= sla_hours).sum()), len(hours) + overdue),
        "uncontacted": int(g["awaiting"].sum()),
    }


def leads(events: list[dict], *, by: str, as_of: datetime, stages: list[str],
          tz: str = "Asia/Shanghai", filters: dict | None = None,
          sla_hours: float = 24.0) -> dict:
    """`GET /v1/leads?by=...` recomputed from the raw events (without `as_of`/`sla_hours`)."""
    if by not in DIMENSIONS + PERIODS:
        raise ValueError(f"unknown grouping {by!r}")
    table = _select(lead_table(events, stages, tz, as_of, sla_hours), filters, "created_at", tz)
    if by in PERIODS:
        keys = period_keys(table["created_at"], by, tz)
    else:
        keys = table[by].map(lambda v: None if _missing(v) else str(v)).astype(object)
    present = {None if _missing(k) else k for k in keys}
    ordered: list[str | None] = sorted(k for k in present if k is not None)
    if None in present:
        ordered.append(None)
    rows = []
    for key in ordered:
        mask = keys.isna() if key is None else keys == key
        rows.append({"key": key, **_figures(table[mask.astype(bool)], sla_hours)})
    return {"by": by, "rows": rows, "total": _figures(table, sla_hours)}
