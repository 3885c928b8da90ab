"""Past SNAPSHOT_MAX_DEALS every view still answers: the views served from the column store
(funnel, breakdowns, cycle, revenue, targets, leaderboard, rep pages, dimensions, leads,
activities, the deal export) with the same bytes as below the limit, and the alert
listings (stalled deals, customers at risk), which judge every record per request below
the limit, from the alerter's open alerts of the same rules."""

from __future__ import annotations

import signal
import uuid

import httpx
import pytest
from redis import Redis

from tests.conftest import Stack, _projected, _wait_for_api, wait_until
from tests.history import simulated

pytestmark = pytest.mark.integration
AS_OF = "2017-01-20T12:00:00+08:00"
LISTINGS = {"/v1/deals/stalled": ("deals", {"stalled_deal", "inactive_deal"}),
            "/v1/customers/at-risk": ("customers", {"churn_risk", "engagement_drop"})}

LATER_LEAD = {"id": str(uuid.uuid4()), "type": "lead.created",
              "occurred_at": "2017-03-15T10:00:00+08:00", "actor": "R-001",
              "data": {"lead_id": "L-LATER", "source": "web", "region": "north",
                       "company": "Later Trading", "owner_id": "R-001"}}


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


def _alerters_open(client: httpx.Client, rules: set[str]) -> list[tuple[str, str, str]]:
    alerts = client.get("/v1/alerts", params={"state": "open"}).raise_for_status().json()
    return sorted((a["rule"], a["subject"], a["became_true_at"]) for a in alerts["alerts"]
                  if a["rule"] in rules)


def _listed(client: httpx.Client, path: str) -> tuple[str, list[tuple[str, str, str]]]:
    answer = client.get(path).raise_for_status().json()
    rows = answer[LISTINGS[path][0]]
    return answer["judged_by"], sorted((r["rule"], r["subject"], r["since"]) for r in rows)


def test_every_view_answers_a_tenant_past_the_limit(stack: Stack) -> None:
    # A lead weeks after the rest moves the alerter's clock (event time, while it replays
    # the past) past the deals' stall and inactivity thresholds.
    events = [*simulated(days=30), LATER_LEAD]
    assert stack.post(events).accepted == len(events)
    wait_until(lambda: _projected(stack, len(events)), timeout=120, message="events projected")
    deals = int(Redis.from_url(stack.env["REDIS_URL"]).hlen(
        f"{stack.env['REDIS_PREFIX']}:default:deal"))
    assert deals > 1
    with stack.client() as client:
        funnel_before = client.get("/v1/funnel").raise_for_status().json()
        assert {_listed(client, path)[0] for path in LISTINGS} == {"request"}
        rep = client.get("/v1/leaderboard", params={"as_of": AS_OF}).raise_for_status(
        ).json()["rows"][0]
        columnar = _column_views(client, rep["rep"], rep["team"])

    stack.kill("api", signal.SIGTERM)
    stack.env["SNAPSHOT_MAX_DEALS"] = str(min(50, deals - 1))
    stack.start("api")
    _wait_for_api(stack)
    with stack.client() as client:
        # The listings are the alerter's open alerts, whatever its clock: it judges in event
        # time while replaying the past, so they are compared with its alerts, not with the
        # request-time judgment at the wall clock.
        wait_until(lambda: _alerters_open(client, LISTINGS["/v1/deals/stalled"][1]),
                   timeout=60, message="the alerter's stalled deals")
        for path, (_, rules) in LISTINGS.items():
            judged_by, rows = _listed(client, path)
            assert judged_by == "alerter"
            assert rows == _alerters_open(client, rules), path
        funnel = client.get("/v1/funnel")
        breakdown = client.get("/v1/breakdown", params={"by": "rep"})
        assert _column_views(client, rep["rep"], rep["team"]) == columnar

    assert funnel.status_code == 200 and funnel.json() == funnel_before
    assert breakdown.status_code == 200
    assert sum(row["deals"] for row in breakdown.json()["rows"]) == deals
