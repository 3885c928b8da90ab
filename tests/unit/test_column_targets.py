"""The targets over the columns keep what does not depend on `as_of` beside the columns and
count actuals into grids: pinned against the `Snapshot` path when records change on the
same `Columns`, for questions within and beyond the latest occurrences kept apart, and the
fast path's floats against `Decimal`'s."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from projections import columnar_targets
from projections.columnar_targets import _fast_division, column_targets
from projections.snapshot import Snapshot
from projections.targets import targets
from tests.history import changes, columns_from, fold, one_change_at_a_time, simulated
from tests.unit.test_column_store_views import TZ, body
from tests.unit.test_targets import EXTRA

END = datetime.fromisoformat("2017-04-30T18:00:00+08:00")  # 120 simulated days end here


def same(snapshot: Snapshot, columns: columnar_targets.Columns, as_of: datetime,
         **asked: str) -> None:
    assert body(column_targets(columns, as_of, **asked)) == \
        body(targets(snapshot, as_of, **asked)), (asked, as_of)


def test_questions_within_and_beyond_the_latest_occurrences_kept_apart(
        monkeypatch: pytest.MonkeyPatch) -> None:
    records = fold(simulated(days=120) + EXTRA)
    snapshot = Snapshot(records, TZ)
    for tail in (1, 40, 1 << 16):  # a question before the tail counts its own grids
        monkeypatch.setattr(columnar_targets, "TAIL_ROWS", tail)
        columns = columns_from(records)
        for hours in (-24 * 100, 0, 1, 5, 30, 24 * 20, 24 * 60, 24 * 200):
            same(snapshot, columns, END - timedelta(hours=hours))
        same(snapshot, columns, END - timedelta(days=3), metric="won_value")


def test_what_is_kept_follows_targets_reps_and_records_put_on_the_same_columns() -> None:
    # Asked between changes: what was kept for the previous question must not answer this.
    stream = changes(simulated(days=120) + EXTRA)
    for _, records, columns in one_change_at_a_time(stream, [9, 7, 5, 4, 3, 2]):
        snapshot = Snapshot(records, TZ)
        for hours in (0, 24 * 30):
            same(snapshot, columns, END - timedelta(hours=hours))
            same(snapshot, columns, END - timedelta(hours=hours), team="T-1")


def test_the_fast_quotient_is_the_float_of_the_decimal_quotient() -> None:
    pick = random.Random(3)
    targets_tried = [Decimal(t) for t in (
        "1", "3", "7", "12", "25644", "3622500.00", "60442800.00", "0.07", "1E+3",
        "98765432109.87", "65536", "131072", "0.000001", "999999.999999")]
    targets_tried += [Decimal(pick.randrange(1, 10 ** 10)).scaleb(-pick.randrange(0, 7))
                      for _ in range(300)]
    targets_tried += [Decimal(pick.randrange(1, 1 << 20) << pick.randrange(0, 20))
                      for _ in range(100)]
    checked = 0
    for target in targets_tried:
        for amount in (False, True):
            division = _fast_division(target, amount)
            if division is None:
                continue
            numerator, denominator, limit = division
            for _ in range(200):
                if amount:
                    places = pick.randrange(0, 7)
                    value = Decimal(pick.randrange(0, 10 ** pick.randrange(1, 16))
                                    ).scaleb(-places)
                    millionths = int(value.scaleb(6))
                    if millionths % numerator or millionths // numerator >= 1 << 53:
                        continue
                    top = millionths // numerator
                else:
                    count = pick.randrange(0, min(limit, 10 ** pick.randrange(1, 16)) + 1)
                    value, top = Decimal(count), count * numerator
                assert top / denominator == float(value / target), (value, target)
                checked += 1
    assert checked > 50_000
