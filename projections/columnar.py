"""A tenant's deals, leads and activities in columns: the funnel and breakdowns at scale.

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

from bisect import bisect_right
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from projections.facts import Record
from projections.funnel import advanced_from, stage_dwell_days
from projections.snapshot import DEFAULT_STAGES, DIMENSIONS, Deal, ts
from projections.stats import days_between

AMOUNT_SCALE = 6  # the contract allows six decimal places
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_ORDINAL_1970 = date(1970, 1, 1).toordinal()
_INT64_MAX = int(np.iinfo(np.int64).max)
NOW = _INT64_MAX  # "the moment" of an open deal: its owner's team now


def months(days: NDArray[np.int32]) -> NDArray[np.int64]:
    """Each ordinal day's month as year * 12 + month - 1."""
    since_1970 = np.asarray(days - _ORDINAL_1970, dtype="datetime64[D]").astype("datetime64[M]")
    return since_1970.astype(np.int64) + 1970 * 12


def micros(moment: datetime) -> int:
    """Exact microseconds since the epoch: instants compare as `datetime`s do."""
    return (moment - _EPOCH) // _MICRO


class Strings:
    """Every dimension value as a small integer; 0 is None (which no filter matches)."""

    def __init__(self) -> None:
        self.values: list[str | None] = [None]
        self.codes: dict[str | None, int] = {None: 0}

    def code(self, value: str | None) -> int:
        found = self.codes.get(value)
        if found is None:
            found = self.codes[value] = len(self.values)
            self.values.append(value)
        return found

    def find(self, value: str) -> int | None:
        return self.codes.get(value)


class Table:
    """Rows in growable columns. A keyed table's row is its subject's code, given at the
    key's first sighting even as a reference, so references are plain integer gathers;
    rows 0 (no subject) and 1 stay empty."""

    def __init__(self, columns: dict[str, Any], *, keyed: bool = True) -> None:
        self.size = 0
        self.cols: dict[str, NDArray[Any]] = {}
        for name, spec in columns.items():
            dtype, width = spec if isinstance(spec, tuple) else (spec, None)
            self.cols[name] = np.zeros((16, width) if width else 16, dtype=dtype)
        self.keys = Strings() if keyed else None
        if self.keys is not None:
            self.keys.code("")
            self._grow(2)

    def _grow(self, size: int) -> None:
        capacity = len(next(iter(self.cols.values())))
        if size > capacity:
            capacity = max(size, 2 * capacity)
            for name, column in self.cols.items():
                grown = np.zeros((capacity, *column.shape[1:]), dtype=column.dtype)
                grown[:self.size] = column[:self.size]
                self.cols[name] = grown
        self.size = max(self.size, size)

    def row(self, key: str | None) -> int:
        """The row of `key` (0 for none), created empty on first sight."""
        assert self.keys is not None
        if not key:
            return 0
        code = self.keys.code(key)
        if code >= self.size:
            self._grow(code + 1)
        return code

    def append(self) -> int:
        self._grow(self.size + 1)
        return self.size - 1

    def __getitem__(self, name: str) -> NDArray[Any]:
        return self.cols[name][:self.size]


class Columns:
    """One tenant's deals, leads and activities for the funnel and the breakdowns."""

    def __init__(self, tz: str = "Asia/Shanghai", stages: Iterable[str] = DEFAULT_STAGES) -> None:
        self.tz = ZoneInfo(tz)
        self.stages = tuple(stages)
        self.order = {stage: i for i, stage in enumerate(self.stages)}
        self.strings = Strings()
        self.dirty = True
        # Reps: each history entry once, appended; a rep's current entries by code.
        self.history_team: list[int] = [0]
        self.history_manager: list[int] = [0]
        self.history_region: list[int] = [0]
        self.rep_history: dict[int, tuple[list[int], list[int]]] = {}  # moments, entries
        self.reps_current: dict[str, str | None] = {}  # rep -> team now
        n_stages = len(self.stages)
        self.deals = Table({
            "exists": bool, "created_day": np.int32, "period_day": np.int32, "status": np.int32,
            "amount": np.int64, "amount_exp": np.int8, "owner": np.int32, "closed": np.int64,
            "history": np.int32, "own_source": np.int32, "product": np.int32,
            "customer": np.int32, "own_lead": np.int32, "converted_from": np.int32,
            "last_stage": np.int16, "lost_reason": np.int32, "competitor": np.int32,
            "skips": np.int32, "regressions": np.int32, "cycle_days": np.float64,
            "entered": (np.bool_, n_stages), "advanced": (np.bool_, n_stages),
            "dwell": (np.float64, n_stages),
        })
        self.leads = Table({
            "exists": bool, "created_day": np.int32, "converted": bool, "owner": np.int32,
            "created": np.int64, "history": np.int32,
            "source": np.int32, "own_region": np.int32, "deal": np.int32,
        })
        self.customers = Table({"exists": bool, "segment": np.int32})
        self.activities = Table({
            "day": np.int32, "rep": np.int32, "at": np.int64,
            "history": np.int32, "parent_kind": np.int8, "parent": np.int32,
        }, keyed=False)
        self._converted: dict[int, set[int]] = {}  # deal row -> rows of leads converted into it
        self._activity_rows: dict[tuple[int, int], int] = {}  # (kind, parent) -> rows seen
        self._joined: dict[tuple[str, str], NDArray[np.int32]] = {}

    # --- feeding ---------------------------------------------------------------

    def put(self, kind: str, record: Record) -> None:
        """Take a record's latest state (new or changed)."""
        self.dirty = True
        if kind == "deal":
            self._put_deal(record)
        elif kind == "lead":
            self._put_lead(record)
        elif kind == "customer":
            row = self.customers.row(record["id"])
            self.customers["exists"][row] = True
            self.customers["segment"][row] = self.strings.code(record.get("segment"))
        elif kind == "rep":
            self._put_rep(record)
        else:
            return
        if kind in ("deal", "lead", "customer"):
            self._put_activities(kind, record)

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
        self.reps_current[record["id"]] = record["history"][-1][1]
        # Rows of this rep point at its new entries (a move, or a re-join, changes them).
        for table, owner, moment in ((self.deals, "owner", "closed"),
                                     (self.leads, "owner", "created"),
                                     (self.activities, "rep", "at")):
            rows = np.flatnonzero(table[owner] == rep)
            if rows.size:
                table["history"][rows] = self._entries(rep, table[moment][rows])

    def _entries(self, rep: int, moments: NDArray[np.int64]) -> NDArray[np.int32]:
        found = self.rep_history[rep]
        times, entries = np.array(found[0], dtype=np.int64), np.array(found[1], dtype=np.int32)
        index = np.clip(np.searchsorted(times, moments, side="right") - 1, 0, None)
        index[moments == NOW] = len(entries) - 1
        return entries[index]

    def _put_deal(self, r: Record) -> None:
        d = self.deals
        row = d.row(r["id"])
        created_at = ts(r["created_at"])
        closed_at = ts(r["closed_at"]) if r.get("closed_at") else None
        amount = Decimal(r["amount"])
        stages = [(stage, ts(at)) for stage, at in r["stages"]]
        deal = Deal(r["id"], created_at, closed_at, r["status"], amount, stages, {}, r)
        owner = self.strings.code(r["owner"])
        closed = micros(closed_at) if closed_at else NOW
        d["exists"][row] = True
        d["created_day"][row] = self._day(created_at)
        d["period_day"][row] = self._day(closed_at or created_at)
        d["status"][row] = self.strings.code(r["status"])
        units = int(amount.scaleb(AMOUNT_SCALE))
        if units > _INT64_MAX and d.cols["amount"].dtype != object:
            d.cols["amount"] = d.cols["amount"].astype(object)  # beyond int64: Python ints
        d["amount"][row] = units
        d["amount_exp"][row] = max(int(amount.as_tuple().exponent), -AMOUNT_SCALE)
        d["owner"][row], d["closed"][row] = owner, closed
        d["history"][row] = self._entry(owner, closed)
        d["own_source"][row] = self.strings.code(r.get("source") or None)
        d["product"][row] = self.strings.code(r.get("product"))
        d["customer"][row] = self.customers.row(r.get("customer"))
        d["own_lead"][row] = self.leads.row(r.get("lead"))
        d["last_stage"][row] = self.order.get(stages[-1][0], -1)
        lost = r["status"] == "lost"
        d["lost_reason"][row] = self.strings.code((r.get("lost_reason") or "unspecified")
                                                  if lost else None)
        d["competitor"][row] = self.strings.code((r.get("competitor") or None) if lost else None)
        steps = [self.order[b] - self.order[a] for (a, _), (b, _) in pairwise(stages)
                 if a in self.order and b in self.order]
        d["skips"][row] = sum(1 for step in steps if step > 1)
        d["regressions"][row] = sum(1 for step in steps if step < 0)
        d["cycle_days"][row] = (days_between(created_at, closed_at)
                                if r["status"] == "won" and closed_at else np.nan)
        visited = {s for s, _ in stages}
        for i, stage in enumerate(self.stages):
            entered = stage in visited
            d["entered"][row, i] = entered
            d["advanced"][row, i] = entered and advanced_from(deal, stage, self.order)
            dwell = stage_dwell_days(deal, stage)
            d["dwell"][row, i] = np.nan if dwell is None else dwell

    def _put_lead(self, r: Record) -> None:
        lead = self.leads
        row = lead.row(r["id"])
        created_at = ts(r["created_at"])
        owner = self.strings.code(r.get("owner"))
        lead["exists"][row] = True
        lead["created_day"][row] = self._day(created_at)
        lead["converted"][row] = r.get("status") == "converted"
        lead["owner"][row], lead["created"][row] = owner, micros(created_at)
        lead["history"][row] = self._entry(owner, micros(created_at))
        lead["source"][row] = self.strings.code(r.get("source"))
        lead["own_region"][row] = self.strings.code(r.get("region") or None)
        previous, deal = int(lead["deal"][row]), self.deals.row(r.get("deal"))
        lead["deal"][row] = deal
        self._converted.get(previous, set()).discard(row)
        if deal:
            self._converted.setdefault(deal, set()).add(row)
        for changed in {previous, deal} - {0}:
            self._link_converted(changed)

    def _link_converted(self, deal: int) -> None:
        # `Snapshot`: a deal without a lead it can find takes the lead that converted into
        # it; of several, the one with the greatest key (the last in key order).
        assert self.leads.keys is not None
        keys = self.leads.keys.values
        rows = self._converted.get(deal)
        self.deals["converted_from"][deal] = max(rows, key=lambda r: keys[r] or "") if rows else 0

    def _put_activities(self, kind: str, r: Record) -> None:
        logged = r.get("activities") or ()
        parent_kind = ("deal", "lead", "customer").index(kind)
        parent = {"deal": self.deals, "lead": self.leads, "customer": self.customers}[kind].row(
            r["id"])
        seen = self._activity_rows.get((parent_kind, parent), 0)
        # The reducer only ever appends to a record's activities: the new ones are the tail.
        a = self.activities
        for at, _kind, rep, _duration, _id in logged[seen:]:
            row = a.append()
            moment = ts(at)
            rep_code = self.strings.code(rep)
            a["day"][row] = self._day(moment)
            a["rep"][row], a["at"][row] = rep_code, micros(moment)
            a["history"][row] = self._entry(rep_code, micros(moment))
            a["parent_kind"][row], a["parent"][row] = parent_kind, parent
        self._activity_rows[(parent_kind, parent)] = len(logged)

    # --- joining ----------------------------------------------------------------

    def dim(self, what: str, name: str) -> NDArray[np.int32]:
        """Each row's value of dimension `name` ("deal", "lead" or "activity" rows),
        joined through its references; kept until the next `put`."""
        if self.dirty:
            self._joined.clear()
            self.dirty = False
        found = self._joined.get((what, name))
        if found is None:
            found = self._joined[(what, name)] = self._join(what, name).astype(np.int32)
        return found

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
                return self._history(name)[d["history"]]
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
            return np.where(customers["exists"], customers["segment"], 0)[d["customer"]]
        if what == "lead":
            if name == "rep":
                return lead["owner"]
            if name in ("team", "manager"):
                return self._history(name)[lead["history"]]
            if name == "region":
                return np.where(lead["own_region"] != 0, lead["own_region"],
                                self._history("region")[lead["history"]])
            if name == "source":
                return lead["source"]
            into = np.where(d["exists"][lead["deal"]], lead["deal"], 0)
            return np.where(into != 0, self.dim("deal", name)[into], 0)
        if name == "rep":
            return a["rep"]
        if name in ("team", "manager", "region"):
            return self._history(name)[a["history"]]
        # Inherited from what the activity was logged on: a deal gives source, product and
        # segment; a lead its source; a customer its segment.
        kind, parent = a["parent_kind"], a["parent"]
        out = np.zeros(a.size, dtype=np.int32)
        on_deal = kind == 0
        out[on_deal] = self.dim("deal", name)[parent[on_deal]]
        if name == "source":
            on_lead = kind == 1
            out[on_lead] = lead["source"][parent[on_lead]]
        if name == "segment":
            on_customer = kind == 2
            customers = self.customers
            out[on_customer] = np.where(customers["exists"], customers["segment"],
                                        0)[parent[on_customer]]
        return out

    # --- selecting ----------------------------------------------------------------

    def select(self, what: str, dims: dict[str, str], start: date | None, end: date | None,
               *, day: str) -> NDArray[np.bool_]:
        """Rows of `what` ("deal", "lead", "activity") that the filters keep."""
        table = {"deal": self.deals, "lead": self.leads, "activity": self.activities}[what]
        keep = table["exists"].copy() if what != "activity" else np.ones(table.size, bool)
        for name, value in dims.items():
            if name not in DIMENSIONS:
                continue
            code = self.strings.find(value)
            if code is None or code == 0:
                return np.zeros(table.size, dtype=bool)
            keep &= self.dim(what, name) == code
        days = table[day]
        if start is not None:
            keep &= days >= start.toordinal()
        if end is not None:
            keep &= days <= end.toordinal()
        return keep

    def team_members(self, team: str | None) -> list[str]:
        return sorted(r for r, now in self.reps_current.items() if now == team)

    def nbytes(self) -> int:
        return sum(c.nbytes for t in (self.deals, self.leads, self.customers, self.activities)
                   for c in t.cols.values())
