"""Contract events written by hand in tests: each gets an id of its own unless given one."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import httpx

_ids = itertools.count()


def unique() -> int:
    """A number no other call returns: for the ids of activities, orders, payments."""
    return next(_ids)


def ev(type_: str, at: str, *, id: str | None = None, **data: Any) -> dict[str, Any]:
    return {"id": id or f"evt-{next(_ids)}", "type": type_, "occurred_at": at, "data": data}


def stall_a_deal_now(client: httpx.Client, deal_id: str) -> None:
    """Through the API: a pipeline whose `negotiation` stalls after 3 s, and rep R1 (team T1,
    manager M1) with deal `deal_id` entering it now, so the alerter opens a stalled-deal
    alert within seconds."""
    assert client.put("/v1/pipeline", json={
        "stages": ["prospecting", "negotiation"],
        "stall_days": {"negotiation": 3 / 86400}}).status_code == 202
    now = datetime.now(UTC).isoformat()
    assert client.post("/v1/events/batch", json=[
        {"id": "e-rep", "type": "rep.joined", "occurred_at": now,
         "data": {"rep_id": "R1", "name": "Ann", "team_id": "T1", "manager_id": "M1"}},
        {"id": "e-deal", "type": "deal.created", "occurred_at": now,
         "data": {"deal_id": deal_id, "owner_id": "R1", "stage": "negotiation",
                  "amount": "100"}},
    ]).status_code == 202
