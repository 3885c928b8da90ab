"""Customers, RFM, the forecast and its accuracy are served from the column store: past
SNAPSHOT_MAX_DEALS, where a view joining every record would refuse the tenant, they answer
200 with the same bytes as below the limit, for several of each route's parameters."""

from __future__ import annotations

import signal

import httpx
import pytest
from redis import Redis

from tests.conftest import Stack, _projected, _wait_for_api, wait_until
from tests.history import simulated

pytestmark = pytest.mark.integration
AS_OF = "2017-02-28T12:00:00+08:00"  # orders begin in February


def _money_views(client: httpx.Client, rep: str, team: str) -> dict[str, bytes]:
    asked: dict[str, tuple[str, dict[str, str]]] = {
        "customers": ("/v1/customers", {"as_of": AS_OF}),
        "customers by week": ("/v1/customers", {"as_of": AS_OF, "by": "week",
                                                "from": "2017-02-10"}),
        "customers of a team": ("/v1/customers", {"as_of": AS_OF, "team": team}),
        "rfm": ("/v1/customers/rfm", {"as_of": AS_OF}),
        "rfm paged": ("/v1/customers/rfm", {"as_of": AS_OF, "limit": "3", "offset": "2"}),
        "rfm of a rep": ("/v1/customers/rfm", {"as_of": AS_OF, "rep": rep}),
        "rfm of a segment": ("/v1/customers/rfm", {"as_of": AS_OF,
                                                   "rfm_segment": "hibernating"}),
        "forecast": ("/v1/forecast", {"as_of": AS_OF}),
        "forecast of a team": ("/v1/forecast", {"as_of": AS_OF, "team": team,
                                                "from": "2017-01-10"}),
        "forecast of a rep": ("/v1/forecast", {"as_of": AS_OF, "rep": rep}),
        "accuracy": ("/v1/forecast/accuracy", {"as_of": AS_OF}),
        "accuracy by quarter": ("/v1/forecast/accuracy", {"as_of": "2017-04-02T00:00:00+08:00",
                                                          "period": "quarter"}),
        "accuracy of a team": ("/v1/forecast/accuracy", {"as_of": AS_OF, "team": team}),
    }
    answers = {}
    for name, (path, params) in asked.items():
        response = client.get(path, params=params)
        assert response.status_code == 200, (name, response.text)
        answers[name] = response.content
    return answers


def test_money_and_forecast_views_answer_the_same_past_the_snapshot_limit(stack: Stack) -> None:
    events = simulated(days=60)
    assert stack.post(events).accepted == len(events)
    wait_until(lambda: _projected(stack, len(events)), timeout=120, message="events projected")
    deals = int(Redis.from_url(stack.env["REDIS_URL"]).hlen(
        f"{stack.env['REDIS_PREFIX']}:default:deal"))
    assert deals > 1
    with stack.client() as client:
        rep = client.get("/v1/leaderboard", params={"as_of": AS_OF}).raise_for_status(
        ).json()["rows"][0]
        below = _money_views(client, rep["rep"], rep["team"])
        assert client.get("/v1/customers", params={"as_of": AS_OF}).json()["customers"] > 0
        assert client.get("/v1/forecast", params={"as_of": AS_OF}).json()["open_deals"] > 0
        assert client.get("/v1/forecast/accuracy", params={"as_of": AS_OF}).json()["periods"]

    stack.kill("api", signal.SIGTERM)
    limit = min(50, deals - 1)
    stack.env["SNAPSHOT_MAX_DEALS"] = str(limit)
    stack.start("api")
    _wait_for_api(stack)
    assert deals > limit  # every answer below is past what the Snapshot would join
    with stack.client() as client:
        assert _money_views(client, rep["rep"], rep["team"]) == below
