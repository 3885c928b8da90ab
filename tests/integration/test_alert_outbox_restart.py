"""Exactly once through a crash: an alerter killed with SIGKILL between a delivery's attempts
delivers it once after restart (real broker, PostgreSQL, Redis and processes; a receiver on
loopback that answers 500 first and counts what it accepts by Idempotency-Key)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
import redis

from alerts.notify import Channel, Recipient
from alerts.routing import Route, Routing
from alerts.routing_codec import dump
from services.alerter.dispatcher import routing_key
from services.alerter.secrets import Sealer
from services.broker import free_port
from services.settings import Settings
from tests.conftest import Stack, wait_until

pytestmark = pytest.mark.integration
STALL_SECONDS = 2
BACKOFF_SECONDS = 6  # the window the alerter is killed in, between two attempts


class Receiver:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[str] = []  # Idempotency-Key of every request
        self.accepted: dict[str, int] = {}  # Idempotency-Key -> deliveries answered 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
                self.rfile.read(int(self.headers["Content-Length"]))
                key = self.headers["Idempotency-Key"]
                with receiver.lock:
                    receiver.calls.append(key)
                    first = len(receiver.calls) == 1  # the very first request fails
                    if not first:
                        receiver.accepted[key] = receiver.accepted.get(key, 0) + 1
                self.send_response(500 if first else 200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def slow_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_BACKOFF_SECONDS", str(BACKOFF_SECONDS))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()


def route_to(stack: Stack, url: str) -> None:
    """The tenant's routing as the admin API leaves it for the alerter (sealed secret)."""
    settings = Settings(data_dir=Path(stack.env["DATA_DIR"]))
    routing = Routing(channels=(Channel("hook", "webhook", url, "a-hook-secret"),),
                      routes=(Route("hook", ("owner",)),),
                      contacts={"R1": Recipient("R1", "Wei", "zh-CN")})
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    client.set(routing_key(stack.env["REDIS_PREFIX"], "default"),
               orjson.dumps(dump(routing, Sealer(settings).seal)))
    client.close()


def deal(stack: Stack, name: str, with_rep: bool = False) -> None:
    now = datetime.now(UTC).isoformat()
    events = [{"id": f"e-rep-{name}", "type": "rep.joined", "occurred_at": now,
               "data": {"rep_id": "R1", "name": "Wei", "team_id": "T1", "manager_id": "M1"}}
              ] if with_rep else []
    events.append({"id": f"e-{name}", "type": "deal.created", "occurred_at": now,
                   "data": {"deal_id": name, "owner_id": "R1", "stage": "negotiation",
                            "amount": "100"}})
    with stack.client() as client:
        assert client.post("/v1/events/batch", json=events).status_code == 202


def outbox_rows(stack: Stack) -> list[dict[str, Any]]:
    url, schema = stack.env["DATABASE_URL"].split("?schema=")
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return list(conn.execute(
            f"SELECT key, transition_id, state, attempts FROM {schema}.salespulse_alert_outbox"
            " ORDER BY created_at").fetchall())


@pytest.mark.usefixtures("slow_retries")  # before `stack`: its processes read the env
def test_an_alerter_killed_between_attempts_delivers_once_after_restart(
        stack: Stack, receiver: Receiver) -> None:
    route_to(stack, receiver.url)
    with stack.client() as client:
        assert client.put("/v1/pipeline", json={
            "stages": ["prospecting", "negotiation"],
            "stall_days": {"negotiation": STALL_SECONDS / 86400}}).status_code == 202
    deal(stack, "D1", with_rep=True)

    # The first attempt fails (500); the next is BACKOFF_SECONDS away: kill it now.
    wait_until(lambda: len(receiver.calls) == 1, timeout=90, message="the first attempt")
    wait_until(lambda: [r["attempts"] for r in outbox_rows(stack)] == [1], timeout=10,
               message="the attempt recorded")
    stack.kill("alerter")
    [row] = outbox_rows(stack)
    assert (row["state"], row["attempts"]) == ("pending", 1)
    assert row["transition_id"].endswith(":opened")

    stack.start("alerter")
    wait_until(lambda: receiver.accepted.get(row["key"]) == 1, timeout=90,
               message="the delivery after the restart")
    wait_until(lambda: outbox_rows(stack)[0]["state"] == "sent", timeout=10,
               message="the delivery recorded as sent")

    # Restarted again once it is sent, the alerter re-derives D1's alert and sends nothing
    # for it; a second deal's message shows it is live and has replayed D1.
    stack.kill("alerter")
    stack.start("alerter")
    deal(stack, "D2")
    wait_until(lambda: len(receiver.accepted) == 2, timeout=90, message="D2's delivery")
    assert receiver.accepted[row["key"]] == 1
    assert receiver.calls.count(row["key"]) == 2  # the failed attempt and the one after it
    assert sorted(receiver.accepted.values()) == [1, 1]
    assert [(r["state"], r["attempts"]) for r in outbox_rows(stack)] == [
        ("sent", 2), ("sent", 1)]
