"""Customers and RFM answered from the column store are byte for byte the `Snapshot`
views' answers at a fixed `as_of`, for every parameter their routes take (groupings,
filters on every dimension, segments, pages), whether the records were loaded whole or
changed one at a time as the projector applies them."""

from __future__ import annotations

from datetime import datetime

from projections import columnar_customers, customers
from projections.columnar import Columns
from projections.snapshot import Filters, Snapshot
from tests.history import TZ, changes, columns_from, fold, one_change_at_a_time, simulated
from tests.unit.test_column_store_views import AS_OF, body, filter_cases, year
from tests.unit.test_scores import WORLD

PERIODS = ("day", "week", "month", "quarter", "year")
# (segment, limit, offset): every segment whole, and pages of all of them
LISTS = (*((segment, 100000, 0) for segment in customers.SEGMENT_NAMES),
         (None, 100000, 0), (None, 7, 0), (None, 5, 3), (None, 10, 100000))


def same_customers(snapshot: Snapshot, columns: Columns, seed: int) -> None:
    for index, filters in enumerate(filter_cases(snapshot, seed, count=4)):
        for text in AS_OF:
            as_of = datetime.fromisoformat(text)
            by = PERIODS[index % len(PERIODS)]
            assert body(columnar_customers.customers(columns, filters, as_of, by)) == \
                body(customers.customers(snapshot, filters, as_of, by)), (filters, by, as_of)
            segment, limit, offset = LISTS[index % len(LISTS)]
            asked = {"limit": limit, "offset": offset, "segment": segment}
            assert body(columnar_customers.rfm_list(columns, filters, as_of, **asked)) \
                == body(customers.rfm_list(snapshot, filters, as_of, **asked)), \
                (filters, as_of, asked)
    for segment, limit, offset in LISTS:  # every page and segment, unfiltered
        as_of = datetime.fromisoformat(AS_OF[1])
        asked = {"limit": limit, "offset": offset, "segment": segment}
        assert body(columnar_customers.rfm_list(columns, Filters(), as_of, **asked)) == \
            body(customers.rfm_list(snapshot, Filters(), as_of, **asked)), asked
    for by in PERIODS:
        as_of = datetime.fromisoformat(AS_OF[1])
        assert body(columnar_customers.customers(columns, Filters(), as_of, by)) == \
            body(customers.customers(snapshot, Filters(), as_of, by)), by


def test_a_simulated_year_gives_the_snapshot_customers_byte_for_byte() -> None:
    _, snapshot, columns = year()
    whole = columnar_customers.customers(columns, Filters(),
                                         datetime.fromisoformat(AS_OF[1]))
    assert whole["customers"] > 10 and whole["retention"]  # what is compared is not empty
    same_customers(snapshot, columns, seed=6)


def test_hand_made_world_with_orders_and_payments_answers_the_same() -> None:
    records = fold(WORLD)
    snapshot, columns = Snapshot(records, TZ), columns_from(records, chunk=1)
    assert snapshot.orders
    same_customers(snapshot, columns, seed=4)


def test_records_changed_one_at_a_time_answer_the_same_at_every_checkpoint() -> None:
    # Orders gain payments as they arrive, customers change segment: each change counts.
    for index, records, columns in one_change_at_a_time(changes(simulated(days=120)), [3]):
        same_customers(Snapshot(records, TZ), columns, seed=index)
