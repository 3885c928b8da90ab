"""What a deal's export row needs beyond the deal columns: the offsets its instants were
written with (an export shows them as recorded) and the name of its current stage (which a
pipeline change may have left out of `Columns.stages`). One row per deal row. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from events.vocabulary import ts
from projections.columnar_table import Table
from projections.facts import Record


def _offset(value: str | None) -> int:
    """The UTC offset an instant was written with, in seconds (0 when none)."""
    if not value:
        return 0
    offset = ts(value).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


class DealFacts:
    """Per deal row: the offsets of its creation and close, and its last stage's name."""

    def __init__(self) -> None:
        self.table = Table({"created_offset": np.int32, "closed_offset": np.int32,
                            "stage": np.int32}, keyed=False)

    def put_many(self, rows: list[int], records: list[Record],
                 code: Callable[[str | None], int]) -> None:
        table = self.of(max(rows) + 1)
        table.cols["created_offset"][rows] = [_offset(r["created_at"]) for r in records]
        table.cols["closed_offset"][rows] = [_offset(r.get("closed_at")) for r in records]
        table.cols["stage"][rows] = [code(r["stages"][-1][0] if r["stages"] else None)
                                     for r in records]

    def of(self, size: int) -> Table:
        """The columns at least `size` rows long (deal rows without a record: zeros)."""
        if self.table.size < size:
            self.table.extend(size - self.table.size)
        return self.table

    def trim(self) -> None:
        self.table.trim()
