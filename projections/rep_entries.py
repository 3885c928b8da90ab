"""Each rep's history entry in force at each of many moments, in one pass of searches.

`Columns.entries_at` used to mask every row once per distinct rep, O(rows x reps): 31 ms a
question at 100,000 deals (640 reps) and ten times the reps at a million. Here every rep's
history is one array sorted by (rep, moment), and a row's (rep, moment) is one search in
it: the moments are replaced by their rank among the history's distinct moments, so that
(rep, rank) packs into one int64 key.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

History = dict[int, tuple[list[int], list[int]]]  # rep code -> (moments, entries), sorted


@dataclass(frozen=True)
class RepEntries:
    moments: NDArray[np.int64]  # the distinct moments of every rep's history, sorted
    keys: NDArray[np.int64]  # rep x (len(moments) + 1) + the entry's moment's rank (>= 1)
    reps: NDArray[np.int64]
    entries: NDArray[np.int32]

    @classmethod
    def of(cls, history: History) -> RepEntries:
        reps = sorted(history)
        counts = [len(history[rep][0]) for rep in reps]
        rep_of = np.repeat(np.array(reps, dtype=np.int64), counts)
        at = np.array([m for rep in reps for m in history[rep][0]], dtype=np.int64)
        entries = np.array([e for rep in reps for e in history[rep][1]], dtype=np.int32)
        moments = np.unique(at)
        ranks = np.searchsorted(moments, at, side="right")
        return cls(moments, rep_of * (len(moments) + 1) + ranks, rep_of, entries)

    def at(self, reps: NDArray[np.int32], moments: NDArray[np.int64], now: int
           ) -> NDArray[np.int32]:
        """The entry in force for each rep at each moment: the last at or before it, else
        the rep's first; `now` takes the rep's last; 0 for a rep without history."""
        out = np.zeros(len(reps), dtype=np.int32)
        if not len(self.keys) or not len(reps):
            return out
        width = len(self.moments) + 1
        rep = reps.astype(np.int64)
        ranks = np.searchsorted(self.moments, moments, side="right")
        ranks[moments == now] = len(self.moments)
        last = np.searchsorted(self.keys, rep * width + ranks, side="right") - 1
        in_force = last >= 0
        in_force[in_force] = self.reps[last[in_force]] == rep[in_force]
        first = np.searchsorted(self.keys, rep * width, side="left")
        known = first < len(self.keys)
        known[known] = self.reps[first[known]] == rep[known]
        out[known] = self.entries[first[known]]  # before the rep's first moment: its first
        out[in_force] = self.entries[last[in_force]]
        return out
