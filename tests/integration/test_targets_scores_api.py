"""Targets, the leaderboard and the rep page through the real stack equal the independent
computations over the same simulated year; `PUT /v1/scoring` changes the leaderboard."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import LoadedStack, Stack, wait_until
from tests.integration.test_event_path import comparable, history
from tests.oracles import scores as scores_oracle
from tests.oracles import targets as targets_oracle

pytestmark = pytest.mark.integration

AMOUNTS = ("target", "actual", "pace", "expected_at_as_of")


def _exact_target(row: dict[str, Any]) -> dict[str, Any]:
    return {k: Decimal(v) if k in AMOUNTS and isinstance(v, str) else v for k, v in row.items()}


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    figures = row["figures"]
    return {"rep": row["rep"], "team": row["team"], "score": row["score"],
            "components": row["components"],
            "won_value": Decimal(figures["won_value"]), "collected": Decimal(figures["collected"]),
            **{k: figures[k] for k in ("activities", "open_deals", "followed_up", "customers",
                                       "repeat_customers")},
            **{k: row[k] for k in ("rank_company", "rank_team", "team_size", "team_average")}}


@pytest.mark.parametrize("as_of", ["2017-06-15T12:00:00+08:00", "2017-12-31T18:00:00+08:00"])
def test_targets_and_leaderboard_equal_the_independent_computation(
        year_stack: LoadedStack, as_of: str) -> None:
    events = year_stack.events
    for filters in ({}, {"team": "T-1", "period": "2017-Q2"}, {"standing": "under_way"}):
        api = year_stack.get("/v1/targets", as_of=as_of, **filters)["targets"]
        independent = targets_oracle.targets(events, as_of, filters=filters)["targets"]
        assert api
        assert comparable([_exact_target(r) for r in api]) == \
            comparable([_exact_target(r) for r in independent]), filters

    board = year_stack.get("/v1/leaderboard", as_of=as_of, period="2017-Q2")
    independent = scores_oracle.leaderboard(events, as_of=as_of,
                                            start="2017-04-01T00:00:00+08:00",
                                            end="2017-07-01T00:00:00+08:00")
    assert board["weights"] == {"results": 60, "process": 30, "customer": 10}
    assert comparable([_flat(r) for r in board["rows"]]) == comparable(independent["rows"])

    best = independent["rows"][0]
    page = year_stack.get(f"/v1/reps/{best['rep']}", as_of=as_of, period="2017-Q2")
    assert (page["rank_company"], page["rank_team"]) == (1, best["rank_team"])
    assert page["score"] == pytest.approx(best["score"], rel=1e-9)


def test_unknown_rep_and_bad_query_are_refused_with_a_problem(year_stack: LoadedStack) -> None:
    with year_stack.stack.client() as client:
        missing = client.get("/v1/reps/nobody")
        both = client.get("/v1/leaderboard", params={"period": "2017", "from": "2017-01-01"})
        bad = client.get("/v1/targets", params={"period": "2017-13"})
        unknown = client.get("/v1/targets", params={"standing": "later"})
    assert missing.status_code == 404 and missing.json()["title"] == "Unknown rep"
    assert both.status_code == 422 and "period" in both.json()["detail"]
    assert bad.status_code == 422 and "period" in bad.json()["detail"]
    assert unknown.status_code == 422 and "standing" in unknown.json()["detail"]


def test_put_scoring_changes_the_leaderboard(stack: Stack) -> None:
    events = history(days=45)
    assert stack.post(events, batch_size=500).accepted == len(events)
    as_of = "2017-02-14T18:00:00+08:00"
    with stack.client() as client:
        def board() -> dict[str, Any]:
            response = client.get("/v1/leaderboard", params={"as_of": as_of})
            assert response.status_code == 200, response.text
            return response.json()  # type: ignore[no-any-return]

        default = scores_oracle.leaderboard(events, as_of=as_of)["rows"]
        wait_until(lambda: comparable([_flat(r) for r in board()["rows"]]) == comparable(default),
                   timeout=120, message="the leaderboard to equal the independent computation")

        refused = client.put("/v1/scoring", json={"weights": {"results": 50, "process": 30,
                                                              "customer": 30}})
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["field"] == "body.weights"

        weights = {"results": 0, "process": 100, "customer": 0}
        accepted = client.put("/v1/scoring", json={"weights": weights})
        assert accepted.status_code == 202, accepted.text
        configured = {"id": accepted.json()["id"], "type": "scoring.configured",
                      "occurred_at": as_of, "data": {"weights": weights}}
        expected = scores_oracle.leaderboard([*events, configured], as_of=as_of)["rows"]
        wait_until(lambda: board()["weights"] == weights, timeout=60,
                   message="the new weights to reach the leaderboard")
        changed = board()["rows"]
    assert comparable([_flat(r) for r in changed]) == comparable(expected)
    assert [r["rep"] for r in changed] != [r["rep"] for r in default]
