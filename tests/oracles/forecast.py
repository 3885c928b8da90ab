"""Independent oracle for `GET /v1/forecast` and `GET /v1/forecast/accuracy`.

docs/METRICS.md ("GET /v1/forecast") recomputed with pandas from the raw event list:
each deal's state at a moment is rebuilt from its events that occurred by then, win
probabilities are learned from the deals closed by then, and weighted values are exact
Decimal arithmetic. Imports nothing from `projections/`, `services/` or `events/`; it reuses
the entity helpers of `tests/oracle.py` (deals, stage history, rep history).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

import pandas as pd
from dateutil.parser import isoparse

from tests.oracle import (
    DIMENSIONS,
    ZERO,
    _align,
    _entities,
    _missing,
    _of_type,
    _raw,
    _rep_at,
    _rep_history,
    _select,
)

MIN_HISTORY = 20
CENT = Decimal("0.01")


# docs/METRICS.md: an expected close counts when it "parses as an ISO date (or an ISO
# date-time, taken as its local date)". Read here with dateutil's strict ISO 8601 parser,
# not the standard library's, and only as a full date (calendar YYYY-MM-DD or YYYYMMDD, or
# week YYYY-Www-D), then optionally a time. Anything else leaves the deal to the stage's median.
_ISO_DATE = re.compile(r"(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4}-?W\d{2}-?\d)(?:[T ].+)?")


def _local_date(moment: pd.Timestamp, tz: str) -> date:
    return moment.tz_convert(tz).date()


def _parse_close(value: Any, tz: str) -> date | None:
    if _missing(value) or not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        return None
    try:
        moment = pd.Timestamp(isoparse(value))
    except (ValueError, OverflowError):
        return None
    return _local_date(moment, tz) if moment.tzinfo else moment.date()


class World:
    """Everything the forecast needs, from the raw events, once."""

    def __init__(self, events: list[dict], stages: list[str], tz: str) -> None:
        self.tz, self.stages = tz, stages
        raw = _raw(events, tz)
        ent = _entities(events, stages, tz)
        self.deals, self.hist = ent["deals"], ent["history"]
        self.reps = _rep_history(raw)
        known = self.deals.index

        def after_creation(type_: str, fields: list[str]) -> pd.DataFrame:
            ev = _of_type(raw, type_, ["deal_id", *fields])
            ev = ev[ev["deal_id"].isin(known)]
            return ev[ev["seq"] >= ev["deal_id"].map(self.deals["created_seq"])]

        created = after_creation("deal.created", ["owner_id", "amount", "expected_close"])
        created = created[created["seq"] == created["deal_id"].map(self.deals["created_seq"])]
        won = after_creation("deal.won", ["amount"])
        won = won[won["seq"] == won["deal_id"].map(self.deals["closed_seq"])]
        created_amount = created.assign(amount=created["amount"].map(
            lambda v: "0" if _missing(v) else v))
        self.amounts = pd.concat([
            created_amount, after_creation("deal.amount_changed", ["amount"]),
            won.dropna(subset=["amount"])])[["deal_id", "seq", "at", "amount"]]
        self.owners = pd.concat([created, after_creation("deal.owner_changed", ["owner_id"])])[
            ["deal_id", "seq", "at", "owner_id"]]
        self.closes = pd.concat([
            created.dropna(subset=["expected_close"]),
            after_creation("deal.close_date_changed", ["expected_close"])])[
            ["deal_id", "seq", "at", "expected_close"]]
        configs = _of_type(raw, "pipeline.configured", ["win_probabilities"])
        last = configs.sort_values("seq")["win_probabilities"].tolist()
        self.configured: dict[str, Any] = (last[-1] or {}) if last else {}

    # --- state at a moment ---------------------------------------------------------------

    @staticmethod
    def _last_by(frame: pd.DataFrame, moment: pd.Timestamp, col: str) -> pd.Series:
        seen = frame[frame["at"] <= moment].sort_values("seq")
        return seen.groupby("deal_id")[col].last()

    def at(self, moment: pd.Timestamp) -> pd.DataFrame:
        """Deals created by `moment`: status, stage, amount, expected close, dimensions."""
        d = self.deals[self.deals["created_at"] <= moment].copy()
        closed = d["closed_at"].notna() & (d["closed_at"] <= moment)
        d["status_at"] = d["status"].where(closed, "open")
        hist = self.hist[self.hist["at"] <= moment].sort_values(["deal_id", "pos"])
        d["stage_at"] = hist.groupby("deal_id")["stage"].last().reindex(d.index)
        d["amount_at"] = [Decimal(v) for v in
                          self._last_by(self.amounts, moment, "amount").reindex(d.index)]
        d["close_text"] = self._last_by(self.closes, moment, "expected_close").reindex(d.index)
        d["expected_date"] = [_parse_close(v, self.tz) for v in d["close_text"]]
        d["rep"] = self._last_by(self.owners, moment, "owner_id").reindex(d.index).astype(object)
        d[["team", "manager", "region"]] = _rep_at(
            self.reps, d["rep"], pd.Series(moment, index=d.index)).to_numpy()
        d[list(DIMENSIONS)] = d[list(DIMENSIONS)].astype(object)
        return d

    def at_win(self, won: pd.DataFrame) -> pd.DataFrame:
        """Won deals with the amount and dimensions they had at their own win."""
        d = won.copy()

        def at_close(frame: pd.DataFrame, col: str) -> pd.Series:
            seen = frame[frame["deal_id"].isin(d.index)]
            seen = seen[seen["at"] <= _align(seen["deal_id"], d["closed_at"])]
            return seen.sort_values("seq").groupby("deal_id")[col].last().reindex(d.index)

        d["amount_at"] = [Decimal(v) for v in at_close(self.amounts, "amount")]
        d["rep"] = at_close(self.owners, "owner_id").astype(object)
        d[["team", "manager", "region"]] = _rep_at(self.reps, d["rep"], d["closed_at"]).to_numpy()
        d[list(DIMENSIONS)] = d[list(DIMENSIONS)].astype(object)
        return d

    def odds(self, moment: pd.Timestamp) -> pd.DataFrame:
        """Per stage: closed, won, probability (Decimal), source, remaining days."""
        closed = self.deals[self.deals["closed_at"].notna() & (self.deals["closed_at"] <= moment)]
        visits = self.hist[self.hist["deal_id"].isin(closed.index)]
        first = visits.groupby(["stage", "deal_id"])["at"].min().reset_index()
        first["won"] = first["deal_id"].map(closed["status"]) == "won"
        first["remaining"] = (_align(first["deal_id"], closed["closed_at"]) - first["at"]
                              ).dt.total_seconds() / 86400
        rows = []
        for i, stage in enumerate(self.stages):
            passed = first[first["stage"] == stage]
            n, won = len(passed), int(passed["won"].sum())
            # the probability as an exact (numerator, denominator)
            p: tuple[Decimal, Decimal]
            if n >= MIN_HISTORY:
                p, source = (Decimal(won), Decimal(n)), "history"
            elif stage in self.configured:
                p, source = (Decimal(repr(float(self.configured[stage]))), Decimal(1)), \
                    "configured"
            else:
                p, source = (Decimal(i + 1), Decimal(len(self.stages) + 1)), "default"
            remaining = passed.loc[passed["won"], "remaining"]
            rows.append({"stage": stage, "closed": n, "won": won, "p": p, "source":
                         source, "remaining": float(remaining.median()) if len(remaining)
                         else None})
        return pd.DataFrame(rows).set_index("stage")

    def open_at(self, moment: pd.Timestamp, filters: dict | None) -> tuple[pd.DataFrame,
                                                                             pd.DataFrame]:
        d = self.at(moment)
        d = _select(d[d["status_at"] == "open"], filters, "created_at", self.tz).copy()
        odds = self.odds(moment)
        undated = d["expected_date"].isna()
        by_cycle = d.loc[undated, "stage_at"].map(odds["remaining"])
        d.loc[undated, "expected_date"] = [
            None if _missing(days) else _local_date(moment + pd.Timedelta(days=days), self.tz)
            for days in by_cycle]
        return d, odds


def _weighted(amount: Decimal, p: tuple[Decimal, Decimal]) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 60
        return (amount * p[0] / p[1]).quantize(CENT, rounding=ROUND_HALF_EVEN)


def _window(d: pd.DataFrame, odds: pd.DataFrame, last_day: date) -> dict[str, Any]:
    inside = d.loc[d["expected_date"].map(lambda v: v is not None and v <= last_day)
                   .astype(bool)]
    rows = []
    for stage, o in odds.iterrows():
        here = inside[inside["stage_at"] == stage]
        amount = sum(here["amount_at"], ZERO)
        num, den = o["p"]
        rows.append({
            "stage": stage, "deals": len(here), "amount": amount,
            "probability": float(num) / float(den) if o["source"] != "configured"
            else float(num),
            "probability_source": o["source"], "history_closed": int(o["closed"]),
            "history_won": int(o["won"]),
            "weighted_value": _weighted(amount, o["p"]),
        })
    return {"until": last_day.isoformat(), "deals": len(inside),
            "amount": sum(inside["amount_at"], ZERO),
            "weighted_value": sum((r["weighted_value"] for r in rows), ZERO), "stages": rows}


def forecast(events: list[dict], *, stages: list[str], as_of: str,
             tz: str = "Asia/Shanghai", filters: dict | None = None,
             world: World | None = None) -> dict[str, Any]:
    """`GET /v1/forecast`; pass `world` (built once from the same events) to save time."""
    world = world or World(events, stages, tz)
    moment = pd.Timestamp(as_of).tz_convert(tz)
    d, odds = world.open_at(moment, filters)
    today = _local_date(moment, tz)
    return {
        "min_history": MIN_HISTORY,
        "open_deals": len(d),
        "open_amount": sum(d["amount_at"], ZERO),
        "undated_deals": int(d["expected_date"].isna().sum()),
        **{f"next_{h}_days": _window(d, odds, today + timedelta(days=h - 1))
           for h in (30, 90)},
    }


def accuracy(events: list[dict], *, stages: list[str], as_of: str, period: str,
             tz: str = "Asia/Shanghai", filters: dict | None = None,
             world: World | None = None) -> dict[str, Any]:
    """`GET /v1/forecast/accuracy`; `world` as in `forecast`."""
    world = world or World(events, stages, tz)
    moment = pd.Timestamp(as_of).tz_convert(tz)
    months = 1 if period == "month" else 3
    first = world.deals["created_at"].min().tz_convert(tz)
    start = pd.Timestamp(year=first.year, month=(first.month - 1) // months * months + 1,
                         day=1, tz=tz)
    won = world.deals[world.deals["status"] == "won"]
    rows = []
    while (end := start + pd.DateOffset(months=months)) <= moment:
        d, odds = world.open_at(start, filters)
        last_day = (end - pd.Timedelta(days=1)).date()
        predicted = _window(d, odds, last_day)["weighted_value"]
        in_period = won[(won["closed_at"] >= start) & (won["closed_at"] < end)]
        actual_deals = _select(world.at_win(in_period), filters, "created_at", tz)
        actual = sum(actual_deals["amount_at"], ZERO)
        from_open = sum(actual_deals.loc[actual_deals.index.isin(d.index), "amount_at"], ZERO)
        error = predicted - actual
        rows.append({
            "period": f"{start.year}-{start.month:02d}" if period == "month"
            else f"{start.year}-Q{start.quarter}",
            "start": start.isoformat(), "forecast": predicted, "actual": actual,
            "actual_from_open_deals": from_open, "error": error,
            "ape": float(abs(error) / actual) if actual else None,
        })
        start = end
    apes = pd.Series([r["ape"] for r in rows if r["ape"] is not None], dtype=float)
    return {"period": period, "periods": rows, "mape": float(apes.mean()) if len(apes) else None}
