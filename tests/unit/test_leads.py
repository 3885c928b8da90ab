"""Leads (GET /v1/leads): hand-computed cases pin each definition in docs/METRICS.md, for
the view and the independent oracle alike; then the view equals the oracle over a year."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from typing import Any

import pytest

from projections import columnar_leads
from projections.columnar import Columns
from projections.leads import leads
from projections.snapshot import Filters, Snapshot
from tests.builders import ev, unique
from tests.history import columns_of, simulated, snapshot_of
from tests.integration.test_event_path import comparable
from tests.oracles import leads as oracle

STAGES = ["prospecting", "qualification", "proposal", "negotiation"]
AS_OF = datetime.fromisoformat("2017-03-10T12:00:00+08:00")



def lead(lid: str, at: str, source: str = "web", **data: object) -> dict[str, Any]:
    return ev("lead.created", at, lead_id=lid, source=source, **data)


def contact(lid: str, at: str, rep: str = "r1") -> dict[str, Any]:
    return ev("activity.logged", at, activity_id=f"A-{unique()}", kind="call", rep_id=rep,
              lead_id=lid)


def to_filters(given: dict[str, str]) -> Filters:
    start, end = given.get("from"), given.get("to")
    return Filters(date.fromisoformat(start) if start else None,
                   date.fromisoformat(end) if end else None,
                   {k: v for k, v in given.items() if k not in ("from", "to")})


def by_view(events: list[dict[str, Any]], by: str = "source", as_of: datetime = AS_OF,
            **filters: str) -> dict[str, Any]:
    return leads(snapshot_of(events), to_filters(filters), by, as_of)


def by_columns(events: list[dict[str, Any]], by: str = "source", as_of: datetime = AS_OF,
               **filters: str) -> dict[str, Any]:
    """The view as the API serves it: from the column store."""
    return columnar_leads.leads(columns_of(events), to_filters(filters), by, as_of)


def by_oracle(events: list[dict[str, Any]], by: str = "source", as_of: datetime = AS_OF,
              **filters: str) -> dict[str, Any]:
    return oracle.leads(events, by=by, as_of=as_of, stages=STAGES, filters=filters)


Compute = Callable[..., dict[str, Any]]


@pytest.fixture(params=[by_view, by_columns, by_oracle], ids=["view", "columns", "oracle"])
def compute(request: pytest.FixtureRequest) -> Compute:
    return request.param  # type: ignore[no-any-return]


def test_converted_leads_count_as_qualified_and_the_latest_decision_stands(
        compute: Compute) -> None:
    events = [
        lead("L1", "2017-03-01T09:00:00"), ev("lead.qualified", "2017-03-02T09:00:00",
                                               lead_id="L1"),
        lead("L2", "2017-03-01T09:00:00"), ev("lead.disqualified", "2017-03-02T09:00:00",
                                               lead_id="L2"),
        lead("L3", "2017-03-01T09:00:00"),  # converted without lead.qualified
        ev("lead.converted", "2017-03-04T21:00:00", lead_id="L3", deal_id="D3"),
        lead("L4", "2017-03-01T09:00:00"),  # undecided
        lead("L5", "2017-03-01T09:00:00"),
        ev("lead.qualified", "2017-03-02T09:00:00", lead_id="L5"),
        ev("lead.disqualified", "2017-03-03T09:00:00", lead_id="L5"),
    ]
    total = compute(events)["total"]
    assert (total["new"], total["qualified"], total["disqualified"]) == (5, 2, 2)
    assert total["valid_lead_rate"] == 2 / 4
    assert total["converted"] == 1
    assert total["lead_conversion"] == 1 / 5
    assert total["lead_to_deal_days_mean"] == total["lead_to_deal_days_median"] == 3.5


def test_first_response_runs_from_the_latest_assignment_before_the_first_contact(
        compute: Compute) -> None:
    events = [
        lead("L1", "2017-03-01T09:00:00"),
        ev("lead.assigned", "2017-03-01T10:00:00", lead_id="L1", owner_id="r1"),
        contact("L1", "2017-03-01T13:00:00"),  # 3 h after the assignment
        ev("lead.assigned", "2017-03-01T15:00:00", lead_id="L1", owner_id="r2"),  # too late
        lead("L2", "2017-03-01T09:00:00", owner_id="r1"),
        ev("lead.assigned", "2017-03-02T10:00:00", lead_id="L2", owner_id="r2"),  # 25 h later
        contact("L2", "2017-03-02T12:00:00"),  # 2 h after the reassignment
        lead("L3", "2017-03-01T09:00:00", owner_id="r1"),
        contact("L3", "2017-03-02T11:00:00"),  # 26 h: outside the SLA
        contact("L3", "2017-03-02T11:30:00"),  # not a first response
    ]
    total = compute(events)["total"]
    assert total["answered"] == 3
    assert total["first_response_hours_median"] == 3.0
    assert total["first_response_hours_p90"] == pytest.approx(3 + 0.8 * (26 - 3))
    assert total["within_sla"] == 2 / 3
    assert total["uncontacted"] == 0


def test_sla_share_at_as_of_counts_overdue_silence_and_skips_what_is_still_in_time(
        compute: Compute) -> None:
    events = [
        lead("answered", "2017-03-09T09:00:00"), contact("answered", "2017-03-09T10:00:00"),
        lead("overdue", "2017-03-09T06:00:00"),  # 30 h of silence at AS_OF
        lead("fresh", "2017-03-10T10:00:00"),  # 2 h of silence: still inside the SLA
        lead("answered_later", "2017-03-10T11:00:00"),
        contact("answered_later", "2017-03-10T13:00:00"),  # after AS_OF: not yet a response
        lead("junk", "2017-03-08T09:00:00"),
        ev("lead.disqualified", "2017-03-08T10:00:00", lead_id="junk"),  # closed untouched
        lead("future", "2017-03-11T09:00:00"),  # created after AS_OF
    ]
    total = compute(events)["total"]
    assert total["new"] == 6
    assert total["answered"] == 1
    assert total["within_sla"] == 1 / 2  # answered inside / (answered + overdue)
    assert total["uncontacted"] == 3  # overdue, fresh, answered_later
    assert compute(events, as_of=datetime.fromisoformat("2017-03-11T12:00:00+08:00"))[
        "total"]["uncontacted"] == 3  # overdue, fresh, future (answered_later was answered)


def test_rows_per_group_with_null_last_and_weeks_in_the_tenants_zone(compute: Compute) -> None:
    events = [
        lead("L1", "2017-01-01T23:30:00", source="web"),  # a Sunday: ISO week 2016-W52
        lead("L2", "2017-01-02T00:30:00", source="event"),
        ev("lead.created", "2017-01-02T08:00:00", lead_id="L3"),  # no source
    ]
    by_source = compute(events)
    assert [(r["key"], r["new"]) for r in by_source["rows"]] == [
        ("event", 1), ("web", 1), (None, 1)]
    assert by_source["total"]["new"] == 3
    by_week = compute(events, by="week")
    assert [(r["key"], r["new"]) for r in by_week["rows"]] == [("2016-W52", 1), ("2017-W01", 2)]
    by_day = compute(events, by="day")
    assert [(r["key"], r["new"]) for r in by_day["rows"]] == [("2017-01-01", 1), ("2017-01-02", 2)]


def test_filters_select_leads_by_local_creation_date(compute: Compute) -> None:
    events = [lead("L1", "2017-03-01T00:30:00"), lead("L2", "2017-02-28T23:30:00"),
              lead("L3", "2017-03-02T10:00:00", source="event")]
    assert compute(events, **{"from": "2017-03-01"})["total"]["new"] == 2
    assert compute(events, source="event")["total"]["new"] == 1


# --------------------------------------------------------------------------- a simulated year


@cache
def _year() -> tuple[list[dict[str, Any]], Snapshot, Columns]:
    events = simulated()
    return events, snapshot_of(events), columns_of(events)


CASES = [
    ("source", "2017-12-31T18:00:00+08:00", {}),
    ("team", "2017-06-30T12:00:00+08:00", {"from": "2017-04-01", "to": "2017-09-30"}),
    ("rep", "2017-12-31T18:00:00+08:00", {"source": "web"}),
    ("month", "2017-03-15T09:30:00+08:00", {}),
    ("week", "2017-12-31T18:00:00+08:00", {"region": "team"}),
    ("product", "2018-01-31T00:00:00+08:00", {"from": "2017-06-01"}),
]


@pytest.mark.parametrize(("by", "as_of", "filters"), CASES)
def test_the_view_equals_the_oracle_over_a_simulated_year(
        by: str, as_of: str, filters: dict[str, str]) -> None:
    events, snapshot, columns = _year()
    moment = datetime.fromisoformat(as_of)
    if filters.get("region") == "team":  # a real region: the first lead's
        filters = {"region": str(snapshot.leads[0].dims["region"])}
    expected = comparable(oracle.leads(events, by=by, as_of=moment,
                                       stages=list(snapshot.stages), filters=filters))
    for view in (leads(snapshot, to_filters(filters), by, moment),
                 columnar_leads.leads(columns, to_filters(filters), by, moment)):
        assert view["total"]["new"] > 0
        assert comparable({k: view[k] for k in ("by", "rows", "total")}) == expected
