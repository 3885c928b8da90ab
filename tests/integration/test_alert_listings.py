"""The stalled-deal and at-risk-customer listings are the alerter's alerts of their rules
whose condition holds: no request judges every record, and a user's acknowledgement does
not take a still-stalled deal off the list."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import Stack, _projected, wait_until
from tests.history import simulated

pytestmark = pytest.mark.integration
LISTINGS = {"/v1/deals/stalled": ("deals", {"stalled_deal", "inactive_deal"}),
            "/v1/customers/at-risk": ("customers", {"churn_risk", "engagement_drop"})}

LATER_LEAD = {"id": str(uuid.uuid4()), "type": "lead.created",
              "occurred_at": "2017-03-15T10:00:00+08:00", "actor": "R-001",
              "data": {"lead_id": "L-LATER", "source": "web", "region": "north",
                       "company": "Later Trading", "owner_id": "R-001"}}


def _alerters_holding(client: httpx.Client, rules: set[str]) -> list[tuple[str, str, str]]:
    """The alerter's alerts of `rules` that are neither resolved nor retracted."""
    alerts = client.get("/v1/alerts", params={"state": "active", "limit": 10_000}
                        ).raise_for_status().json()
    return sorted((a["rule"], a["subject"], a["became_true_at"]) for a in alerts["alerts"]
                  if a["rule"] in rules)


def _listed(client: httpx.Client, path: str) -> tuple[str, list[tuple[str, str, str]]]:
    answer = client.get(path).raise_for_status().json()
    rows = answer[LISTINGS[path][0]]
    return answer["judged_by"], sorted((r["rule"], r["subject"], r["since"]) for r in rows)


def test_the_listings_are_the_alerters_alerts_whose_condition_holds(stack: Stack) -> None:
    # A lead weeks after the rest moves the alerter's clock (event time, while it replays
    # the past) past the deals' stall and inactivity thresholds.
    events = [*simulated(days=30), LATER_LEAD]
    assert stack.post(events).accepted == len(events)
    wait_until(lambda: _projected(stack, len(events)), timeout=120, message="events projected")
    with stack.client() as client:
        stalled_rules = LISTINGS["/v1/deals/stalled"][1]
        wait_until(lambda: _alerters_holding(client, stalled_rules),
                   timeout=60, message="the alerter's stalled deals")
        for path, (_, rules) in LISTINGS.items():
            judged_by, rows = _listed(client, path)
            assert judged_by == "alerter"
            assert rows == _alerters_holding(client, rules), path

        first = next(a for a in client.get("/v1/alerts", params={"state": "open"}).json()[
            "alerts"] if a["rule"] in stalled_rules)
        acked = client.post(f"/v1/alerts/{first['id']}/ack", json={"by": "M1"})
        assert acked.raise_for_status().json()["state"] == "acknowledged"
        _, rows = _listed(client, "/v1/deals/stalled")
        assert (first["rule"], first["subject"], first["became_true_at"]) in rows
        assert rows == _alerters_holding(client, stalled_rules)
