"""Each rep's activities in (rep, local day) order: how many every rep logged before a
moment, and which one rep logged on given days, without reading every activity (12.7M at
a million deals) per question.

Activities are only ever appended (`Columns._put_activities`), so the order is made for
the rows there are and the rows appended since are read apart (the tail), until they
reach a sixteenth of the rows (at least 65,536) and the order is made again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from projections.columnar import Columns
from projections.columnar_table import Table, dense_codes
from projections.derived import kept

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_TAIL_SHIFT = 16  # never made again for fewer than 65,536 new rows


def generation(size: int) -> tuple[int, int]:
    """Changes each time `size` grows by a sixteenth to a thirty-second of itself, and at
    most once per 65,536: the order made at one generation serves all of it."""
    shift = max(_MIN_TAIL_SHIFT, size.bit_length() - 5)
    return shift, size >> shift


def local_day(moment: int, tz: ZoneInfo) -> int:
    """The local date of `moment` (microseconds since the epoch), as its ordinal."""
    try:
        return (_EPOCH + timedelta(microseconds=moment)).astimezone(tz).date().toordinal()
    except OverflowError:  # beyond datetime's years: before or after every row's day
        return 0 if moment < 0 else datetime.max.toordinal() + 1


def spans(begins: NDArray[np.int64], ends: NDArray[np.int64]) -> NDArray[np.intp]:
    """The positions of every [begin, end) in turn, in one array."""
    lengths = np.maximum(ends - begins, 0)
    total = int(lengths.sum())
    offsets = np.cumsum(lengths) - lengths
    positions: NDArray[np.intp] = (np.arange(total, dtype=np.intp)
                                   + np.repeat((begins - offsets).astype(np.intp), lengths))
    return positions


def _dense(values: NDArray[np.int32]) -> tuple[NDArray[np.intp], NDArray[np.integer]]:
    """The distinct values, ascending, and each value's place among them: as uint16 when
    it fits, where numpy's stable sort is a radix sort (and a 12.7M-row index 25 MB)."""
    present, index = dense_codes(values)
    return present, index.astype(np.uint16 if len(present) <= 1 << 16 else np.int32)


@dataclass(frozen=True)
class RepActivities:
    """The activities [0, `rows`) by (rep, local day), and each rep's count per day."""

    rows: int  # activities [0, rows) are ordered; those appended since are the tail
    reps: NDArray[np.intp]  # the rep codes among them, ascending
    days: NDArray[np.int32]  # the local days among them, ascending
    order: NDArray[np.int32]  # their rows by (rep, day), by row within a day
    starts: NDArray[np.int64]  # where each rep's rows begin in `order` (and the end)
    before: NDArray[np.int32]  # (reps, days + 1): a rep's rows on days before days[j]

    @classmethod
    def of(cls, activities: Table) -> RepActivities:
        """The order of the activities there are."""
        rows = activities.size
        reps, rep_index = _dense(activities["rep"][:rows])
        days, day_index = _dense(activities["day"][:rows])
        n_reps, n_days = len(reps), len(days)
        by_day = np.argsort(day_index, kind="stable").astype(np.int32)
        order = by_day[np.argsort(rep_index[by_day], kind="stable")]
        del by_day
        narrow = n_reps * n_days < 1 << 31
        cell: NDArray[np.signedinteger[Any]] = rep_index.astype(np.int32 if narrow else np.int64)
        cell *= n_days
        cell += day_index
        counts = np.bincount(cell, minlength=n_reps * n_days)
        del cell
        before = np.zeros((n_reps, n_days + 1), dtype=np.int32)
        np.cumsum(counts.reshape(n_reps, n_days), axis=1, out=before[:, 1:])
        starts = np.zeros(n_reps + 1, dtype=np.int64)
        np.cumsum(before[:, -1], out=starts[1:])
        return cls(rows, reps, days.astype(np.int32), order, starts, before)

    def _day_column(self, day: int | None, after: bool = False) -> int:
        """The column of `before` that counts the days before `day` (with `after`: up to
        and including it); None: before every day."""
        if day is None:
            return len(self.days) if after else 0
        return int(np.searchsorted(self.days, day, side="right" if after else "left"))

    def logged_before(self, moment: int, at: NDArray[np.int64], tz: ZoneInfo
                      ) -> NDArray[np.int64]:
        """Per rep of `reps`: their ordered rows logged before `moment` (`at`: the
        activities' moments)."""
        day = local_day(moment, tz)
        column = self._day_column(day)
        counts = self.before[:, column].astype(np.int64)
        # That day's, one by one; none of them is before its first moment (a midnight).
        if (column < len(self.days) and self.days[column] == day
                and local_day(moment - 1, tz) == day):
            lows = self.before[:, column].astype(np.int64)
            highs = self.before[:, column + 1].astype(np.int64)
            rows = self.order[spans(self.starts[:-1] + lows, self.starts[:-1] + highs)]
            rep = np.repeat(np.arange(len(self.reps)), highs - lows)
            counts += np.bincount(rep[at[rows] < moment], minlength=len(self.reps))
        return counts

    def on_days(self, first: int | None, last: int | None) -> NDArray[np.int32]:
        """The ordered rows of every rep on local days `first` to `last` (None: open)."""
        low, high = self._day_column(first), self._day_column(last, after=True)
        if high <= low:
            return np.zeros(0, dtype=np.int32)
        begins = self.starts[:-1] + self.before[:, low]
        return self.order[spans(begins, self.starts[:-1] + self.before[:, high])]

    def of_rep(self, rep: int, first: int | None, last: int | None) -> NDArray[np.int32]:
        """The ordered rows of rep code `rep` on local days `first` to `last`."""
        index = int(np.searchsorted(self.reps, rep))
        if index == len(self.reps) or self.reps[index] != rep:
            return np.zeros(0, dtype=np.int32)
        low, high = self._day_column(first), self._day_column(last, after=True)
        begin = int(self.starts[index])
        return self.order[begin + int(self.before[index, low]):
                          begin + int(self.before[index, max(low, high)])]


def rep_activities(columns: Columns) -> RepActivities:
    """The columns' activities in order; those from `rows` on are the tail."""
    a = columns.activities
    return kept(columns, "rep activities", generation(a.size), lambda: RepActivities.of(a))
