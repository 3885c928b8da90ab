"""The forecast's definitions (docs/METRICS.md, "GET /v1/forecast"), pinned by hand.

Each hand-computed case runs against both the service's projection and the independent
pandas oracle; a last group compares the two over a simulated year. Times without an
offset are Asia/Shanghai local time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

import pytest
from fastapi.responses import JSONResponse

from events.vocabulary import DIMENSIONS
from projections import columnar_forecast
from projections import forecast as view
from projections.columnar import Columns
from projections.snapshot import Filters, Snapshot
from tests.builders import ev
from tests.history import columns_of, simulated, snapshot_of
from tests.oracles import forecast as oracle

STAGES = ["prospecting", "qualification", "proposal", "negotiation"]
AMOUNTS = {"amount", "open_amount", "weighted_value", "forecast", "actual",
           "actual_from_open_deals", "error"}

Forecast = Callable[..., dict[str, Any]]


def exact(value: Any, key: str = "") -> Any:
    """Amounts as Decimals so that "600" and "600.00" are the same number."""
    if isinstance(value, dict):
        return {k: exact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [exact(v, key) for v in value]
    return Decimal(value) if key in AMOUNTS and value is not None else value


def close(value: Any) -> Any:
    """Rates to 1e-9; everything else exactly."""
    if isinstance(value, dict):
        return {k: close(v) for k, v in value.items()}
    if isinstance(value, list):
        return [close(v) for v in value]
    return pytest.approx(value, rel=1e-9, abs=1e-9) if isinstance(value, float) else value


def _filters(given: dict[str, str]) -> Filters:
    start, end = given.pop("from", None), given.pop("to", None)
    return Filters(date.fromisoformat(start) if start else None,
                   date.fromisoformat(end) if end else None, given)


def service_forecast(events: list[dict], as_of: str, **filters: str) -> dict[str, Any]:
    moment, selected = datetime.fromisoformat(as_of), _filters(filters)
    answer = view.forecast(snapshot_of(events), selected, moment)
    from_columns = columnar_forecast.forecast(columns_of(events), selected, moment)
    assert JSONResponse(from_columns).body == JSONResponse(answer).body  # byte for byte
    return exact(answer)


def service_accuracy(events: list[dict], as_of: str, period: str,
                     **filters: str) -> dict[str, Any]:
    moment, selected = datetime.fromisoformat(as_of), _filters(filters)
    answer = view.accuracy(snapshot_of(events), selected, moment, period)
    from_columns = columnar_forecast.accuracy(columns_of(events), selected, moment, period)
    assert JSONResponse(from_columns).body == JSONResponse(answer).body  # byte for byte
    return exact(answer)


def oracle_forecast(events: list[dict], as_of: str, **filters: str) -> dict[str, Any]:
    return exact(oracle.forecast(events, stages=STAGES, as_of=as_of, filters=filters))


def oracle_accuracy(events: list[dict], as_of: str, period: str,
                    **filters: str) -> dict[str, Any]:
    return exact(oracle.accuracy(events, stages=STAGES, as_of=as_of, period=period,
                                 filters=filters))


@pytest.fixture(params=["service", "oracle"])
def forecast(request: pytest.FixtureRequest) -> Forecast:
    return service_forecast if request.param == "service" else oracle_forecast


@pytest.fixture(params=["service", "oracle"])
def accuracy(request: pytest.FixtureRequest) -> Forecast:
    return service_accuracy if request.param == "service" else oracle_accuracy


# --------------------------------------------------------------------------- events



def created(deal: str, at: str, stage: str = "prospecting", amount: str = "1000",
            owner: str = "r1", **data: object) -> dict:
    return ev("deal.created", at, deal_id=deal, owner_id=owner, stage=stage, amount=amount,
              **data)


def moved(deal: str, stage: str, at: str) -> dict:
    return ev("deal.stage_changed", at, deal_id=deal, stage=stage)


def won(deal: str, at: str, **data: object) -> dict:
    return ev("deal.won", at, deal_id=deal, **data)


def lost(deal: str, at: str) -> dict:
    return ev("deal.lost", at, deal_id=deal)


def closed_history(stage: str, wins: int, losses: int, on: str = "2017-01-02") -> list[dict]:
    """`wins + losses` deals created in `stage` on day `on` at 09:00, closed at 18:00."""
    events = []
    for n in range(wins + losses):
        deal = f"H-{stage}-{on}-{n}"
        events.append(created(deal, f"{on}T09:00:00", stage=stage))
        close = won if n < wins else lost
        events.append(close(deal, f"{on}T18:00:00"))
    return events


def row(result: dict, stage: str, days: int = 30) -> dict:
    return next(r for r in result[f"next_{days}_days"]["stages"] if r["stage"] == stage)


AS_OF = "2017-03-01T10:00:00+08:00"


# --------------------------------------------------------------------------- probabilities


def test_without_history_a_stage_gets_its_default_position_probability(
        forecast: Forecast) -> None:
    events = [created("D1", "2017-02-01T09:00:00", stage="proposal", amount="1000",
                      expected_close="2017-03-10")]
    proposal = row(forecast(events, AS_OF), "proposal")
    # proposal is the 3rd of 4 open stages: (2 + 1) / (4 + 1)
    assert proposal["probability"] == 0.6
    assert proposal["probability_source"] == "default"
    assert proposal["weighted_value"] == Decimal("600.00")
    assert row(forecast(events, AS_OF), "prospecting")["probability"] == 0.2


def test_configured_probabilities_replace_the_defaults_while_history_is_thin(
        forecast: Forecast) -> None:
    events = [
        ev("pipeline.configured", "2017-01-01T00:00:00", stages=STAGES,
           win_probabilities={"proposal": 0.35}),
        created("D1", "2017-02-01T09:00:00", stage="proposal", expected_close="2017-03-10"),
    ]
    result = forecast(events, AS_OF)
    assert row(result, "proposal")["probability"] == 0.35
    assert row(result, "proposal")["probability_source"] == "configured"
    assert row(result, "proposal")["weighted_value"] == Decimal("350.00")
    assert row(result, "negotiation")["probability_source"] == "default"


def test_twenty_closed_deals_that_passed_a_stage_make_its_probability_their_win_share(
        forecast: Forecast) -> None:
    events = [
        *closed_history("qualification", wins=15, losses=5),
        created("D1", "2017-02-01T09:00:00", stage="qualification", amount="100.02",
                expected_close="2017-03-10"),
    ]
    qualification = row(forecast(events, AS_OF), "qualification")
    assert (qualification["history_closed"], qualification["history_won"]) == (20, 15)
    assert qualification["probability"] == 0.75
    assert qualification["probability_source"] == "history"
    assert qualification["weighted_value"] == Decimal("75.02")  # 75.015, half to even


def test_nineteen_closed_deals_are_too_thin_a_history(forecast: Forecast) -> None:
    events = [
        *closed_history("qualification", wins=15, losses=4),
        created("D1", "2017-02-01T09:00:00", stage="qualification",
                expected_close="2017-03-10"),
    ]
    qualification = row(forecast(events, AS_OF), "qualification")
    assert qualification["history_closed"] == 19
    assert qualification["probability_source"] == "default"
    assert qualification["probability"] == 0.4


def test_a_deal_that_skipped_a_stage_is_not_history_of_that_stage(forecast: Forecast) -> None:
    events = [
        created("S1", "2017-01-02T09:00:00", stage="prospecting"),
        moved("S1", "proposal", "2017-01-03T09:00:00"),
        won("S1", "2017-01-04T09:00:00"),
    ]
    result = forecast(events, AS_OF)
    assert row(result, "qualification")["history_closed"] == 0
    assert (row(result, "proposal")["history_closed"],
            row(result, "proposal")["history_won"]) == (1, 1)
    assert row(result, "prospecting")["history_won"] == 1


# --------------------------------------------------------------------------- windows


def test_deals_fall_in_the_windows_by_their_expected_close_date(forecast: Forecast) -> None:
    # as_of 2017-03-01: the 30-day window ends 2017-03-30, the 90-day one 2017-05-29
    events = [
        created("LAST-DAY", "2017-02-01T09:00:00", amount="1", expected_close="2017-03-30"),
        created("DAY-AFTER", "2017-02-01T09:00:00", amount="10",
                expected_close="2017-03-31"),
        created("BEYOND", "2017-02-01T09:00:00", amount="100", expected_close="2017-05-30"),
        created("OVERDUE", "2017-02-01T09:00:00", amount="1000",
                expected_close="2017-02-10"),
        created("UNDATED", "2017-02-01T09:00:00", amount="10000"),
        created("UNPARSED", "2017-02-01T09:00:00", amount="100000",
                expected_close="end of quarter"),
    ]
    result = forecast(events, AS_OF)
    assert result["next_30_days"]["until"] == "2017-03-30"
    assert result["next_90_days"]["until"] == "2017-05-29"
    assert result["next_30_days"]["amount"] == Decimal("1001")
    assert result["next_90_days"]["amount"] == Decimal("1011")
    assert result["open_deals"] == 6
    assert result["undated_deals"] == 2  # no date and no won history to learn a cycle from
    assert result["next_30_days"]["weighted_value"] == Decimal("200.20")  # 1001 x 0.2


def test_an_undated_deal_is_expected_after_its_stages_median_remaining_cycle(
        forecast: Forecast) -> None:
    # won deals took 10, 20 and 40 days from entering negotiation: median 20 days
    events = []
    for n, days in enumerate((10, 20, 40)):
        events += [created(f"W{n}", "2017-01-02T09:00:00", stage="negotiation"),
                   won(f"W{n}", f"2017-01-{2 + days:02d}T09:00:00" if days < 30
                       else "2017-02-11T09:00:00")]
    events += [
        created("SOON", "2017-02-20T09:00:00", stage="negotiation", amount="500"),
        created("LATER", "2017-02-20T09:00:00", stage="proposal", amount="700"),
    ]
    result = forecast(events, AS_OF)
    # SOON: 2017-03-01 + 20 days is within 30 days; LATER: proposal has no won history
    assert row(result, "negotiation")["deals"] == 1
    assert row(result, "proposal")["deals"] == 0
    assert result["undated_deals"] == 1


# --------------------------------------------------------------------------- point in time


def test_the_forecast_as_of_a_moment_ignores_everything_that_happened_later(
        forecast: Forecast) -> None:
    before = [created("D1", "2017-02-01T09:00:00", stage="proposal", amount="1000",
                      expected_close="2017-03-10")]
    later = [
        ev("deal.amount_changed", "2017-03-02T09:00:00", deal_id="D1", amount="5000"),
        moved("D1", "negotiation", "2017-03-03T09:00:00"),
        ev("deal.close_date_changed", "2017-03-04T09:00:00", deal_id="D1",
           expected_close="2017-09-01"),
        won("D1", "2017-03-05T09:00:00", amount="6000"),
        created("D2", "2017-03-02T09:00:00", stage="negotiation", expected_close="2017-03-10"),
        *closed_history("proposal", wins=0, losses=20, on="2017-03-06"),  # after as_of
    ]
    assert forecast(before + later, AS_OF) == forecast(before, AS_OF)
    proposal = row(forecast(before + later, AS_OF), "proposal")
    assert (proposal["deals"], proposal["amount"], proposal["probability_source"]) == \
        (1, Decimal("1000"), "default")


def test_filters_select_by_the_owner_and_team_at_as_of(forecast: Forecast) -> None:
    events = [
        ev("rep.joined", "2017-01-01T09:00:00", rep_id="r1", name="r1", team_id="north"),
        ev("rep.joined", "2017-01-01T09:00:00", rep_id="r2", name="r2", team_id="south"),
        created("D1", "2017-02-01T09:00:00", owner="r1", expected_close="2017-03-10"),
        ev("deal.owner_changed", "2017-03-02T09:00:00", deal_id="D1", owner_id="r2"),
        ev("rep.moved", "2017-03-02T09:00:00", rep_id="r1", team_id="south"),
    ]
    assert forecast(events, AS_OF, rep="r1")["open_deals"] == 1
    assert forecast(events, AS_OF, team="north")["open_deals"] == 1
    assert forecast(events, AS_OF, rep="r2")["open_deals"] == 0
    assert forecast(events, "2017-03-03T00:00:00+08:00", rep="r2")["open_deals"] == 1
    assert forecast(events, AS_OF, **{"from": "2017-02-02"})["open_deals"] == 0


# --------------------------------------------------------------------------- accuracy


def test_accuracy_compares_the_forecast_at_each_period_start_with_what_was_won_in_it(
        accuracy: Forecast) -> None:
    events = [
        created("X", "2017-02-15T09:00:00", stage="proposal", amount="1000",
                expected_close="2017-03-20"),
        created("Y", "2017-03-05T09:00:00", stage="proposal", amount="300"),
        won("Y", "2017-03-25T09:00:00"),
        won("X", "2017-03-28T09:00:00", amount="1200"),
    ]
    result = accuracy(events, "2017-04-01T00:00:00+08:00", "month")
    february, march = result["periods"]
    assert (february["period"], february["forecast"], february["actual"], february["ape"]) \
        == ("2017-02", Decimal("0"), Decimal("0"), None)
    assert march["start"] == "2017-03-01T00:00:00+08:00"
    assert march["forecast"] == Decimal("600.00")  # X at 0.6 (default for proposal)
    assert march["actual"] == Decimal("1500")  # X at its won amount, and the new Y
    assert march["actual_from_open_deals"] == Decimal("1200")
    assert march["error"] == Decimal("-900")
    assert march["ape"] == 0.6
    assert result["mape"] == 0.6
    # a period still running at as_of is not reported
    assert len(accuracy(events, "2017-03-31T23:59:59+08:00", "month")["periods"]) == 1
    assert [p["period"] for p in accuracy(events, "2017-07-01T00:00:00+08:00",
                                          "quarter")["periods"]] == ["2017-Q1", "2017-Q2"]


# --------------------------------------------------------------------------- a simulated year


@pytest.fixture(scope="module")
def year() -> tuple[Snapshot, oracle.World]:
    """A simulated year, folded once for the service and once for the oracle."""
    events = simulated()
    return snapshot_of(events), oracle.World(events, STAGES, "Asia/Shanghai")


@cache
def year_columns() -> Columns:
    return columns_of(simulated())


YEAR_FILTERS = [{}, {"team": "T-2"}, {"source": "web", "from": "2017-03-01"},
                {"segment": "enterprise", "product": "CRM Suite"}]


@pytest.mark.parametrize("path", ["snapshot", "columns"])
@pytest.mark.parametrize("as_of", ["2017-02-01T00:00:00+08:00", "2017-06-15T15:30:00+08:00",
                                   "2017-12-31T23:59:59+08:00"])
def test_the_projection_equals_the_oracle_over_a_simulated_year(
        year: tuple[Snapshot, oracle.World], as_of: str, path: str) -> None:
    snapshot, world = year
    for filters in YEAR_FILTERS:
        moment = datetime.fromisoformat(as_of)
        mine = (view.forecast(snapshot, _filters(dict(filters)), moment) if path == "snapshot"
                else columnar_forecast.forecast(year_columns(), _filters(dict(filters)), moment))
        theirs = oracle.forecast([], stages=STAGES, as_of=as_of, filters=filters, world=world)
        assert close(exact(mine)) == close(exact(theirs)), filters


@pytest.mark.parametrize(("period", "filters"), [("month", {}), ("quarter", {"team": "T-1"}),
                                                 ("month", {"rep": "R-003"})])
@pytest.mark.parametrize("path", ["snapshot", "columns"])
def test_accuracy_equals_the_oracle_over_a_simulated_year(
        year: tuple[Snapshot, oracle.World], period: str, filters: dict[str, str],
        path: str) -> None:
    snapshot, world = year
    as_of = "2017-12-31T00:00:00+08:00"
    moment = datetime.fromisoformat(as_of)
    mine = (view.accuracy(snapshot, _filters(dict(filters)), moment, period)
            if path == "snapshot" else
            columnar_forecast.accuracy(year_columns(), _filters(dict(filters)), moment, period))
    theirs = oracle.accuracy([], stages=STAGES, as_of=as_of, period=period, filters=filters,
                             world=world)
    assert close(exact(mine)) == close(exact(theirs))


def test_the_simulated_filters_select_something(year: tuple[Snapshot, oracle.World]) -> None:
    """Guards the comparisons above against vacuous filters."""
    dims = {(k, d.dims[k]) for d in year[0].deals for k in DIMENSIONS}
    for pair in [("team", "T-2"), ("source", "web"), ("segment", "enterprise"),
                 ("product", "CRM Suite"), ("team", "T-1"), ("rep", "R-003")]:
        assert pair in dims, pair
