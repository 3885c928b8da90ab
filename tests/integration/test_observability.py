"""Every process exposes Prometheus metrics; every answer carries its request id."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Stack, samples, wait_until
from tests.history import simulated

pytestmark = pytest.mark.integration


def test_relay_projector_and_api_report_their_work_to_prometheus(stack: Stack) -> None:
    events = simulated(seed=4, days=10)
    stack.post(events)
    relay = f"http://127.0.0.1:{stack.metrics_ports['relay']}/metrics"
    projector = f"http://127.0.0.1:{stack.metrics_ports['projector']}/metrics"
    wait_until(lambda: samples(relay, "salespulse_relayed_events_total") == len(events),
               message="the relay to count every event")
    wait_until(lambda: samples(projector, "salespulse_projected_events_total") == len(events),
               message="the projector to count every event")
    assert samples(projector, "salespulse_projection_freshness_seconds_count") == len(events)
    wait_until(lambda: "salespulse_projector_lag_messages{" in httpx.get(projector).text,
               timeout=30, message="lag per partition")

    with stack.client() as client:
        answer = client.get("/v1/funnel", headers={"X-Request-ID": "req-42"})
        assert answer.headers["X-Request-ID"] == "req-42"
        assert client.get("/v1/funnel").headers["X-Request-ID"]  # one is made when none given
        exposition = client.get("/metrics", headers={
            "Authorization": f"Bearer {stack.env['METRICS_TOKEN']}"}).text
    assert 'salespulse_api_request_seconds_count{method="GET",route="/v1/funnel",status="200"}' \
        in exposition


def test_a_refused_event_is_logged_with_its_id_field_and_request_id(stack: Stack) -> None:
    import json

    bad = {"id": "evt-bad-1", "type": "deal.stage_changed",
           "occurred_at": "2017-01-01T00:00:00+08:00",
           "data": {"deal_id": "D-nowhere", "stage": "proposal"}}
    with stack.client() as client:
        answer = client.post("/v1/events", json=bad, headers={"X-Request-ID": "req-bad-1"},
                             params={"unknown": "refuse"})
    assert answer.status_code in (409, 422), answer.text

    def logged() -> list[dict[str, object]]:
        lines = (stack.log_dir / "api.log").read_text().splitlines()
        return [e for e in (json.loads(x) for x in lines if x.startswith("{"))
                if e.get("event") == "ingest.refused"]

    entry = wait_until(logged, timeout=10, message="the refusal in the API's log")[0]
    assert entry["event_id"] == "evt-bad-1" and entry["request_id"] == "req-bad-1"
    assert entry["field"] and entry["tenant"] == "default" and entry["level"] == "warning"
