"""What the activities view needs beyond the activity rows: each activity's duration, and
each deal's quotes, in columns. Pure: no I/O.

Durations are one row per activity, in the order `Columns` appends activity rows (the
reducer only ever appends to a record's activities, so a changed record brings only its
tail); quotes are one row per deal row. Minutes and money are integer millionths with
their `Decimal` exponents, summed exactly (`columnar_views.decimal_sum`).
"""

from __future__ import annotations

import numpy as np

from projections.columnar_orders import scaled
from projections.columnar_table import INT64_MAX, Table
from projections.facts import Record


class ActivityFacts:
    """Activity durations (aligned with `Columns.activities`) and deal quotes (by deal row)."""

    def __init__(self) -> None:
        self.durations = Table({"minutes": np.int64, "minutes_exp": np.int8,
                                "timed": bool}, keyed=False)
        self.quotes = Table({"quotes": np.int64, "quoted": np.int64, "quoted_exp": np.int8},
                            keyed=False)

    def put_many(self, kind: str, records: list[Record], parents: Table) -> None:
        """Before `Columns` appends the records' new activities: the same tails, the same
        order (`parents`' activity counts are still the ones before these records)."""
        rows = parents.rows([r["id"] for r in records])
        seen: dict[int, int] = {}
        minutes: list[int] = []
        exps: list[int] = []
        timed: list[bool] = []
        for row, r in zip(rows, records, strict=True):
            logged = r.get("activities") or ()
            for activity in logged[seen.get(row, int(parents.cols["activities"][row])):]:
                duration = activity[3]
                value, exp = scaled(str(duration)) if duration is not None else (0, 0)
                minutes.append(value)
                exps.append(exp)
                timed.append(duration is not None)
            seen[row] = len(logged)
        table = self.durations
        start = table.size
        table.extend(len(minutes))
        table.cols["minutes"][start:table.size] = minutes
        table.cols["minutes_exp"][start:table.size] = exps
        table.cols["timed"][start:table.size] = timed
        if kind == "deal":
            self._put_quotes(rows, records)

    def _put_quotes(self, rows: list[int], records: list[Record]) -> None:
        table = self.quotes
        if max(rows) >= table.size:
            table.extend(max(rows) + 1 - table.size)
        amounts = [scaled(str(r.get("quoted_value") or 0)) for r in records]
        values = [value for value, _ in amounts]
        if values and max(values) > INT64_MAX and table.cols["quoted"].dtype != object:
            table.cols["quoted"] = table.cols["quoted"].astype(object)  # beyond int64
        table.cols["quoted"][rows] = values
        table.cols["quoted_exp"][rows] = [exp for _, exp in amounts]
        table.cols["quotes"][rows] = [int(r.get("quotes", 0)) for r in records]

    def quotes_of(self, size: int) -> Table:
        """The quote columns at least `size` rows long (deal rows without a record: none)."""
        if self.quotes.size < size:
            self.quotes.extend(size - self.quotes.size)
        return self.quotes

    def trim(self) -> None:
        self.durations.trim()
        self.quotes.trim()
