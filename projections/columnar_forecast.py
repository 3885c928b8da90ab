"""The forecast and its accuracy over `Columns`: the answers `forecast.py` gives over a
`Snapshot` (a test holds them byte-identical). Definitions: docs/METRICS.md,
"GET /v1/forecast".

A deal at a moment is read from `DealHistory`: its last stage, amount, owner and expected
close entries at or before the moment (a moment per deal, so the accuracy's "at its win"
is one pass too), reading only the entries of the deals in question. Only one row per
stage becomes Python objects. The accuracy asks the forecast at the start of every period:
what does not depend on the period (the filters, each closed deal's first entry into each
stage, the deals won as they stood) is read once for all of them.
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
from projections.columnar_history import DealHistory
from projections.columnar_revenue import period_keys
from projections.columnar_table import micros
from projections.columnar_views import decimal_sum, quantile_of
from projections.forecast import (
    HORIZONS,
    MIN_HISTORY,
    StageOdds,
    accuracy_row,
    stage_row,
    window_total,
)
from projections.snapshot import Filters
from projections.stats import mean, money

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _pick(values: NDArray[Any], found: NDArray[np.int64], default: int = 0) -> NDArray[Any]:
    """`values[found]`, with `default` where `found` is -1 (no entry), also when no deal has
    any entry of the kind (an empty table)."""
    if not values.size:
        return np.full(len(found), default, dtype=np.int64)
    return np.where(found >= 0, values[found], default)


def _entries(history: DealHistory, h: str, deals: NDArray[np.int64]
             ) -> tuple[NDArray[np.int64], NDArray[np.bool_], NDArray[np.int64]]:
    """The live entries of history `h` of `deals`, deal after deal, each deal's in list
    order: (their rows in its table, which of `deals` have any, where each of those begins
    among the entries). Reads those deals' rows only; `DealHistory.live` scans the table."""
    start, count = history.start[h], history.count[h]
    n = np.zeros(len(deals), dtype=np.int64)
    known = deals < len(count)
    n[known] = count[deals[known]]
    has = n > 0
    n = n[has]
    ends = np.cumsum(n)
    begins = ends - n
    total = int(ends[-1]) if n.size else 0
    entries = np.arange(total, dtype=np.int64) + np.repeat(start[deals[has]] - begins, n)
    return entries, has, begins


def _latest(history: DealHistory, h: str, deals: NDArray[np.int64],
            moments: NDArray[np.int64]) -> NDArray[np.int64]:
    """`DealHistory.at` of `deals` only, each at its own moment: the row of its last entry
    of `h` (in list order) at or before the moment; -1 where none."""
    found = np.full(len(deals), -1, dtype=np.int64)
    entries, has, begins = _entries(history, h, deals)
    if entries.size:
        n = np.diff(begins, append=len(entries))
        kept = history.tables[h]["at"][entries] <= np.repeat(moments[has], n)
        # A deal's entries ascend, so its greatest kept one is its last in list order.
        found[has] = np.maximum.reduceat(np.where(kept, entries, -1), begins)
    return found


@dataclass(frozen=True)
class States:
    """Selected deal rows as they stood at their moments."""

    rows: NDArray[np.int64]
    stage: NDArray[np.int32]
    amount: NDArray[Any]
    amount_exp: NDArray[np.int8]
    due: NDArray[np.int64]  # expected close day (ordinal; 0: none)


@dataclass(frozen=True)
class Selection:
    """A question's filters: the deals they keep whatever the moment (their own dimensions,
    `from`/`to` on creation), and the owner's dimensions, which are read at each moment."""

    keep: NDArray[np.bool_]
    by_owner: list[tuple[str, int]]  # (rep | team | manager | region, value's code)


def _selection(columns: Columns, filters: Filters) -> Selection:
    d = columns.deals
    keep = d["exists"].copy()
    by_owner: list[tuple[str, int]] = []
    for name, value in filters.dims.items():
        if name not in DIMENSIONS:
            continue
        code = columns.strings.find(value)
        if not code:
            keep[:] = False
        elif name in ("rep", "team", "manager", "region"):
            by_owner.append((name, code))
        else:
            keep &= columns.dim("deal", name) == code
    days = d["created_day"]
    if filters.start is not None:
        keep &= days >= filters.start.toordinal()
    if filters.end is not None:
        keep &= days <= filters.end.toordinal()
    return Selection(keep, by_owner)


def _states(columns: Columns, selection: Selection, deals: NDArray[np.int64],
            moments: NDArray[np.int64]) -> States:
    """`forecast.deal_at` of `deals` (kept by `selection.keep`, created by their moments),
    each at its own moment, kept by its owner's dimensions then."""
    history = columns.deal_history
    tables = history.tables
    if selection.by_owner:
        # Only deals some owner of which could be the one asked for, before finding each
        # one's owner then (a team's forecast at 1M deals: every open deal's, 25 ms).
        may = _ever_owned_by(columns, selection.by_owner)[deals]
        deals, moments = deals[may], moments[may]
        owner = _pick(tables["owner"]["owner"], _latest(history, "owner", deals, moments))
        kept = np.ones(len(deals), dtype=bool)
        for name, code in selection.by_owner:
            if name == "rep":
                kept &= owner == code
                continue
            entries = columns.entries_at(owner.astype(np.int32), moments)
            by_entry = np.array({"team": columns.history_team,
                                 "manager": columns.history_manager,
                                 "region": columns.history_region}[name], dtype=np.int32)
            kept &= by_entry[entries] == code
        deals, moments = deals[kept], moments[kept]
    amount = _latest(history, "amount", deals, moments)
    return States(deals,
                  _pick(tables["stage"]["stage"], _latest(history, "stage", deals, moments)),
                  _pick(tables["amount"]["amount"], amount),
                  _pick(tables["amount"]["amount_exp"], amount),
                  _pick(tables["close"]["day"], _latest(history, "close", deals, moments)))


def _ever_owned_by(columns: Columns, by_owner: list[tuple[str, int]]) -> NDArray[np.bool_]:
    """By deal row: whether any owner it ever had is the rep asked for, or was ever in the
    team, manager or region asked for (all of them, when several are)."""
    wanted = np.ones(len(columns.strings.values), dtype=bool)
    for name, code in by_owner:
        if name == "rep":
            one = np.zeros(wanted.size, dtype=bool)
            one[code] = True
            wanted &= one
        else:
            wanted &= columns.reps_ever_in(name, code)
    owners = columns.deal_history.tables["owner"]
    owned = np.zeros(columns.deals.size, dtype=bool)
    owned[owners["deal"][wanted[owners["owner"]]]] = True
    return owned


def _open_at(columns: Columns, selection: Selection, moment: int) -> States:
    d = columns.deals
    deals = np.flatnonzero(selection.keep & (d["created"] <= moment) & (d["closed"] > moment))
    return _states(columns, selection, deals, np.full(len(deals), moment, dtype=np.int64))


@dataclass(frozen=True)
class _Passed:
    """The closed deals that passed a stage (first entered it), ascending by close, and the
    won ones' days from there to the win, ascending, with their closes."""

    closed: NDArray[np.int64]
    won_by_then: NDArray[np.int64]  # [i]: how many of the first i were won
    days: NDArray[np.float64]
    days_closed: NDArray[np.int64]


class StageHistory:
    """What `forecast.stage_odds` learns from, for any moment: each closed deal's first
    entry into each stage (filters aside). Built once a question, so each of its moments is
    a search and a pass over one stage's won deals, not over every deal's history."""

    def __init__(self, columns: Columns) -> None:
        d, history = columns.deals, columns.deal_history
        self.columns = columns
        deals = np.flatnonzero(d["exists"] & (d["closed"] != NOW))
        entries, _, _ = _entries(history, "stage", deals)
        table = history.tables["stage"]
        self.deal = table["deal"][entries].astype(np.int64)
        self.stage = table["stage"][entries]
        self.at = table["at"][entries]
        self.passed: dict[int, _Passed] = {}
        self._odds: dict[int, dict[str, StageOdds]] = {}  # by moment, in the order found

    def _of(self, code: int) -> _Passed:
        found = self.passed.get(code)
        if found is not None:
            return found
        d = self.columns.deals
        mine = np.flatnonzero(self.stage == code)
        deal = self.deal[mine]
        first = np.ones(len(mine), dtype=bool)  # entries come deal after deal
        first[1:] = deal[1:] != deal[:-1]
        mine, deal = mine[first], deal[first]
        closed = d["closed"][deal]
        won = d["status"][deal] == (self.columns.strings.find("won") or -1)
        order = np.argsort(closed)  # ties: the same counts in either order
        won_by_then = np.concatenate(([0], np.cumsum(won[order], dtype=np.int64)))
        spans = closed[won] - self.at[mine][won]
        by_span = np.argsort(spans)  # ties: the same days in either order
        spans, span_closed = spans[by_span], closed[won][by_span]
        if spans.size and int(np.abs(spans).max()) > 2**53:  # beyond exact floats
            days = np.array([span / 10**6 / 86400 for span in spans.tolist()])
        else:  # the same floats as `days_between`: each step exact, then rounded once
            days = spans / 10**6 / 86400
        found = self.passed[code] = _Passed(closed[order], won_by_then, days, span_closed)
        return found

    def odds(self, moment: int, stages: set[str]) -> dict[str, StageOdds]:
        """`forecast.stage_odds` by stage. Every deal's history, whatever the filters: each
        stage's odds are found once per moment for all the questions at it (11 ms a
        question at 1M deals), for the last `_MOMENTS_KEPT` moments."""
        known = self._odds.get(moment)
        if known is None:
            while len(self._odds) >= _MOMENTS_KEPT:
                del self._odds[next(iter(self._odds))]
            known = self._odds[moment] = {}
        for name in stages:
            if name not in known:
                known[name] = self._stage_odds(moment, name)
        return {name: known[name] for name in stages}

    def _stage_odds(self, moment: int, name: str) -> StageOdds:
        columns = self.columns
        configured = columns.pipeline.get("win_probabilities") or {}
        passed = self._of(columns.strings.find(name) or -1)
        closed = int(np.searchsorted(passed.closed, moment, side="right"))
        won = int(passed.won_by_then[closed])
        if closed >= MIN_HISTORY:
            probability, source = Fraction(won, closed), "history"
        elif name in configured:
            probability, source = Fraction(repr(float(configured[name]))), "configured"
        else:
            position = columns.stages.index(name) if name in columns.stages else 0
            probability, source = Fraction(position + 1, len(columns.stages) + 1), "default"
        # `stats.median` of the won deals' days: `quantile_of` over the same floats.
        remaining = quantile_of(passed.days[passed.days_closed <= moment], 0.5)
        return StageOdds(probability, source, closed, won, remaining)


_MOMENTS_KEPT = 4


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


def open_pipeline(columns: Columns, filters: Filters, moment: datetime,
                  stage_history: StageHistory | None = None) -> Pipeline:
    """`stage_history`: the columns' own, when already made (it depends on no filter)."""
    return _pipeline(columns, _selection(columns, filters),
                     stage_history or StageHistory(columns), moment)


def _pipeline(columns: Columns, selection: Selection, stage_history: StageHistory,
              moment: datetime) -> Pipeline:
    at = micros(moment)
    states = _open_at(columns, selection, at)
    values = columns.strings.values
    found = {str(values[code]) for code in np.unique(states.stage).tolist() if code}
    odds = stage_history.odds(at, {*columns.stages, *found})
    by_stage = np.zeros(len(values), dtype=np.int64)  # by stage code: the due day
    for name, each in odds.items():
        code = columns.strings.find(name)
        if code and each.remaining_days is not None:
            by_stage[code] = _local_day(
                columns, moment + timedelta(days=each.remaining_days)).toordinal()
    due = np.where(states.due != 0, states.due, by_stage[states.stage])
    extra = sorted(found - set(columns.stages))
    return Pipeline(states, odds, [*columns.stages, *extra], due)


def forecast(columns: Columns, filters: Filters, as_of: datetime,
             stage_history: StageHistory | None = None) -> dict[str, Any]:
    """`forecast.forecast` over the column store."""
    pipeline = open_pipeline(columns, filters, as_of, stage_history)
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


def _periods(columns: Columns, as_of: datetime, period: str) -> list[tuple[datetime, datetime]]:
    """`forecast._period_starts`: the closed periods from the first deal's on, as (first
    instant, the next period's)."""
    d = columns.deals
    created = d["created"][d["exists"]]
    if not created.size:
        return []
    first = (_EPOCH + timedelta(microseconds=int(created.min()))).astimezone(columns.tz)
    step = 1 if period == "month" else 3
    year, month = first.year, (first.month - 1) // step * step + 1
    start = datetime(year, month, 1, tzinfo=columns.tz)
    periods: list[tuple[datetime, datetime]] = []
    while True:
        month += step
        if month > 12:
            year, month = year + 1, month - 12
        end = datetime(year, month, 1, tzinfo=columns.tz)
        if end > as_of:
            return periods
        periods.append((start, end))
        start = end


def accuracy(columns: Columns, filters: Filters, as_of: datetime,
             period: str, stage_history: StageHistory | None = None) -> dict[str, Any]:
    """`forecast.accuracy` over the column store (`stage_history`: as `forecast`'s)."""
    periods = _periods(columns, as_of, period)
    rows: list[dict[str, Any]] = []
    if periods:
        # What every period reads, once: the filters, the stage history, and the selected
        # deals won in any of them as they stood at their wins.
        selection = _selection(columns, filters)
        stage_history = stage_history or StageHistory(columns)
        d = columns.deals
        closed = d["closed"]
        won = np.flatnonzero(
            selection.keep & (d["status"] == (columns.strings.find("won") or -1))
            & (closed != NOW) & (closed >= micros(periods[0][0]))
            & (closed < micros(periods[-1][1])) & (d["created"] <= closed))
        won_states = _states(columns, selection, won, closed[won])
        for start, end in periods:
            rows.append(_period_row(columns, selection, stage_history, won_states,
                                    start, end, period))
    apes = [r["ape"] for r in rows if r["ape"] is not None]
    return {"period": period, "periods": rows, "mape": mean(apes)}


def _period_row(columns: Columns, selection: Selection, stage_history: StageHistory,
                won: States, start: datetime, end: datetime, period: str) -> dict[str, Any]:
    pipeline = _pipeline(columns, selection, stage_history, start)
    last_day = _local_day(columns, end) - timedelta(days=1)
    predicted = Decimal(pipeline.window(columns, last_day)["weighted_value"])
    closed = columns.deals["closed"][won.rows]
    inside = (closed >= micros(start)) & (closed < micros(end))
    rows, amount, amount_exp = won.rows[inside], won.amount[inside], won.amount_exp[inside]
    actual = decimal_sum(amount, amount_exp)
    was_open = np.isin(rows, pipeline.states.rows)
    key = period_keys(np.array([start.date().toordinal()], dtype=np.int32), period)[0]
    return accuracy_row(key, start, predicted, actual,
                        decimal_sum(amount[was_open], amount_exp[was_open]))
