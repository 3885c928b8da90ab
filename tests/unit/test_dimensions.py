"""The filter lists the dashboard offers: every rep with name and current team, and each
dimension's values as they occur."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from projections import columnar_dimensions
from projections.dimensions import dimensions
from projections.snapshot import Filters
from tests.history import columns_of, snapshot_of


def event(n: int, kind: str, day: str, **data: Any) -> dict[str, Any]:
    return {"id": f"e{n}", "type": kind, "occurred_at": f"2017-03-{day}T10:00:00+08:00",
            "data": data}


EVENTS = [
    event(1, "rep.joined", "01", rep_id="R1", name="Ann", team_id="T1", manager_id="M1",
          region="north"),
    event(2, "rep.moved", "05", rep_id="R1", team_id="T2", manager_id="M2", region="east"),
    event(3, "customer.created", "01", customer_id="C1", segment="smb"),
    event(4, "lead.created", "02", lead_id="L1", source="referral", owner_id="R1"),
    event(5, "deal.created", "03", deal_id="D1", owner_id="R2", customer_id="C1",
          amount="10", product="CRM", stage="prospecting"),
]


def test_a_rep_is_listed_with_their_current_team_and_a_rep_known_only_from_a_deal_too() -> None:
    reps = dimensions(snapshot_of(EVENTS))["reps"]
    assert reps == [
        {"id": "R1", "name": "Ann", "team": "T2", "manager": "M2", "region": "east"},
        {"id": "R2", "name": None, "team": None, "manager": None, "region": None},
    ]


def test_each_dimension_lists_the_values_that_occur_including_a_reps_former_team() -> None:
    found = dimensions(snapshot_of(EVENTS))
    # T1 is where R1 was when the lead came in: a period filter on March 2 selects it.
    assert found["team"] == ["T1", "T2"]
    assert found["source"] == ["referral"]
    assert found["product"] == ["CRM"]
    assert found["segment"] == ["smb"]


def test_the_column_store_lists_the_same_bytes_in_any_scope() -> None:
    snapshot, columns = snapshot_of(EVENTS), columns_of(EVENTS)
    reps = [rep["id"] for rep in dimensions(snapshot)["reps"]]
    for within in (None, *(Filters(dims={"rep": rep}) for rep in reps)):
        assert JSONResponse(columnar_dimensions.dimensions(columns, within)).body == \
            JSONResponse(dimensions(snapshot, within)).body

