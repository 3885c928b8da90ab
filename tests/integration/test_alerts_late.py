"""Alerts in event time through the real stack (Tansu, PostgreSQL, Redis, api/relay/projector/
alerter): a late activity proves that an inactive-deal alert already told never held. The
alert is retracted on the SSE stream, in `GET /v1/alerts` and to the webhook (never a
silent delete); the deal's idleness, judged again from the activity, opens a new alert; a
restarted alerter, replaying the log, tells nothing new and ends with the same alerts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Stack, wait_until
from tests.integration.test_alerts_live import SECRET, Receiver, listen, verified

pytestmark = pytest.mark.integration
IDLE_SECONDS = 3


@pytest.fixture
def short_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERT_INACTIVE_DAYS", str(IDLE_SECONDS / 86400))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver(failures=0)
    yield running
    running.server.shutdown()


def alerts(stack: Stack) -> dict[str, dict[str, Any]]:
    with stack.client() as client:
        return {a["id"]: a for a in client.get("/v1/alerts", params={"rule": "inactive_deal"}
                                               ).json()["alerts"]}


@pytest.mark.usefixtures("short_idle")  # before `stack`: its processes read the env
def test_a_late_activity_retracts_the_inactivity_alert_it_disproves(
        stack: Stack, receiver: Receiver) -> None:
    seen: list[tuple[datetime, dict[str, Any]]] = []
    ready = threading.Event()
    listen(stack, seen, ready)
    assert ready.wait(30)
    created = datetime.now(UTC)
    with stack.client() as client:
        assert client.put("/v1/webhooks", json=[{"url": receiver.url, "secret": SECRET}]
                          ).status_code == 200
        assert client.post("/v1/events/batch", json=[
            {"id": "e-rep", "type": "rep.joined", "occurred_at": created.isoformat(),
             "data": {"rep_id": "R1", "name": "A", "team_id": "T1", "manager_id": "M1"}},
            {"id": "e-deal", "type": "deal.created", "occurred_at": created.isoformat(),
             "data": {"deal_id": "D1", "owner_id": "R1", "stage": "prospecting",
                      "amount": "100"}}]).status_code == 202
    told = wait_until(lambda: [b for _, b in seen if b["kind"] == "opened"], timeout=60,
                      message="the inactivity alert on the SSE stream")
    first = told[0]["alert"]
    assert (first["rule"], first["subject"]) == ("inactive_deal", "D1")
    assert datetime.fromisoformat(first["became_true_at"]) == created + timedelta(
        seconds=IDLE_SECONDS)
    assert told[0]["history"] is False

    # A call one second after the deal was created, logged late: the deal was never idle
    # for three seconds from its creation. It was idle from one second later, though.
    call = created + timedelta(seconds=1)
    with stack.client() as client:
        assert client.post("/v1/events", json={
            "id": "e-call", "type": "activity.logged", "occurred_at": call.isoformat(),
            "data": {"deal_id": "D1", "activity_id": "a1", "kind": "call", "rep_id": "R1"}}
        ).status_code == 202
    wait_until(lambda: any(b["kind"] == "retracted" for _, b in seen), timeout=60,
               message="the retraction on the SSE stream")
    retraction = next(b for _, b in seen if b["kind"] == "retracted")
    assert retraction["alert"]["id"] == first["id"]
    assert retraction["alert"]["state"] == "retracted" and retraction["history"] is False
    again = wait_until(lambda: [b for _, b in seen if b["kind"] == "opened"
                                and b["alert"]["id"] != first["id"]], timeout=60,
                       message="the idleness judged again from the call")
    second = again[0]["alert"]
    assert datetime.fromisoformat(second["became_true_at"]) == call + timedelta(
        seconds=IDLE_SECONDS)

    listed = alerts(stack)
    assert {i: a["state"] for i, a in listed.items()} == {first["id"]: "retracted",
                                                          second["id"]: "open"}
    assert listed[first["id"]]["retracted_at"] is not None
    with stack.client() as client:
        refused = client.post(f"/v1/alerts/{first['id']}/ack", json={"by": "M1"})
        assert refused.status_code == 409, refused.text
        active = client.get("/v1/alerts", params={"state": "active"}).json()["alerts"]
        assert [a["id"] for a in active] == [second["id"]]

    wait_until(lambda: len(receiver.accepted) >= 3, timeout=60, message="three webhooks")
    bodies = [json.loads(body) for _, _, body in receiver.accepted]
    assert [(b["kind"], b["alert"]["id"]) for b in bodies] == [
        ("opened", first["id"]), ("retracted", first["id"]), ("opened", second["id"])]
    assert all(verified(headers, body) for _, headers, body in receiver.accepted)
    assert len({h["Idempotency-Key"] for _, h, _ in receiver.accepted}) == 3

    # A restarted alerter replays the log (the call after the deal, as it arrived): the
    # same transitions, already delivered, so nothing new; the same alerts stand.
    d1_before = [b["id"] for _, b in seen if b["alert"]["subject"] == "D1"]
    stack.kill("alerter")
    stack.start("alerter")
    later = datetime.now(UTC)
    with stack.client() as client:
        assert client.post("/v1/events", json={
            "id": "e-deal2", "type": "deal.created", "occurred_at": later.isoformat(),
            "data": {"deal_id": "D2", "owner_id": "R1", "stage": "prospecting"}}
        ).status_code == 202
    # Once D2's alert arrives, the restarted alerter has replayed all of D1.
    wait_until(lambda: any(b["alert"]["subject"] == "D2" for _, b in seen), timeout=90,
               message="D2's alert after the restart")
    assert [b["id"] for _, b in seen if b["alert"]["subject"] == "D1"] == d1_before
    assert {i: a["state"] for i, a in alerts(stack).items() if a["subject"] == "D1"} == {
        first["id"]: "retracted", second["id"]: "open"}
    wait_until(lambda: len(receiver.accepted) >= 4, timeout=60, message="D2's webhook")
    assert [json.loads(b)["alert"]["subject"] for _, _, b in receiver.accepted] == [
        "D1", "D1", "D1", "D2"]
