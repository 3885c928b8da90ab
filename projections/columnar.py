"""A tenant's deals, leads and activities in columns: the funnel and breakdowns at scale.

Over 400 lines: one class whose writing (`put`) and joining (`dim`) share every column.

The `Snapshot` joins every record into Python objects; at 100k deals that is 3.5 GB
and seconds per request. Here each deal, lead and activity is one row of numpy
columns (tens of bytes), built from the fact records as they stream past and updated
in place when records change, so a process never holds the records themselves.

What a row's dimensions depend on follows docs/METRICS.md exactly as `Snapshot` does:
- a deal's team, manager and region are its owner's at close time (now while open);
  its source is its own, else its lead's; its segment its customer's;
- a lead's are its owner's at creation, its region its own else its team's; its product
  and segment those of the deal it converted into;
- an activity's are its rep's when it happened, and it inherits source, product and
  segment from the deal, lead or customer it was logged on.
Rows keep references (owner, lead, customer, parent), never copies of what they point
at; `dim()` gathers a joined dimension through them in a few numpy operations when an
answer first needs it after a change, so a rep's move or a customer's new segment reaches every
row that depends on it without tracking who depends on whom.

Pure: no I/O. Feed it records with `put()`; `services/api/columns.py` reads Redis.
"""

from __future__ import annotations

import sys
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from events.vocabulary import DEFAULT_STAGES, DEFAULT_TIMEZONE, DIMENSIONS, ts
from projections.columnar_activity_facts import ActivityFacts
from projections.columnar_deal_facts import DealFacts
from projections.columnar_history import DealHistory
from projections.columnar_lead_facts import LEAD_FACT_COLUMNS, LeadFacts
from projections.columnar_orders import Orders
from projections.columnar_table import AMOUNT_SCALE, INT64_MAX, Strings, Table, micros
from projections.derived import kept
from projections.facts import Record
from projections.funnel import advanced_from, stage_dwell_days
from projections.keyindex import FIRST_ROW
from projections.rep_entries import RepEntries
from projections.snapshot import Deal
from projections.stats import days_between

_ORDINAL_1970 = date(1970, 1, 1).toordinal()
NOW = INT64_MAX  # "the moment" of an open deal: its owner's team now
KEPT_WHOLE = ("scoring", "target")
# The order a whole load feeds records in: reps first, so rows find their team at once.
LOAD_ORDER = ("rep", "customer", "deal", "lead", "order", *KEPT_WHOLE)
JOINED_BYTES = 128 << 20  # joined dimensions kept between changes
# Lead and activity rows joined or counted at a time: a block's masks and codes are a few
# MB, where the whole activity table's (12.7M rows at 1M deals) were hundreds.
BLOCK_ROWS = 1 << 20


def blocks(size: int) -> Iterator[slice]:
    """The rows of a table of `size` rows, `BLOCK_ROWS` at a time."""
    for low in range(0, size, BLOCK_ROWS):
        yield slice(low, min(low + BLOCK_ROWS, size))


_DEAL_SCALARS = ("created_day", "period_day", "status", "amount", "amount_exp", "owner",
                 "closed", "history", "own_source", "product", "customer", "own_lead",
                 "last_stage", "lost_reason", "competitor", "skips", "regressions",
                 "cycle_days", "created")
_LEAD_SCALARS = ("created_day", "converted", "owner", "created", "history", "source",
                 "own_region")


_TARGET_FIELDS = ("id", "scope", "scope_id", "period", "metric", "value")
_FEW_VALUES = ("scope", "period", "metric")  # a few distinct values: one str each


def _target_fields(record: Record) -> Record:
    return {name: sys.intern(value) if name in _FEW_VALUES and isinstance(value, str)
            else value for name in _TARGET_FIELDS if (value := record.get(name)) is not None}


def months(days: NDArray[np.int32]) -> NDArray[np.int64]:
    """Each ordinal day's month as year * 12 + month - 1."""
    since_1970 = np.asarray(days - _ORDINAL_1970, dtype="datetime64[D]").astype("datetime64[M]")
    return since_1970.astype(np.int64) + 1970 * 12


class Columns:
    """One tenant's deals, leads and activities for the funnel and the breakdowns."""

    def __init__(self, tz: str = DEFAULT_TIMEZONE, stages: Iterable[str] = DEFAULT_STAGES) -> None:
        self.tz = ZoneInfo(tz)
        self.stages = tuple(stages)
        self.order = {stage: i for i, stage in enumerate(self.stages)}
        self.strings = Strings()
        self.dirty = True
        # How many times records of each kind were put: what is derived from a kind (and
        # kept beside the columns, e.g. the targets' roll-ups) is keyed by these counts.
        self.versions: dict[str, int] = {}
        # Reps: each history entry once, appended; a rep's current entries by code.
        self.history_team: list[int] = [0]
        self.history_manager: list[int] = [0]
        self.history_region: list[int] = [0]
        self.rep_history: dict[int, tuple[list[int], list[int]]] = {}  # moments, entries
        self.reps_current: dict[str, str | None] = {}  # rep -> team now
        self.rep_records: dict[str, Record] = {}  # a few hundred: names and first joins
        # Settings-like kinds (scoring, targets), kept as records: a scoring record whole, a
        # target as the fields `targets.target_values` reads (its event log and the rest
        # cost 1.6 kB a target, 280 MB for the 175,000 targets of a tenant of 1M deals).
        self.records: dict[str, dict[str, Record]] = {kind: {} for kind in KEPT_WHOLE}
        n_stages = len(self.stages)
        self.deals = Table({
            "exists": bool, "created_day": np.int32, "period_day": np.int32, "status": np.int32,
            "amount": np.int64, "amount_exp": np.int8, "owner": np.int32, "closed": np.int64,
            "history": np.int32, "own_source": np.int32, "product": np.int32,
            "customer": np.int32, "own_lead": np.int32, "converted_from": np.int32,
            "last_stage": np.int16, "lost_reason": np.int32, "competitor": np.int32,
            "skips": np.int32, "regressions": np.int32, "cycle_days": np.float64,
            "activities": np.int32, "created": np.int64,
            "entered": (np.bool_, n_stages), "advanced": (np.bool_, n_stages),
            "dwell": (np.float64, n_stages),
        })
        self.leads = Table({
            "exists": bool, "created_day": np.int32, "converted": bool, "owner": np.int32,
            "created": np.int64, "history": np.int32,
            "source": np.int32, "own_region": np.int32, "deal": np.int32,
            "activities": np.int32,  # how many of its activities have rows
            **LEAD_FACT_COLUMNS,
        })
        self.lead_facts = LeadFacts()
        self.activity_facts = ActivityFacts()
        self.deal_facts = DealFacts()
        self.customers = Table({"exists": bool, "segment": np.int32, "activities": np.int32})
        self.activities = Table({
            "day": np.int32, "rep": np.int32, "at": np.int64, "kind": np.int32,
            "history": np.int32, "parent_kind": np.int8, "parent": np.int32,
        }, keyed=False)
        self.orders = Orders()
        self.deal_history = DealHistory()  # what each deal was when: the forecast's
        self.pipeline: Record = {}  # the pipeline record (configured win probabilities)
        self._converted: dict[int, set[int]] = {}  # deal -> its leads, when more than one
        # Joined dimensions, kept within a byte budget (the least recently used go first):
        # an activity dimension at 1M deals is some 50 MB.
        self._joined: OrderedDict[tuple[str, str], NDArray[np.int32]] = OrderedDict()

    # --- feeding ---------------------------------------------------------------

    def reserve(self, kind: str, records: int) -> None:
        """Room for `records` records of `kind` (before a whole load). Rows already given to
        keys that records of another kind referred to count among them (a deal names its
        lead): the room is for `records` keys in all."""
        table = {"deal": self.deals, "lead": self.leads, "customer": self.customers,
                 "order": self.orders.orders}.get(kind)
        if table is not None:
            table.reserve(FIRST_ROW + records)

    def put(self, kind: str, record: Record) -> None:
        """Take a record's latest state (new or changed)."""
        self.put_many(kind, [record])

    def put_many(self, kind: str, records: list[Record]) -> None:
        """Take records' latest states; a chunk at a time is much faster than one by one
        (each column is written once per chunk)."""
        if not records:
            return
        self.dirty = True
        self.versions[kind] = self.versions.get(kind, 0) + 1
        if kind == "deal":
            self._put_deals(records)
            self.deal_history.put_many(self.deals.rows([r["id"] for r in records]), records,
                                       self.strings.code, self.tz)
        elif kind == "lead":
            self._put_leads(records)
        elif kind == "customer":
            rows = self.customers.rows([r["id"] for r in records])
            self.customers.cols["exists"][rows] = True
            self.customers.cols["segment"][rows] = [self.strings.code(r.get("segment"))
                                                   for r in records]
        elif kind == "rep":
            for record in records:
                self._put_rep(record)
        elif kind == "order":
            self.orders.put_many(records, self.deals, self.customers, self._day,
                                 self.strings.code)
        elif kind == "target":
            self.records[kind].update((r["id"], _target_fields(r)) for r in records)
        elif kind in KEPT_WHOLE:
            self.records[kind].update((r["id"], r) for r in records)
        if kind in ("deal", "lead", "customer"):
            self.activity_facts.put_many(kind, records, self._parents(kind))
            self._put_activities(kind, records)

    def _day(self, moment: datetime) -> int:
        """The local date, as its proleptic ordinal (`date.toordinal`)."""
        return moment.astimezone(self.tz).date().toordinal()

    def _entry(self, rep: int, moment: int) -> int:
        """The history entry in force for `rep` at `moment` (`Snapshot.rep_at`); 0: none."""
        found = self.rep_history.get(rep)
        if not found:
            return 0
        moments, entries = found
        if moment == NOW:
            return entries[-1]
        return entries[max(bisect_right(moments, moment) - 1, 0)]

    def rep_at(self, rep: str | None, moment: datetime | None) -> dict[str, str | None]:
        """The rep's team, manager and region at `moment` (None: now; `Snapshot.rep_at`)."""
        code = self.strings.find(rep or "")
        entry = self._entry(code, NOW if moment is None else micros(moment)) if code else 0
        values = self.strings.values
        return {"team": values[self.history_team[entry]],
                "manager": values[self.history_manager[entry]],
                "region": values[self.history_region[entry]]}

    def _put_rep(self, record: Record) -> None:
        rep = self.strings.code(record["id"])
        moments, entries = [], []
        for at, team, manager, region in record["history"]:
            moments.append(micros(ts(at)))
            entries.append(len(self.history_team))
            self.history_team.append(self.strings.code(team))
            self.history_manager.append(self.strings.code(manager))
            self.history_region.append(self.strings.code(region))
        self.rep_history[rep] = (moments, entries)
        self.rep_records[record["id"]] = record
        self.reps_current[record["id"]] = record["history"][-1][1]
        # Rows of this rep point at its new entries (a move, or a re-join, changes them).
        for table, owner, moment in ((self.deals, "owner", "closed"),
                                     (self.leads, "owner", "created"),
                                     (self.activities, "rep", "at")):
            rows = np.flatnonzero(table[owner] == rep)
            if rows.size:
                table["history"][rows] = self._entries(rep, table[moment][rows])

    def entries_at(self, reps: NDArray[np.int32], moments: NDArray[np.int64]
                   ) -> NDArray[np.int32]:
        """The history entry in force for each rep at each moment (0: none)."""
        return self.rep_entries().at(reps, moments, NOW)

    def rep_entries(self) -> RepEntries:
        """Every rep's history entries, kept until a rep changes."""
        return kept(self, "rep entries", self.versions.get("rep", 0),
                    lambda: RepEntries.of(self.rep_history))

    def reps_ever_in(self, name: str, code: int) -> NDArray[np.bool_]:
        """By rep code: the reps with any history entry whose team, manager or region
        (`name`) is `code`."""
        everyone = self.rep_entries()
        found = np.zeros(len(self.strings.values), dtype=bool)
        found[everyone.reps[self._history(name)[everyone.entries] == code]] = True
        return found

    def _entries(self, rep: int, moments: NDArray[np.int64]) -> NDArray[np.int32]:
        found = self.rep_history[rep]
        times, entries = np.array(found[0], dtype=np.int64), np.array(found[1], dtype=np.int32)
        index = np.clip(np.searchsorted(times, moments, side="right") - 1, 0, None)
        index[moments == NOW] = len(entries) - 1
        return entries[index]

    def _put_deals(self, records: list[Record]) -> None:
        d = self.deals
        rows = d.rows([r["id"] for r in records])
        customers = self.customers.rows([r.get("customer") for r in records])
        own_leads = self.leads.rows([r.get("lead") for r in records])
        n_stages = len(self.stages)
        out: dict[str, list[Any]] = {name: [] for name in _DEAL_SCALARS}
        entered = np.zeros((len(records), n_stages), dtype=bool)
        advanced = np.zeros((len(records), n_stages), dtype=bool)
        dwell = np.full((len(records), n_stages), np.nan)
        for i, r in enumerate(records):
            created_at = ts(r["created_at"])
            closed_at = ts(r["closed_at"]) if r.get("closed_at") else None
            amount = Decimal(r["amount"])
            stages = [(stage, ts(at)) for stage, at in r["stages"]]
            owner = self.strings.code(r["owner"])
            closed = micros(closed_at) if closed_at else NOW
            lost = r["status"] == "lost"
            steps = [self.order[b] - self.order[a] for (a, _), (b, _) in pairwise(stages)
                     if a in self.order and b in self.order]
            for name, value in (
                ("created_day", self._day(created_at)),
                ("period_day", self._day(closed_at or created_at)),
                ("status", self.strings.code(r["status"])),
                ("amount", int(amount.scaleb(AMOUNT_SCALE))),
                ("amount_exp", max(int(amount.as_tuple().exponent), -AMOUNT_SCALE)),
                ("owner", owner), ("closed", closed), ("history", self._entry(owner, closed)),
                ("own_source", self.strings.code(r.get("source") or None)),
                ("product", self.strings.code(r.get("product"))),
                ("customer", customers[i]), ("own_lead", own_leads[i]),
                ("last_stage", self.order.get(stages[-1][0], -1)),
                ("lost_reason", self.strings.code((r.get("lost_reason") or "unspecified")
                                                  if lost else None)),
                ("competitor", self.strings.code((r.get("competitor") or None)
                                                 if lost else None)),
                ("skips", sum(1 for step in steps if step > 1)),
                ("regressions", sum(1 for step in steps if step < 0)),
                ("cycle_days", days_between(created_at, closed_at)
                 if r["status"] == "won" and closed_at else np.nan),
                ("created", micros(created_at)),
            ):
                out[name].append(value)
            deal = Deal(r["id"], created_at, closed_at, r["status"], amount, stages, {}, r)
            visited = {s for s, _ in stages}
            for j, stage in enumerate(self.stages):
                if stage in visited:
                    entered[i, j] = True
                    advanced[i, j] = advanced_from(deal, stage, self.order)
                    days = stage_dwell_days(deal, stage)
                    dwell[i, j] = np.nan if days is None else days
        if max(out["amount"]) > INT64_MAX and d.cols["amount"].dtype != object:
            d.cols["amount"] = d.cols["amount"].astype(object)  # beyond int64: Python ints
        for name, values in out.items():
            d.cols[name][rows] = values
        d.cols["exists"][rows] = True
        d.cols["entered"][rows], d.cols["advanced"][rows] = entered, advanced
        d.cols["dwell"][rows] = dwell
        self.deal_facts.put_many(rows, records, self.strings.code)

    def _put_leads(self, records: list[Record]) -> None:
        lead = self.leads
        rows = lead.rows([r["id"] for r in records])
        deals = self.deals.rows([r.get("deal") for r in records])
        out: dict[str, list[Any]] = {name: [] for name in _LEAD_SCALARS}
        for row, deal, r in zip(rows, deals, records, strict=True):
            created_at = ts(r["created_at"])
            owner, created = self.strings.code(r.get("owner")), micros(created_at)
            for name, value in (
                ("created_day", self._day(created_at)),
                ("converted", r.get("status") == "converted"),
                ("owner", owner), ("created", created),
                ("history", self._entry(owner, created)),
                ("source", self.strings.code(r.get("source"))),
                ("own_region", self.strings.code(r.get("region") or None)),
            ):
                out[name].append(value)
            previous = int(lead.cols["deal"][row])
            lead.cols["deal"][row] = deal
            if previous != deal:
                self._unlink(previous, row)
                self._link(deal, row)
        for name, values in out.items():
            lead.cols[name][rows] = values
        lead.cols["exists"][rows] = True
        self.lead_facts.put_many(lead, rows, records, self.strings.code)

    # `Snapshot`: a deal without a lead it can find takes the lead that converted into it;
    # of several, the one with the greatest key (the last in key order). The column holds
    # that lead; `_converted` the rare deals that several leads converted into.

    def _link(self, deal: int, lead: int) -> None:
        if not deal:
            return
        current = int(self.deals.cols["converted_from"][deal])
        if current and current != lead:
            self._converted.setdefault(deal, {current}).add(lead)
            self._pick_converted(deal)
        else:
            self.deals.cols["converted_from"][deal] = lead

    def _unlink(self, deal: int, lead: int) -> None:
        if not deal:
            return
        several = self._converted.get(deal)
        if several is not None:
            several.discard(lead)
            if len(several) == 1:
                del self._converted[deal]
            self._pick_converted(deal, several)
        elif self.deals.cols["converted_from"][deal] == lead:
            self.deals.cols["converted_from"][deal] = 0

    def _pick_converted(self, deal: int, leads: set[int] | None = None) -> None:
        assert self.leads.keys is not None
        keys = self.leads.keys
        leads = self._converted.get(deal, set()) if leads is None else leads
        self.deals.cols["converted_from"][deal] = max(leads, key=keys.key)

    def _parents(self, kind: str) -> Table:
        return {"deal": self.deals, "lead": self.leads, "customer": self.customers}[kind]

    def _put_activities(self, kind: str, records: list[Record]) -> None:
        parents = {"deal": self.deals, "lead": self.leads, "customer": self.customers}[kind]
        parent_kind = ("deal", "lead", "customer").index(kind)
        out: dict[str, list[int]] = {"day": [], "rep": [], "at": [], "history": [],
                                     "parent": [], "kind": []}
        for r, parent in zip(records, parents.rows([r["id"] for r in records]), strict=True):
            logged = r.get("activities") or ()
            seen = int(parents.cols["activities"][parent])
            # The reducer only ever appends to a record's activities: new ones are the tail.
            for at, kind_of, rep, _duration, _id in logged[seen:]:
                moment = ts(at)
                rep_code, when = self.strings.code(rep), micros(moment)
                out["day"].append(self._day(moment))
                out["rep"].append(rep_code)
                out["at"].append(when)
                out["history"].append(self._entry(rep_code, when))
                out["parent"].append(parent)
                out["kind"].append(self.strings.code(kind_of))
            parents.cols["activities"][parent] = len(logged)
        a = self.activities
        start = a.size
        a.extend(len(out["day"]))
        for name, values in out.items():
            a.cols[name][start:a.size] = values
        a.cols["parent_kind"][start:a.size] = parent_kind

    # --- joining ----------------------------------------------------------------

    def dim(self, what: str, name: str) -> NDArray[np.int32]:
        """Each row's value of dimension `name` ("deal", "lead" or "activity" rows),
        joined through its references; kept until the next `put`."""
        if self.dirty:
            self._joined.clear()
            self.dirty = False
        found = self._joined.get((what, name))
        if found is not None:
            self._joined.move_to_end((what, name))
            return found
        found = self._joined[(what, name)] = self._join(what, name).astype(np.int32, copy=False)
        while (len(self._joined) > 1
               and sum(a.nbytes for a in self._joined.values()) > JOINED_BYTES):
            self._joined.popitem(last=False)
        return found

    def trim(self) -> None:
        """Give back the room kept for growth (after a whole load)."""
        self._joined.clear()  # they may be views of the columns: those cannot shrink in place
        for table in (self.deals, self.leads, self.customers, self.activities,
                      self.orders.orders, self.orders.payments):
            table.trim()
        self.lead_facts.trim()
        self.activity_facts.trim()
        self.deal_facts.trim()

    def _history(self, name: str) -> NDArray[np.int32]:
        values = {"team": self.history_team, "manager": self.history_manager,
                  "region": self.history_region}[name]
        return np.array(values, dtype=np.int32)

    def _join(self, what: str, name: str) -> NDArray[Any]:
        d, lead, a = self.deals, self.leads, self.activities
        if what == "deal":
            if name == "rep":
                return d["owner"]
            if name in ("team", "manager", "region"):
                by_entry: NDArray[Any] = self._history(name)[d["history"]]
                return by_entry
            if name == "source":
                # Its own source, else its lead's: its own lead if that exists, else the
                # lead converted into it.
                own = d["own_lead"]
                found = np.where(lead["exists"][own], own, d["converted_from"])
                return np.where(d["own_source"] != 0, d["own_source"],
                                np.where(lead["exists"][found], lead["source"][found], 0))
            if name == "product":
                return d["product"]
            customers = self.customers
            segments: NDArray[Any] = np.where(customers["exists"], customers["segment"],
                                              0)[d["customer"]]
            return segments
        if what == "lead" and name in ("rep", "source"):
            return lead["owner" if name == "rep" else "source"]
        if what == "activity" and name == "rep":
            return a["rep"]
        # A block of rows at a time: the temporaries are a block long, not the table's
        # (12.7M activities at 1M deals; their source took some 200 MB whole).
        table, join = (lead, self._lead_join(name)) if what == "lead" else \
            (a, self._activity_join(name))
        out = np.empty(table.size, dtype=np.int32)
        for rows in blocks(table.size):
            out[rows] = join(rows)
        return out

    def _lead_join(self, name: str) -> Callable[[slice], NDArray[Any]]:
        lead = self.leads
        if name in ("team", "manager", "region"):
            history = self._history(name)
            if name != "region":
                return lambda rows: history[lead["history"][rows]]

            def region(rows: slice) -> NDArray[Any]:
                own = lead["own_region"][rows]
                return np.where(own != 0, own, history[lead["history"][rows]])
            return region
        # Product and segment: those of the deal it converted into.
        exists, of_deal = self.deals["exists"], self.dim("deal", name)

        def converted(rows: slice) -> NDArray[Any]:
            deal = lead["deal"][rows]
            into = np.where(exists[deal], deal, 0)
            return np.where(into != 0, of_deal[into], 0)
        return converted

    def _activity_join(self, name: str) -> Callable[[slice], NDArray[Any]]:
        a = self.activities
        if name in ("team", "manager", "region"):
            history = self._history(name)
            return lambda rows: history[a["history"][rows]]
        # Inherited from what the activity was logged on: a deal gives source, product and
        # segment; a lead its source; a customer its segment.
        of_deal, lead_source = self.dim("deal", name), self.leads["source"]
        customers = self.customers
        segments = np.where(customers["exists"], customers["segment"], 0)

        def inherited(rows: slice) -> NDArray[Any]:
            kind, parent = a["parent_kind"][rows], a["parent"][rows]
            out = np.zeros(len(kind), dtype=np.int32)
            on_deal = kind == 0
            out[on_deal] = of_deal[parent[on_deal]]
            if name == "source":
                on_lead = kind == 1
                out[on_lead] = lead_source[parent[on_lead]]
            if name == "segment":
                on_customer = kind == 2
                out[on_customer] = segments[parent[on_customer]]
            return out
        return inherited

    # --- selecting ----------------------------------------------------------------

    def select(self, what: str, dims: dict[str, str], start: date | None, end: date | None,
               *, day: str) -> NDArray[np.bool_]:
        """Rows of `what` ("deal", "lead", "activity") that the filters keep."""
        return self.keeps(what, self.tests(what, dims), start, end, day=day)

    def tests(self, what: str, dims: dict[str, str]) -> list[tuple[NDArray[np.int32], int]] | None:
        """Each dimension filter as (the joined dimension of `what`'s rows, the code it asks
        for); None when one asks for a value no row has. Held by the caller for a whole
        question: the cache may drop a dimension while another is made."""
        tests = []
        for name, value in dims.items():
            if name not in DIMENSIONS:
                continue
            code = self.strings.find(value)
            if code is None or code == 0:
                return None
            tests.append((self.dim(what, name), code))
        return tests

    def keeps(self, what: str, tests: list[tuple[NDArray[np.int32], int]] | None,
              start: date | None, end: date | None, *, day: str,
              rows: slice = slice(None)) -> NDArray[np.bool_]:
        """Which of `rows` of `what` the filters (`tests()` and the days) keep."""
        table = self.table(what)
        size = len(range(*rows.indices(table.size)))
        if tests is None:
            return np.zeros(size, dtype=bool)
        keep = table["exists"][rows].copy() if what != "activity" else np.ones(size, bool)
        for values, code in tests:
            keep &= values[rows] == code
        days = table[day][rows]
        if start is not None:
            keep &= days >= start.toordinal()
        if end is not None:
            keep &= days <= end.toordinal()
        return keep

    def table(self, what: str) -> Table:
        return {"deal": self.deals, "lead": self.leads, "activity": self.activities}[what]

    def team_members(self, team: str | None) -> list[str]:
        return sorted(r for r, now in self.reps_current.items() if now == team)

    def nbytes(self) -> int:
        tables = (self.deals, self.leads, self.customers, self.activities,
                  self.orders.orders, self.orders.payments)
        return (sum(c.nbytes for t in tables for c in t.cols.values())
                + sum(t.keys.nbytes() for t in tables if t.keys is not None))
