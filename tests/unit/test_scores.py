"""The rep score and leaderboard (docs/METRICS.md, "Score and leaderboard"): hand-computed
cases, the weights' validation, and the view against the independent oracle."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from events.contract import ScoringConfigured
from projections import columnar_scores
from projections.rep_page import UnknownRep, rep_page
from projections.scores import Window, leaderboard
from projections.snapshot import Filters
from tests.history import columns_of, simulated, snapshot_of
from tests.integration.test_event_path import comparable
from tests.oracles import scores as oracle

_ids = itertools.count()
AS_OF = datetime.fromisoformat("2017-03-31T18:00:00+08:00")
WHOLE = Window(None, None, AS_OF)


def ev(type_: str, at: str, **data: object) -> dict[str, Any]:
    return {"id": f"s-{next(_ids)}", "type": type_, "occurred_at": at + "+08:00", "data": data}


def joined(rep: str, team: str) -> dict[str, Any]:
    return ev("rep.joined", "2017-01-01T09:00:00", rep_id=rep, name=rep, team_id=team)


def won(deal: str, owner: str, at: str, amount: str, customer: str) -> list[dict[str, Any]]:
    return [ev("deal.created", "2017-01-05T10:00:00", deal_id=deal, owner_id=owner,
               amount=amount, stage="prospecting", customer_id=customer),
            ev("deal.won", at, deal_id=deal)]


def call(activity: str, rep: str, at: str, **subject: str) -> dict[str, Any]:
    return ev("activity.logged", at, activity_id=activity, kind="call", rep_id=rep, **subject)


# r1 wins 1000 from C1, who books twice, and pays 600; r2 wins 500 from C2 (one order, paid
# 500), logs 4 calls to r1's 2 and follows up its one open deal; r3 (T2) does nothing.
WORLD = [
    joined("r1", "T1"), joined("r2", "T1"), joined("r3", "T2"),
    ev("customer.created", "2017-01-02T09:00:00", customer_id="C1"),
    ev("customer.created", "2017-01-02T09:00:00", customer_id="C2"),
    *won("D1", "r1", "2017-02-01T10:00:00", "1000", "C1"),
    *won("D2", "r2", "2017-02-02T10:00:00", "500", "C2"),
    ev("deal.created", "2017-03-01T10:00:00", deal_id="D3", owner_id="r2",
       stage="prospecting"),
    ev("deal.created", "2017-03-01T10:00:00", deal_id="D4", owner_id="r1",
       stage="prospecting"),
    call("A1", "r1", "2017-01-10T10:00:00", customer_id="C1"),
    call("A2", "r1", "2017-01-11T10:00:00", customer_id="C1"),
    call("A3", "r2", "2017-01-10T10:00:00", customer_id="C2"),
    call("A4", "r2", "2017-01-11T10:00:00", customer_id="C2"),
    call("A5", "r2", "2017-03-02T10:00:00", deal_id="D3"),  # more than 14 days before close
    call("A6", "r2", "2017-03-25T10:00:00", deal_id="D3"),  # within 14 days: followed up
    ev("order.booked", "2017-02-03T10:00:00", order_id="O1", customer_id="C1", amount="1000",
       deal_id="D1"),
    ev("payment.received", "2017-02-20T10:00:00", payment_id="P1", order_id="O1",
       amount="600"),
    ev("order.booked", "2017-03-03T10:00:00", order_id="O2", customer_id="C1", amount="300"),
    ev("order.booked", "2017-02-04T10:00:00", order_id="O3", customer_id="C2", amount="500",
       deal_id="D2"),
    ev("payment.received", "2017-02-21T10:00:00", payment_id="P2", order_id="O3",
       amount="500"),
]


def rows(events: list[dict[str, Any]], window: Window = WHOLE) -> dict[str, dict[str, Any]]:
    return {r["rep"]: r for r in leaderboard(snapshot_of(events), window)["rows"]}


def test_components_are_shares_of_the_best_rep_and_rates() -> None:
    board = rows(WORLD)
    r1, r2, r3 = board["r1"]["components"], board["r2"]["components"], board["r3"]["components"]
    assert r1["results"] == 100 and r2["results"] == 50 and r3["results"] == 0
    # process: activity share beside follow-up rate (r1's open D4 is untouched; r3 has none)
    assert r1["process"] == pytest.approx((100 * 2 / 4 + 0) / 2)
    assert r2["process"] == pytest.approx((100 + 100) / 2)
    assert r3["process"] == 0
    # customer: collection share beside repeat rate (C1 booked twice, C2 once)
    assert r1["customer"] == pytest.approx((100 + 100) / 2)
    assert r2["customer"] == pytest.approx((100 * 500 / 600 + 0) / 2)
    assert board["r1"]["score"] == pytest.approx(0.6 * 100 + 0.3 * 25 + 0.1 * 100)


def test_ranks_are_within_company_and_team_beside_the_team_average() -> None:
    board = rows(WORLD)
    assert [board[r]["rank_company"] for r in ("r1", "r2", "r3")] == [1, 2, 3]
    assert [board[r]["rank_team"] for r in ("r1", "r2", "r3")] == [1, 2, 1]
    assert board["r2"]["team_average"]["score"] == pytest.approx(
        (board["r1"]["score"] + board["r2"]["score"]) / 2)
    assert board["r3"]["team_average"]["score"] == board["r3"]["score"]


def test_equal_scores_share_a_rank() -> None:
    board = rows([joined("r1", "T1"), joined("r2", "T1"), joined("r3", "T1")])
    assert {r["rank_company"] for r in board.values()} == {1}


def test_configured_weights_replace_the_default() -> None:
    configured = ev("scoring.configured", "2017-01-01T09:00:00",
                    weights={"results": "0", "process": "0.5", "customer": "0.5"})
    board = rows([*WORLD, configured])
    r2 = board["r2"]["components"]
    assert board["r2"]["score"] == pytest.approx((r2["process"] + r2["customer"]) / 2)
    assert board["r2"]["rank_company"] == 1  # process counts for more than won value now


def test_weights_that_do_not_sum_to_100_or_1_are_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as refused:
        ScoringConfigured.model_validate({"weights": {"results": 60, "process": 30,
                                                      "customer": 20}})
    assert refused.value.errors()[0]["loc"] == ("weights",)
    with pytest.raises(ValidationError):
        ScoringConfigured.model_validate({"weights": {"results": -10, "process": 100,
                                                      "customer": 10}})
    assert ScoringConfigured.model_validate(
        {"weights": {"results": "0.6", "process": "0.3", "customer": "0.1"}})


def test_the_window_and_as_of_decide_what_counts() -> None:
    feb = Window(datetime.fromisoformat("2017-02-02T00:00:00+08:00"), None, AS_OF)
    assert rows(WORLD, feb)["r1"]["figures"]["won_value"] == "0"  # D1 was won on Feb 1
    early = Window(None, None, datetime.fromisoformat("2017-02-01T12:00:00+08:00"))
    board = rows(WORLD, early)
    assert board["r1"]["figures"]["won_value"] == "1000"
    assert board["r2"]["figures"]["won_value"] == "0"  # won the next day


def test_rep_page_shows_figures_beside_the_team_average_and_the_standing() -> None:
    page = rep_page(snapshot_of(WORLD), Filters(), WHOLE, "r2")
    assert page["figures"]["won"] == 1 and page["figures"]["deals"] == 2
    assert page["team_reps"] == 2
    assert page["team_average"]["deals"] == 2  # r1: D1, D4; r2: D2, D3
    assert page["team_average"]["won_value"] == "750.00"
    assert page["team_average"]["activities"] == 3  # (2 + 4) / 2
    assert page["activities_by_kind"] == {"call": 4}
    assert page["activities_by_day"] == {"2017-01-10": 1, "2017-01-11": 1, "2017-03-02": 1,
                                         "2017-03-25": 1}
    assert (page["rank_team"], page["rank_company"]) == (2, 2)
    with pytest.raises(UnknownRep):
        rep_page(snapshot_of(WORLD), Filters(), WHOLE, "nobody")


# --------------------------------------------------------------------------- a simulated year

def _flat(row: dict[str, Any]) -> dict[str, Any]:
    figures = row["figures"]
    return {"rep": row["rep"], "team": row["team"], "score": row["score"],
            "components": row["components"],
            "won_value": Decimal(figures["won_value"]), "collected": Decimal(figures["collected"]),
            **{k: figures[k] for k in ("activities", "open_deals", "followed_up", "customers",
                                       "repeat_customers")},
            **{k: row[k] for k in ("rank_company", "rank_team", "team_size", "team_average")}}


@pytest.mark.parametrize(("as_of", "start", "end"), [
    ("2017-06-15T12:00:00+08:00", None, None),
    ("2017-12-31T18:00:00+08:00", "2017-01-01T00:00:00+08:00", "2017-04-01T00:00:00+08:00"),
    ("2017-12-31T18:00:00+08:00", "2017-07-01T00:00:00+08:00", None),
])
@pytest.mark.parametrize("path", ["snapshot", "columns"])
def test_view_equals_the_independent_computation_over_a_simulated_year(
        as_of: str, start: str | None, end: str | None, path: str) -> None:
    events = simulated()
    window = Window(start and datetime.fromisoformat(start), end and datetime.fromisoformat(end),
                    datetime.fromisoformat(as_of))
    answer = (leaderboard(snapshot_of(events), window) if path == "snapshot"
              else columnar_scores.leaderboard(columns_of(events), window))
    view = [_flat(r) for r in answer["rows"]]
    independent = oracle.leaderboard(events, as_of=as_of, start=start, end=end)["rows"]
    assert len(view) == 12
    assert comparable(view) == comparable(independent)


def test_a_past_window_judged_at_its_end_gives_the_same_board_at_any_later_as_of() -> None:
    columns = columns_of(simulated())
    quarter = (datetime.fromisoformat("2017-04-01T00:00:00+08:00"),
               datetime.fromisoformat("2017-07-01T00:00:00+08:00"))
    for later in ("2017-07-01T00:00:00.000001+08:00", "2017-07-02T09:00:00+08:00",
                  "2018-03-01T00:00:00+08:00"):
        window = Window(*quarter, datetime.fromisoformat(later))
        assert window.settled().as_of == quarter[1]
        assert columnar_scores.leaderboard(columns, window) == {
            **columnar_scores.leaderboard(columns, window.settled()), "as_of": later}
    for open_then in ("2017-06-30T23:59:59+08:00", "2017-07-01T00:00:00+08:00"):
        window = Window(*quarter, datetime.fromisoformat(open_then))
        assert window.settled() == window  # not past its end: as_of still decides
    assert Window(quarter[0], None, quarter[1]).settled().end is None
