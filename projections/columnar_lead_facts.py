"""What a lead's first response and decision need, in columns beside the lead rows: its
status, when it was converted or decided, its first contact, and its (re)assignments.

Assignments are one row each (lead row, instant); the reducer only ever appends them, so a
changed lead brings only its new ones (as activities do). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from events.vocabulary import ts
from projections.columnar_table import Table, micros
from projections.facts import Record

_NEVER = int(np.iinfo(np.int64).max)  # an instant no `as_of` reaches: not (yet) happened

# Appended to the lead table's columns (`Columns.leads`).
LEAD_FACT_COLUMNS = {
    "status": np.int32, "converted_at": np.int64, "decided_at": np.int64,
    "first_contact": np.int64, "assignments": np.int32,  # how many have rows
}


class LeadFacts:
    """Assignments of every lead, and the writer of the lead rows' fact columns."""

    def __init__(self) -> None:
        self.assignments = Table({"lead": np.int32, "at": np.int64}, keyed=False)

    def put_many(self, leads: Table, rows: Sequence[int], records: list[Record],
                 code: Callable[[str | None], int]) -> None:
        out: dict[str, list[int]] = {"status": [], "converted_at": [], "decided_at": [],
                                     "first_contact": []}
        new_leads: list[int] = []
        new_at: list[int] = []
        for row, r in zip(rows, records, strict=True):
            out["status"].append(code(r.get("status")))
            for name in ("converted_at", "decided_at"):
                out[name].append(micros(ts(r[name])) if r.get(name) else _NEVER)
            contacts = [micros(ts(a[0])) for a in r.get("activities") or ()]
            out["first_contact"].append(min(contacts) if contacts else _NEVER)
            assigned = r.get("assignments") or ()
            seen = int(leads.cols["assignments"][row])
            for at in assigned[seen:]:
                new_leads.append(row)
                new_at.append(micros(ts(at)))
            leads.cols["assignments"][row] = len(assigned)
        for name, values in out.items():
            leads.cols[name][list(rows)] = values
        table = self.assignments
        start = table.size
        table.extend(len(new_at))
        table.cols["lead"][start:table.size] = new_leads
        table.cols["at"][start:table.size] = new_at

    def trim(self) -> None:
        self.assignments.trim()
