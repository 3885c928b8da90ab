"""A view that still joins every record in memory refuses a tenant past SNAPSHOT_MAX_DEALS
with a 503 problem naming the setting, instead of taking the API process down; the views
served from the column store (funnel, breakdowns, cycle, revenue, targets, leaderboard,
rep pages, dimensions, leads, activities, the deal export) answer at any size, with the
same bytes as below the limit."""

from __future__ import annotations

import signal

import httpx
import pytest
from redis import Redis

from tests.conftest import Stack, _projected, _wait_for_api, wait_until
from tests.history import simulated

pytestmark = pytest.mark.integration
AS_OF = "2017-01-20T12:00:00+08:00"
STILL_JOINED = "/v1/deals/stalled"  # the alert listings still judge over the `Snapshot`


def _column_views(client: httpx.Client, rep: str, team: str) -> dict[str, bytes]:
    """The bytes of every column-store view over several of each route's parameters."""
    asked: dict[str, tuple[str, dict[str, str]]] = {
        "cycle": ("/v1/cycle", {"as_of": AS_OF}),
        "cycle by team": ("/v1/cycle", {"as_of": AS_OF, "team": team, "from": "2017-01-05"}),
        "leaderboard": ("/v1/leaderboard", {"as_of": AS_OF}),
        "leaderboard of a period": ("/v1/leaderboard", {"as_of": AS_OF, "period": "2017-01",
                                                        "team": team}),
        "leaderboard from/to": ("/v1/leaderboard", {"as_of": AS_OF, "from": "2017-01-03",
                                                    "to": "2017-01-15"}),
        "targets": ("/v1/targets", {"as_of": AS_OF}),
        "targets of a team": ("/v1/targets", {"as_of": AS_OF, "team": team,
                                              "period": "2017"}),
        "revenue": ("/v1/revenue", {"as_of": AS_OF}),
        "revenue by week": ("/v1/revenue", {"as_of": AS_OF, "by": "week",
                                            "from": "2017-01-08"}),
        "revenue by rep": ("/v1/revenue", {"as_of": AS_OF, "by": "rep", "team": team}),
        "dimensions": ("/v1/dimensions", {}),
        "leads": ("/v1/leads", {"as_of": AS_OF}),
        "leads by week": ("/v1/leads", {"as_of": AS_OF, "by": "week", "from": "2017-01-04"}),
        "leads by rep": ("/v1/leads", {"as_of": AS_OF, "by": "rep", "team": team}),
        "activities": ("/v1/activities", {"as_of": AS_OF}),
        "activities of a team": ("/v1/activities", {"as_of": AS_OF, "team": team,
                                                    "from": "2017-01-05"}),
        "export": ("/v1/export/deals", {}),
        "export as JSON of a team": ("/v1/export/deals", {"format": "json", "team": team,
                                                          "from": "2017-01-05"}),
        "rep page": (f"/v1/reps/{rep}", {"as_of": AS_OF}),
        "rep page of a period": (f"/v1/reps/{rep}", {"as_of": AS_OF, "period": "2017-01",
                                                     "source": "web"}),
    }
    answers = {}
    for name, (path, params) in asked.items():
        response = client.get(path, params=params)
        assert response.status_code == 200, (name, response.text)
        answers[name] = response.content
    assert client.get("/v1/reps/nobody").status_code == 404
    return answers


def test_views_joining_every_record_refuse_a_tenant_past_the_limit(stack: Stack) -> None:
    events = simulated(days=30)
    assert stack.post(events).accepted == len(events)
    wait_until(lambda: _projected(stack, len(events)), timeout=120, message="events projected")
    deals = int(Redis.from_url(stack.env["REDIS_URL"]).hlen(
        f"{stack.env['REDIS_PREFIX']}:default:deal"))
    assert deals > 1
    with stack.client() as client:
        funnel_before = client.get("/v1/funnel").raise_for_status().json()
        assert client.get(STILL_JOINED).status_code == 200
        rep = client.get("/v1/leaderboard", params={"as_of": AS_OF}).raise_for_status(
        ).json()["rows"][0]
        columnar = _column_views(client, rep["rep"], rep["team"])

    stack.kill("api", signal.SIGTERM)
    stack.env["SNAPSHOT_MAX_DEALS"] = str(min(50, deals - 1))
    stack.start("api")
    _wait_for_api(stack)
    with stack.client() as client:
        refused = client.get(STILL_JOINED)
        funnel = client.get("/v1/funnel")
        breakdown = client.get("/v1/breakdown", params={"by": "rep"})
        assert _column_views(client, rep["rep"], rep["team"]) == columnar

    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"].endswith("too-large-for-this-view")
    assert "SNAPSHOT_MAX_DEALS" in problem["detail"] and f"{deals:,} deals" in problem["detail"]
    assert "Retry-After" not in refused.headers  # not a passing condition
    assert funnel.status_code == 200 and funnel.json() == funnel_before
    assert breakdown.status_code == 200
    assert sum(row["deals"] for row in breakdown.json()["rows"]) == deals
