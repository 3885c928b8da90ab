"""Revenue definitions (docs/METRICS.md, "GET /v1/revenue") pinned by hand, and the view
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

from projections import columnar_revenue
from projections.columnar import Columns
from projections.revenue import revenue
from projections.snapshot import Filters, Snapshot
from tests.builders import ev, unique
from tests.history import columns_of, simulated, snapshot_of
from tests.oracles import revenue as oracle
from tests.oracles.compare import comparable

TZ = ZoneInfo("Asia/Shanghai")



def base(*, deal: bool = False) -> list[dict]:
    events = [ev("rep.joined", "2017-01-01T09:00:00", rep_id="r1", name="r1", team_id="north"),
              ev("customer.created", "2017-01-01T09:00:00", customer_id="C1", segment="smb")]
    if deal:
        events.append(ev("deal.created", "2017-01-02T09:00:00", deal_id="D1", owner_id="r1",
                         customer_id="C1", product="crm", stage="prospecting"))
    return events


def order(oid: str, at: str, amount: str, **data: object) -> dict:
    return ev("order.booked", at, order_id=oid, customer_id="C1", amount=amount, **data)


def pay(oid: str, at: str, amount: str) -> dict:
    return ev("payment.received", at, payment_id=f"P-{unique()}", order_id=oid, amount=amount)


def answer(events: list[dict], as_of: str, by: str = "month", **filters: str) -> dict[str, Any]:
    """The view's answer, after checking that the oracle gives the same."""
    moment = datetime.fromisoformat(as_of).replace(tzinfo=TZ)
    selected = Filters(date.fromisoformat(filters.pop("from")) if "from" in filters else None,
                       date.fromisoformat(filters.pop("to")) if "to" in filters else None,
                       filters)
    view = revenue(snapshot_of(events), selected, by, moment)
    from_columns = columnar_revenue.revenue(columns_of(events), selected, by, moment)
    assert JSONResponse(from_columns).body == JSONResponse(view).body  # byte for byte
    wanted = {**filters, **({"from": selected.start} if selected.start else {}),
              **({"to": selected.end} if selected.end else {})}
    assert comparable(view) == comparable(oracle.revenue(events, by=by, as_of=moment,
                                                         filters=wanted))
    return view


def rows(result: dict[str, Any]) -> dict[str | None, dict[str, Any]]:
    return {row["key"]: row for row in result["rows"]}


def test_bookings_count_when_booked_and_payments_when_received() -> None:
    events = [*base(), order("O1", "2017-01-20T10:00:00", "100"),
              pay("O1", "2017-01-25T10:00:00", "40"), pay("O1", "2017-02-10T10:00:00", "60")]
    by_month = rows(answer(events, "2017-03-01T00:00:00"))

    assert (by_month["2017-01"]["booked"], by_month["2017-01"]["collected"]) == ("100", "40")
    assert (by_month["2017-02"]["booked"], by_month["2017-02"]["collected"]) == ("0", "60")
    assert by_month["2017-02"]["orders"] == 0
    assert by_month["2017-02"]["avg_order_value"] is None


def test_outstanding_is_split_by_completed_days_since_booking() -> None:
    events = [*base(),
              order("O1", "2017-03-01T12:00:00", "300"),           # 121 days: >90
              order("O2", "2017-05-01T12:00:00", "500"),           # 60.0 days: 31-60
              pay("O2", "2017-05-03T12:00:00", "200"),
              order("O4", "2017-06-01T12:00:00", "200"),           # paid: owes nothing
              pay("O4", "2017-06-05T12:00:00", "200"),
              order("O3", "2017-06-20T12:00:00", "1000")]          # 10 days: 0-30
    total = answer(events, "2017-06-30T12:00:00")["total"]

    assert Decimal(total["outstanding"]) == 300 + 300 + 1000
    assert {k: Decimal(v) for k, v in total["aging"].items()} == {
        "0-30": 1000, "31-60": 300, "61-90": 0, ">90": 300}
    # booked in the 90 days up to as_of (from 2017-04-01 12:00): O2, O4, O3
    assert total["dso"] == pytest.approx(1600 / 1700 * 90, rel=1e-12)


def test_nothing_after_as_of_counts() -> None:
    events = [*base(), order("O1", "2017-01-10T10:00:00", "100"),
              pay("O1", "2017-02-10T10:00:00", "100"),
              order("O2", "2017-03-10T10:00:00", "50")]
    total = answer(events, "2017-02-01T00:00:00")["total"]

    assert (total["booked"], total["collected"], total["outstanding"]) == ("100", "0", "100")
    assert total["collection_orders"] == 0


def test_from_to_select_flows_but_balances_cover_every_order() -> None:
    events = [*base(), order("O1", "2017-01-10T10:00:00", "100"),
              pay("O1", "2017-02-10T10:00:00", "30"),
              order("O2", "2017-02-15T10:00:00", "50")]
    total = answer(events, "2017-03-01T00:00:00", **{"from": "2017-02-01"})["total"]

    assert (total["booked"], total["orders"], total["collected"]) == ("50", 1, "30")
    assert total["outstanding"] == "120"  # O1's 70 too, though booked before `from`


def test_a_period_row_measures_balances_at_the_end_of_the_period() -> None:
    events = [*base(), order("O1", "2017-01-10T10:00:00", "100"),
              pay("O1", "2017-02-10T10:00:00", "100"),
              order("O2", "2017-02-20T10:00:00", "40")]
    by_month = rows(answer(events, "2017-03-15T00:00:00"))

    assert by_month["2017-01"]["outstanding"] == "100"  # on 2017-02-01 00:00 nothing was paid
    assert by_month["2017-02"]["outstanding"] == "40"
    assert by_month["2017-01"]["dso"] == pytest.approx(100 / 100 * 90)


def test_collection_cycle_runs_to_the_payment_that_completes_the_order() -> None:
    events = [*base(),
              order("O1", "2017-03-01T10:00:00", "100"),
              pay("O1", "2017-03-03T10:00:00", "50"), pay("O1", "2017-03-06T10:00:00", "50"),
              order("O2", "2017-03-02T10:00:00", "0"),            # nothing owed: paid at booking
              order("O3", "2017-03-02T10:00:00", "80"),
              pay("O3", "2017-03-04T10:00:00", "79"),             # never completed
              order("O4", "2017-03-02T10:00:00", "10"),
              pay("O4", "2017-03-03T22:00:00", "10")]             # 1.5 days
    total = answer(events, "2017-04-01T00:00:00")["total"]

    assert total["collection_orders"] == 3
    assert total["collection_days_mean"] == pytest.approx((5 + 0 + 1.5) / 3)
    assert total["collection_days_median"] == pytest.approx(1.5)


def test_orders_take_the_rep_of_their_deal_and_owing_groups_show() -> None:
    events = [*base(deal=True),
              order("O1", "2017-01-10T10:00:00", "100", deal_id="D1"),
              order("O2", "2017-03-10T10:00:00", "60")]           # no deal: no rep
    by_rep = rows(answer(events, "2017-04-01T00:00:00", by="rep", **{"from": "2017-03-01"}))

    assert by_rep["r1"]["booked"] == "0"  # nothing booked in the window...
    assert by_rep["r1"]["outstanding"] == "100"  # ...but it is still owed
    assert by_rep[None]["booked"] == "60"
    assert answer(events, "2017-04-01T00:00:00", rep="r1")["total"]["booked"] == "100"
    assert rows(answer(events, "2017-04-01T00:00:00", by="product"))["crm"]["booked"] == "100"


def test_weeks_are_iso_weeks_and_days_are_local() -> None:
    events = [*base(), order("O1", "2017-01-01T23:30:00", "10"),  # a Sunday: 2016-W52
              order("O2", "2017-01-02T00:30:00", "20")]
    assert list(rows(answer(events, "2017-02-01T00:00:00", by="week"))) == ["2016-W52", "2017-W01"]
    assert list(rows(answer(events, "2017-02-01T00:00:00", by="day"))) == \
        ["2017-01-01", "2017-01-02"]


def test_an_unknown_grouping_is_refused() -> None:
    with pytest.raises(ValueError, match="by must be one of"):
        revenue(snapshot_of(base()), Filters(), "fortnight", datetime(2017, 1, 1, tzinfo=TZ))


# --------------------------------------------------------------------------- a simulated year

CASES = [
    ("month", "2017-12-31T18:00:00+08:00", {}),
    ("quarter", "2017-06-30T12:00:00+08:00", {}),
    ("week", "2017-12-31T18:00:00+08:00", {"from": "2017-03-01", "to": "2017-05-31"}),
    ("day", "2017-09-10T09:00:00+08:00", {"segment": "mid"}),
    ("year", "2017-12-31T18:00:00+08:00", {"region": "east"}),
    ("rep", "2017-12-31T18:00:00+08:00", {}),
    ("team", "2017-08-15T00:00:00+08:00", {"from": "2017-06-01"}),
    ("product", "2017-12-31T18:00:00+08:00", {"to": "2017-10-31"}),
    ("segment", "2017-12-31T18:00:00+08:00", {"product": "CRM Suite"}),
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
def test_a_simulated_year_gives_the_oracles_revenue(year: tuple[list[dict], Snapshot], by: str,
                                                    as_of: str, filters: dict[str, str],
                                                    path: str) -> None:
    events, snapshot = year
    dims = {k: v for k, v in filters.items() if k not in ("from", "to")}
    selected = Filters(date.fromisoformat(filters["from"]) if "from" in filters else None,
                       date.fromisoformat(filters["to"]) if "to" in filters else None, dims)
    view = (revenue(snapshot, selected, by, datetime.fromisoformat(as_of)) if path == "snapshot"
            else columnar_revenue.revenue(year_columns(), selected, by,
                                          datetime.fromisoformat(as_of)))
    expected = oracle.revenue(events, by=by, as_of=as_of, filters=filters)

    assert view["rows"] and Decimal(view["total"]["booked"]) > 0  # the case is not empty
    assert comparable(view) == comparable(expected)


def test_amounts_beyond_int64_payments_out_of_order_and_no_orders_answer_the_same() -> None:
    # Millionths past int64 fall back to Python's integers; a payment recorded after a later
    # one, and a second order's payments between the first's, are still summed in time order.
    events = [*base(deal=True),
              order("O1", "2017-01-05T10:00:00", "98765432109876.55", deal_id="D1"),
              order("O2", "2017-01-06T10:00:00", "10.5"),
              pay("O1", "2017-02-10T10:00:00", "50000000000000.5"),
              pay("O2", "2017-01-20T10:00:00", "10.50"),
              pay("O1", "2017-01-10T10:00:00", "48765432109876.05"),
              order("O3", "2017-03-01T10:00:00", "7")]
    for given in (events, []):
        snapshot, columns = snapshot_of(given), columns_of(given)
        for by in ("month", "week", "product", "rep"):
            for as_of in ("2017-01-31T12:00:00+08:00", "2017-12-31T18:00:00+08:00"):
                moment = datetime.fromisoformat(as_of)
                for selected in (Filters(), Filters(date(2017, 1, 6), None),
                                 Filters(dims={"rep": "r1"})):
                    assert JSONResponse(columnar_revenue.revenue(
                        columns, selected, by, moment)).body == \
                        JSONResponse(revenue(snapshot, selected, by, moment)).body
