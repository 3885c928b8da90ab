"""The forecast through the real stack (a projected simulated year): the API's answers,
as of several moments and under filters, equal the independent pandas oracle."""

from __future__ import annotations

import pytest

from tests.conftest import LoadedStack
from tests.oracles import forecast as oracle
from tests.oracles.compare import comparer

pytestmark = pytest.mark.integration

STAGES = ["prospecting", "qualification", "proposal", "negotiation"]
AMOUNTS = {"amount", "open_amount", "weighted_value", "forecast", "actual",
           "actual_from_open_deals", "error"}


comparable = comparer(AMOUNTS)


def test_forecast_and_accuracy_through_the_api_equal_the_oracle(
        year_stack: LoadedStack) -> None:
    world = oracle.World(year_stack.events, STAGES, "Asia/Shanghai")
    cases: list[tuple[str, dict[str, str]]] = [
        ("2017-04-01T00:00:00+08:00", {}),
        ("2017-09-30T12:00:00+08:00", {"team": "T-1"}),
        ("2017-09-30T12:00:00+08:00", {"source": "partner", "from": "2017-03-01"}),
        ("2017-12-31T23:59:59+08:00", {}),
        ("2017-12-31T23:59:59+08:00", {"segment": "enterprise"}),
    ]
    for as_of, filters in cases:
        answer = year_stack.get("/v1/forecast", as_of=as_of, **filters)
        expected = oracle.forecast([], stages=STAGES, as_of=as_of, filters=filters,
                                   world=world)
        assert answer["open_deals"] > 0, (as_of, filters)
        assert comparable(answer) == comparable(expected), (as_of, filters)

    for period, filters in (("month", {}), ("quarter", {"team": "T-2"})):
        as_of = "2017-12-31T23:59:59+08:00"
        answer = year_stack.get("/v1/forecast/accuracy", as_of=as_of, period=period, **filters)
        expected = oracle.accuracy([], stages=STAGES, as_of=as_of, period=period,
                                   filters=filters, world=world)
        assert answer["periods"], period
        assert comparable(answer) == comparable(expected), (period, filters)


def test_an_unknown_accuracy_period_is_refused_naming_the_field(
        year_stack: LoadedStack) -> None:
    with year_stack.stack.client() as client:
        response = client.get("/v1/forecast/accuracy", params={"period": "week"})

    assert response.status_code == 422
    assert "period" in response.json()["detail"]
