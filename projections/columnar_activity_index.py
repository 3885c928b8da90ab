"""What GET /v1/activities reads without a pass over every activity (12.7M at a million
deals) per question: the activities on deals in deal order, for the last activity of the
deals open at a moment; and, for the whole tenant, every rep's count of each kind and the
minutes of each kind.

Activities are only ever appended (`Columns._put_activities`, durations alike), so these are
made for the rows there are, kept for a `generation` of the activity table (as the reps'
order of `columnar_rep_activity` is), and the rows appended since, the tail, are read apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

import numpy as np
from numpy.typing import NDArray

from events.contract import ActivityKind
from projections.columnar import Columns, blocks
from projections.columnar_rep_activity import generation, spans
from projections.columnar_table import INT64_MAX, Table, dense_codes
from projections.derived import kept

# The selected activities: (rep code, kind code, count) triples, and minutes by kind code.
Counted = tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp], dict[int, "Minutes"]]
NO_ACTIVITY = int(np.iinfo(np.int64).min)  # a deal's "last activity" when none by a moment
MINUTE_KINDS = ("call", "visit")  # the kinds whose minutes the view sums


@dataclass(frozen=True)
class Minutes:
    """Durations summed as `columnar_views.decimal_sum` sums the timed ones: integer
    millionths, and the least exponent among them and 0. An untimed activity's minutes and
    exponent are 0 (`ActivityFacts`), so summing them too changes neither."""

    total: int = 0
    exponent: int = 0

    def __add__(self, other: Minutes) -> Minutes:
        return Minutes(self.total + other.total, min(self.exponent, other.exponent))


def rep_kind_counts(reps: NDArray[np.int32], kind_codes: NDArray[np.intp],
                    kind_places: NDArray[np.integer[Any]], codes: int
                    ) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]:
    """Each (rep code, kind code) pair among the activities and how many have it, by rep
    and kind (`kind_places`: each activity's kind's place in `kind_codes`; rep codes below
    `codes`): counted over the codes' range (small string ids), not sorted."""
    width = max(len(kind_codes), 1)
    cells: NDArray[np.signedinteger[Any]] = \
        reps.astype(np.int32 if codes * width < 1 << 31 else np.intp)
    cells *= width
    cells += kind_places
    counts = np.bincount(cells)
    found = np.flatnonzero(counts)
    return found // width, kind_codes[found % width], counts[found]


@dataclass(frozen=True)
class ActivityIndex:
    """The activities [0, `rows`): those on deals by deal, their kinds, their minutes'
    bounds."""

    rows: int  # activities [0, rows) are indexed; those appended since are the tail
    on_deals: NDArray[np.int32]  # the rows on deals, by deal, by row within a deal
    starts: NDArray[np.int32]  # where each deal row's rows begin in `on_deals` (and the end)
    unordered: NDArray[np.bool_]  # by deal row: its rows' moments go down somewhere
    kinds: NDArray[np.intp]  # the codes of the kinds activities may have, ascending
    low_exponent: int  # the least exponent of their minutes (0 when none is below)
    most_minutes: int  # the largest magnitude of their minutes

    @classmethod
    def of(cls, columns: Columns, rows: int) -> ActivityIndex:
        """The index of activities [0, `rows`)."""
        a, durations = columns.activities, columns.activity_facts.durations
        on_deals = np.flatnonzero(a["parent_kind"][:rows] == 0).astype(np.int32)
        parents = a["parent"][on_deals]
        # A whole load appends each deal's activities together, deal after deal: in order.
        if parents.size and bool(np.any(parents[1:] < parents[:-1])):
            by_deal = np.argsort(parents, kind="stable")
            on_deals, parents = on_deals[by_deal], parents[by_deal]
        size = int(parents.max()) + 1 if parents.size else 0
        starts = np.zeros(size + 1, dtype=np.int32)
        np.cumsum(np.bincount(parents, minlength=size), out=starts[1:])
        # A deal's activities are logged in time order, as a rule: its last is its latest.
        at = a["at"][on_deals]
        unordered = np.zeros(size, dtype=bool)
        unordered[parents[1:][(at[1:] < at[:-1]) & (parents[1:] == parents[:-1])]] = True
        del parents, at
        low, most = _bounds(durations, slice(0, rows))
        # The contract's kinds, those coded: a lookup finds the rows' (else they are counted).
        known = sorted(code for kind in get_args(ActivityKind)
                       if (code := columns.strings.find(kind)) is not None)
        return cls(rows, on_deals, starts, unordered, np.array(known, dtype=np.intp), low,
                   most)

    def last_activity(self, deals: NDArray[np.intp], moment: int, a: Table
                      ) -> NDArray[np.int64]:
        """Per deal row of `deals` (ascending): the moment of its last activity at or
        before `moment`, `NO_ACTIVITY` when none."""
        last = np.full(deals.size, NO_ACTIVITY, dtype=np.int64)
        indexed = deals[deals < self.starts.size - 1]  # deals after the index have no rows
        begins = self.starts[indexed].astype(np.int64)
        ends = self.starts[indexed + 1].astype(np.int64)
        some = np.flatnonzero(ends > begins)
        # Where a deal's rows are in time order and the last is by `moment`, it is the one.
        latest = a["at"][self.on_deals[ends[some] - 1]]
        found = (latest <= moment) & ~self.unordered[indexed[some]]
        last[some[found]] = latest[found]
        some = some[~found]
        if some.size:
            begins, ends = begins[some], ends[some]
            at = a["at"][self.on_deals[spans(begins, ends)]]
            at[at > moment] = NO_ACTIVITY
            lengths = ends - begins
            last[some] = np.maximum.reduceat(at, np.cumsum(lengths) - lengths)
        # The tail: rows appended since, any deal's, in no order.
        tail = slice(self.rows, a.size)
        on_deal = np.flatnonzero((a["parent_kind"][tail] == 0) & (a["at"][tail] <= moment))
        if on_deal.size and deals.size:
            parents = a["parent"][tail][on_deal]
            place = np.minimum(np.searchsorted(deals, parents), deals.size - 1)
            mine = np.flatnonzero(deals[place] == parents)
            np.maximum.at(last, place[mine], a["at"][tail][on_deal[mine]])
        return last

    def kind_places(self, kinds: NDArray[np.int32], codes: int
                    ) -> tuple[NDArray[np.intp], NDArray[np.integer[Any]]]:
        """`dense_codes(kinds)` (string codes below `codes`), through the kinds known (a
        lookup, not a count) when every one is; the places may then count kinds absent."""
        known = np.full(max(codes, int(self.kinds[-1]) + 1 if self.kinds.size else 0), -1,
                        dtype=np.int32)
        known[self.kinds] = np.arange(self.kinds.size)
        places = known[kinds]
        if places.size and int(places.min()) < 0:
            return dense_codes(kinds)
        return self.kinds, places

    def bounds(self, durations: Table) -> tuple[int, int]:
        """`_bounds` of every activity's minutes: the index's and the tail's."""
        low, most = _bounds(durations, slice(self.rows, durations.size))
        return min(low, self.low_exponent), max(most, self.most_minutes)

    def kind_minutes(self, columns: Columns, rows: NDArray[np.intp], kinds: NDArray[np.int32],
                     kind_codes: NDArray[np.intp], places: NDArray[np.integer[Any]]
                     ) -> dict[int, Minutes]:
        """`kind_minutes` of activities `rows`, of kinds `kinds` (at `places` among
        `kind_codes`): their minutes read once, summed per kind as floats where that is
        exact (integers, every partial sum below 2**53) and no exponent is negative."""
        durations = columns.activity_facts.durations
        low, most = self.bounds(durations)
        if low < 0 or most * rows.size >= 1 << 53:
            return kind_minutes(columns, self, rows, kinds)
        sums = np.bincount(places, durations["minutes"][rows], len(kind_codes))
        found: dict[int, Minutes] = {}
        for name in MINUTE_KINDS:
            code = columns.strings.find(name)
            if code:
                place = int(np.searchsorted(kind_codes, code))
                found[code] = Minutes(int(sums[place])) \
                    if place < len(kind_codes) and kind_codes[place] == code else Minutes()
        return found

    def minutes(self, columns: Columns, rows: NDArray[np.integer[Any]]) -> Minutes:
        """The minutes of activities `rows`."""
        durations = columns.activity_facts.durations
        low, most = self.bounds(durations)
        amounts = durations["minutes"][rows]
        if most * amounts.size < INT64_MAX:
            total = int(amounts.sum())
        else:  # beyond int64: Python's integers
            total = sum(int(amount) for amount in amounts)
        # When no minutes have a negative exponent, a sum's exponent is 0 whatever is summed.
        exponent = min(0, int(durations["minutes_exp"][rows].min())) if low < 0 and rows.size \
            else 0
        return Minutes(total, exponent)


def _bounds(durations: Table, rows: slice) -> tuple[int, int]:
    """The least exponent (0 if none is below) and the largest magnitude of the minutes of
    `rows`."""
    minutes = durations["minutes"][rows]
    if not minutes.size:
        return 0, 0
    return (min(0, int(durations["minutes_exp"][rows].min())),
            max(int(minutes.max()), -int(minutes.min())))


@dataclass(frozen=True)
class Totals:
    """The whole table's activities [0, `rows`): `rep_kind_counts`, and minutes by kind."""

    rows: int
    reps: NDArray[np.intp]
    kinds: NDArray[np.intp]
    counts: NDArray[np.intp]
    minutes: dict[int, Minutes]  # by kind code (of `MINUTE_KINDS`)

    @classmethod
    def of(cls, columns: Columns, index: ActivityIndex) -> Totals:
        """Counted a block of rows at a time: each block's temporaries are a few MB."""
        a, codes = columns.activities, len(columns.strings.values)
        width = max(len(index.kinds), 1)
        cells = np.zeros(codes * width, dtype=np.intp)  # (rep code, kind's place) counts
        parts: list[Counted] = []
        for block in blocks(index.rows):
            kinds, reps = a["kind"][block], a["rep"][block]
            kind_codes, places = index.kind_places(kinds, codes)
            rows = np.arange(block.start, block.stop)
            minutes = index.kind_minutes(columns, rows, kinds, kind_codes, places)
            if kind_codes is index.kinds:
                block_cells = reps.astype(np.intp)
                block_cells *= width
                block_cells += places
                cells += np.bincount(block_cells, minlength=cells.size)
                parts.append((*(np.zeros(0, dtype=np.intp),) * 3, minutes))
            else:  # a kind the index does not know
                parts.append((*rep_kind_counts(reps, kind_codes, places, codes), minutes))
        found = np.flatnonzero(cells)
        parts.append((found // width, index.kinds[found % width], cells[found], {}))
        return cls(index.rows, *merged(parts))


def merged(parts: list[Counted]) -> Counted:
    """Parts' (rep, kind, count) triples summed by (rep, kind), in rep then kind order, and
    their minutes by kind."""
    reps, kinds, counts = (np.concatenate(arrays) for arrays in
                           zip(*(part[:3] for part in parts), strict=True))
    width = int(kinds.max()) + 1 if kinds.size else 1
    pairs, place = np.unique(reps * width + kinds, return_inverse=True)
    summed = np.bincount(place, counts, len(pairs)).astype(np.intp)
    minutes: dict[int, Minutes] = {}
    for part in parts:
        for kind, part_minutes in part[3].items():
            minutes[kind] = minutes.get(kind, Minutes()) + part_minutes
    return pairs // width, pairs % width, summed, minutes


def kind_minutes(columns: Columns, index: ActivityIndex, rows: NDArray[np.integer[Any]] | None,
                 kinds: NDArray[np.int32]) -> dict[int, Minutes]:
    """The minutes of activities `rows` (None: the first `kinds.size`), of kinds `kinds`,
    per kind code of `MINUTE_KINDS`."""
    found: dict[int, Minutes] = {}
    for name in MINUTE_KINDS:
        code = columns.strings.find(name)
        if code:
            mine = np.flatnonzero(kinds == code)
            found[code] = index.minutes(columns, mine if rows is None else rows[mine])
    return found


def activity_index(columns: Columns) -> ActivityIndex:
    """The columns' activities indexed; those from `rows` on are the tail."""
    size = columns.activities.size
    return kept(columns, "activity index", generation(size),
                lambda: ActivityIndex.of(columns, size))


def totals(columns: Columns, index: ActivityIndex) -> Totals:
    """The whole table's counts and minutes, for the rows `index` has."""
    return kept(columns, "activity totals", index.rows, lambda: Totals.of(columns, index))
