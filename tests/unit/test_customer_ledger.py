"""The customer ledger the column views keep per version of the orders
(`projections/columnar_ledger.py`): answers read from it are the `Snapshot` views' answers
byte for byte whatever the `as_of` and the filters, however bookings tie, and after orders
arrive or gain payments once it was made; and the quintile scores read without a sort are
`customers.scores`."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from projections import columnar_customers, customers
from projections.columnar_ledger import customer_ledger
from projections.facts import Record
from projections.snapshot import Filters, Snapshot
from tests.builders import ev, unique
from tests.history import TZ, columns_from, fold
from tests.unit.test_column_store_views import body

IDS = ("A", "B", "C", "Ä", "中")
# Few instants, so bookings tie; written in two offsets, so the list shows each as written.
MOMENTS = ("2017-01-10T10:00:00", "2017-01-10T10:00:00", "2017-02-01T02:00:00+00:00",
           "2017-03-05T10:00:00", "2017-03-31T23:59:59", "2017-06-20T10:00:00")
AMOUNTS = ("100", "100.00", "0.5", "20.50", "7", "3.000001", "0")
AS_OF = ("2016-12-31T00:00:00+08:00", "2017-01-10T10:00:00+08:00",
         "2017-03-05T12:00:00+08:00", "2017-12-31T18:00:00+08:00")
FILTERS = (Filters(), Filters(date(2017, 2, 1), date(2017, 3, 31)),
           Filters(None, None, {"segment": "smb"}))

orders = st.lists(st.tuples(st.sampled_from(IDS), st.sampled_from(MOMENTS),
                            st.sampled_from(AMOUNTS),
                            st.lists(st.tuples(st.sampled_from(MOMENTS),
                                               st.sampled_from(AMOUNTS)), max_size=2)),
                  max_size=12)


def _events(booked: list[tuple[str, str, str, list[tuple[str, str]]]]) -> list[dict]:
    events = [ev("rep.joined", "2017-01-01T09:00:00", rep_id="r1", name="r1", team_id="t"),
              *(ev("customer.created", "2017-01-01T09:00:00", customer_id=c,
                   segment="smb" if i % 2 else "ent") for i, c in enumerate(IDS))]
    for customer, at, amount, paid in booked:
        order_id = f"O-{unique()}"
        events.append(ev("order.booked", at, order_id=order_id, customer_id=customer,
                         amount=amount))
        events += [ev("payment.received", when, payment_id=f"P-{unique()}",
                      order_id=order_id, amount=value) for when, value in paid]
    return events


def _same_answers(records: dict[str, dict[str, Record]], columns: object) -> None:
    snapshot = Snapshot(records, TZ)
    for text in AS_OF:
        as_of = datetime.fromisoformat(text)
        for filters in FILTERS:
            assert body(columnar_customers.customers(columns, filters, as_of)) == \
                body(customers.customers(snapshot, filters, as_of)), (text, filters)
            for segment in (None, "new"):
                asked = {"limit": 1000, "offset": 0, "segment": segment}
                assert body(columnar_customers.rfm_list(columns, filters, as_of, **asked)) \
                    == body(customers.rfm_list(snapshot, filters, as_of, **asked)), \
                    (text, filters, segment)


@settings(max_examples=40, deadline=None)
@given(earlier=orders, later=orders)
def test_orders_and_payments_arriving_after_a_question_count_in_the_next(
        earlier: list, later: list) -> None:
    first = _events(earlier)
    then = fold(first)
    columns = columns_from(then)
    _same_answers(then, columns)  # the ledger is made here, at this version
    now = fold(first + _events(later)[len(IDS) + 1:])
    for kind in ("customer", "order"):  # as the projector puts changed records
        changed = [r for key, r in now.get(kind, {}).items()
                   if then.get(kind, {}).get(key) != r]
        columns.put_many(kind, changed)
    _same_answers(now, columns)


def test_the_ledger_is_made_once_per_version_of_the_orders() -> None:
    records = fold(_events([("A", MOMENTS[0], "100", [])]))
    columns = columns_from(records)
    made = customer_ledger(columns)
    columns.put_many("customer", list(records["customer"].values()))
    assert customer_ledger(columns) is made  # a customer's segment is read per question
    columns.put_many("order", list(records["order"].values()))
    assert customer_ledger(columns) is not made


@given(st.lists(st.one_of(st.integers(-3, 3), st.integers(-2 ** 62, 2 ** 62)), max_size=80))
def test_quintile_scores_are_the_reference_scores(values: list[int]) -> None:
    assert columnar_customers.quintile_scores(np.array(values, dtype=np.int64)).tolist() == \
        customers.scores(values)
