"""The forecast and its accuracy over `Columns`: the answers `forecast.py` gives over a
`Snapshot` (a test holds them byte-identical). Definitions: docs/METRICS.md,
"GET /v1/forecast".

A deal at a moment is read from `DealHistory`: its last stage, amount, owner and expected
close entries at or before the moment (a moment per deal, so the accuracy's "at its win"
is one pass too). Only one row per stage becomes Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import NDArray

from events.vocabulary import DIMENSIONS
from projections.columnar import NOW, Columns
from projections.columnar_revenue import period_keys
from projections.columnar_table import micros
from projections.columnar_views import decimal_sum
from projections.forecast import (
    HORIZONS,
    MIN_HISTORY,
    StageOdds,
    accuracy_row,
    stage_row,
    window_total,
)
from projections.snapshot import Filters
from projections.stats import mean, median, money

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _pick(values: NDArray[Any], found: NDArray[np.int64], default: int = 0) -> NDArray[Any]:
    """`values[found]`, with `default` where `found` is -1 (no entry), also when no deal has
    any entry of the kind (an empty table)."""
    if not values.size:
        return np.full(len(found), default, dtype=np.int64)
    return np.where(found >= 0, values[found], default)


@dataclass(frozen=True)
class States:
    """Selected deal rows as they stood at their moments."""

    rows: NDArray[np.int64]
    stage: NDArray[np.int32]
    amount: NDArray[Any]
    amount_exp: NDArray[np.int8]
    due: NDArray[np.int64]  # expected close day (ordinal; 0: none)


def _states(columns: Columns, moments: NDArray[np.int64], candidates: NDArray[np.bool_],
            filters: Filters) -> States:
    """`forecast.deal_at` of the candidate deals at `moments[deal]`, kept by the filters
    (dimensions at the moment, `from`/`to` on creation)."""
    d, history = columns.deals, columns.deal_history
    keep = candidates & d["exists"] & (d["created"] <= moments)
    last = {h: history.at(h, moments) for h in ("stage", "amount", "owner", "close")}
    owner = _pick(history.tables["owner"]["owner"], last["owner"])
    for name, value in filters.dims.items():
        if name not in DIMENSIONS:
            continue
        code = columns.strings.find(value)
        if not code:
            keep &= False
            continue
        if name == "rep":
            keep &= owner == code
        elif name in ("team", "manager", "region"):
            rows = np.flatnonzero(keep)
            entries = columns.entries_at(owner[rows].astype(np.int32), moments[rows])
            by_entry = np.array({"team": columns.history_team,
                                 "manager": columns.history_manager,
                                 "region": columns.history_region}[name], dtype=np.int32)
            keep[rows[by_entry[entries] != code]] = False
        else:
            keep &= columns.dim("deal", name) == code
    days = d["created_day"]
    if filters.start is not None:
        keep &= days >= filters.start.toordinal()
    if filters.end is not None:
        keep &= days <= filters.end.toordinal()
    rows = np.flatnonzero(keep)
    tables = history.tables

    def latest(h: str, column: str) -> NDArray[Any]:
        return _pick(tables[h][column], last[h][rows])
    return States(rows, latest("stage", "stage"), latest("amount", "amount"),
                  latest("amount", "amount_exp"), latest("close", "day"))


def _open_at(columns: Columns, moment: int, filters: Filters) -> States:
    d = columns.deals
    moments = np.full(d.size, moment, dtype=np.int64)
    return _states(columns, moments, d["closed"] > moment, filters)


def _stage_odds(columns: Columns, moment: int, stages: set[str]) -> dict[str, StageOdds]:
    """`forecast.stage_odds` by stage."""
    d, history = columns.deals, columns.deal_history
    closed = d["exists"] & (d["closed"] <= moment)
    won_code = columns.strings.find("won") or -1
    table = history.tables["stage"]
    live = history.live("stage")
    live = live[closed[table["deal"][live]]]
    configured = columns.pipeline.get("win_probabilities") or {}
    odds = {}
    for name in stages:
        mine = live[table["stage"][live] == (columns.strings.find(name) or -1)]
        passed, first = np.unique(table["deal"][mine], return_index=True)  # in list order
        won = d["status"][passed] == won_code
        spans = d["closed"][passed][won] - table["at"][mine[first]][won]
        remaining = [span / 10**6 / 86400 for span in spans.tolist()]  # `days_between`
        if len(passed) >= MIN_HISTORY:
            probability, source = Fraction(int(won.sum()), len(passed)), "history"
        elif name in configured:
            probability, source = Fraction(repr(float(configured[name]))), "configured"
        else:
            position = columns.stages.index(name) if name in columns.stages else 0
            probability, source = Fraction(position + 1, len(columns.stages) + 1), "default"
        odds[name] = StageOdds(probability, source, len(passed), int(won.sum()),
                               median(remaining))
    return odds


@dataclass(frozen=True)
class Pipeline:
    """`forecast.OpenPipeline` in columns: open selected deals with their due days."""

    states: States
    odds: dict[str, StageOdds]
    order: list[str]  # stages in answer order
    due: NDArray[np.int64]  # 0: undated

    def window(self, columns: Columns, last_day: date) -> dict[str, Any]:
        s, rows = self.states, list[dict[str, Any]]()
        inside = (self.due != 0) & (self.due <= last_day.toordinal())
        for stage in self.order:
            chosen = inside & (s.stage == (columns.strings.find(stage) or -1))
            amount = decimal_sum(s.amount[chosen], s.amount_exp[chosen])
            rows.append(stage_row(stage, int(np.count_nonzero(chosen)), amount,
                                  self.odds[stage]))
        return window_total(last_day, rows)


def _local_day(columns: Columns, moment: datetime) -> date:
    return moment.astimezone(columns.tz).date()


def open_pipeline(columns: Columns, filters: Filters, moment: datetime) -> Pipeline:
    at = micros(moment)
    states = _open_at(columns, at, filters)
    values = columns.strings.values
    found = {str(values[code]) for code in np.unique(states.stage).tolist() if code}
    odds = _stage_odds(columns, at, {*columns.stages, *found})
    by_stage = np.zeros(len(values), dtype=np.int64)  # by stage code: the due day
    for name, each in odds.items():
        code = columns.strings.find(name)
        if code and each.remaining_days is not None:
            by_stage[code] = _local_day(
                columns, moment + timedelta(days=each.remaining_days)).toordinal()
    due = np.where(states.due != 0, states.due, by_stage[states.stage])
    extra = sorted(found - set(columns.stages))
    return Pipeline(states, odds, [*columns.stages, *extra], due)


def forecast(columns: Columns, filters: Filters, as_of: datetime) -> dict[str, Any]:
    """`forecast.forecast` over the column store."""
    pipeline = open_pipeline(columns, filters, as_of)
    s = pipeline.states
    today = _local_day(columns, as_of)
    return {
        "min_history": MIN_HISTORY,
        "open_deals": len(s.rows),
        "open_amount": money(decimal_sum(s.amount, s.amount_exp)),
        "undated_deals": int(np.count_nonzero(pipeline.due == 0)),
        **{f"next_{days}_days": pipeline.window(columns, today + timedelta(days=days - 1))
           for days in HORIZONS},
    }


def accuracy(columns: Columns, filters: Filters, as_of: datetime,
             period: str) -> dict[str, Any]:
    """`forecast.accuracy` over the column store."""
    d = columns.deals
    rows: list[dict[str, Any]] = []
    created = d["created"][d["exists"]]
    if created.size:
        first = (_EPOCH + timedelta(microseconds=int(created.min()))).astimezone(columns.tz)
        step = 1 if period == "month" else 3
        year, month = first.year, (first.month - 1) // step * step + 1
        start = datetime(year, month, 1, tzinfo=columns.tz)
        while True:
            month += step
            if month > 12:
                year, month = year + 1, month - 12
            end = datetime(year, month, 1, tzinfo=columns.tz)
            if end > as_of:
                break
            rows.append(_period_row(columns, filters, start, end, period))
            start = end
    apes = [r["ape"] for r in rows if r["ape"] is not None]
    return {"period": period, "periods": rows, "mape": mean(apes)}


def _period_row(columns: Columns, filters: Filters, start: datetime, end: datetime,
                period: str) -> dict[str, Any]:
    d = columns.deals
    pipeline = open_pipeline(columns, filters, start)
    last_day = _local_day(columns, end) - timedelta(days=1)
    predicted = Decimal(pipeline.window(columns, last_day)["weighted_value"])
    closed = d["closed"]
    won = ((d["status"] == (columns.strings.find("won") or -1)) & (closed != NOW)
           & (closed >= micros(start)) & (closed < micros(end)))
    states = _states(columns, closed.astype(np.int64), won, filters)
    actual = decimal_sum(states.amount, states.amount_exp)
    was_open = np.isin(states.rows, pipeline.states.rows)
    key = period_keys(np.array([start.date().toordinal()], dtype=np.int32), period)[0]
    return accuracy_row(key, start, predicted, actual,
                        decimal_sum(states.amount[was_open], states.amount_exp[was_open]))
