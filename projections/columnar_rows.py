"""The rows a team or a rep filter keeps, without a pass over every row.

At 1M deals a team has 0.1% of the 12.7M activities and 3M leads, yet a mask over all of
them costs 10-15 ms a question, and a dashboard's filtered refresh asks ten. Here the
rows of each rep and each team are kept value after value (`RowIndex`), so such a filter
reads only its own rows.

An index costs a sort of the table (0.4 s for the activities at 1M) and is kept until any
record changes, so it is built only for a dimension asked `INDEX_AFTER` times since the
last change: a tenant whose records change between most questions keeps using masks.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

from projections.columnar import Columns
from projections.columnar_table import dense_codes
from projections.derived import kept

INDEX_AFTER = 4
# The dimensions indexed, the most selective first (a filter by rep and team reads the
# rep's rows): the dashboard's pickers. A region or a source keeps a large share of the
# rows, where a mask costs little more than an index, and each index of the activities is
# 51 MB at 1M deals.
INDEXED = ("rep", "team")


@dataclass(frozen=True)
class RowIndex:
    """A table's rows grouped by their value of one dimension, ascending within each."""

    order: NDArray[np.int32]  # the rows, value after value
    starts: NDArray[np.int64]  # [i]: where the i-th value present starts in `order`
    place: NDArray[np.int32]  # a value's code -> its i (-1: no row has it)

    @staticmethod
    def of(values: NDArray[np.int32], codes: int) -> RowIndex:
        present, dense = dense_codes(values, codes)
        # Values as the narrowest type numpy sorts by radix (stable: rows stay ascending).
        narrow = dense.astype(np.uint16) if present.size <= 1 << 16 else dense
        order = np.argsort(narrow, kind="stable").astype(np.int32)
        starts = np.zeros(present.size + 1, dtype=np.int64)
        np.cumsum(np.bincount(dense, minlength=present.size), out=starts[1:])
        place = np.full(max(codes, int(values.max(initial=0)) + 1), -1, dtype=np.int32)
        place[present] = np.arange(present.size, dtype=np.int32)
        return RowIndex(order, starts, place)

    def rows(self, code: int) -> NDArray[np.int32]:
        i = int(self.place[code]) if 0 <= code < self.place.size else -1
        return self.order[self.starts[i]:self.starts[i + 1]] if i >= 0 else self.order[:0]


def indexed(dims: dict[str, str]) -> bool:
    """Whether these filters name a dimension `chosen` may read from an index."""
    return any(name in dims for name in INDEXED)


def chosen(columns: Columns, what: str, dims: dict[str, str], start: date | None,
           end: date | None, *, day: str) -> NDArray[np.intp]:
    """The rows of `what` that `Columns.select` keeps, ascending (its `np.flatnonzero`)."""
    indexed = _index(columns, what, dims)
    if indexed is None:
        return np.flatnonzero(columns.select(what, dims, start, end, day=day))
    name, index = indexed
    # The other dimensions are tested on these rows; this one's joined values are not
    # read at all (at 1M deals the activities' are 51 MB, and may have been let go).
    tests = columns.tests(what, {k: v for k, v in dims.items() if k != name})
    code = columns.strings.find(dims[name])
    if tests is None or not code:
        return np.zeros(0, dtype=np.intp)
    rows = index.rows(code).astype(np.intp)
    table = columns.table(what)
    keep = table["exists"][rows] if what != "activity" else np.ones(rows.size, dtype=bool)
    for values, other in tests:
        keep &= values[rows] == other
    days = table[day][rows]
    if start is not None:
        keep &= days >= start.toordinal()
    if end is not None:
        keep &= days <= end.toordinal()
    found: NDArray[np.intp] = rows[keep]
    return found


def _index(columns: Columns, what: str, dims: dict[str, str]
           ) -> tuple[str, RowIndex] | None:
    """The most selective dimension asked and its index, once asked often enough since the
    records last changed (each kept until then); None: use a mask."""
    name = next((name for name in INDEXED if name in dims), None)
    if name is None:
        return None
    if not asked_often(columns, ("row index", what, name)):
        return None
    return name, kept(columns, ("row index", what, name), tuple(sorted(columns.versions.items())),
                      lambda: RowIndex.of(columns.dim(what, name), len(columns.strings.values)))


def asked_often(columns: Columns, what: Hashable) -> bool:
    """Whether `what` was asked for `INDEX_AFTER` times (this one included) since any
    record last changed: then an index of it is worth its sort."""
    version = tuple(sorted(columns.versions.items()))
    asked: dict[Hashable, int] = kept(columns, "index questions", version, dict)
    asked[what] = asked.get(what, 0) + 1
    return asked[what] >= INDEX_AFTER
