"""A tenant's facts joined for reading: who owned what, in which team, when.

Pure: built from the fact records (see `facts.py`), it resolves each deal, lead
and activity to its dimensions as docs/METRICS.md defines them, and applies the
contract's filters. Views (funnel, breakdown, ...) read only from here.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from events.vocabulary import DEFAULT_STAGES, DEFAULT_TIMEZONE, ts
from projections.facts import Record

ALL_PERIODS = ("day", "week", "month", "quarter", "year")


@dataclass(frozen=True)
class Filters:
    start: date | None = None  # `from`
    end: date | None = None  # `to`
    dims: dict[str, str] = field(default_factory=dict)

    def keeps_dims(self, dims: dict[str, str | None]) -> bool:
        return all(dims.get(name) == value for name, value in self.dims.items())

    def keeps_day(self, day: date) -> bool:
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)


@dataclass(frozen=True)
class Deal:
    id: str
    created_at: datetime
    closed_at: datetime | None
    status: str
    amount: Decimal
    stages: list[tuple[str, datetime]]
    dims: dict[str, str | None]
    record: Record

    @property
    def period_at(self) -> datetime:
        return self.closed_at or self.created_at


@dataclass(frozen=True)
class Lead:
    id: str
    created_at: datetime
    converted: bool
    dims: dict[str, str | None]
    record: Record


@dataclass(frozen=True)
class Order:
    id: str
    booked_at: datetime
    amount: Decimal
    paid: Decimal
    payments: list[tuple[datetime, Decimal]]
    customer: str
    deal: str | None
    dims: dict[str, str | None]
    record: Record


@dataclass(frozen=True)
class Activity:
    at: datetime
    kind: str
    rep: str
    duration_min: Decimal | None
    dims: dict[str, str | None]


class Snapshot:
    """Everything one tenant's views need, with dimensions resolved once."""

    def __init__(self, records: dict[str, dict[str, Record]], tz: str = DEFAULT_TIMEZONE) -> None:
        self.tz = ZoneInfo(tz)
        self.records = records
        pipeline = next(iter(records.get("pipeline", {}).values()), None)
        self.stages: tuple[str, ...] = tuple(pipeline["stages"]) if pipeline else DEFAULT_STAGES
        self.pipeline: Record = pipeline or {}
        self._reps = {
            rid: [(ts(at), team, manager, region) for at, team, manager, region in r["history"]]
            for rid, r in records.get("rep", {}).items()
        }
        customers = records.get("customer", {})
        raw_deals = records.get("deal", {})
        raw_leads = records.get("lead", {})
        # A deal without lead_id still knows its lead if the lead says it converted into it.
        self._lead_of_deal = {r["deal"]: r for r in raw_leads.values() if r.get("deal")}
        self.deals = [self._deal(r, raw_leads, customers) for r in raw_deals.values()]
        by_id = {d.id: d for d in self.deals}
        self.leads = [self._lead(r, by_id) for r in raw_leads.values()]
        leads_by_id = {lead.id: lead for lead in self.leads}
        self.activities = list(self._activities(by_id, leads_by_id, customers))
        self.orders = [self._order(r, by_id, customers) for r in records.get("order", {}).values()]

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def period_key(self, moment: datetime, by: str) -> str:
        """`2017-03-05`, `2017-W09` (ISO week), `2017-03`, `2017-Q1` or `2017`, local time."""
        local = moment.astimezone(self.tz)
        if by == "day":
            return local.date().isoformat()
        if by == "week":
            year, week, _ = local.isocalendar()
            return f"{year:04d}-W{week:02d}"
        if by == "month":
            return f"{local.year:04d}-{local.month:02d}"
        if by == "quarter":
            return f"{local.year:04d}-Q{(local.month - 1) // 3 + 1}"
        if by == "year":
            return f"{local.year:04d}"
        raise ValueError(f"unknown period {by!r}")

    def team_members(self, team: str | None) -> list[str]:
        """The reps in `team` now (by their latest `rep.joined`/`rep.moved`)."""
        return sorted(r for r, history in self._reps.items() if history[-1][1] == team)

    def rep_at(self, rep: str | None, moment: datetime | None) -> dict[str, str | None]:
        """The rep's team, manager and region at `moment` (None: now)."""
        history = self._reps.get(rep or "")
        if not history:
            return {"team": None, "manager": None, "region": None}
        if moment is None:
            entry = history[-1]
        else:
            index = bisect_right([h[0] for h in history], moment) - 1
            entry = history[max(index, 0)]
        return {"team": entry[1], "manager": entry[2], "region": entry[3]}

    def _deal(self, r: Record, leads: dict[str, Record], customers: dict[str, Record]) -> Deal:
        closed_at = ts(r["closed_at"]) if r.get("closed_at") else None
        lead = leads.get(r.get("lead") or "") or self._lead_of_deal.get(r["id"], {})
        customer = customers.get(r.get("customer") or "", {})
        dims = {
            "rep": r["owner"],
            **self.rep_at(r["owner"], closed_at),
            "source": r.get("source") or lead.get("source"),
            "product": r.get("product"),
            "segment": customer.get("segment"),
        }
        stages = [(stage, ts(at)) for stage, at in r["stages"]]
        return Deal(r["id"], ts(r["created_at"]), closed_at, r["status"], Decimal(r["amount"]),
                    stages, dims, r)

    def _lead(self, r: Record, deals: dict[str, Deal]) -> Lead:
        created_at = ts(r["created_at"])
        team = self.rep_at(r.get("owner"), created_at)
        deal = deals.get(r.get("deal") or "")
        dims = {
            "rep": r.get("owner"),
            **team,
            "region": r.get("region") or team["region"],
            "source": r.get("source"),
            "product": deal.dims["product"] if deal else None,
            "segment": deal.dims["segment"] if deal else None,
        }
        return Lead(r["id"], created_at, r.get("status") == "converted", dims, r)

    def _order(self, r: Record, deals: dict[str, Deal], customers: dict[str, Record]) -> Order:
        booked_at = ts(r["booked_at"])
        deal = deals.get(r.get("deal") or "")
        rep = deal.dims["rep"] if deal else None
        dims = {
            "rep": rep,
            **self.rep_at(rep, booked_at),
            "source": deal.dims["source"] if deal else None,
            "product": r.get("product") or (deal.dims["product"] if deal else None),
            "segment": customers.get(r["customer"], {}).get("segment"),
        }
        # in business time (the record keeps them as they arrived), ties by payment id
        payments = [(at, Decimal(amount)) for at, amount, _pid in sorted(
            ((ts(at), amount, pid) for at, amount, pid in r["payments"]),
            key=lambda p: (p[0].astimezone(UTC), p[2]))]
        return Order(r["id"], booked_at, Decimal(r["amount"]), Decimal(r["paid"]), payments,
                     r["customer"], r.get("deal"), dims, r)

    def _activities(self, deals: dict[str, Deal], leads: dict[str, Lead],
                    customers: dict[str, Record]) -> Iterator[Activity]:
        parents: list[tuple[dict[str, Record], Any]] = [
            (self.records.get("deal", {}), lambda key: deals[key].dims),
            (self.records.get("lead", {}), lambda key: {"source": leads[key].dims["source"]}),
            (customers, lambda key: {"segment": customers[key].get("segment")}),
        ]
        for records, inherit in parents:
            for key, rec in records.items():
                inherited = inherit(key)
                for at, kind, rep, duration, _activity_id in rec.get("activities", ()):
                    moment = ts(at)
                    dims = {
                        "rep": rep,
                        **self.rep_at(rep, moment),
                        "source": inherited.get("source"),
                        "product": inherited.get("product"),
                        "segment": inherited.get("segment"),
                    }
                    yield Activity(moment, kind, rep,
                                   Decimal(duration) if duration is not None else None, dims)

    # --- selection, per docs/METRICS.md --------------------------------------

    def select_deals(self, filters: Filters, *, by_period: bool = False) -> list[Deal]:
        return [d for d in self.deals if filters.keeps_dims(d.dims) and filters.keeps_day(
            self.local_day(d.period_at if by_period else d.created_at))]

    def select_leads(self, filters: Filters) -> list[Lead]:
        return [lead for lead in self.leads if filters.keeps_dims(lead.dims)
                and filters.keeps_day(self.local_day(lead.created_at))]

    def select_orders(self, filters: Filters) -> list[Order]:
        return [o for o in self.orders if filters.keeps_dims(o.dims)
                and filters.keeps_day(self.local_day(o.booked_at))]

    def select_activities(self, filters: Filters) -> list[Activity]:
        return [a for a in self.activities if filters.keeps_dims(a.dims)
                and filters.keeps_day(self.local_day(a.at))]
