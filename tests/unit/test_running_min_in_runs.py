"""Running minima that start again at each run: what the revenue ledger and the customer
ledger read a sum's exponent from, against a plain loop."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from projections.columnar_table import running_min_in_runs


@given(st.lists(st.lists(st.integers(-6, 3), max_size=6), max_size=12))
def test_each_minimum_looks_back_only_within_its_run(runs: list[list[int]]) -> None:
    expected = []
    for run in runs:  # empty runs included: a customer with no payment
        lowest = None
        for value in run:
            lowest = value if lowest is None else min(lowest, value)
            expected.append(lowest)
    values = np.array([v for run in runs for v in run], dtype=np.int8)
    counts = np.array([len(run) for run in runs], dtype=np.int64)
    assert running_min_in_runs(values, counts).tolist() == expected
