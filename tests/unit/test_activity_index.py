"""The activities view read through what it keeps (the deals' activities in deal order, the
whole tenant's counts and minutes) answers as the `Snapshot` does, whether that was made for
every activity, for some (the rest read apart as the tail) or for none; over records changed
one at a time, where a deal's activities are not together in the table."""

from __future__ import annotations

import copy
import dataclasses
from datetime import date, datetime
from functools import cache

import numpy as np
import pytest

from projections import activity, columnar_activity
from projections.activity import CADENCE_BUCKETS, buckets
from projections.columnar import Columns
from projections.columnar_activity_index import ActivityIndex, Totals
from projections.columnar_rep_activity import generation
from projections.columnar_views import day_buckets
from projections.cycle import AGE_BUCKETS
from projections.derived import kept
from projections.snapshot import Filters, Snapshot
from tests.builders import ev
from tests.history import TZ, changes, columns_of, one_change_at_a_time, simulated, snapshot_of
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


@pytest.mark.parametrize("fraction", ["5.5", "7"])
def test_minutes_of_a_window_sum_exactly_with_or_without_fractions(fraction: str) -> None:
    # Whole minutes are summed as floats where exact; a fraction takes the exact sums.
    events = [
        ev("customer.created", "2017-03-01T08:00:00", customer_id="C1"),
        ev("activity.logged", "2017-03-01T09:00:00", activity_id="A-1", kind="call",
           rep_id="r1", customer_id="C1", duration_min=10),
        ev("activity.logged", "2017-03-02T10:00:00", activity_id="A-2", kind="call",
           rep_id="r2", customer_id="C1", duration_min=fraction),
        ev("activity.logged", "2017-03-02T11:00:00", activity_id="A-3", kind="call",
           rep_id="r2", customer_id="C1"),
        ev("activity.logged", "2017-03-03T12:00:00", activity_id="A-4", kind="visit",
           rep_id="r1", customer_id="C1", duration_min=60),
    ]
    snapshot, columns = snapshot_of(events), columns_of(events)
    as_of = datetime.fromisoformat(MOMENTS[1])
    for filters in (Filters(), Filters(date(2017, 3, 2), date(2017, 3, 3)),
                    Filters(None, date(2017, 3, 1)), Filters(date(2017, 3, 3), None),
                    Filters(date(2017, 3, 2), None, dims={"rep": "r2"})):
        assert body(columnar_activity.activities(columns, filters, as_of)) == \
            body(activity.activities(snapshot, filters, as_of)), filters


def test_a_deals_activity_logged_late_but_earlier_is_not_taken_for_its_last() -> None:
    # D1's second activity happened before its first: its last row is not its latest.
    events = [
        ev("deal.created", "2017-03-01T08:00:00", deal_id="D1", owner_id="r1",
           stage="prospecting"),
        ev("deal.created", "2017-03-01T08:00:00", deal_id="D2", owner_id="r1",
           stage="prospecting"),
        ev("activity.logged", "2017-03-20T09:00:00", activity_id="A-1", kind="call",
           rep_id="r1", deal_id="D1"),
        ev("activity.logged", "2017-03-05T09:00:00", activity_id="A-2", kind="email",
           rep_id="r1", deal_id="D1"),
        ev("activity.logged", "2017-03-06T09:00:00", activity_id="A-3", kind="email",
           rep_id="r1", deal_id="D2"),
    ]
    snapshot, columns = snapshot_of(events), columns_of(events)
    index = ActivityIndex.of(columns, columns.activities.size)
    assert index.unordered.any()
    for text in ("2017-03-10T00:00:00+08:00", "2017-03-25T00:00:00+08:00"):
        as_of = datetime.fromisoformat(text)
        assert body(columnar_activity.activities(columns, Filters(), as_of)) == \
            body(activity.activities(snapshot, Filters(), as_of)), text


@pytest.mark.parametrize("bounds", [CADENCE_BUCKETS, AGE_BUCKETS])
def test_day_buckets_in_numpy_are_the_snapshots(bounds: tuple[tuple[int, int | None, str], ...]
                                                 ) -> None:
    edges = [0.0, 1e-9, 6.999999, 7.0, 7.9999999, 8.0, 14.5, 15.0, 30.99999, 31.0, 60.5,
             61.0, 90.99, 91.0, 400.25, -0.5, 1e9]
    days = np.array(edges + [n / 7 for n in range(800)])
    assert day_buckets(days, bounds) == buckets(days.tolist(), bounds)
    assert day_buckets(days[:0], bounds) == buckets([], bounds)


def test_kinds_the_index_does_not_know_are_counted_all_the_same() -> None:
    _, columns = changed_one_at_a_time()
    index = ActivityIndex.of(columns, columns.activities.size)
    blind = dataclasses.replace(index, kinds=index.kinds[1:])  # as if coded after it was made
    known, found = Totals.of(columns, index), Totals.of(columns, blind)
    for name in ("reps", "kinds", "counts"):
        assert getattr(known, name).tolist() == getattr(found, name).tolist(), name
    assert known.minutes == found.minutes and known.counts.sum() == columns.activities.size
