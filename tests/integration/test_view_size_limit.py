"""A view that still joins every record in memory refuses a tenant past SNAPSHOT_MAX_DEALS
with a 503 problem naming the setting, instead of taking the API process down; the
funnel and breakdowns, served from the column store, answer at any size."""

from __future__ import annotations

import signal

import pytest
from redis import Redis

from tests.conftest import Stack, _projected, _wait_for_api, wait_until
from tests.history import simulated

pytestmark = pytest.mark.integration


def test_views_joining_every_record_refuse_a_tenant_past_the_limit(stack: Stack) -> None:
    events = simulated(days=30)
    assert stack.post(events).accepted == len(events)
    wait_until(lambda: _projected(stack, len(events)), timeout=120, message="events projected")
    deals = int(Redis.from_url(stack.env["REDIS_URL"]).hlen(
        f"{stack.env['REDIS_PREFIX']}:default:deal"))
    assert deals > 1
    with stack.client() as client:
        funnel_before = client.get("/v1/funnel").raise_for_status().json()
        assert client.get("/v1/leads").status_code == 200

    stack.kill("api", signal.SIGTERM)
    stack.env["SNAPSHOT_MAX_DEALS"] = str(deals - 1)
    stack.start("api")
    _wait_for_api(stack)
    with stack.client() as client:
        refused = client.get("/v1/leads")
        funnel = client.get("/v1/funnel")
        breakdown = client.get("/v1/breakdown", params={"by": "rep"})

    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"].endswith("too-large-for-this-view")
    assert "SNAPSHOT_MAX_DEALS" in problem["detail"] and f"{deals:,} deals" in problem["detail"]
    assert "Retry-After" not in refused.headers  # not a passing condition
    assert funnel.status_code == 200 and funnel.json() == funnel_before
    assert breakdown.status_code == 200
    assert sum(row["deals"] for row in breakdown.json()["rows"]) == deals
