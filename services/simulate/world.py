"""A seeded, deterministic CRM world that yields contract event envelopes.

Over 400 lines: one world whose entities' timelines draw from one random stream in one
order; the order of draws is the seed's meaning, so it stays readable in one place.

Pure: no I/O and no wall clock. Every random draw comes from one `random.Random`,
so the same arguments always give the same stream. Each entity (lead, deal,
customer, order) is simulated as its own timeline; the timelines are merged by
(time, creation order) so entities are always created before anything names them.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from events.vocabulary import DEFAULT_STAGES, DEFAULT_TIMEZONE

TZ = ZoneInfo(DEFAULT_TIMEZONE)
REGIONS = ("north", "east", "south", "west")
# source: (share of leads, chance to qualify, deal-size factor)
SOURCES: dict[str, tuple[float, float, float]] = {
    "web": (0.35, 0.30, 0.8),
    "referral": (0.12, 0.65, 1.2),
    "event": (0.15, 0.45, 1.0),
    "cold_call": (0.23, 0.18, 0.9),
    "partner": (0.15, 0.55, 1.3),
}
# product line: (share of deals, list price)
PRODUCTS: dict[str, tuple[float, int]] = {
    "CRM Suite": (0.40, 30000),
    "Analytics Add-on": (0.25, 9000),
    "Mobile Sales": (0.20, 6000),
    "Implementation Services": (0.15, 15000),
}
# segment: (share of customers, deal-size factor, win factor)
SEGMENTS: dict[str, tuple[float, float, float]] = {
    "enterprise": (0.15, 3.0, 0.8),
    "mid": (0.35, 1.2, 1.0),
    "smb": (0.50, 0.45, 1.1),
}
INDUSTRIES = ("manufacturing", "retail", "finance", "healthcare", "education", "logistics",
              "software")
COMPETITORS = ("Salesforce", "HubSpot", "Fxiaoke", "Kingdee", "Zoho")
LOSS_REASONS = ("price", "competitor", "no budget", "timing", "feature gap")
QUALIFY_REASONS = ("budget confirmed", "need confirmed", "decision maker engaged")
DISQUALIFY_REASONS = ("no budget", "no need", "unreachable", "duplicate", "too small")
NAMES = ("Li Wei", "Wang Fang", "Zhang Min", "Liu Yang", "Chen Jing", "Yang Lei", "Zhao Qiang",
         "Huang Li", "Zhou Tao", "Wu Xia", "Xu Ming", "Sun Hui", "Ma Jun", "Zhu Lin", "Hu Bo",
         "Guo Yan", "He Ping", "Lin Na", "Luo Gang", "Gao Jie")
WORDS = ("Jinhua", "Huaxin", "Tianyu", "Hengtai", "Boda", "Zhongke", "Xinda", "Ruifeng",
         "Dongfang", "Haoyun", "Longsheng", "Minghui", "Anke", "Yida")
SUFFIXES = ("Tech", "Trading", "Foods", "Logistics", "Medical", "Textiles", "Software", "Motors")
CENT = Decimal("0.01")


@dataclass
class Rep:
    id: str
    name: str
    win: float  # win/qualify probability factor
    rate: float  # activity rate factor
    speed: float  # divides stage dwell times
    response_h: float  # mean hours to first contact of a new lead
    moves: list[tuple[datetime, int]]  # (from, team index), first entry = joined


@dataclass
class Customer:
    id: str
    segment: str
    region: str


def _money(x: float | Decimal) -> str:
    return str(Decimal(x).quantize(CENT))


def _round_price(x: float) -> Decimal:
    """Prices are quoted in whole hundreds."""
    return Decimal(max(100, round(x / 100) * 100))


def _office(t: datetime, rng: random.Random) -> datetime:
    """Move `t` forward into office hours (Mon–Fri 09:00–18:00): that is when reps work."""
    if t.weekday() < 5 and 9 <= t.hour < 18:
        return t
    d = t.date() if t.hour < 9 else t.date() + timedelta(days=1)
    while d.weekday() >= 5:
        d += timedelta(days=1)
    return datetime(d.year, d.month, d.day, 9, tzinfo=TZ) + timedelta(minutes=rng.uniform(0, 180))


def _days(x: float) -> timedelta:
    return timedelta(days=x)


class _World:
    def __init__(self, seed: int | str, start: datetime, end: datetime, *, teams: int,
                 reps_per_team: int, tenant: str | None, stages: Sequence[str],
                 leads_per_day: float, prefix: str, targets: bool) -> None:
        if not stages:
            raise ValueError("stages must not be empty")
        if teams < 1 or reps_per_team < 1:
            raise ValueError("need at least one team and one rep per team")
        self.rng = random.Random(seed)
        self.start, self.end = _aware(start), _aware(end)
        self.tenant, self.stages, self.prefix = tenant, tuple(stages), prefix
        self.leads_per_day = leads_per_day
        self.with_targets = targets
        self.teams = [(f"T-{k}", f"M-{k}", REGIONS[(k - 1) % len(REGIONS)])
                      for k in range(1, teams + 1)]
        self.reps_per_team = reps_per_team
        self.reps: list[Rep] = []
        self.counters: dict[str, int] = {}
        self.out: list[tuple[datetime, int, dict[str, Any]]] = []

    # --- plumbing -----------------------------------------------------------

    def nid(self, kind: str, width: int) -> str:
        n = self.counters.get(kind, 0) + 1
        self.counters[kind] = n
        return f"{kind}-{self.prefix}{n:0{width}d}"

    def emit(self, t: datetime, type_: str, data: dict[str, Any], actor: str | None = None) -> None:
        ev_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        if t > self.end:  # the window closes: later events simply have not happened yet
            return
        ev: dict[str, Any] = {"id": ev_id, "type": type_}
        if self.tenant is not None:
            ev["tenant"] = self.tenant
        ev["occurred_at"] = t.isoformat(timespec="seconds")
        if actor is not None:
            ev["actor"] = actor
        ev["data"] = data
        self.out.append((t, len(self.out), ev))

    def office(self, t: datetime) -> datetime:
        return _office(t, self.rng)

    def pick(self, table: Mapping[str, tuple[float, ...]]) -> str:
        return self.rng.choices(list(table), weights=[v[0] for v in table.values()])[0]

    def team_of(self, rep: Rep, t: datetime) -> int:
        team = rep.moves[0][1]
        for since, idx in rep.moves:
            if since <= t:
                team = idx
        return team

    # --- the organisation ---------------------------------------------------

    def organise(self) -> None:
        rng = self.rng
        for k, (team_id, manager_id, region) in enumerate(self.teams):
            for _ in range(self.reps_per_team):
                n = len(self.reps)
                rep = Rep(id=self.nid("R", 3),
                          name=NAMES[n % len(NAMES)] + ("" if n < len(NAMES) else f" {n}"),
                          win=rng.uniform(0.6, 1.4), rate=rng.uniform(0.6, 1.5),
                          speed=rng.uniform(0.7, 1.4), response_h=rng.uniform(2, 20),
                          moves=[(self.start, k)])
                self.reps.append(rep)
                self.emit(self.start, "rep.joined", {"rep_id": rep.id, "name": rep.name,
                          "team_id": team_id, "manager_id": manager_id, "region": region},
                          actor=manager_id)
        if len(self.teams) > 1:
            span = (self.end - self.start).total_seconds() / 86400
            for rep in rng.sample(self.reps, k=min(len(self.reps), rng.choice((1, 2)))):
                t = self.office(self.start + _days(span * rng.uniform(0.3, 0.6)))
                k = rng.choice([i for i in range(len(self.teams)) if i != rep.moves[0][1]])
                rep.moves.append((t, k))
                team_id, manager_id, region = self.teams[k]
                self.emit(t, "rep.moved", {"rep_id": rep.id, "team_id": team_id,
                          "manager_id": manager_id, "region": region}, actor=manager_id)

    def set_targets(self) -> None:
        """Targets decomposed company/year → team/quarter → rep/month, set at period start."""
        avg_deal = sum(w * p for w, p in PRODUCTS.values()) * sum(
            w * f for w, f, _ in SEGMENTS.values())
        won_per_month = self.leads_per_day * 30.4 * 0.17 / len(self.reps) * avg_deal
        rep_won = {r.id: round(won_per_month * r.win, -3) for r in self.reps}
        rep_acts = {r.id: round(22 * 3 * r.rate) for r in self.reps}
        d = self.start.date().replace(day=1)
        while d <= self.end.date():
            at = max(self.start, datetime(d.year, d.month, 1, tzinfo=TZ))
            if d.month == 1 or at == self.start:
                self.target(at, "company", None, str(d.year), "won_value",
                            sum(rep_won.values()) * 12 * 1.1)
                self.target(at, "company", None, str(d.year), "activities",
                            sum(rep_acts.values()) * 12)
                self.target(at, "company", None, str(d.year), "new_leads",
                            round(self.leads_per_day * 365))
            if (d.month - 1) % 3 == 0 or at == self.start:
                quarter = f"{d.year}-Q{(d.month - 1) // 3 + 1}"
                for k, (team_id, _, _) in enumerate(self.teams):
                    members = [r.id for r in self.reps if self.team_of(r, at) == k]
                    self.target(at, "team", team_id, quarter, "won_value",
                                sum(rep_won[m] for m in members) * 3 * 1.05)
                    self.target(at, "team", team_id, quarter, "activities",
                                sum(rep_acts[m] for m in members) * 3)
            for r in self.reps:
                month = f"{d.year}-{d.month:02d}"
                self.target(at, "rep", r.id, month, "won_value", rep_won[r.id])
                self.target(at, "rep", r.id, month, "activities", rep_acts[r.id])
            d = (d + _days(32)).replace(day=1)

    def target(self, t: datetime, scope: str, scope_id: str | None, period: str, metric: str,
               value: float) -> None:
        data: dict[str, Any] = {"scope": scope}
        if scope_id is not None:
            data["scope_id"] = scope_id
        value_str = _money(round(value, -2)) if metric == "won_value" else str(int(value))
        data.update(period=period, metric=metric, value=value_str)
        self.emit(t, "target.set", data)

    # --- leads --------------------------------------------------------------

    def arrivals(self) -> None:
        rng = self.rng
        day = self.start.date()
        while day <= self.end.date():
            # Far fewer leads at weekends; the weekday factor keeps the mean at leads_per_day.
            n = _poisson(rng, self.leads_per_day * (1.3 if day.weekday() < 5 else 0.25))
            for _ in range(n):
                source = self.pick(SOURCES)
                hour = rng.uniform(0, 24) if source == "web" else rng.uniform(9, 18)
                t = datetime(day.year, day.month, day.day, tzinfo=TZ) + timedelta(hours=hour)
                if self.start <= t <= self.end:
                    self.lead(t, source)
            day += _days(1)

    def rep_for(self, region: str, t: datetime, exclude: Rep | None = None) -> Rep:
        local = [r for r in self.reps if r is not exclude
                 and self.teams[self.team_of(r, t)][2] == region]
        pool = local or [r for r in self.reps if r is not exclude] or self.reps
        return self.rng.choice(pool)

    def lead(self, t0: datetime, source: str) -> None:
        rng = self.rng
        lid, region = self.nid("L", 5), rng.choice(REGIONS)
        company = f"{rng.choice(WORDS)} {rng.choice(SUFFIXES)}"
        rep = self.rep_for(region, t0)
        data = {"lead_id": lid, "source": source, "region": region, "company": company}
        if source == "referral":  # a rep's own referral arrives already owned
            self.emit(t0, "lead.created", {**data, "owner_id": rep.id}, actor=rep.id)
        else:
            self.emit(t0, "lead.created", data)
            self.emit(t0 + timedelta(minutes=rng.uniform(1, 90)), "lead.assigned",
                      {"lead_id": lid, "owner_id": rep.id})
        if rng.random() < 0.05:  # never followed up at all
            return
        t = self.office(t0 + timedelta(hours=rng.expovariate(1 / rep.response_h)))
        if t - t0 > timedelta(hours=24) and rng.random() < 0.4:
            # the 24-hour follow-up timeout: the manager hands the lead to someone else
            at = t0 + timedelta(hours=rng.uniform(24, 30))
            rep = self.rep_for(region, at, exclude=rep)
            self.emit(at, "lead.assigned", {"lead_id": lid, "owner_id": rep.id},
                      actor=self.teams[self.team_of(rep, at)][1])
            t = self.office(at + timedelta(hours=rng.expovariate(1 / rep.response_h)))
        for _ in range(min(5, 1 + int(rng.expovariate(0.8)))):
            if t > self.end:
                return
            kind = rng.choices(("call", "email", "message", "visit"), weights=(5, 3, 2, 1))[0]
            self.activity(t, rep, kind, {"lead_id": lid})
            t = self.office(t + _days(rng.uniform(0.5, 4)))
        if rng.random() < min(0.95, SOURCES[source][1] * rep.win):
            self.emit(t, "lead.qualified", {"lead_id": lid, "reason": rng.choice(QUALIFY_REASONS)},
                      actor=rep.id)
            if rng.random() < 0.88:
                self.convert(self.office(t + _days(rng.uniform(0, 4))), lid, rep, source, region,
                             company)
        elif rng.random() < 0.85:  # the rest linger in nurture
            self.emit(t, "lead.disqualified",
                      {"lead_id": lid, "reason": rng.choice(DISQUALIFY_REASONS)}, actor=rep.id)

    def activity(self, t: datetime, rep: Rep, kind: str, subject: dict[str, str],
                 activity_id: str | None = None) -> None:
        rng = self.rng
        data: dict[str, Any] = {"activity_id": activity_id or self.nid("A", 6), "kind": kind,
                                "rep_id": rep.id, **subject}
        if kind in ("call", "visit", "meeting"):
            lo, hi = {"call": (2, 30), "visit": (30, 120), "meeting": (30, 90)}[kind]
            data["duration_min"] = rng.randint(lo, hi)
        if kind in ("call", "visit", "meeting", "demo") and rng.random() < 0.6:
            data["outcome"] = rng.choice(("positive", "neutral", "negative", "no_answer")
                                         if kind == "call" else ("positive", "neutral", "negative"))
        self.emit(t, "activity.logged", data, actor=rep.id)

    def convert(self, t: datetime, lid: str, rep: Rep, source: str, region: str,
                company: str) -> None:
        rng = self.rng
        cust = Customer(self.nid("C", 4), self.pick(SEGMENTS), region)
        self.emit(t - timedelta(minutes=1), "customer.created", {
            "customer_id": cust.id, "name": company, "segment": cust.segment,
            "industry": rng.choice(INDUSTRIES), "region": region}, actor=rep.id)
        did = self.nid("D", 5)
        self.emit(t, "lead.converted", {"lead_id": lid, "deal_id": did}, actor=rep.id)
        self.deal(t, did, lid, cust, rep, source)

    # --- deals --------------------------------------------------------------

    def dwell(self, i: int, rep: Rep) -> float:
        """Days spent in stage i: lognormal around a median that grows down the pipeline."""
        median = (4 + 1.5 * i) / rep.speed
        return self.rng.lognormvariate(math.log(median), 0.6)

    def deal(self, t: datetime, did: str, lid: str, cust: Customer, rep: Rep,
             source: str) -> None:
        rng, stages, n = self.rng, self.stages, len(self.stages)
        product = self.pick(PRODUCTS)
        amount = _round_price(PRODUCTS[product][1] * SEGMENTS[cust.segment][1]
                              * SOURCES[source][2] * rng.lognormvariate(0, 0.35))
        win_p = min(0.9, 0.5 * rep.win * SEGMENTS[cust.segment][2])
        will_win = rng.random() < win_p
        lose_at = rng.choices(range(n), weights=[n - i for i in range(n)])[0]
        stall_at = rng.randrange(n) if rng.random() < 0.15 else -1
        quote_at = max(0, n - 2)
        i = 1 if n > 2 and rng.random() < 0.25 else 0  # qualified leads may skip prospecting
        expected = (t + _days(sum(4 + 1.5 * j for j in range(n)) * 0.8 / rep.speed)).date()
        self.emit(t, "deal.created", {
            "deal_id": did, "owner_id": rep.id, "customer_id": cust.id, "lead_id": lid,
            "amount": _money(amount), "product": product, "source": source, "stage": stages[i],
            "expected_close": expected.isoformat()}, actor=rep.id)
        owner, subject = rep, {"deal_id": did}
        regressed = quoted = reowned = False
        while t <= self.end:
            stage_end = t + _days(self.dwell(i, owner))
            if i == stall_at:
                stall_at = -1
                t = self.touches(t, t + _days(rng.uniform(1, 5)), owner, subject)
                if rng.random() < 0.5:  # a next step that never happens: overdue
                    self.emit(t, "activity.scheduled", {
                        "activity_id": self.nid("A", 6), "kind": "call", "rep_id": owner.id,
                        **subject, "due_at": self.office(t + _days(rng.uniform(2, 5))).isoformat(
                            timespec="seconds")}, actor=owner.id)
                t = self.office(t + _days(rng.uniform(21, 56)))  # weeks of silence
                if rng.random() < 0.55:
                    self.emit(t, "deal.lost", {"deal_id": did, "reason": "no decision"},
                              actor=owner.id)
                    return
                stage_end = t + _days(self.dwell(i, owner))
            if i >= quote_at and not quoted:
                quoted = True
                t = self.office(t + _days(rng.uniform(0.5, 3)))
                self.emit(t, "quote.sent", {"deal_id": did, "quote_id": self.nid("Q", 5),
                                            "amount": _money(amount)}, actor=owner.id)
            t = self.touches(t, stage_end, owner, subject)
            t = max(t, self.office(stage_end))
            if t.date() > expected - timedelta(days=2):  # running late: push the close date
                expected = t.date() + _days(rng.randint(7, 30))
                self.emit(t, "deal.close_date_changed",
                          {"deal_id": did, "expected_close": expected.isoformat()}, actor=owner.id)
            if not will_win and i >= lose_at:
                lost: dict[str, Any] = {"deal_id": did, "reason": rng.choice(LOSS_REASONS)}
                if lost["reason"] == "competitor" or rng.random() < 0.3:
                    lost["competitor"] = rng.choice(COMPETITORS)
                self.emit(t, "deal.lost", lost, actor=owner.id)
                return
            if i == n - 1:
                if rng.random() < 0.4:  # last-minute discount
                    amount = _round_price(float(amount) * rng.uniform(0.88, 0.98))
                self.emit(t, "deal.won", {"deal_id": did, "amount": _money(amount)},
                          actor=owner.id)
                self.after_win(t, did, cust, owner, amount, product)
                return
            if not reowned and rng.random() < 0.04:
                reowned = True
                k = self.team_of(owner, t)
                mates = [r for r in self.reps if r is not owner and self.team_of(r, t) == k]
                if mates:
                    owner = rng.choice(mates)
                    self.emit(t, "deal.owner_changed", {"deal_id": did, "owner_id": owner.id},
                              actor=self.teams[k][1])
            if rng.random() < 0.12:  # scope grows or shrinks as the customer's needs firm up
                amount = _round_price(float(amount) * rng.uniform(0.75, 1.3))
                self.emit(t, "deal.amount_changed", {"deal_id": did, "amount": _money(amount)},
                          actor=owner.id)
            if i >= 1 and not regressed and rng.random() < 0.06:
                regressed, i = True, i - 1
            elif i + 2 < n and rng.random() < 0.08:
                i += 2
            else:
                i += 1
            self.emit(t, "deal.stage_changed", {"deal_id": did, "stage": stages[i]},
                      actor=owner.id)

    def touches(self, t: datetime, until: datetime, rep: Rep, subject: dict[str, str]) -> datetime:
        """Activities on a deal as a Poisson process until `until`; returns the last time."""
        rng = self.rng
        while True:
            nt = self.office(t + _days(rng.expovariate(0.3 * rep.rate)))
            if nt >= until or nt > self.end:
                return t
            kind = rng.choices(("call", "email", "meeting", "demo", "visit", "message"),
                               weights=(5, 4, 2, 1, 2, 2))[0]
            aid = None
            if rng.random() < 0.3:  # planned as a next step first
                aid = self.nid("A", 6)
                self.emit(t, "activity.scheduled", {"activity_id": aid, "kind": kind,
                          "rep_id": rep.id, **subject, "due_at": nt.isoformat(timespec="seconds")},
                          actor=rep.id)
            self.activity(nt, rep, kind, subject, aid)
            t = nt

    # --- customers, orders, payments ----------------------------------------

    def after_win(self, t: datetime, did: str, cust: Customer, rep: Rep, amount: Decimal,
                  product: str) -> None:
        rng = self.rng
        t = self.office(t + _days(rng.uniform(0.1, 3)))
        self.order(t, cust, amount, product, did, rep)
        reorders = rng.random() < 0.7
        cadence = rng.uniform(14, 35)
        quiet_at = self.end + _days(1)
        if rng.random() < 0.35:  # this customer will go quiet: no orders, no contact
            quiet_at = t + _days(rng.uniform(20, 90))
        next_order = t + _days(cadence * rng.uniform(0.7, 1.3))
        next_visit = t + _days(rng.uniform(10, 25))
        while min(next_order, next_visit) < min(quiet_at, self.end):
            if reorders and next_order <= next_visit:
                t = max(t, self.office(next_order))
                size = Decimal(str(rng.uniform(0.15, 0.45)))
                self.order(t, cust, _round_price(float(amount * size)), product, None, rep)
                next_order = t + _days(cadence * rng.uniform(0.7, 1.3))
            else:
                t = max(t, self.office(next_visit))
                kind = rng.choice(("call", "visit", "email", "meeting"))
                self.activity(t, rep, kind, {"customer_id": cust.id})
                next_visit = t + _days(rng.uniform(10, 25))
                if not reorders:
                    next_order = next_visit + _days(1)

    def order(self, t: datetime, cust: Customer, amount: Decimal, product: str,
              did: str | None, rep: Rep) -> None:
        rng = self.rng
        oid = self.nid("O", 5)
        data: dict[str, Any] = {"order_id": oid, "customer_id": cust.id, "amount": _money(amount)}
        if did is not None:
            data["deal_id"] = did
        self.emit(t, "order.booked", {**data, "product": product}, actor=rep.id)
        r = rng.random()
        if r < 0.62:  # paid in full within terms
            plan = [(amount, rng.uniform(5, 35))]
        elif r < 0.84:  # deposit, then the balance
            first = (amount * Decimal(str(rng.uniform(0.3, 0.7)))).quantize(CENT)
            plan = [(first, rng.uniform(1, 10)), (amount - first, rng.uniform(20, 45))]
        elif r < 0.95:  # late
            plan = [(amount, rng.uniform(50, 120))]
        else:  # partly unpaid for good
            plan = [((amount * Decimal(str(rng.uniform(0.3, 0.8)))).quantize(CENT),
                     rng.uniform(10, 40))]
        paid = Decimal(0)
        for part, delay in plan:
            part = min(part, amount - paid)  # never pay more than the order is worth
            if part <= 0:
                break
            t = self.office(t + _days(delay))
            self.emit(t, "payment.received",
                      {"payment_id": self.nid("P", 5), "order_id": oid, "amount": _money(part)})
            paid += part

    def run(self) -> list[dict[str, Any]]:
        self.organise()
        if self.with_targets:
            self.set_targets()
        self.arrivals()
        self.out.sort(key=lambda item: (item[0], item[1]))
        return [ev for _, _, ev in self.out]


def _aware(t: datetime) -> datetime:
    """Naive datetimes are read in Asia/Shanghai, as the contract reads them."""
    return (t.replace(tzinfo=TZ) if t.tzinfo is None else t).astimezone(TZ)


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method: fine for the small daily rates used here."""
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def simulate(seed: int, start: datetime, end: datetime, *, teams: int = 3,
             reps_per_team: int = 4, tenant: str | None = None,
             stages: Sequence[str] = DEFAULT_STAGES,
             leads_per_day: float = 4.0) -> Iterator[dict[str, Any]]:
    """Events of a CRM world between `start` and `end`, in non-decreasing `occurred_at`."""
    world = _World(seed, start, end, teams=teams, reps_per_team=reps_per_team, tenant=tenant,
                   stages=stages, leads_per_day=leads_per_day, prefix="", targets=True)
    yield from world.run()


def live(seed: int, start: datetime, *, speed: float, horizon_days: float = 365.0,
         teams: int = 3, reps_per_team: int = 4, tenant: str | None = None,
         stages: Sequence[str] = DEFAULT_STAGES,
         leads_per_day: float = 4.0) -> Iterator[tuple[float, dict[str, Any]]]:
    """The world continued from `start`, time compressed by `speed`.

    Yields `(wall_offset_seconds, event)`; each event's `occurred_at` (and `due_at` /
    `expected_close`) is mapped to `start + offset`, the wall time to post it at. Its
    entities get an `L` id prefix (`D-L00001`) so they never clash with a history made by
    `simulate` with the same seed; targets are left to that history.
    """
    if speed <= 0:
        raise ValueError("speed must be positive")
    t0 = _aware(start)
    world = _World(f"{seed}:live", t0, t0 + _days(horizon_days), teams=teams,
                   reps_per_team=reps_per_team, tenant=tenant, stages=stages,
                   leads_per_day=leads_per_day, prefix="L", targets=False)

    def wall(t: datetime) -> datetime:
        return t0 + (t - t0) / speed

    for ev in world.run():
        sim_t = datetime.fromisoformat(ev["occurred_at"])
        offset = (sim_t - t0).total_seconds() / speed
        ev["occurred_at"] = (t0 + timedelta(seconds=offset)).isoformat(timespec="milliseconds")
        data = ev["data"]
        if "due_at" in data:
            data["due_at"] = wall(datetime.fromisoformat(data["due_at"])).isoformat(
                timespec="milliseconds")
        if "expected_close" in data:
            close = datetime.combine(date.fromisoformat(data["expected_close"]),
                                     datetime.min.time(), TZ)
            data["expected_close"] = wall(max(close, t0)).date().isoformat()
        yield offset, ev
