"""The history entry in force for each (rep, moment), found by one search over every rep's
history, is the one a search of that rep's own history finds."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from projections.rep_entries import History, RepEntries, entries_at
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
    class Owner:  # the columns: what the built index is kept for
        pass

    owner = Owner()
    history: History = {3: ([10], [1])}
    reps, at = np.array([3], dtype=np.int32), np.array([20], dtype=np.int64)
    assert entries_at(owner, history, 2, reps, at, NOW).tolist() == [1]
    history[3] = ([10, 15], [2, 3])  # a move: two more entries appended
    assert entries_at(owner, history, 4, reps, at, NOW).tolist() == [3]
