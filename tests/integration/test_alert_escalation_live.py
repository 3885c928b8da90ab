"""Escalation through the real stack: a stalled deal's alert nobody acknowledges reaches the
owner's manager a minute later, as a visible `escalated` transition on the alerts stream and a
delivery through the outbox; the alert its owner acknowledged stays with the owner."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from alerts.notify import Channel
from alerts.planning import idempotency_key
from alerts.routing import Escalation, Route, Routing
from alerts.routing_codec import dump
from services.alerter.dispatcher import routing_key
from services.alerter.secrets import Sealer
from services.broker import free_port
from services.settings import Settings
from tests.conftest import Stack, wait_until

pytestmark = pytest.mark.integration
STALL_SECONDS = 2


class Receiver:
    def __init__(self) -> None:
        self.keys: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.keys.append(self.headers["Idempotency-Key"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()


def streamed(stack: Stack) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    try:
        entries = client.xrange(f"{stack.env['REDIS_PREFIX']}:default:alerts:stream")
        return [orjson.loads(fields[b"data"]) for _, fields in entries]
    finally:
        client.close()


def test_an_unacknowledged_alert_escalates_to_the_manager_and_an_acknowledged_one_does_not(
        stack: Stack, receiver: Receiver) -> None:
    routing = Routing(channels=(Channel("hook", "webhook", receiver.url, "a-hook-secret"),),
                      routes=(Route("hook", ("owner",)),), escalations=(Escalation(1),))
    sealer = Sealer(Settings(data_dir=Path(stack.env["DATA_DIR"])))
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    client.set(routing_key(stack.env["REDIS_PREFIX"], "default"),
               orjson.dumps(dump(routing, sealer.seal)))
    client.close()
    now = datetime.now(UTC).isoformat()
    with stack.client() as api:
        assert api.put("/v1/pipeline", json={
            "stages": ["prospecting", "negotiation"],
            "stall_days": {"negotiation": STALL_SECONDS / 86400}}).status_code == 202
        assert api.post("/v1/events/batch", json=[
            {"id": "e-rep", "type": "rep.joined", "occurred_at": now,
             "data": {"rep_id": "R1", "name": "Wei", "team_id": "T1", "manager_id": "M1"}}] + [
            {"id": f"e-{deal}", "type": "deal.created", "occurred_at": now,
             "data": {"deal_id": deal, "owner_id": "R1", "stage": "negotiation",
                      "amount": "100"}} for deal in ("D1", "D2")]).status_code == 202
        wait_until(lambda: len({b["alert"]["subject"] for b in streamed(stack)
                                if b["kind"] == "opened"}) == 2, timeout=90,
                   message="both alerts opened")
        opened = {b["alert"]["subject"]: b for b in streamed(stack) if b["kind"] == "opened"}
        assert api.post(f"/v1/alerts/{opened['D2']['alert']['id']}/ack",
                        json={"by": "R1"}).status_code == 200

    escalated = wait_until(lambda: [b for b in streamed(stack) if b["kind"] == "escalated"],
                           timeout=150, message="the escalation on the alerts stream")
    assert [(b["id"], b["alert"]["subject"], b["history"]) for b in escalated] == [
        (f"{opened['D1']['alert']['id']}:escalated:1", "D1", False)]
    to_manager = idempotency_key(escalated[0]["id"], "M1", "hook")
    wait_until(lambda: to_manager in receiver.keys, timeout=30,
               message="the escalation delivered to the manager")
    assert sorted(receiver.keys) == sorted([
        idempotency_key(opened["D1"]["id"], "R1", "hook"),
        idempotency_key(opened["D2"]["id"], "R1", "hook"), to_manager])
