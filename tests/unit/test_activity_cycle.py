"""Activities, cycle and the funnel's loss and move counts: hand-computed cases pin each
definition (docs/METRICS.md) for the view and the independent oracle alike; then the views
equal the oracles over a simulated year."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

import pytest
from fastapi.responses import JSONResponse

from projections import columnar_activity, columnar_cycle, columnar_views
from projections.activity import activities
from projections.cycle import cycle
from projections.funnel import funnel
from projections.snapshot import Filters, Snapshot
from tests import oracle as funnel_oracle
from tests.builders import ev, unique
from tests.history import columns_of, simulated, snapshot_of
from tests.integration.test_event_path import comparable
from tests.oracles import activity as oracle
from tests.unit.test_leads import to_filters

STAGES = ["prospecting", "qualification", "proposal", "negotiation"]
AS_OF = datetime.fromisoformat("2017-03-31T12:00:00+08:00")
EXTRAS = ("loss_reasons", "competitors", "stage_skips", "regressions")
AMOUNTS = ("talk_minutes", "visit_minutes", "quoted_value")



def deal(did: str, at: str, **data: object) -> dict[str, Any]:
    data.setdefault("stage", "prospecting")  # the ledger fills it in; the pure fold does not
    return ev("deal.created", at, deal_id=did, owner_id="r1", **data)


def act(at: str, kind: str = "email", rep: str = "r1", **subject: object) -> dict[str, Any]:
    return ev("activity.logged", at, activity_id=f"A-{unique()}", kind=kind, rep_id=rep,
              **subject)


def moved(did: str, stage: str, at: str) -> dict[str, Any]:
    return ev("deal.stage_changed", at, deal_id=did, stage=stage)


Compute = Callable[[list[dict[str, Any]]], dict[str, Any]]
Family = tuple[Callable[..., dict[str, Any]], Callable[..., dict[str, Any]]]


def views(events: list[dict[str, Any]], as_of: datetime = AS_OF) -> dict[str, Any]:
    snapshot = snapshot_of(events)
    return {"activities": activities(snapshot, Filters(), as_of),
            "cycle": cycle(snapshot, Filters(), as_of), "funnel": funnel(snapshot, Filters())}


def oracles(events: list[dict[str, Any]], as_of: datetime = AS_OF) -> dict[str, Any]:
    return {"activities": oracle.activities(events, as_of=as_of, stages=STAGES),
            "cycle": oracle.cycle(events, as_of=as_of, stages=STAGES),
            "funnel": funnel_oracle.funnel(events, stages=STAGES)}


def column_views(events: list[dict[str, Any]], as_of: datetime = AS_OF) -> dict[str, Any]:
    """The views as the API serves them: from the column store."""
    columns = columns_of(events)
    return {"activities": columnar_activity.activities(columns, Filters(), as_of),
            "cycle": columnar_cycle.cycle(columns, Filters(), as_of),
            "funnel": columnar_views.funnel(columns, Filters())}


@pytest.fixture(params=[views, column_views, oracles], ids=["view", "columns", "oracle"])
def compute(request: pytest.FixtureRequest) -> Compute:
    return request.param  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- activities


def test_activities_by_kind_and_rep_with_talk_and_visit_minutes(compute: Compute) -> None:
    events = [
        ev("customer.created", "2017-03-01T08:00:00", customer_id="C1"),
        act("2017-03-01T09:00:00", "call", "r1", customer_id="C1", duration_min=10),
        act("2017-03-01T10:00:00", "call", "r2", customer_id="C1", duration_min="5.5"),
        act("2017-03-01T11:00:00", "call", "r2", customer_id="C1"),  # no duration: adds nothing
        act("2017-03-01T12:00:00", "visit", "r1", customer_id="C1", duration_min=60),
        act("2017-03-01T13:00:00", "email", "r1", customer_id="C1", duration_min=3),  # not talk
    ]
    result = compute(events)["activities"]
    assert result["activities"] == 5
    assert result["by_kind"] == {"call": 3, "email": 1, "visit": 1}
    assert [(r["rep"], r["activities"], r["by_kind"]) for r in result["reps"]] == [
        ("r1", 3, {"call": 1, "email": 1, "visit": 1}), ("r2", 2, {"call": 2})]
    assert Decimal(result["talk_minutes"]) == Decimal("15.5")
    assert Decimal(result["visit_minutes"]) == Decimal(60)


def test_activities_of_nothing_answer_as_the_snapshot() -> None:
    # An empty store, and filters that select no activity: no kinds and no reps to count.
    events = [deal("D1", "2017-03-01T08:00:00"), act("2017-03-01T09:00:00", deal_id="D1")]
    for given, selected in (([], Filters()), (events, Filters(dims={"rep": "nobody"})),
                            (events, Filters(dims={"source": "nowhere"}))):
        column = columnar_activity.activities(columns_of(given), selected, AS_OF)
        assert JSONResponse(column).body == \
            JSONResponse(activities(snapshot_of(given), selected, AS_OF)).body


def test_activities_per_deal_and_quotes_count_every_touch_of_the_selected_deals(
        compute: Compute) -> None:
    events = [
        deal("D1", "2017-03-01T09:00:00"), deal("D2", "2017-03-01T09:00:00"),
        ev("lead.created", "2017-03-01T09:00:00", lead_id="L1"),
        *(act(f"2017-03-0{day}T10:00:00", deal_id="D1") for day in (2, 3, 4)),
        act("2017-03-02T10:00:00", lead_id="L1"),  # on a lead, not a deal
        ev("quote.sent", "2017-03-05T10:00:00", deal_id="D1", quote_id="Q1", amount="100.50"),
        ev("quote.sent", "2017-03-06T10:00:00", deal_id="D1", quote_id="Q2", amount="200"),
    ]
    result = compute(events)["activities"]
    assert (result["deals"], result["activities_on_deals"]) == (2, 3)
    assert result["activities_per_deal"] == 3 / 2
    assert result["quotes_sent"] == 2
    assert Decimal(result["quoted_value"]) == Decimal("300.50")


def test_cadence_measures_quiet_days_of_deals_open_at_as_of(compute: Compute) -> None:
    events = [
        deal("week", "2017-03-01T09:00:00"), act("2017-03-24T12:00:00", deal_id="week"),  # 7.0
        deal("eight", "2017-03-01T09:00:00"), act("2017-03-23T11:00:00", deal_id="eight"),
        deal("silent", "2017-03-01T09:00:00"),
        act("2017-04-02T09:00:00", deal_id="silent"),  # after AS_OF: never touched by then
        deal("closed", "2017-03-01T09:00:00"), act("2017-03-02T09:00:00", deal_id="closed"),
        ev("deal.lost", "2017-03-20T09:00:00", deal_id="closed"),
        deal("closes_later", "2017-02-01T09:00:00"),
        act("2017-02-28T12:00:00", deal_id="closes_later"),  # 31.0 days quiet
        ev("deal.won", "2017-04-05T09:00:00", deal_id="closes_later"),
        deal("future", "2017-04-01T09:00:00"),
    ]
    result = compute(events)["activities"]["cadence"]
    assert (result["open_deals"], result["never_touched"]) == (4, 1)
    eight = 8 + 1 / 24
    assert result["days_since_activity_median"] == pytest.approx(eight)
    assert result["days_since_activity_p90"] == pytest.approx(eight + 0.8 * (31 - eight))
    assert result["buckets"] == {"0-7": 1, "8-14": 1, "15-30": 0, ">30": 1}


# --------------------------------------------------------------------------- cycle


def test_won_cycle_counts_won_deals_only(compute: Compute) -> None:
    events = [
        deal("D1", "2017-03-01T09:00:00"), ev("deal.won", "2017-03-11T09:00:00", deal_id="D1"),
        deal("D2", "2017-03-01T09:00:00"), ev("deal.won", "2017-03-21T09:00:00", deal_id="D2"),
        deal("D3", "2017-03-01T09:00:00"), ev("deal.lost", "2017-03-02T09:00:00", deal_id="D3"),
    ]
    result = compute(events)["cycle"]
    assert result["won"] == 2
    assert (result["won_days_mean"], result["won_days_median"]) == (15.0, 15.0)
    assert result["won_days_p90"] == pytest.approx(19.0)


def test_stage_dwell_sums_visits_of_deals_that_left_the_stage(compute: Compute) -> None:
    events = [
        deal("D1", "2017-03-01T00:00:00"), moved("D1", "qualification", "2017-03-03T00:00:00"),
        moved("D1", "prospecting", "2017-03-04T00:00:00"),
        moved("D1", "proposal", "2017-03-05T00:00:00"),  # prospecting 2 + 1 days
        deal("D2", "2017-03-01T00:00:00"),  # still in prospecting: not counted
    ]
    rows = {r["stage"]: r for r in compute(events)["cycle"]["stages"]}
    assert (rows["prospecting"]["deals"], rows["prospecting"]["dwell_days_mean"]) == (1, 3.0)
    assert rows["qualification"]["dwell_days_median"] == 1.0
    assert rows["proposal"]["deals"] == 0 and rows["proposal"]["dwell_days_p90"] is None


def test_ageing_buckets_open_deals_by_completed_days_at_as_of(compute: Compute) -> None:
    as_of = datetime.fromisoformat("2017-06-30T00:00:00+08:00")
    events = [
        deal("almost31", "2017-05-30T00:00:01"),  # 30.99999 days: still 0-30
        deal("sixty", "2017-05-01T00:00:00"),  # 60 days
        deal("ninety", "2017-04-01T00:00:00"),  # 90 days; won only after as_of
        ev("deal.won", "2017-07-05T00:00:00", deal_id="ninety"),
        deal("old", "2017-03-01T12:00:00"),  # 120.5 days
        deal("lost", "2017-03-01T12:00:00"), ev("deal.lost", "2017-06-01T00:00:00",
                                                deal_id="lost"),
    ]
    result = (views if compute is views else oracles)(events, as_of)["cycle"]["ageing"]
    assert result["open_deals"] == 4
    assert result["buckets"] == {"0-30": 1, "31-60": 1, "61-90": 1, ">90": 1}
    assert result["age_days_median"] == pytest.approx(75.0)
    assert result["age_days_p90"] == pytest.approx(90 + 0.7 * 30.5)


# --------------------------------------------------------------------------- funnel extras


def test_loss_reasons_competitors_skips_and_regressions(compute: Compute) -> None:
    events = [
        deal("D1", "2017-03-01T09:00:00"),
        moved("D1", "proposal", "2017-03-02T09:00:00"),  # skips qualification
        moved("D1", "qualification", "2017-03-03T09:00:00"),  # back one
        moved("D1", "qualification", "2017-03-03T10:00:00"),  # no move at all
        moved("D1", "negotiation", "2017-03-04T09:00:00"),  # skips proposal
        ev("deal.won", "2017-03-05T09:00:00", deal_id="D1"),
        deal("D2", "2017-03-01T09:00:00", stage="proposal"),  # creation is not a move
        moved("D2", "negotiation", "2017-03-02T09:00:00"),
        ev("deal.lost", "2017-03-03T09:00:00", deal_id="D2", reason="price", competitor="X"),
        deal("D3", "2017-03-01T09:00:00"), ev("deal.lost", "2017-03-03T09:00:00", deal_id="D3"),
        deal("D4", "2017-03-01T09:00:00"),
        ev("deal.lost", "2017-03-03T09:00:00", deal_id="D4", reason="price"),
    ]
    result = compute(events)["funnel"]
    assert result["loss_reasons"] == {"price": 2, "unspecified": 1}
    assert result["competitors"] == {"X": 1}
    assert (result["stage_skips"], result["regressions"]) == (2, 1)


# --------------------------------------------------------------------------- a simulated year


@cache
def _year() -> tuple[list[dict[str, Any]], Snapshot]:
    events = simulated()
    return events, snapshot_of(events)


CASES = [
    ("2017-12-31T18:00:00+08:00", {}),
    ("2017-06-15T09:00:00+08:00", {"from": "2017-03-01", "to": "2017-09-30"}),
    ("2017-12-31T18:00:00+08:00", {"dim": "team"}),
    ("2017-09-30T23:59:59+08:00", {"dim": "source"}),
    ("2017-12-31T18:00:00+08:00", {"dim": "rep", "from": "2017-07-01"}),
]


def _real(snapshot: Snapshot, filters: dict[str, str]) -> dict[str, str]:
    """Turn {"dim": name} into a filter on a value that occurs: the first deal's."""
    dim = filters.pop("dim", None)
    return {**filters, dim: str(snapshot.deals[0].dims[dim])} if dim else filters


@pytest.mark.parametrize(("as_of", "filters"), CASES)
def test_the_views_equal_the_oracles_over_a_simulated_year(
        as_of: str, filters: dict[str, str]) -> None:
    events, snapshot = _year()
    moment, chosen = datetime.fromisoformat(as_of), _real(snapshot, dict(filters))
    selected, stages = to_filters(chosen), list(snapshot.stages)
    expected_process = comparable(
        oracle.activities(events, as_of=moment, stages=stages, filters=chosen))
    for process in (activities(snapshot, selected, moment),
                    columnar_activity.activities(columns_of(events), selected, moment)):
        assert process["activities"] > 0 and process["cadence"]["open_deals"] > 0
        del process["as_of"]
        process.update({k: Decimal(process[k]) for k in AMOUNTS})  # exact, as strings say
        assert comparable(process) == expected_process
    expected_times = comparable(
        oracle.cycle(events, as_of=moment, stages=stages, filters=chosen))
    for times in (cycle(snapshot, selected, moment),
                  columnar_cycle.cycle(columns_of(events), selected, moment)):
        del times["as_of"]
        assert comparable(times) == expected_times
    extras = funnel(snapshot, selected)
    expected = funnel_oracle.funnel(events, stages=stages, filters=chosen)
    assert sum(extras["loss_reasons"].values()) == extras["lost"] > 0
    assert {k: extras[k] for k in EXTRAS} == {k: expected[k] for k in EXTRAS}
