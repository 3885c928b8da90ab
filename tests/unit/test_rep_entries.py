"""The history entry in force for each (rep, moment), found by one search over every rep's
history, is the one a search of that rep's own history finds."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from projections.columnar import Columns
from projections.columnar_table import micros
from projections.rep_entries import History, RepEntries
from tests.depth import examples

NOW = 2**63 - 1


def one_rep_at_a_time(history: History, reps: NDArray[np.int32],
                      moments: NDArray[np.int64]) -> NDArray[np.int32]:
    """Each rep's own history searched for its rows (the columns' former way)."""
    out = np.zeros(len(reps), dtype=np.int32)
    for rep in np.unique(reps).tolist():
        if rep in history:
            mine = reps == rep
            times = np.array(history[rep][0], dtype=np.int64)
            entries = np.array(history[rep][1], dtype=np.int32)
            index = np.clip(np.searchsorted(times, moments[mine], side="right") - 1, 0, None)
            index[moments[mine] == NOW] = len(entries) - 1
            out[mine] = entries[index]
    return out


moments = st.integers(-5, 40)


@st.composite
def histories(draw: st.DrawFn) -> History:
    history: History = {}
    entry = 1
    for rep in draw(st.sets(st.integers(1, 8), max_size=6)):
        times = sorted(draw(st.lists(moments, min_size=1, max_size=5)))
        history[rep] = (times, list(range(entry, entry + len(times))))
        entry += len(times)
    return history


@settings(max_examples=examples(400), deadline=None)
@given(history=histories(), asked=st.lists(st.tuples(st.integers(0, 9),
                                                     st.one_of(moments, st.just(NOW)))))
def test_one_search_finds_what_each_reps_own_search_finds(
        history: History, asked: list[tuple[int, int]]) -> None:
    reps = np.array([rep for rep, _ in asked], dtype=np.int32)
    at = np.array([moment for _, moment in asked], dtype=np.int64)
    found = RepEntries.of(history).at(reps, at, NOW)
    assert found.tolist() == one_rep_at_a_time(history, reps, at).tolist()


def test_a_rep_put_again_is_searched_anew() -> None:
    columns = Columns("Asia/Shanghai")
    rep = {"id": "R-1", "history": [["2017-01-01T09:00:00+08:00", "T-1", "M-1", "north"]]}
    code = np.array([columns.strings.code("R-1")], dtype=np.int32)
    june = np.array([micros(datetime.fromisoformat("2017-06-01T00:00:00+08:00"))])
    columns.put_many("rep", [rep])
    assert columns.strings.values[columns.history_team[columns.entries_at(code, june)[0]]] \
        == "T-1"
    moved = {**rep, "history": [*rep["history"], ["2017-03-01T09:00:00+08:00", "T-2", "M-2",
                                                   "south"]]}
    columns.put_many("rep", [moved])  # a move: the index kept for the columns is made anew
    assert columns.strings.values[columns.history_team[columns.entries_at(code, june)[0]]] \
        == "T-2"
