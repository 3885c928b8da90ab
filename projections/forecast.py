"""The forecast: expected won value of the open pipeline, as of any moment, and its accuracy.

Point in time: the forecast "as of T" reads only what had occurred by T (each deal's
stage, status, amount, owner and expected close at T, and the closed history by T), so
any past forecast is reproduced exactly from the log; that is how forecasts are kept.
Definitions: docs/METRICS.md, "GET /v1/forecast".
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from events.vocabulary import ts
from projections.snapshot import Deal, Filters, Snapshot
from projections.stats import days_between, mean, median, money

MIN_HISTORY = 20  # closed deals that passed a stage before its own win rate is trusted
HORIZONS = (30, 90)


def cents(value: Fraction) -> Decimal:
    """`value` rounded half-even to 0.01, exactly."""
    return Decimal(round(value * 100)).scaleb(-2)


def _at(history: list[list[Any]], moment: datetime) -> Any:
    """The value of the last `[at, value]` entry at or before `moment` (None before any)."""
    index = bisect_right([ts(at) for at, _ in history], moment) - 1
    return history[index][1] if index >= 0 else None


def parse_close_date(value: str | None, snapshot: Snapshot) -> date | None:
    """An `expected_close` as a date: ISO date, or ISO date-time taken in the tenant's zone."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return snapshot.local_day(moment) if moment.tzinfo else moment.date()


@dataclass(frozen=True)
class DealAt:
    """A deal as it stood at a moment."""

    deal: Deal
    status: str
    stage: str
    amount: Decimal
    expected_close: date | None
    dims: dict[str, str | None]


def deal_at(snapshot: Snapshot, deal: Deal, moment: datetime) -> DealAt | None:
    """`deal` at `moment` from its own history; None if not yet created."""
    if deal.created_at > moment:
        return None
    rec = deal.record
    closed = deal.closed_at is not None and deal.closed_at <= moment
    stage = [s for s, at in deal.stages if at <= moment][-1]
    amount = _at(rec.get("amounts") or [[rec["created_at"], rec["amount"]]], moment)
    owner = _at(rec.get("owners") or [[rec["created_at"], rec["owner"]]], moment)
    close_dates = rec.get("close_dates")
    if close_dates is None:  # a record folded before close-date history was kept
        close_dates = [[rec["created_at"], rec["expected_close"]]] if rec.get(
            "expected_close") else []
    dims = {**deal.dims, "rep": owner, **snapshot.rep_at(owner, moment)}
    return DealAt(deal, deal.status if closed else "open", stage, Decimal(amount),
                  parse_close_date(_at(close_dates, moment), snapshot), dims)


@dataclass(frozen=True)
class StageOdds:
    """The probability of winning from a stage, where it came from, and the history."""

    probability: Fraction
    source: str  # history | configured | default
    closed: int
    won: int
    remaining_days: float | None  # median days from first entering the stage to the win


def default_probability(snapshot: Snapshot, stage: str) -> Fraction:
    """(i + 1) / (n + 1) for the i-th (0-based) of n open stages; a stage outside the
    pipeline gets the first stage's."""
    position = snapshot.stages.index(stage) if stage in snapshot.stages else 0
    return Fraction(position + 1, len(snapshot.stages) + 1)


def stage_odds(snapshot: Snapshot, moment: datetime, stages: set[str]) -> dict[str, StageOdds]:
    """Per stage, learned from the tenant's deals closed by `moment` (all of them, filters
    aside): won / closed among those whose stage history contains the stage."""
    closed = [d for d in snapshot.deals if d.closed_at is not None and d.closed_at <= moment]
    configured = snapshot.pipeline.get("win_probabilities") or {}
    odds = {}
    for stage in stages:
        passed = [d for d in closed if any(s == stage for s, _ in d.stages)]
        won = [d for d in passed if d.status == "won"]
        remaining = [days_between(next(at for s, at in d.stages if s == stage), d.closed_at)
                     for d in won if d.closed_at is not None]
        if len(passed) >= MIN_HISTORY:
            probability, source = Fraction(len(won), len(passed)), "history"
        elif stage in configured:
            probability, source = Fraction(repr(float(configured[stage]))), "configured"
        else:
            probability, source = default_probability(snapshot, stage), "default"
        odds[stage] = StageOdds(probability, source, len(passed), len(won), median(remaining))
    return odds


def _expected_close(state: DealAt, odds: StageOdds, moment: datetime,
                    snapshot: Snapshot) -> date | None:
    if state.expected_close is not None:
        return state.expected_close
    if odds.remaining_days is None:
        return None
    return snapshot.local_day(moment + timedelta(days=odds.remaining_days))


@dataclass(frozen=True)
class OpenPipeline:
    """The selected deals open at a moment, each with its expected close date."""

    moment: datetime
    odds: dict[str, StageOdds]
    deals: list[tuple[DealAt, date | None]]

    def window(self, stage_order: list[str], last_day: date) -> dict[str, Any]:
        """Deals expected to close by `last_day` (an overdue date counts as due now)."""
        rows: list[dict[str, Any]] = []
        for stage in stage_order:
            inside = [s for s, due in self.deals if s.stage == stage and due is not None
                      and due <= last_day]
            amount = sum((s.amount for s in inside), Decimal(0))
            rows.append(stage_row(stage, len(inside), amount, self.odds[stage]))
        return window_total(last_day, rows)


def stage_row(stage: str, deals: int, amount: Decimal, odds: StageOdds) -> dict[str, Any]:
    """One stage of a forecast window: its deals due, their amount and its weighting."""
    return {
        "stage": stage,
        "deals": deals,
        "amount": money(amount),
        "probability": float(odds.probability),
        "probability_source": odds.source,
        "history_closed": odds.closed,
        "history_won": odds.won,
        "weighted_value": money(cents(Fraction(amount) * odds.probability)),
    }


def window_total(last_day: date, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A forecast window: its stages' rows and their totals."""
    return {
        "until": last_day.isoformat(),
        "deals": sum(r["deals"] for r in rows),
        "amount": money(sum((Decimal(r["amount"]) for r in rows), Decimal(0))),
        "weighted_value": money(sum((Decimal(r["weighted_value"]) for r in rows),
                                    Decimal(0))),
        "stages": rows,
    }


def open_pipeline(snapshot: Snapshot, filters: Filters, moment: datetime) -> OpenPipeline:
    states = [s for d in snapshot.deals if (s := deal_at(snapshot, d, moment)) is not None
              and s.status == "open" and filters.keeps_dims(s.dims)
              and filters.keeps_day(snapshot.local_day(d.created_at))]
    odds = stage_odds(snapshot, moment, {*snapshot.stages, *(s.stage for s in states)})
    deals = [(s, _expected_close(s, odds[s.stage], moment, snapshot)) for s in states]
    return OpenPipeline(moment, odds, deals)


def _stage_order(snapshot: Snapshot, pipeline: OpenPipeline) -> list[str]:
    extra = sorted({s.stage for s, _ in pipeline.deals} - set(snapshot.stages))
    return [*snapshot.stages, *extra]


def forecast(snapshot: Snapshot, filters: Filters, as_of: datetime) -> dict[str, Any]:
    """Expected won value in the next 30 and 90 days after `as_of`."""
    pipeline = open_pipeline(snapshot, filters, as_of)
    order = _stage_order(snapshot, pipeline)
    today = snapshot.local_day(as_of)
    return {
        "min_history": MIN_HISTORY,
        "open_deals": len(pipeline.deals),
        "open_amount": money(sum((s.amount for s, _ in pipeline.deals), Decimal(0))),
        "undated_deals": sum(1 for _, due in pipeline.deals if due is None),
        **{f"next_{days}_days": pipeline.window(order, today + timedelta(days=days - 1))
           for days in HORIZONS},
    }


# --- accuracy ---------------------------------------------------------------------------


def _period_starts(snapshot: Snapshot, first: datetime, period: str) -> Iterator[datetime]:
    """Local first instants of the periods from the one containing `first` on."""
    local = first.astimezone(snapshot.tz)
    step = 1 if period == "month" else 3
    year, month = local.year, (local.month - 1) // step * step + 1
    while True:
        yield datetime(year, month, 1, tzinfo=snapshot.tz)
        month += step
        if month > 12:
            year, month = year + 1, month - 12


def accuracy(snapshot: Snapshot, filters: Filters, as_of: datetime,
             period: str) -> dict[str, Any]:
    """Per closed period: the forecast made at its first instant for deals expected to close
    within it, against the value actually won in it."""
    rows: list[dict[str, Any]] = []
    if snapshot.deals:
        starts = _period_starts(snapshot, min(d.created_at for d in snapshot.deals), period)
        start = next(starts)
        for end in starts:
            if end > as_of:
                break
            rows.append(_period_row(snapshot, filters, start, end, period))
            start = end
    apes = [r["ape"] for r in rows if r["ape"] is not None]
    return {"period": period, "periods": rows, "mape": mean(apes)}


def _period_row(snapshot: Snapshot, filters: Filters, start: datetime, end: datetime,
                period: str) -> dict[str, Any]:
    pipeline = open_pipeline(snapshot, filters, start)
    last_day = snapshot.local_day(end) - timedelta(days=1)
    predicted = Decimal(pipeline.window(_stage_order(snapshot, pipeline),
                                        last_day)["weighted_value"])
    open_ids = {s.deal.id for s, _ in pipeline.deals}
    won = [(d, s) for d in snapshot.deals if d.status == "won" and d.closed_at is not None
           and start <= d.closed_at < end
           and (s := deal_at(snapshot, d, d.closed_at)) is not None
           and filters.keeps_dims(s.dims) and filters.keeps_day(snapshot.local_day(d.created_at))]
    actual = sum((s.amount for _, s in won), Decimal(0))  # the amount it was won at
    from_open = sum((s.amount for d, s in won if d.id in open_ids), Decimal(0))
    return accuracy_row(snapshot.period_key(start, period), start, predicted, actual,
                        from_open)


def accuracy_row(key: str, start: datetime, predicted: Decimal, actual: Decimal,
                 from_open: Decimal) -> dict[str, Any]:
    """One closed period of the forecast's accuracy: the forecast made at its first instant
    against the value won in it (`from_open`: by deals open at that instant)."""
    error = predicted - actual
    return {
        "period": key,
        "start": start.isoformat(),
        "forecast": money(predicted),
        "actual": money(actual),
        "actual_from_open_deals": money(from_open),
        "error": money(error),
        "ape": float(abs(Fraction(error)) / Fraction(actual)) if actual else None,
    }
