"""Rows split by a dense code: every width of code (the radix-sorted narrow ones and the
wide one) gives the groups a plain dictionary would, each in the order of the rows."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from projections.columnar_table import split_by_code


def by_dictionary(codes: list[int], rows: list[int]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for code, row in zip(codes, rows, strict=True):
        groups.setdefault(code, []).append(row)
    return groups


@given(st.sampled_from([1, 3, 256, 257, 65_536, 65_537]), st.data())
def test_each_code_gets_its_rows_in_order(count: int, data: st.DataObject) -> None:
    edges = st.sampled_from([0, 1 % count, count - 1])  # the highest code is the one to wrap
    codes = data.draw(st.lists(st.integers(0, count - 1) | edges, max_size=300))
    rows = data.draw(st.permutations(range(len(codes))))
    parts = split_by_code(np.array(codes, dtype=np.intp), count, np.array(rows, dtype=np.intp))
    assert len(parts) == count
    expected = by_dictionary(codes, rows)
    for code, part in enumerate(parts):
        assert part.tolist() == expected.get(code, [])


def test_no_codes_no_parts() -> None:
    assert split_by_code(np.zeros(0, dtype=np.intp), 0, np.zeros(0, dtype=np.intp)) == []
