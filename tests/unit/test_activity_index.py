"""The activities view read through what it keeps (the deals' activities in deal order, the
whole tenant's counts and minutes) answers as the `Snapshot` does, whether that was made for
every activity, for some (the rest read apart as the tail) or for none; over records changed
one at a time, where a deal's activities are not together in the table."""

from __future__ import annotations

import copy
from datetime import date, datetime
from functools import cache

import pytest

from projections import activity, columnar_activity
from projections.columnar import Columns
from projections.columnar_activity_index import ActivityIndex
from projections.columnar_rep_activity import generation
from projections.derived import kept
from projections.snapshot import Filters, Snapshot
from tests.history import TZ, changes, one_change_at_a_time, simulated
from tests.unit.test_column_store_views import body, values

MOMENTS = ("2017-02-10T09:30:00+08:00", "2017-04-30T18:00:00+08:00", "2016-12-01T00:00:00Z")


@cache
def changed_one_at_a_time() -> tuple[Snapshot, Columns]:
    *_, (_, records, columns) = one_change_at_a_time(changes(simulated(days=120)), [])
    return Snapshot(records, TZ), columns


def indexed_for(columns: Columns, share: float) -> Columns:
    """A copy of `columns` whose kept index was made for the first `share` of its
    activities."""
    mine = copy.deepcopy(columns)
    rows = int(mine.activities.size * share)
    kept(mine, "activity index", generation(mine.activities.size),
         lambda: ActivityIndex.of(mine, rows))
    return mine


def questions(snapshot: Snapshot) -> list[Filters]:
    known = values(snapshot)
    narrow, wide = (date(2017, 3, 1), date(2017, 3, 10)), (date(2017, 1, 20), date(2017, 4, 1))
    return [Filters(), Filters(*narrow), Filters(*wide), Filters(date(2017, 4, 20), None),
            Filters(None, date(2017, 1, 5)), Filters(date(2018, 1, 1), date(2018, 2, 1)),
            Filters(dims={"team": known["team"][0]}), Filters(dims={"team": "nobody"}),
            Filters(*narrow, dims={"rep": known["rep"][0]}),
            Filters(*wide, dims={"source": known["source"][0]})]


@pytest.mark.parametrize("share", [1.0, 0.5, 0.0])
def test_activities_read_through_what_is_kept_are_the_snapshots(share: float) -> None:
    snapshot, columns = changed_one_at_a_time()
    mine = indexed_for(columns, share)
    for filters in questions(snapshot):
        for text in MOMENTS:
            as_of = datetime.fromisoformat(text)
            assert body(columnar_activity.activities(mine, filters, as_of)) == \
                body(activity.activities(snapshot, filters, as_of)), (share, filters, as_of)


def test_a_deals_activities_apart_in_the_table_are_found_together() -> None:
    _, columns = changed_one_at_a_time()
    index = ActivityIndex.of(columns, columns.activities.size)
    a = columns.activities
    on_deals = a["parent"][index.on_deals]
    assert index.on_deals.size == int((a["parent_kind"] == 0).sum())
    assert bool((on_deals[1:] >= on_deals[:-1]).all())
    # Records changed one at a time append a deal's activities among others'.
    assert not bool((a["parent"][a["parent_kind"] == 0][1:]
                     >= a["parent"][a["parent_kind"] == 0][:-1]).all())
