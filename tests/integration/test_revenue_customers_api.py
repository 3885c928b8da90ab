"""Revenue and customers through the real stack (a projected simulated year): the API's
answers equal the independent pandas oracles, at year end and mid-year."""

from __future__ import annotations

import pytest

from tests.conftest import LoadedStack
from tests.oracles import customers as customers_oracle
from tests.oracles import revenue as revenue_oracle
from tests.oracles.compare import comparable

pytestmark = pytest.mark.integration

YEAR_END = "2017-12-31T18:00:00+08:00"
MID_YEAR = "2017-06-30T12:00:00+08:00"


@pytest.mark.parametrize(("as_of", "by", "filters"), [
    (YEAR_END, "month", {}),
    (MID_YEAR, "team", {"from": "2017-03-01", "segment": "mid"}),
])
def test_revenue_through_the_api_equals_the_oracle(year_stack: LoadedStack, as_of: str, by: str,
                                                   filters: dict[str, str]) -> None:
    answer = year_stack.get("/v1/revenue", by=by, as_of=as_of, **filters)
    expected = revenue_oracle.revenue(year_stack.events, by=by, as_of=as_of, filters=filters)

    assert answer["rows"]
    assert comparable(answer) == comparable(expected)


@pytest.mark.parametrize(("as_of", "filters"), [
    (YEAR_END, {}),
    (MID_YEAR, {"region": "east", "from": "2017-02-01"}),
])
def test_customers_through_the_api_equal_the_oracle(year_stack: LoadedStack, as_of: str,
                                                    filters: dict[str, str]) -> None:
    answer = year_stack.get("/v1/customers", as_of=as_of, **filters)
    page = year_stack.get("/v1/customers/rfm", as_of=as_of, limit=50, offset=20, **filters)
    events = year_stack.events
    rfm = customers_oracle.rfm(events, as_of=as_of, filters=filters)

    assert answer["customers"] > 20
    assert comparable(answer) == comparable(
        customers_oracle.customers(events, as_of=as_of, filters=filters))
    assert page["total"] == len(rfm)
    assert comparable(page["customers"]) == comparable(rfm[20:70])


def test_a_bad_grouping_is_refused_naming_the_field(year_stack: LoadedStack) -> None:
    with year_stack.stack.client() as client:
        response = client.get("/v1/revenue", params={"by": "fortnight"})

    assert response.status_code == 422
    assert "by" in response.json()["detail"]
