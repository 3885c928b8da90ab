"""A team's or a rep's rows found from the kept index (`columnar_rows.chosen`) are the rows
a mask over every row keeps (`Columns.select`), for every dimension and table, with and
without a date window, before the index is built and after, and as records change."""

from __future__ import annotations

from datetime import date

import numpy as np

from events.vocabulary import DIMENSIONS
from projections.columnar import Columns
from projections.columnar_rows import INDEX_AFTER, RowIndex, chosen
from tests.history import changes, one_change_at_a_time, simulated

TABLES = (("deal", "created_day"), ("lead", "created_day"), ("activity", "day"))
WINDOWS = ((None, None), (date(2017, 2, 1), date(2017, 3, 15)), (date(2017, 3, 1), None))


def each_value(columns: Columns, what: str, name: str) -> list[str]:
    codes = np.unique(columns.dim(what, name))
    return [columns.strings.values[code] for code in codes.tolist() if code]


def same_rows(columns: Columns) -> int:
    """Asks every value of every dimension of every table; how many questions it asked."""
    asked = 0
    for what, day in TABLES:
        for name in DIMENSIONS:
            for value in [*each_value(columns, what, name), "nobody"]:
                for start, end in WINDOWS:
                    dims = {name: value}
                    expected = np.flatnonzero(columns.select(what, dims, start, end, day=day))
                    found = chosen(columns, what, dims, start, end, day=day)
                    assert found.tolist() == expected.tolist(), (what, dims, start, end)
                    asked += 1
            # two dimensions at once: the rep's rows, narrowed by the team
            team = each_value(columns, what, "team")[:1]
            for rep in each_value(columns, what, "rep")[:3]:
                dims = {"rep": rep, **({"team": team[0]} if team else {})}
                expected = np.flatnonzero(columns.select(what, dims, None, None, day=day))
                assert chosen(columns, what, dims, None, None, day=day).tolist() == \
                    expected.tolist(), (what, dims)
    return asked


def test_indexed_rows_are_the_masks_rows_as_records_change() -> None:
    for _, _, columns in one_change_at_a_time(changes(simulated(days=75)), [4, 2]):
        assert same_rows(columns) > INDEX_AFTER * len(DIMENSIONS)


def test_an_index_lists_each_values_rows_in_ascending_order() -> None:
    values = np.array([3, 1, 3, 0, 7, 1, 3], dtype=np.int32)
    index = RowIndex.of(values, 8)
    assert {code: index.rows(code).tolist() for code in range(9)} == {
        0: [3], 1: [1, 5], 2: [], 3: [0, 2, 6], 4: [], 5: [], 6: [], 7: [4], 8: []}
    many = np.random.default_rng(3).integers(0, 70_000, 200_000).astype(np.int32)
    wide = RowIndex.of(many, 70_000)  # more values than a 16-bit sort key holds
    for code in (0, 12_345, 69_999):
        assert wide.rows(code).tolist() == np.flatnonzero(many == code).tolist()
