"""Independent computation (pandas over raw events) of when alert conditions became true.

Imports no service code. Covers `lead_sla` and `churn_risk` (docs/ALERTS.md): for each
subject, the moments its condition started holding, up to the last event's time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd


def _frame(events: list[dict[str, Any]], tz: str) -> pd.DataFrame:
    rows = [{"type": e["type"], "at": e["occurred_at"], **e["data"]} for e in events]
    df = pd.DataFrame(rows)
    df["at"] = [pd.Timestamp(a).tz_localize(tz) if pd.Timestamp(a).tzinfo is None
                else pd.Timestamp(a) for a in df["at"]]
    df["seq"] = range(len(df))
    return df


def lead_sla_starts(events: list[dict[str, Any]], tz: str = "Asia/Shanghai",
                    hours: float = 24) -> set[tuple[str, datetime]]:
    df = _frame(events, tz)
    end = df["at"].max()
    sla = pd.Timedelta(hours=hours)
    relevant = df[df["lead_id"].notna() & df["type"].isin([
        "lead.created", "lead.assigned", "activity.logged", "lead.qualified",
        "lead.disqualified", "lead.converted"])]
    out = set()
    for lead, rows in relevant.sort_values("seq").groupby("lead_id"):
        clock = None  # when the current SLA clock started (None: nothing owed)
        for row in rows.itertuples():
            if clock is not None and row.at >= clock + sla:
                out.add((lead, (clock + sla).to_pydatetime()))
            if row.type in ("lead.created", "lead.assigned"):
                clock = row.at
            else:
                clock = None  # contacted or decided
        if clock is not None and clock + sla <= end:
            out.add((lead, (clock + sla).to_pydatetime()))
    return out


def churn_starts(events: list[dict[str, Any]], tz: str = "Asia/Shanghai", factor: float = 2,
                 min_orders: int = 3) -> set[tuple[str, datetime]]:
    df = _frame(events, tz)
    end = df["at"].max()
    orders = df[df["type"] == "order.booked"].sort_values("seq")
    out = set()
    for customer, rows in orders.groupby("customer_id"):
        times = list(rows["at"])
        for k in range(min_orders, len(times) + 1):
            gaps = pd.Series(times[:k]).diff().dropna().dt.total_seconds() / 86400
            due = times[k - 1] + pd.Timedelta(days=factor * gaps.median())
            following = times[k] if k < len(times) else None
            if due <= end and (following is None or following >= due):
                out.add((customer, due.to_pydatetime()))
    return out
