"""Alert rules: when each condition holds, computed from event time. Pure (no I/O, no clock).

Every rule answers one question for one subject at a moment `now`, from the fact
records of events that occurred by then (`Context.at`: a record that already holds later
events, because a late one made the engine judge the past again, is read as it stood
then): since when does the condition hold (or from when will it hold, if nothing else
happens), and until when. A condition
holds from the instant it is reached (`since <= now`) and stops at `until`
(exclusive) or when a later event changes the answer. docs/ALERTS.md defines each
rule in words; `tests/oracles/alerts.py` computes the same independently.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from heapq import merge
from itertools import groupby
from operator import itemgetter
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sortedcontainers import SortedList

from events.vocabulary import DEFAULT_STAGES, DEFAULT_TIMEZONE, ts
from projections.facts import Record, as_of
from projections.stats import days_between, median, quantile_of_sorted

RULES = ("stalled_deal", "inactive_deal", "lead_sla", "churn_risk", "engagement_drop", "pace")
KINDS = {"stalled_deal": "deal", "inactive_deal": "deal", "lead_sla": "lead",
         "churn_risk": "customer", "engagement_drop": "customer", "pace": "target"}
PACE_METRICS = ("won_value", "won_deals", "activities")


def instant(value: str) -> datetime:
    """The moment in UTC. Two aware datetimes with different zone objects compare by asking
    both zones for their offsets; in one zone they compare directly (bisect over thousands)."""
    return datetime.fromisoformat(value).astimezone(UTC)


@dataclass(frozen=True)
class RuleSettings:
    """A tenant's thresholds. Per-stage stall days come from the pipeline (`stall_days`)."""

    stall_days: float = 21.0  # per stage, while fewer than stall_min_samples won deals
    stall_quantile: float = 0.8
    stall_min_samples: int = 10
    inactive_days: float = 14.0
    lead_sla_hours: float = 24.0
    churn_gap_factor: float = 2.0
    churn_min_orders: int = 3
    engagement_recent_days: float = 30.0
    engagement_prior_days: float = 90.0
    engagement_drop: float = 0.5  # recent rate below this share of the prior rate
    pace_floor: float = 0.8
    pace_from: float = 1 / 3  # share of the period after which pace is judged
    key_customer_share: float = 0.2  # top share of customers by booked value
    tz: str = DEFAULT_TIMEZONE


@dataclass(frozen=True)
class Assessment:
    """The condition for one subject as seen at `now`.

    `since`: the moment it holds from (may be in the future: the due time); None when it
    will not hold without a new event. `until`: when it stops holding by time alone.
    """

    rule: str
    key: str
    since: datetime | None
    until: datetime | None = None
    evidence: str = ""
    severity: str = "medium"
    owner: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    def holds(self, now: datetime) -> bool:
        return self.since is not None and self.since <= now and (
            self.until is None or now < self.until)

    def next_change(self, now: datetime) -> datetime | None:
        """The next moment the answer changes with no new event."""
        if self.since is not None and self.since > now:
            return self.since
        if self.holds(now):
            return self.until
        return None


def _days(value: float) -> timedelta:
    return timedelta(days=value)


class Context:
    """One tenant's fact records with the indexes the rules share (kept in step by `touch`)."""

    def __init__(self, records: dict[str, dict[str, Record]], settings: RuleSettings) -> None:
        self.records = records
        self.settings = settings
        # The latest moment of any event folded in (None: not tracked). A rule asked about a
        # moment at or after it reads the records as they are; before it, as they stood.
        self.horizon: datetime | None = None
        self._closings: list[datetime] | None = None  # won deals' closing moments, ascending
        self._closed_deals: list[str] = []  # ... and those deals, in the same order
        self._thresholds_then: dict[tuple[int, int], dict[str, tuple[float, str]]] = {}
        self.tz = ZoneInfo(settings.tz)
        self._thresholds: dict[str, tuple[float, str]] | None = None
        # The thresholds before the last change to won deals (None: unknown)
        self._previous_thresholds: dict[str, tuple[float, str]] | None = None
        self._won_by_rep: dict[str, WonDeals] | None = None
        self._pace_targets: dict[tuple[str, str, str | None], list[PaceTarget]] | None = None
        self._members: dict[str, list[tuple[str, datetime | None, datetime | None]]] | None = None
        self.activity_times: dict[str, list[datetime]] = defaultdict(list)  # per rep, UTC
        for kind in ("deal", "lead", "customer"):
            for rec in records.get(kind, {}).values():
                for activity in rec.get("activities", ()):
                    self.activity_times[activity[2]].append(instant(activity[0]))
        for times in self.activity_times.values():
            times.sort()
        # Per customer asked about, its activities' moments as logged (their own offsets)
        # and when its orders were booked, ascending: listed on first use, kept in step after.
        self._customer_times: dict[str, list[datetime]] = {}
        self._booked: dict[str, list[datetime]] = {}
        self.orders_by_customer: dict[str, set[str]] = defaultdict(set)
        self.customer_value: dict[str, Decimal] = defaultdict(Decimal)
        self.deals_by_customer: dict[str, set[str]] = defaultdict(set)
        # Per won deal, its days in each stage: what stall thresholds learn from, worked out
        # once per deal as it is won, not for every won deal whenever another one is.
        self._won_dwell: dict[str, dict[str, float]] = {
            did: won_dwell(deal) for did, deal in records.get("deal", {}).items()
            if deal["status"] == "won"}
        # ... and per stage, those days of every won deal, ascending: a threshold is one
        # quantile of a sorted list, not a sort of every won deal's days after each win.
        self._dwell_samples: dict[str, SortedList] = defaultdict(SortedList)
        for dwell in self._won_dwell.values():
            self._add_dwell(dwell)
        for oid, order in records.get("order", {}).items():
            self.orders_by_customer[order["customer"]].add(oid)
            self.customer_value[order["customer"]] += Decimal(order["amount"])
        # Every positive booked value, ascending: the key tier's cutoff is one index into it,
        # not a ranking of every customer after each order.
        self._values = SortedList(v for v in self.customer_value.values() if v > 0)
        # Open deals by their current stage: whose stall a moved threshold can move.
        self.open_deals: dict[str, set[str]] = defaultdict(set)
        for did, deal in records.get("deal", {}).items():
            if deal.get("customer"):
                self.deals_by_customer[deal["customer"]].add(did)
            if deal["status"] == "open":
                self.open_deals[deal["stages"][-1][0]].add(did)

    def kind(self, kind: str) -> dict[str, Record]:
        return self.records.setdefault(kind, {})

    def touch(self, kind: str, key: str, before: Record | None) -> None:
        """Record `kind/key` changed (its previous record: `before`): refresh indexes."""
        rec = self.kind(kind)[key]
        for activity in rec.get("activities", ())[len((before or {}).get("activities", ())):]:
            at = ts(activity[0])
            insort(self.activity_times[activity[2]], at.astimezone(UTC))  # as `instant` reads it
            if kind == "customer" and key in self._customer_times:
                insort(self._customer_times[key], at)
        if kind == "order" and before is not None and before["booked_at"] != rec["booked_at"]:
            # Booked again (rare): it stays the order of the customer it was first booked for
            for customer, orders in self.orders_by_customer.items():
                if key in orders:
                    self._booked.pop(customer, None)
        if kind == "order" and before is None:
            self.orders_by_customer[rec["customer"]].add(key)
            if rec["customer"] in self._booked:
                insort(self._booked[rec["customer"]], ts(rec["booked_at"]))
            value = self.customer_value[rec["customer"]]
            if value > 0:
                self._values.remove(value)
            self.customer_value[rec["customer"]] = value = value + Decimal(rec["amount"])
            if value > 0:
                self._values.add(value)
        elif kind == "deal":
            if rec.get("customer"):
                self.deals_by_customer[rec["customer"]].add(key)
            if before is not None and before["status"] == "open":
                self.open_deals[before["stages"][-1][0]].discard(key)
            if rec["status"] == "open":
                self.open_deals[rec["stages"][-1][0]].add(key)
            if rec["status"] == "won" or (before and before["status"] == "won"):
                if (dwell := self._won_dwell.pop(key, None)) is not None:
                    self._remove_dwell(dwell)
                if rec["status"] == "won":
                    self._won_dwell[key] = dwell = won_dwell(rec)
                    self._add_dwell(dwell)
                self._previous_thresholds, self._thresholds = self._thresholds, None
                self._closings = None
                self._thresholds_then.clear()
                if self._won_by_rep is not None:  # kept in step, not listed again from every deal
                    if before and before["status"] == "won":
                        self._won_by_rep[before["owner"]].remove(before)
                    if rec["status"] == "won":
                        self._won_by_rep.setdefault(rec["owner"], WonDeals([], [])).add(rec)
        elif kind == "pipeline":
            self._previous_thresholds = self._thresholds = None
            self._thresholds_then.clear()
        elif kind == "target":
            self._pace_targets = None
        elif kind == "rep":
            self._members = None

    def current(self, now: datetime) -> bool:
        """Whether every event folded in occurred by `now` (the records are as they stood)."""
        return self.horizon is None or now >= self.horizon

    def at(self, kind: str, key: str, now: datetime) -> Record | None:
        """`kind/key` as it stood at `now` (None: not there yet)."""
        rec = self.kind(kind).get(key)
        if rec is None or self.current(now):
            return rec
        return as_of(rec, now)

    def customer_times(self, customer: str) -> list[datetime]:
        """When the customer's activities occurred, ascending (do not change the list)."""
        if customer not in self._customer_times:
            activities = self.kind("customer").get(customer, {}).get("activities", ())
            self._customer_times[customer] = sorted(ts(a[0]) for a in activities)
        return self._customer_times[customer]

    def booked(self, customer: str) -> list[datetime]:
        """When the customer's orders were booked, ascending (do not change the list)."""
        if customer not in self._booked:
            orders = self.kind("order")
            self._booked[customer] = sorted(ts(orders[o]["booked_at"])
                                            for o in self.orders_by_customer.get(customer, ()))
        return self._booked[customer]

    def _add_dwell(self, dwell: dict[str, float]) -> None:
        for stage, days in dwell.items():
            self._dwell_samples[stage].add(days)

    def _remove_dwell(self, dwell: dict[str, float]) -> None:
        for stage, days in dwell.items():
            self._dwell_samples[stage].remove(days)

    # --- shared facts ---------------------------------------------------------

    @property
    def stages(self) -> tuple[str, ...]:
        pipeline = next(iter(self.kind("pipeline").values()), None)
        return tuple(pipeline["stages"]) if pipeline else DEFAULT_STAGES

    def thresholds(self) -> dict[str, tuple[float, str]]:
        """Per open stage: stall threshold in days and where it came from."""
        if self._thresholds is None:
            pipeline = next(iter(self.kind("pipeline").values()), None) or {}
            self._thresholds = self._threshold_table(pipeline, self._dwell_samples)
        return self._thresholds

    def thresholds_at(self, now: datetime) -> dict[str, tuple[float, str]]:
        """`thresholds()` as they stood at `now`: the pipeline then, the deals won by then."""
        if self.current(now):
            return self.thresholds()
        won = bisect_right(self.closings(), now)
        pipeline = next(iter(self.kind("pipeline").values()), None)
        then = (as_of(pipeline, now) if pipeline else None) or {}
        key = (won, len(then.get("log", ())))
        if key not in self._thresholds_then:
            samples: dict[str, list[float]] = defaultdict(list)
            for deal in self._closed_deals[:won]:
                for stage, days in self._won_dwell[deal].items():
                    samples[stage].append(days)
            self._thresholds_then[key] = self._threshold_table(
                then, {stage: sorted(days) for stage, days in samples.items()})
        return self._thresholds_then[key]

    def closings(self) -> list[datetime]:
        """When the won deals closed (UTC), ascending (do not change the list)."""
        if self._closings is None:
            deals = self.kind("deal")
            closings = sorted((instant(deals[d]["closed_at"]), d) for d in self._won_dwell)
            self._closings = [at for at, _ in closings]
            self._closed_deals = [d for _, d in closings]
        return self._closings

    def _threshold_table(self, pipeline: Record, dwell: Any) -> dict[str, tuple[float, str]]:
        configured = pipeline.get("stall_days") or {}
        stages = tuple(pipeline["stages"]) if pipeline.get("stages") else DEFAULT_STAGES
        s = self.settings
        result = {}
        for stage in stages:
            samples = dwell.get(stage, ())
            if len(samples) >= s.stall_min_samples:
                value = quantile_of_sorted(samples, s.stall_quantile)
                assert value is not None
                result[stage] = (value, f"p{round(s.stall_quantile * 100)} of "
                                        f"{len(samples)} won deals")
            elif stage in configured:
                result[stage] = (float(configured[stage]), "configured")
            else:
                result[stage] = (s.stall_days, "default")
        return result

    def learned(self) -> bool:
        """Whether some stage's threshold has (ever) been learned from won deals."""
        return any(len(v) >= self.settings.stall_min_samples
                   for v in self._dwell_samples.values())

    def moved_thresholds(self) -> tuple[set[str], set[str]] | None:
        """The stages whose threshold rose, and those whose threshold fell, with the last
        change to won deals; None when the thresholds before it are not known."""
        previous, current = self._previous_thresholds, self.thresholds()
        if previous is None or previous.keys() != current.keys():
            return None
        rose = {stage for stage, (days, _) in current.items() if days > previous[stage][0]}
        fell = {stage for stage, (days, _) in current.items() if days < previous[stage][0]}
        return rose, fell

    def won_by_rep(self) -> dict[str, WonDeals]:
        """Per owner, their won deals in the order they closed."""
        if self._won_by_rep is None:  # once; `touch` keeps it in step after that
            won: dict[str, list[tuple[datetime, Decimal]]] = defaultdict(list)
            for deal in self.kind("deal").values():
                if deal["status"] == "won":
                    won[deal["owner"]].append((instant(deal["closed_at"]),
                                               Decimal(deal["amount"])))
            self._won_by_rep = {}
            for rep, deals in won.items():
                deals.sort(key=lambda d: d[0])
                self._won_by_rep[rep] = WonDeals([d[0] for d in deals], [d[1] for d in deals])
        return self._won_by_rep

    def pace_targets(self) -> dict[tuple[str, str, str | None], list[PaceTarget]]:
        """Targets by (metric, scope, scope_id): what an activity or a won deal counts
        towards, without reading every target for every event."""
        if self._pace_targets is None:
            index: dict[tuple[str, str, str | None], list[PaceTarget]] = defaultdict(list)
            for key, target in self.kind("target").items():
                start, end = period_bounds(target["period"], self.tz)
                index[target["metric"], target["scope"], target.get("scope_id")].append(
                    PaceTarget(key, start.astimezone(UTC), end.astimezone(UTC)))
            self._pace_targets = index
        return self._pace_targets

    def members(self, team: str) -> list[tuple[str, datetime | None, datetime | None]]:
        """(rep, from, to) for every interval [from, to) in which a rep belonged to `team`
        (rep_at's reading; None: open-ended), reps in the order they joined."""
        if self._members is None:
            spans: dict[str, list[tuple[str, datetime | None, datetime | None]]] = (
                defaultdict(list))
            for rep, rec in self.kind("rep").items():
                history = rec.get("history") or []
                for index, entry in enumerate(history):
                    begin = instant(entry[0]) if index else None
                    stop = instant(history[index + 1][0]) if index + 1 < len(history) else None
                    spans[entry[1]].append((rep, begin, stop))
            self._members = spans
        return self._members.get(team, [])

    def key_customers(self) -> set[str]:
        """The top value tier: the top `key_customer_share` of customers by booked value."""
        cutoff = self._key_cutoff()
        if cutoff is None:
            return set()
        return {c for c, v in self.customer_value.items() if v >= cutoff}

    def is_key_customer(self, customer: str | None) -> bool:
        """Whether `customer` is in `key_customers()`, without listing them."""
        cutoff = self._key_cutoff()
        value = self.customer_value.get(customer) if customer is not None else None
        return cutoff is not None and value is not None and value >= cutoff

    def _key_cutoff(self) -> Decimal | None:
        # The lowest value of the tier: the `count`-th highest positive value (ties included).
        count = int(len(self._values) * self.settings.key_customer_share)
        return self._values[len(self._values) - count] if count else None

    def rep_at(self, rep: str | None, moment: datetime) -> dict[str, str | None]:
        history = self.kind("rep").get(rep or "", {}).get("history")
        if not history:
            return {"team": None, "manager": None}
        index = bisect_right([ts(h[0]) for h in history], moment) - 1
        entry = history[max(index, 0)]
        return {"team": entry[1], "manager": entry[2]}

    def account_owner(self, customer: str) -> str | None:
        """The owner of the customer's most recently created deal."""
        deals = [self.kind("deal")[d] for d in self.deals_by_customer.get(customer, ())]
        return max(deals, key=lambda d: (d["created_at"], d["id"]))["owner"] if deals else None


@dataclass(frozen=True)
class PaceTarget:
    """A target's key and its period as [start, end) in UTC."""

    key: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class WonDeals:
    """One owner's won deals: when each closed, ascending, and its amount. Deals closed at
    the same moment may stand in any order: a pace sums whole runs of equal moments."""

    closed: list[datetime]
    amounts: list[Decimal]

    def add(self, deal: Record) -> None:
        at = bisect_right(self.closed, closed := instant(deal["closed_at"]))
        self.closed.insert(at, closed)
        self.amounts.insert(at, Decimal(deal["amount"]))

    def remove(self, deal: Record) -> None:
        """Take out a deal as it was added (one of those equal to it, which is the same)."""
        closed, amount = instant(deal["closed_at"]), Decimal(deal["amount"])
        for at in range(bisect_left(self.closed, closed), bisect_right(self.closed, closed)):
            if self.amounts[at] == amount:
                del self.closed[at], self.amounts[at]
                return
        raise ValueError(f"no deal won at {closed} for {amount}")


def won_dwell(deal: Record) -> dict[str, float]:
    """Per stage, total days a closed deal spent in it over all visits."""
    result: dict[str, float] = defaultdict(float)
    stages = deal["stages"]
    for index, (stage, entered) in enumerate(stages):
        left = stages[index + 1][1] if index + 1 < len(stages) else deal["closed_at"]
        result[stage] += days_between(ts(entered), ts(left))
    return dict(result)


def _fmt(days: float) -> str:
    return f"{days:.1f}"


# --- the rules -------------------------------------------------------------


def stalled_deal(ctx: Context, key: str, now: datetime) -> Assessment:
    deal = ctx.at("deal", key, now)
    if deal is None or deal["status"] != "open":
        return Assessment("stalled_deal", key, None)
    stage, entered = deal["stages"][-1][0], ts(deal["stages"][-1][1])
    threshold, basis = ctx.thresholds_at(now).get(stage, (ctx.settings.stall_days, "default"))
    in_stage = max(days_between(entered, now), 0.0)
    severity = "high" if ctx.is_key_customer(deal.get("customer")) else "medium"
    return Assessment(
        "stalled_deal", key, entered + _days(threshold), None,
        f"in {stage} {_fmt(in_stage)} days; threshold {_fmt(threshold)} ({basis})",
        severity, deal["owner"],
        {"stage": stage, "entered_at": entered.isoformat(), "days_in_stage": in_stage,
         "threshold_days": threshold, "customer": deal.get("customer"),
         "amount": deal.get("amount")})


def inactive_deal(ctx: Context, key: str, now: datetime) -> Assessment:
    deal = ctx.at("deal", key, now)
    if deal is None or deal["status"] != "open":
        return Assessment("inactive_deal", key, None)
    last = ts(deal.get("last_activity_at") or deal["created_at"])
    due = last + _days(ctx.settings.inactive_days)
    next_step = ts(deal["next_step_due"]) if deal.get("next_step_due") else None
    if next_step is not None and next_step > due:
        due = next_step  # a planned next step: not stalled until it is overdue
    idle = max(days_between(last, now), 0.0)
    evidence = f"no activity for {_fmt(idle)} days; threshold {_fmt(ctx.settings.inactive_days)}"
    if next_step is not None and next_step > last:
        evidence += f"; next step due {next_step.isoformat()}"
    severity = "high" if ctx.is_key_customer(deal.get("customer")) else "medium"
    return Assessment("inactive_deal", key, due, None, evidence, severity, deal["owner"],
                      {"last_activity_at": last.isoformat(), "idle_days": idle,
                       "customer": deal.get("customer"), "amount": deal.get("amount")})


def lead_sla(ctx: Context, key: str, now: datetime) -> Assessment:
    lead = ctx.at("lead", key, now)
    if lead is None or lead.get("status", "open") != "open":
        return Assessment("lead_sla", key, None)  # qualified, disqualified or converted
    start = ts(lead.get("assigned_at") or lead["created_at"])
    if lead.get("last_activity_at") and ts(lead["last_activity_at"]) >= start:
        return Assessment("lead_sla", key, None)  # contacted
    hours = max((now - start).total_seconds() / 3600, 0.0)
    what = "assigned" if lead.get("assigned_at") else "created"
    return Assessment("lead_sla", key, start + timedelta(hours=ctx.settings.lead_sla_hours),
                      None, f"{what} {hours:.1f} h ago, not contacted; SLA "
                            f"{ctx.settings.lead_sla_hours:g} h", "medium", lead.get("owner"),
                      {"start": start.isoformat(), "hours": hours})


def churn_risk(ctx: Context, key: str, now: datetime) -> Assessment:
    booked = ctx.booked(key)
    if not ctx.current(now):
        booked = booked[:bisect_right(booked, now)]
    s = ctx.settings
    if len(booked) < s.churn_min_orders:
        return Assessment("churn_risk", key, None)
    typical = median([days_between(a, b) for a, b in zip(booked, booked[1:], strict=False)])
    assert typical is not None
    since_last = max(days_between(booked[-1], now), 0.0)
    key_customer = ctx.is_key_customer(key)
    return Assessment(
        "churn_risk", key, booked[-1] + _days(s.churn_gap_factor * typical), None,
        f"no order for {_fmt(since_last)} days; typical gap {_fmt(typical)} days "
        f"x {s.churn_gap_factor:g}", "high" if key_customer else "medium",
        ctx.account_owner(key),
        {"last_order_at": booked[-1].isoformat(), "typical_gap_days": typical,
         "orders": len(booked), "key_customer": key_customer})


def _window_counts(times: list[datetime], at: datetime, s: RuleSettings) -> tuple[int, int]:
    """How many of the ascending `times` fall in (at - recent, at] and in the prior window
    before it: three bisections, not a pass over every activity for each edge looked at."""
    recent_from = at - _days(s.engagement_recent_days)
    prior_from = recent_from - _days(s.engagement_prior_days)
    recent_start = bisect_right(times, recent_from)
    return (bisect_right(times, at) - recent_start,
            recent_start - bisect_right(times, prior_from))


def _engaged(times: list[datetime], at: datetime, s: RuleSettings) -> bool | None:
    """Whether the recent rate is below the drop share of the prior rate at `at`."""
    recent, prior = _window_counts(times, at, s)
    return prior > 0 and (recent / s.engagement_recent_days
                          < s.engagement_drop * prior / s.engagement_prior_days)


def _shifted(times: list[datetime], rank: int, shift: timedelta,
             indexes: range) -> Iterator[tuple[datetime, int, int]]:
    for i in indexes:
        yield times[i] + shift, rank, i


def _edges_after(times: list[datetime], now: datetime,
                 shifts: tuple[timedelta, ...]) -> Iterator[datetime]:
    """Ascending, the distinct instants after `now` among the ascending `times` shifted by
    each of `shifts`: merged lazily, as far as the caller reads. Of equal instants the one
    from the first shift, then the earliest time, stands for them (as in a set built in
    that order)."""
    streams = [_shifted(times, rank, shift, range(bisect_right(times, now - shift), len(times)))
               for rank, shift in enumerate(shifts)]
    for at, _run in groupby(merge(*streams), key=itemgetter(0)):
        yield at


def _edges_until(times: list[datetime], now: datetime,
                 shifts: tuple[timedelta, ...]) -> Iterator[datetime]:
    """The same instants at or before `now`, descending."""
    streams = [_shifted(times, rank, shift, range(bisect_right(times, now - shift) - 1, -1, -1))
               for rank, shift in enumerate(shifts)]
    for _at, run in groupby(merge(*streams, reverse=True), key=itemgetter(0)):
        *_, first = run  # descending: the first shift's, earliest time's, comes last
        yield first[0]


def engagement_drop(ctx: Context, key: str, now: datetime) -> Assessment:
    s = ctx.settings
    logged = ctx.customer_times(key)
    times = logged[:bisect_right(logged, now)]
    if not times:
        return Assessment("engagement_drop", key, None)
    # Between activities the counts change only when one leaves a window: the edges are
    # the activities and the moments each leaves the recent and the prior window. The
    # answer is constant from one edge to the next (windows are half-open).
    shifts = (timedelta(0), _days(s.engagement_recent_days),
              _days(s.engagement_recent_days + s.engagement_prior_days))
    if _engaged(times, now, s):
        since = now
        for edge in _edges_until(times, now, shifts):
            if not _engaged(times, edge, s):
                break
            since = edge
        until = next((e for e in _edges_after(times, now, shifts)
                      if not _engaged(times, e, s)), None)
    else:
        since = next((e for e in _edges_after(times, now, shifts)  # type: ignore[assignment]
                      if _engaged(times, e, s)), None)
        until = None
    recent, prior = _window_counts(times, now, s)
    key_customer = ctx.is_key_customer(key)
    return Assessment(
        "engagement_drop", key, since, until,
        f"{recent} interactions in the last {s.engagement_recent_days:g} days; "
        f"{prior} in the {s.engagement_prior_days:g} days before",
        "high" if key_customer else "medium", ctx.account_owner(key),
        {"recent": recent, "prior": prior, "key_customer": key_customer})


@lru_cache(maxsize=4096)
def period_bounds(period: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """`2017`, `2017-Q1`, `2017-03` as [start, end) in the tenant's zone."""
    year = int(period[:4])
    if "-Q" in period:
        first = 3 * (int(period[6]) - 1) + 1
        months = 3
    elif len(period) == 7:
        first, months = int(period[5:7]), 1
    else:
        first, months = 1, 12
    end_month = first + months
    start = datetime(year, first, 1, tzinfo=tz)
    end = datetime(year + (end_month - 1) // 12, (end_month - 1) % 12 + 1, 1, tzinfo=tz)
    return start, end


def pace_actual(ctx: Context, target: Record, start: datetime, now: datetime) -> Decimal:
    """The target's metric achieved in [start, now]; activities by `rep_id`, won deals by
    owner, each in the team the rep belonged to at that moment."""
    scope, scope_id, metric = target["scope"], target.get("scope_id") or "", target["metric"]
    spans = [(scope_id, None, None)] if scope == "rep" else ctx.members(scope_id)
    total = Decimal(0)
    start, now = start.astimezone(UTC), now.astimezone(UTC)
    for rep, begin, stop in spans:
        low = max(start, begin) if begin else start
        if metric == "activities":
            times = ctx.activity_times.get(rep, [])
            i, j = bisect_left(times, low), bisect_right(times, now)
            if stop is not None:
                j = min(j, bisect_left(times, stop))
            total += max(j - i, 0)
            continue
        won = ctx.won_by_rep().get(rep)
        if won is None:
            continue
        i, j = bisect_left(won.closed, low), bisect_right(won.closed, now)
        if stop is not None:
            j = min(j, bisect_left(won.closed, stop))
        if metric == "won_value":
            total = sum(won.amounts[i:j], total)  # exact: the same sum in any order
        else:
            total += max(j - i, 0)
    return total


def pace(ctx: Context, key: str, now: datetime) -> Assessment:
    target = ctx.at("target", key, now)
    s = ctx.settings
    if target is None or target["scope"] not in ("rep", "team") or (
            target["metric"] not in PACE_METRICS):
        return Assessment("pace", key, None)
    start, end = period_bounds(target["period"], ctx.tz)
    value = Decimal(target["value"])
    if now >= end or value <= 0:
        return Assessment("pace", key, None)
    actual = pace_actual(ctx, target, start, now)
    length = (end - start).total_seconds()
    floor = Decimal(str(s.pace_floor)) * value
    # projected = actual * length / elapsed < floor  <=>  elapsed > actual * length / floor;
    # at or past the floor already, never within the period (and a far-off crossing, such as
    # a target set in the wrong unit, would overflow a datetime).
    crossing = start + timedelta(seconds=float(actual / floor) * length) \
        if actual < floor else end
    since = max(start + timedelta(seconds=length * s.pace_from), crossing)
    elapsed = max((now - start).total_seconds(), 1.0)
    projected = actual * Decimal(length) / Decimal(elapsed)
    owner = target.get("scope_id") if target["scope"] == "rep" else None
    share = float(projected / value)
    return Assessment(
        "pace", key, since if since < end else None, end,
        f"{target['metric']} {actual} of {value} for {target['period']}; projected "
        f"{share:.0%} at the current run-rate; floor {s.pace_floor:.0%}",
        "high" if share < s.pace_floor / 2 else "medium", owner,
        {"scope": target["scope"], "scope_id": target.get("scope_id"),
         "period": target["period"], "metric": target["metric"], "actual": str(actual),
         "target": str(value), "projected_share": share})


ASSESS = {"stalled_deal": stalled_deal, "inactive_deal": inactive_deal, "lead_sla": lead_sla,
          "churn_risk": churn_risk, "engagement_drop": engagement_drop, "pace": pace}


def subjects(ctx: Context) -> list[tuple[str, str]]:
    """Every (rule, subject key) the tenant has."""
    out = [(rule, key) for key in ctx.kind("deal") for rule in ("stalled_deal", "inactive_deal")]
    out += [("lead_sla", key) for key in ctx.kind("lead")]
    customers = set(ctx.orders_by_customer) | set(ctx.kind("customer"))
    out += [(rule, key) for key in sorted(customers) for rule in ("churn_risk", "engagement_drop")]
    out += [("pace", key) for key in ctx.kind("target")]
    return out


Pair = tuple[str, str]  # (rule, subject key)


class Touched(NamedTuple):
    """What a change may alter: `always` re-assessed; `while_alerting` only if alerting
    (the change can only postpone the moment the condition holds, or end it: a pair not
    alerting keeps its timer, due no later than the new moment, which re-assesses it when it
    fires); `unless_alerting` only if not (the change can only bring that moment earlier:
    one holding now still holds, with the same end)."""

    always: set[Pair]
    while_alerting: set[Pair]
    unless_alerting: set[Pair]


def touched(ctx: Context, kind: str, key: str, before: Record | None) -> Touched:
    """The (rule, subject) pairs whose answer a change to `kind/key` may change."""
    rec = ctx.kind(kind)[key]
    out: set[Pair] = set()
    later: set[Pair] = set()
    sooner: set[Pair] = set()
    for activity in rec.get("activities", ())[len((before or {}).get("activities", ())):]:
        # an activity raises the actual: falling behind pace moves later, never earlier
        later |= _pace_of(ctx, ("activities",), activity[2], ts(activity[0]))
    if kind == "deal":
        out |= {("stalled_deal", key), ("inactive_deal", key)}
        if rec["status"] == "won" or (before is not None and before["status"] == "won"):
            # Thresholds learn from won deals: a stage's rising threshold moves its deals'
            # stall later, a falling one earlier. Pace counts won deals.
            moved = ctx.moved_thresholds()
            if moved is None:
                out |= {("stalled_deal", d) for deals in ctx.open_deals.values() for d in deals}
            else:
                for stage in moved[0]:  # rose
                    later |= {("stalled_deal", d) for d in ctx.open_deals.get(stage, ())}
                for stage in moved[1]:  # fell
                    sooner |= {("stalled_deal", d) for d in ctx.open_deals.get(stage, ())}
            for owner in {rec["owner"], (before or rec)["owner"]}:
                out |= _pace_of(ctx, ("won_value", "won_deals"), owner,
                                ts(rec.get("closed_at") or (before or rec)["closed_at"]))
        if rec.get("customer"):
            out.add(("churn_risk", rec["customer"]))  # the account owner may change
    elif kind == "lead":
        out.add(("lead_sla", key))
    elif kind == "customer":
        out |= {("engagement_drop", key), ("churn_risk", key)}
    elif kind == "order":
        out |= {("churn_risk", rec["customer"]), ("engagement_drop", rec["customer"])}
    elif kind == "target":
        out.add(("pace", key))
    elif kind == "pipeline":
        out |= {("stalled_deal", d) for deals in ctx.open_deals.values() for d in deals}
    elif kind == "rep":
        out |= {("pace", k) for k, t in ctx.kind("target").items()
                if t["scope"] == "team" and t["metric"] in PACE_METRICS}
    return Touched(out, later - out, sooner - out)


def _pace_of(ctx: Context, metrics: tuple[str, ...], rep: str | None,
             at: datetime) -> set[tuple[str, str]]:
    """Pace targets that count what `rep` did at `at`."""
    team = ctx.rep_at(rep, at)["team"]
    index, moment = ctx.pace_targets(), at.astimezone(UTC)
    out = set()
    for metric in metrics:
        for scope, scope_id in (("rep", rep), ("team", team)):
            for target in index.get((metric, scope, scope_id), ()):
                if target.start <= moment < target.end:
                    out.add(("pace", target.key))
    return out


def rejudged(ctx: Context, kind: str, key: str, before: Record | None,
             since: datetime) -> set[Pair]:
    """The pairs whose answer a late change to `kind/key` (one that occurred at `since`,
    before events already folded in) may have changed at any moment from `since` on:
    `touched`, whether alerting or not, and when thresholds move, every deal open then."""
    may = touched(ctx, kind, key, before)
    pairs = may.always | may.while_alerting | may.unless_alerting
    rec = ctx.kind(kind)[key]
    won = kind == "deal" and (rec["status"] == "won" or (before or {}).get("status") == "won")
    if (won and ctx.learned()) or kind == "pipeline":
        pairs |= {("stalled_deal", d) for d, deal in ctx.kind("deal").items()
                  if deal["status"] == "open" or ts(deal["closed_at"]) >= since}
    return pairs


def moments(ctx: Context, rule: str, key: str, after: datetime,
            until: datetime) -> list[datetime]:
    """When the events occurred, in (after, until], that the pair's answer reads (its
    subject's own and, for some rules, others'), ascending: between them the answer changes
    only at `next_change`, so judging the past again looks at these and those."""
    low, high = after.astimezone(UTC), until.astimezone(UTC)

    def within(times: list[datetime]) -> list[datetime]:  # ascending
        return times[bisect_right(times, low):bisect_right(times, high)]

    def own(kind: str, activities: bool) -> list[datetime]:
        rec = ctx.kind(kind).get(key, {})
        entries = [*rec.get("log", ()), *(rec.get("activities", ()) if activities else ())]
        return [m for m in (ts(e[0]) for e in entries) if low < m <= high]

    if rule == "stalled_deal":
        pipeline = next(iter(ctx.kind("pipeline").values()), {})
        closings, deals = ctx.closings(), ctx.kind("deal")
        closed = ctx._closed_deals[bisect_right(closings, low):bisect_right(closings, high)]  # noqa: SLF001
        # as each was written: a stall a threshold's fall starts then carries that moment
        out = own("deal", False) + [ts(deals[d]["closed_at"]) for d in closed] + [
            m for m in (ts(e[0]) for e in pipeline.get("log", ())) if low < m <= high]
    elif rule == "inactive_deal":
        out = own("deal", True)
    elif rule == "lead_sla":
        out = own("lead", True)
    elif rule == "churn_risk":
        out = [m for m in ctx.booked(key) if low < m <= high]
    elif rule == "engagement_drop":
        out = [m for m in ctx.customer_times(key) if low < m <= high]
    elif rule == "pace" and (target := ctx.kind("target").get(key)) is not None:
        reps = ({target.get("scope_id") or ""} if target["scope"] == "rep"
                else {rep for rep, _, _ in ctx.members(target.get("scope_id") or "")})
        out = own("target", False)
        for rep in reps:
            out += within(ctx.activity_times.get(rep, []))
            wins = ctx.won_by_rep().get(rep)
            out += within(wins.closed) if wins else []
            out += [m for m in (ts(h[0]) for h in ctx.kind("rep").get(rep, {}).get("history", ()))
                    if low < m <= high]
    else:
        return []
    return sorted(set(out))
