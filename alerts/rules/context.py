"""One tenant's fact records with the indexes the rules share, kept in step by `touch`."""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sortedcontainers import SortedList

from alerts.rules.periods import PaceTarget, period_bounds
from alerts.rules.settings import RuleSettings, instant
from alerts.rules.won_deals import WonDeals, won_dwell
from events.vocabulary import DEFAULT_STAGES, ts
from projections.facts import Record, as_of
from projections.stats import quantile_of_sorted


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

