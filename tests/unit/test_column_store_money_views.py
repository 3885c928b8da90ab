"""Customers and RFM answered from the column store are byte for byte the `Snapshot`
views' answers at a fixed `as_of`, for every parameter their routes take (groupings,
filters on every dimension, segments, pages), whether the records were loaded whole or
changed one at a time as the projector applies them."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from projections import columnar_customers, customers
from projections.columnar import Columns
from projections.facts import Record
from projections.snapshot import Filters, Snapshot
from tests.builders import ev, unique
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


def _same_for_records(records: dict[str, dict[str, Record]], as_ofs: tuple[str, ...]) -> None:
    """Column and Snapshot answers equal for these records, every segment and a page."""
    snapshot, columns = Snapshot(records, TZ), columns_from(records, chunk=3)
    for text in as_ofs:
        as_of = datetime.fromisoformat(text)
        for filters in (Filters(), Filters(date(2017, 2, 1), date(2017, 3, 31))):
            for by in ("month", "week"):
                assert body(columnar_customers.customers(columns, filters, as_of, by)) == \
                    body(customers.customers(snapshot, filters, as_of, by)), (text, filters)
            for segment, limit, offset in (*LISTS, ("nobody", 10, 0)):
                asked = {"limit": limit, "offset": offset, "segment": segment}
                assert body(columnar_customers.rfm_list(columns, filters, as_of, **asked)) \
                    == body(customers.rfm_list(snapshot, filters, as_of, **asked)), asked


def _order(customer: str, at: str, amount: str, paid: tuple[str, ...] = ()) -> list[dict]:
    order_id = f"O-{unique()}"
    return [ev("order.booked", at, order_id=order_id, customer_id=customer, amount=amount),
            *(ev("payment.received", at, payment_id=f"P-{unique()}", order_id=order_id,
                 amount=amount) for amount in paid)]


def test_equal_sums_written_differently_negative_ones_and_odd_ids_answer_the_same() -> None:
    # The median is a sum whose digits depend on its exponent: which of equal sums it is
    # (by customer id) shows. Ids too long for the key index's bytes column, and ones
    # beyond ASCII, are ordered as str orders them; some orders come after an as_of.
    # Negative amounts (no event carries one; a record might) are summed and ranked too.
    long_id = "L" * 70
    ids = ["A", "B", "C", "D", "Ä", "中", long_id, "E", "F"]
    events = [ev("rep.joined", "2017-01-01T09:00:00", rep_id="r1", name="r1", team_id="t"),
              *(ev("customer.created", "2017-01-01T09:00:00", customer_id=c, segment="smb")
                for c in ids)]
    events += _order("A", "2017-01-10T10:00:00", "100.00", paid=("50.0",))
    events += _order("B", "2017-02-01T10:00:00", "100", paid=("100", "100"))
    events += _order("C", "2017-02-03T10:00:00", "100.0")
    events += _order("D", "2017-02-03T10:00:00", "20.5", paid=("20.5",))
    events += _order("Ä", "2017-03-05T10:00:00", "100.000")
    events += _order("中", "2017-03-05T10:00:00", "7")
    events += _order(long_id, "2017-03-06T10:00:00", "100.0000")
    events += _order("A", "2017-03-07T10:00:00", "0.00")
    events += _order("E", "2017-06-20T10:00:00", "100.00000")  # after the first as_of
    events += _order("F", "2017-07-01T10:00:00", "3")
    records = fold(events)
    for order in records["order"].values():
        if order["customer"] == "B":
            order["payments"][1][1] = "-100"  # refunded
        if order["customer"] == "D":
            order["amount"], order["payments"][0][1] = "-20.5", "-20.5"
    _same_for_records(records, ("2017-04-30T12:00:00+08:00", "2017-06-30T12:00:00+08:00",
                                "2017-12-31T18:00:00+08:00", "2016-12-31T00:00:00+08:00"))


def test_customers_summing_beyond_int64_millionths_stay_exact() -> None:
    records = fold(simulated(days=120))
    # 9.9e19 millionths is past int64: the sums fall back to Python's integers.
    booked = next(order for order in records["order"].values() if order["payments"])
    booked["amount"] = "98765432109876.55"
    booked["payments"][0][1] = "98765432109876.5"
    snapshot, columns = Snapshot(records, TZ), columns_from(records)
    whole = columnar_customers.customers(columns, Filters(), datetime.fromisoformat(AS_OF[1]))
    assert Decimal(whole["lifetime_value"]["booked"]["total"]) > 10 ** 13
    same_customers(snapshot, columns, seed=2)


def test_an_empty_store_answers_the_same() -> None:
    snapshot, columns = Snapshot({}, TZ), columns_from({})
    same_customers(snapshot, columns, seed=1)
