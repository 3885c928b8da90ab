"""Customer definitions (docs/METRICS.md, "GET /v1/customers") pinned by hand, and the view
equal to the independent oracle over a simulated year.

Every hand case runs through both the view and the oracle; times without an offset are
Asia/Shanghai local time.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.responses import JSONResponse

from projections import columnar_customers
from projections.columnar import Columns
from projections.customers import customers, rfm_list, scores, segment_of
from projections.snapshot import Filters, Snapshot
from tests.builders import ev, unique
from tests.history import columns_of, simulated, snapshot_of
from tests.oracles import customers as oracle
from tests.oracles.compare import comparable

TZ = ZoneInfo("Asia/Shanghai")



def world(*customer_ids: str) -> list[dict]:
    return [ev("rep.joined", "2017-01-01T09:00:00", rep_id="r1", name="r1", team_id="north"),
            *(ev("customer.created", "2017-01-01T09:00:00", customer_id=c, segment="smb")
              for c in customer_ids)]


def order(customer: str, at: str, amount: str = "100", **data: object) -> dict:
    return ev("order.booked", at, order_id=f"O-{unique()}", customer_id=customer,
              amount=amount, **data)


def selection(filters: dict[str, str]) -> Filters:
    dims = {k: v for k, v in filters.items() if k not in ("from", "to")}
    return Filters(date.fromisoformat(filters["from"]) if "from" in filters else None,
                   date.fromisoformat(filters["to"]) if "to" in filters else None, dims)


def answer(events: list[dict], as_of: str, by: str = "month", **filters: str) -> dict[str, Any]:
    """The view's answer, after checking that the oracle gives the same (RFM list too)."""
    moment = datetime.fromisoformat(as_of).replace(tzinfo=TZ)
    snapshot = snapshot_of(events)
    view = customers(snapshot, selection(filters), moment, by)
    columns = columns_of(events)
    from_columns = columnar_customers.customers(columns, selection(filters), moment, by)
    assert JSONResponse(from_columns).body == JSONResponse(view).body  # byte for byte
    assert comparable(view) == comparable(
        oracle.customers(events, as_of=moment, by=by, filters=filters))
    listed = rfm_list(snapshot, selection(filters), moment, limit=1000, offset=0)
    assert JSONResponse(listed).body == JSONResponse(columnar_customers.rfm_list(
        columns, selection(filters), moment, limit=1000, offset=0)).body
    assert comparable(listed["customers"]) == comparable(
        oracle.rfm(events, as_of=moment, filters=filters))
    return view


# A ordered in January and March, B in February, C in late June; as_of is 2017-06-30 noon.
ABC = [*world("A", "B", "C"),
       order("A", "2017-01-10T10:00:00", "100"), order("B", "2017-02-01T10:00:00", "200"),
       order("A", "2017-03-05T10:00:00", "300"), order("C", "2017-06-20T10:00:00", "50")]
AS_OF = "2017-06-30T12:00:00"


def test_active_customers_ordered_in_the_last_90_days() -> None:
    result = answer(ABC, AS_OF)

    assert (result["customers"], result["active"]) == (3, 1)  # only C since 2017-04-01 noon


def test_repeat_rate_is_customers_with_two_orders_over_customers() -> None:
    result = answer(ABC, AS_OF)

    assert result["repeat_customers"] == 1
    assert result["repeat_rate"] == pytest.approx(1 / 3)


def test_new_customers_are_counted_by_their_first_order() -> None:
    result = answer(ABC, AS_OF, **{"from": "2017-02-01"})

    assert result["new"] == 2  # B and C; A's March order is not its first
    assert result["new_by_period"] == [{"key": "2017-02", "new": 1}, {"key": "2017-06", "new": 1}]
    assert result["customers"] == 3  # the window selects new customers only


def test_retention_follows_each_monthly_cohort_to_as_of() -> None:
    cohorts = {c["cohort"]: c for c in answer(ABC, AS_OF)["retention"]}

    assert cohorts["2017-01"]["retained"] == [1, 0, 1, 0, 0, 0]  # A came back in March
    assert cohorts["2017-02"]["rates"] == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert cohorts["2017-06"]["customers"] == 1


def test_lifetime_value_is_booked_and_collected_per_customer() -> None:
    first_of_b = next(e for e in ABC if e["data"].get("customer_id") == "B"
                      and e["type"] == "order.booked")
    events = [*ABC, ev("payment.received", "2017-02-10T10:00:00", payment_id="P1",
                       order_id=first_of_b["data"]["order_id"], amount="150.5")]
    value = answer(events, AS_OF)["lifetime_value"]

    assert value["booked"] == {"total": "650", "mean": "216.67", "median": "200"}
    # collected per customer: A 0, B 150.5, C 0
    assert {k: Decimal(v) for k, v in value["collected"].items()} == {
        "total": Decimal("150.5"), "mean": Decimal("50.17"), "median": 0}


def test_quintile_scores_give_ties_their_average_rank() -> None:
    # ranks of 1, 1, 1 are 1, 2, 3: average 2, so ceil(5 * 2 / 5) = 2
    assert scores([1, 1, 1, 2, 3]) == [2, 2, 2, 4, 5]
    assert scores([10, 20, 30, 40, 50, 60, 70, 80, 90, 100]) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert scores([7]) == [5]


def test_recency_scores_the_latest_order_highest() -> None:
    rows = {r["customer"]: r for r in
            rfm_list(snapshot_of(ABC), Filters(), datetime(2017, 6, 30, 12, tzinfo=TZ),
                     limit=10, offset=0)["customers"]}

    assert (rows["C"]["r"], rows["A"]["r"], rows["B"]["r"]) == (5, 4, 2)
    assert rows["C"]["recency_days"] == pytest.approx(10 + 2 / 24)
    assert (rows["A"]["frequency"], rows["A"]["monetary"]) == (2, "400")


@pytest.mark.parametrize(("r", "f", "m", "orders", "segment"), [
    (5, 5, 4, 9, "champions"), (5, 2, 5, 1, "new"), (3, 4, 1, 4, "loyal"),
    (4, 2, 2, 2, "potential"), (2, 3, 5, 3, "at_risk"), (1, 1, 1, 1, "hibernating"),
    (3, 2, 5, 2, "needs_attention"),
])
def test_segments_take_the_first_rule_that_matches(r: int, f: int, m: int, orders: int,
                                                   segment: str) -> None:
    assert segment_of(r, f, m, orders) == segment


def test_the_rep_filter_sees_customers_through_their_deals_orders() -> None:
    events = [*world("A", "B"),
              ev("deal.created", "2017-01-02T09:00:00", deal_id="D1", owner_id="r1",
                 customer_id="A", stage="prospecting"),
              order("A", "2017-01-10T10:00:00", deal_id="D1"), order("A", "2017-02-10T10:00:00"),
              order("B", "2017-02-01T10:00:00")]
    result = answer(events, AS_OF, rep="r1")

    assert (result["customers"], result["repeat_customers"]) == (1, 0)


def test_the_rfm_list_is_paged_by_customer_id() -> None:
    snapshot = snapshot_of(ABC)
    page = rfm_list(snapshot, Filters(), datetime(2017, 6, 30, 12, tzinfo=TZ), limit=2, offset=1)

    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 1)
    assert [r["customer"] for r in page["customers"]] == ["B", "C"]


# --------------------------------------------------------------------------- a simulated year

CASES = [
    ("month", "2017-12-31T18:00:00+08:00", {}),
    ("week", "2017-06-30T12:00:00+08:00", {"from": "2017-03-01", "to": "2017-05-31"}),
    ("quarter", "2017-12-31T18:00:00+08:00", {"segment": "mid"}),
    ("day", "2017-08-15T00:00:00+08:00", {"region": "east", "from": "2017-04-01"}),
    ("year", "2017-12-31T18:00:00+08:00", {"product": "CRM Suite"}),
]


@cache
def year_columns() -> Columns:
    return columns_of(simulated())


@pytest.fixture(scope="module")
def year() -> tuple[list[dict], Snapshot]:
    events = simulated()
    return events, snapshot_of(events)


@pytest.mark.parametrize("path", ["snapshot", "columns"])
@pytest.mark.parametrize(("by", "as_of", "filters"), CASES)
def test_a_simulated_year_gives_the_oracles_customers(year: tuple[list[dict], Snapshot], by: str,
                                                      as_of: str, filters: dict[str, str],
                                                      path: str) -> None:
    events, snapshot = year
    moment = datetime.fromisoformat(as_of)
    if path == "snapshot":
        view = customers(snapshot, selection(filters), moment, by)
        listed = rfm_list(snapshot, selection(filters), moment, limit=100000, offset=0)
    else:
        view = columnar_customers.customers(year_columns(), selection(filters), moment, by)
        listed = columnar_customers.rfm_list(year_columns(), selection(filters), moment,
                                             limit=100000, offset=0)

    assert view["customers"] > 10 and view["retention"]  # the case is not empty
    assert comparable(view) == comparable(
        oracle.customers(events, as_of=as_of, by=by, filters=filters))
    assert comparable(listed["customers"]) == comparable(
        oracle.rfm(events, as_of=as_of, filters=filters))
