"""Targets: each `target.set` beside its actual, attainment and pace; team and company
targets rolled up from rep targets where none is set directly.

Pure: reads a `Snapshot` and the moment `as_of` the answer is for. Definitions are in
docs/METRICS.md ("Targets").
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from events.contract import PERIOD_PATTERN
from events.vocabulary import TARGET_METRICS
from projections.facts import Record
from projections.snapshot import Snapshot
from projections.stats import CENT

METRICS = TARGET_METRICS
AMOUNT_METRICS = frozenset({"won_value", "collected"})
SCOPES = ("company", "team", "rep")

Key = tuple[str, str | None, str, str]  # scope, scope_id, period, metric
Actuals = Callable[[set[str], datetime], dict[Key, Decimal]]  # metrics, as_of -> totals


class Joined(Protocol):
    """What targets read besides the actuals: a `Snapshot`, or the column store."""

    @property
    def tz(self) -> ZoneInfo: ...

    @property
    def records(self) -> dict[str, dict[str, Record]]: ...

    def rep_at(self, rep: str | None, moment: datetime | None) -> dict[str, str | None]: ...


@dataclass(frozen=True)
class Period:
    key: str  # `2017`, `2017-Q1` or `2017-03`
    start: datetime  # first instant, local midnight
    end: datetime  # first instant after it

    @classmethod
    def parse(cls, key: str, tz: ZoneInfo) -> Period:
        return _parsed(key, tz)

    def within(self, other: Period) -> bool:
        return other.start <= self.start and self.end <= other.end

    def elapsed(self, as_of: datetime) -> tuple[int, int]:
        """(elapsed, total) microseconds of real time: how much of the period lies before as_of."""
        def micros(a: datetime, b: datetime) -> int:
            delta = b.astimezone(ZoneInfo("UTC")) - a.astimezone(ZoneInfo("UTC"))
            return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
        total = micros(self.start, self.end)
        return max(0, min(micros(self.start, as_of), total)), total


@lru_cache(maxsize=4096)  # a tenant's targets name a few dozen periods, each many times
def _parsed(key: str, tz: ZoneInfo) -> Period:
    if not re.match(PERIOD_PATTERN, key):
        raise ValueError(f"period {key!r} is not like 2017, 2017-Q1 or 2017-03")
    year = int(key[:4])
    if len(key) == 4:
        first, months = 1, 12
    elif key[5] == "Q":
        first, months = (int(key[6]) - 1) * 3 + 1, 3
    else:
        first, months = int(key[5:7]), 1
    after = first + months
    start = datetime(year, first, 1, tzinfo=tz)
    end = datetime(year + (after - 1) // 12, (after - 1) % 12 + 1, 1, tzinfo=tz)
    return Period(key, start, end)


def occurrences(snapshot: Snapshot, metric: str, as_of: datetime
                ) -> Iterator[tuple[datetime, Decimal, str | None, str | None]]:
    """(when, how much, rep, team) of everything that counts toward `metric` by `as_of`."""
    if metric in ("won_value", "won_deals"):
        for deal in snapshot.deals:
            if deal.status == "won" and deal.closed_at and deal.closed_at <= as_of:
                value = deal.amount if metric == "won_value" else Decimal(1)
                yield deal.closed_at, value, deal.dims["rep"], deal.dims["team"]
    elif metric == "new_leads":
        for lead in snapshot.leads:
            if lead.created_at <= as_of:
                yield lead.created_at, Decimal(1), lead.dims["rep"], lead.dims["team"]
    elif metric == "activities":
        for activity in snapshot.activities:
            if activity.at <= as_of:
                yield activity.at, Decimal(1), activity.dims["rep"], activity.dims["team"]
    elif metric == "collected":
        for order in snapshot.orders:
            for paid_at, amount in order.payments:
                if paid_at <= as_of:
                    yield paid_at, amount, order.dims["rep"], order.dims["team"]
    else:
        raise ValueError(f"unknown metric {metric!r}")


def actuals(snapshot: Snapshot, metrics: set[str], as_of: datetime) -> dict[Key, Decimal]:
    """Every (scope, scope_id, period, metric) total, for month, quarter and year at once."""
    totals: dict[Key, Decimal] = defaultdict(Decimal)
    for metric in metrics:
        for at, value, rep, team in occurrences(snapshot, metric, as_of):
            for by in ("month", "quarter", "year"):
                period = snapshot.period_key(at, by)
                totals["company", None, period, metric] += value
                if team is not None:
                    totals["team", team, period, metric] += value
                if rep is not None:
                    totals["rep", rep, period, metric] += value
    return totals


def teams_at_start(snapshot: Joined) -> Callable[[str | None, str], str | None]:
    """The team of a rep at a period's start, looked up once per (rep, period)."""
    teams: dict[tuple[str | None, str], str | None] = {}

    def team_at(rep: str | None, period: str) -> str | None:
        if (rep, period) not in teams:
            teams[rep, period] = snapshot.rep_at(rep, Period.parse(period, snapshot.tz).start
                                                 )["team"]
        return teams[rep, period]
    return team_at


def target_values(snapshot: Joined, team_at: Callable[[str | None, str], str | None] | None
                  = None) -> tuple[dict[Key, Decimal], set[Key]]:
    """Every target, set or rolled up, and which of them are rolled up (`derived`).

    A team without its own target for (period, metric) gets the sum of the targets of the
    reps in it at the period's start; the company likewise gets the sum over teams.
    `team_at` (default: `teams_at_start(snapshot)`) is asked the team of every rep target.
    """
    direct: dict[Key, Decimal] = {
        (r["scope"], r.get("scope_id") if r["scope"] != "company" else None, r["period"],
         r["metric"]): Decimal(r["value"])
        for r in snapshot.records.get("target", {}).values()
    }
    values = dict(direct)
    derived: set[Key] = set()
    team_at = team_at or teams_at_start(snapshot)
    for (scope, rep, period, metric), value in direct.items():
        if scope != "rep":
            continue
        team = team_at(rep, period)
        key: Key = ("team", team, period, metric)
        if team is not None and key not in direct:
            values[key] = values.get(key, Decimal(0)) + value
            derived.add(key)
    for (scope, _team, period, metric), value in list(values.items()):
        key = ("company", None, period, metric)
        if scope == "team" and key not in direct:
            values[key] = values.get(key, Decimal(0)) + value
            derived.add(key)
    return values, derived


def _amount(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_EVEN))


def figure(value: Decimal, metric: str) -> str | float:
    return _amount(value) if metric in AMOUNT_METRICS else float(value)


STANDINGS = ("not_begun", "under_way", "over")  # where a period stands at `as_of`


def period_standing(elapsed_of_total: tuple[int, int]) -> str:
    """One of `STANDINGS`, from `period.elapsed(as_of)`."""
    elapsed, total = elapsed_of_total
    return "not_begun" if elapsed == 0 else "over" if elapsed == total else "under_way"


def target_row(key: Key, target: Decimal, actual: Decimal, derived: bool, period: Period,
               elapsed_of_total: tuple[int, int]) -> dict[str, Any]:
    """One target's row; `elapsed_of_total` is `period.elapsed(as_of)`."""
    scope, scope_id, _, metric = key
    elapsed, total = elapsed_of_total
    if elapsed == 0:
        pace: Decimal | None = None
    elif elapsed == total:
        pace = actual
    else:
        pace = actual * total / elapsed
    expected = target * elapsed / total
    return {
        "scope": scope,
        "scope_id": scope_id,
        "period": period.key,
        "metric": metric,
        "target": str(target),
        "derived": derived,
        "actual": str(actual) if metric in AMOUNT_METRICS else int(actual),
        "attainment": float(actual / target) if target else None,
        "elapsed_share": elapsed / total,
        "expected_at_as_of": figure(expected, metric),
        "pace": None if pace is None else figure(pace, metric),
        "pace_attainment": float(pace / target) if pace is not None and target else None,
        "on_pace": None if elapsed == 0 else actual >= expected,
    }


def answer_order(periods: dict[str, Period]) -> Callable[[Key], tuple[Any, ...]]:
    """The sort key of the answer's rows: by period start, longer periods first among those
    starting together, then metric, scope and scope id."""
    order = {p: (period.start, -period.end.timestamp()) for p, period in periods.items()}
    return lambda k: (*order[k[2]], k[3], SCOPES.index(k[0]), k[1] or "")


def targets(snapshot: Joined, as_of: datetime, *, scope: str | None = None,
            period: str | None = None, metric: str | None = None, team: str | None = None,
            rep: str | None = None, standing: str | None = None,
            actuals_of: Actuals | None = None) -> dict[str, Any]:
    """`GET /v1/targets`: every target (set or rolled up) with actual, attainment and pace;
    `standing` keeps those whose period stands so at `as_of` (one of `STANDINGS`).
    The actuals come from `actuals_of` (default: `actuals` over the `Snapshot`)."""
    values, derived = target_values(snapshot)
    within = Period.parse(period, snapshot.tz) if period else None
    periods = {p: Period.parse(p, snapshot.tz) for p in {key[2] for key in values}}
    elapsed = {p: period.elapsed(as_of) for p, period in periods.items()}
    team_at = teams_at_start(snapshot)

    def keeps(key: Key) -> bool:
        k_scope, k_id, k_period, k_metric = key
        if (scope and k_scope != scope) or (metric and k_metric != metric):
            return False
        if within and not periods[k_period].within(within):
            return False
        if standing and period_standing(elapsed[k_period]) != standing:
            return False
        if rep and not (k_scope == "rep" and k_id == rep):
            return False
        if team and not ((k_scope == "team" and k_id == team) or (
                k_scope == "rep" and team_at(k_id, k_period) == team)):
            return False
        return True

    kept = [k for k in values if keeps(k)]
    if actuals_of is None:
        assert isinstance(snapshot, Snapshot)
        totals = actuals(snapshot, {k[3] for k in kept}, as_of)
    else:
        totals = actuals_of({k[3] for k in kept}, as_of)
    kept.sort(key=answer_order(periods))
    return {"as_of": as_of.isoformat(), "targets": [
        target_row(k, values[k], totals.get(k, Decimal(0)), k in derived, periods[k[2]],
                   elapsed[k[2]])
        for k in kept]}
