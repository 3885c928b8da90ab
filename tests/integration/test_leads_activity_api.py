"""A simulated year through the real stack: /v1/leads, /v1/activities, /v1/cycle and the
funnel's loss and move counts equal the independent pandas computations."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from tests import oracle as funnel_oracle
from tests.conftest import LoadedStack
from tests.integration.test_event_path import STAGES, comparable
from tests.oracles import activity, leads

pytestmark = pytest.mark.integration

AS_OF = "2017-12-31T18:00:00+08:00"
AMOUNTS = ("talk_minutes", "visit_minutes", "quoted_value")


def _exact(answer: dict[str, Any]) -> Any:
    """The answer without its echo of `as_of`, amounts as Decimals, floats to 1e-9."""
    answer = {k: v for k, v in answer.items() if k not in ("as_of", "sla_hours")}
    answer.update({k: Decimal(answer[k]) for k in AMOUNTS if k in answer})
    return comparable(answer)


def test_leads_activities_and_cycle_equal_the_independent_computation(
        year_stack: LoadedStack) -> None:
    events, moment = year_stack.events, datetime.fromisoformat(AS_OF)
    teams = [r["key"] for r in year_stack.get("/v1/leads", by="team", as_of=AS_OF)["rows"]]
    cases: list[tuple[str, dict[str, str]]] = [
        ("source", {}),
        ("team", {"from": "2017-04-01", "to": "2017-09-30"}),
        ("month", {"source": "web"}),
        ("rep", {"team": str(teams[0])}),
    ]
    for by, filters in cases:
        answer = year_stack.get("/v1/leads", by=by, as_of=AS_OF, **filters)
        assert answer["total"]["new"] > 0, (by, filters)
        assert _exact(answer) == comparable(leads.leads(
            events, by=by, as_of=moment, stages=STAGES, filters=filters)), (by, filters)

    for as_of, filters in ((AS_OF, {}), ("2017-06-30T12:00:00+08:00", {"team": str(teams[0])})):
        at = datetime.fromisoformat(as_of)
        assert _exact(year_stack.get("/v1/activities", as_of=as_of, **filters)) == comparable(
            activity.activities(events, as_of=at, stages=STAGES, filters=filters)), filters
        assert _exact(year_stack.get("/v1/cycle", as_of=as_of, **filters)) == comparable(
            activity.cycle(events, as_of=at, stages=STAGES, filters=filters)), filters

    answer = year_stack.get("/v1/funnel", source="web")
    expected = funnel_oracle.funnel(events, stages=STAGES, filters={"source": "web"})
    for key in ("loss_reasons", "competitors", "stage_skips", "regressions"):
        assert answer[key] == expected[key], key


def test_an_unknown_grouping_is_refused_naming_the_field(year_stack: LoadedStack) -> None:
    with year_stack.stack.client() as client:
        response = client.get("/v1/leads", params={"by": "planet"})
    assert response.status_code == 422
    assert "by" in response.text
