"""Live alerts through the real stack (Tansu, PostgreSQL, Redis, api/relay/projector/alerter):
a deal crosses a short stall threshold and the alert reaches the SSE stream and a local
webhook receiver (signature checked), once, even when the receiver fails at first."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from services.broker import free_port
from tests.conftest import Stack, wait_until

pytestmark = pytest.mark.integration
SECRET = "a-test-secret-of-some-length"
STALL_SECONDS = 3


class Receiver:
    """A webhook endpoint that fails its first `failures` requests, then accepts."""

    def __init__(self, failures: int = 0) -> None:
        self.failures, self.calls = failures, 0
        self.accepted: list[tuple[datetime, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls += 1
                ok = receiver.calls > receiver.failures
                if ok:
                    receiver.accepted.append((datetime.now(UTC), dict(self.headers), body))
                self.send_response(200 if ok else 503)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_BACKOFF_SECONDS", "0.2")


def verified(headers: dict[str, str], body: bytes) -> bool:
    signed = headers["X-Salespulse-Timestamp"].encode() + b"." + body
    expected = "sha256=" + hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Salespulse-Signature"])


def listen(stack: Stack, seen: list[tuple[datetime, dict[str, Any]]],
           ready: threading.Event, key: str | None = None) -> threading.Thread:
    def run() -> None:
        with stack.client(key) as client, \
                client.stream("GET", "/v1/alerts/stream", params={"since": "0"}) as response:
            ready.set()
            for line in response.iter_lines():
                if line.startswith("data:"):
                    seen.append((datetime.now(UTC), json.loads(line[5:])))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def stall_a_deal(stack: Stack, receiver: Receiver) -> datetime:
    """A deal in a stage whose threshold is a few seconds; returns when it was created."""
    with stack.client() as client:
        assert client.put("/v1/webhooks", json=[{"url": receiver.url, "secret": SECRET}]
                          ).status_code == 200
        assert client.put("/v1/pipeline", json={
            "stages": ["prospecting", "negotiation"],
            "stall_days": {"negotiation": STALL_SECONDS / 86400}}).status_code == 202
        now = datetime.now(UTC)
        events = [
            {"id": "e-rep", "type": "rep.joined", "occurred_at": now.isoformat(),
             "data": {"rep_id": "R1", "name": "A", "team_id": "T1", "manager_id": "M1"}},
            {"id": "e-deal", "type": "deal.created", "occurred_at": now.isoformat(),
             "data": {"deal_id": "D1", "owner_id": "R1", "stage": "negotiation",
                      "amount": "100"}},
        ]
        assert client.post("/v1/events/batch", json=events).status_code == 202
        return now


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver(failures=2)
    yield running
    running.server.shutdown()


@pytest.mark.usefixtures("fast_retries")  # before `stack`: its processes read the env
def test_stalled_deal_reaches_the_stream_and_a_flaky_webhook_once(
        stack: Stack, receiver: Receiver) -> None:
    seen: list[tuple[datetime, dict[str, Any]]] = []
    ready = threading.Event()
    listen(stack, seen, ready)
    assert ready.wait(30)
    created = stall_a_deal(stack, receiver)
    due = created + timedelta(seconds=STALL_SECONDS)

    opened = wait_until(lambda: [b for _, b in seen if b["kind"] == "opened"], timeout=60,
                        message="the alert on the SSE stream")
    assert [b["alert"]["rule"] for b in opened] == ["stalled_deal"]
    alert = opened[0]["alert"]
    assert (alert["subject"], alert["owner"], alert["manager"], alert["team"]) == (
        "D1", "R1", "M1", "T1")
    assert datetime.fromisoformat(alert["became_true_at"]) == due
    assert opened[0]["history"] is False

    wait_until(lambda: receiver.accepted, timeout=60, message="the webhook delivery")
    _at, headers, body = receiver.accepted[0]
    assert verified(headers, body)
    assert headers["Idempotency-Key"] == opened[0]["id"]
    assert json.loads(body)["alert"]["id"] == alert["id"]
    assert receiver.calls == 3  # failed twice, accepted on the third attempt

    with stack.client() as client:
        listed = client.get("/v1/alerts", params={"rule": "stalled_deal", "manager": "M1"}
                            ).json()
        assert [a["id"] for a in listed["alerts"]] == [alert["id"]]
        # The listing reads the projector's read models: a consumer of its own, maybe a
        # moment behind the alerter's.
        wait_until(lambda: [d["subject"] for d in client.get("/v1/deals/stalled").json()["deals"]
                            if d["rule"] == "stalled_deal"] == ["D1"], timeout=30,
                   message="D1 listed as stalled")
        acked = client.post(f"/v1/alerts/{alert['id']}/ack", json={"by": "M1"}).json()
        assert acked["state"] == "acknowledged"
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        assert client.post(f"/v1/alerts/{alert['id']}/snooze", json={"until": later}
                           ).json()["state"] == "snoozed"
        assert client.post("/v1/alerts/nope/ack").status_code == 404

    sse_delay = (next(t for t, b in seen if b["kind"] == "opened") - due).total_seconds()
    hook_delay = (receiver.accepted[0][0] - due).total_seconds()
    print(f"\ncondition true -> SSE {sse_delay * 1000:.0f} ms; -> webhook (after two failed "
          f"attempts, backoff 0.2 s + 0.4 s) {hook_delay * 1000:.0f} ms")

    # Moving the deal resolves the alert; a restarted alerter re-derives it and sends nothing.
    with stack.client() as client:
        assert client.post("/v1/events", json={
            "id": "e-move", "type": "deal.stage_changed",
            "occurred_at": datetime.now(UTC).isoformat(),
            "data": {"deal_id": "D1", "stage": "prospecting"}}).status_code == 202
    wait_until(lambda: any(b["kind"] == "resolved" for _, b in seen), timeout=60,
               message="the resolution on the SSE stream")
    wait_until(lambda: len(receiver.accepted) == 2, timeout=60, message="resolution webhook")
    stack.kill("alerter")
    stack.start("alerter")
    # Once a second deal's alert arrives, the restarted alerter has replayed all of D1.
    with stack.client() as client:
        assert client.post("/v1/events", json={
            "id": "e-deal2", "type": "deal.created", "occurred_at": datetime.now(UTC).isoformat(),
            "data": {"deal_id": "D2", "owner_id": "R1", "stage": "negotiation"}}
        ).status_code == 202
    wait_until(lambda: len(receiver.accepted) == 3, timeout=90, message="D2's webhook")
    bodies = [json.loads(b) for _, _, b in receiver.accepted]
    assert [(b["kind"], b["alert"]["subject"]) for b in bodies] == [
        ("opened", "D1"), ("resolved", "D1"), ("opened", "D2")]
    keys = [h["Idempotency-Key"] for _, h, _ in receiver.accepted]
    assert len(set(keys)) == 3
    assert [(b["kind"], b["alert"]["subject"]) for _, b in seen if b["kind"] in (
        "opened", "resolved")] == [("opened", "D1"), ("resolved", "D1"), ("opened", "D2")]


def test_each_credential_streams_only_the_alerts_in_its_scope(stack: Stack) -> None:
    keys = {"admin": None, "rep R1": stack.key("rep", rep_id="R1"),
            "manager T2": stack.key("manager", team_id="T2")}
    seen: dict[str, list[tuple[datetime, dict[str, Any]]]] = {who: [] for who in keys}
    for who, key in keys.items():
        ready = threading.Event()
        listen(stack, seen[who], ready, key)
        assert ready.wait(30), who
    now = datetime.now(UTC).isoformat()
    with stack.client() as admin:
        assert admin.put("/v1/pipeline", json={
            "stages": ["prospecting", "negotiation"],
            "stall_days": {"negotiation": STALL_SECONDS / 86400}}).status_code == 202
        assert admin.post("/v1/events/batch", json=[
            {"id": f"e-{rep}", "type": "rep.joined", "occurred_at": now,
             "data": {"rep_id": rep, "name": rep, "team_id": team}}
            for rep, team in (("R1", "T1"), ("R2", "T2"))] + [
            {"id": f"e-{deal}", "type": "deal.created", "occurred_at": now,
             "data": {"deal_id": deal, "owner_id": rep, "stage": "negotiation",
                      "amount": "100"}} for deal, rep in (("D1", "R1"), ("D2", "R2"))]
        ).status_code == 202

    def subjects(who: str) -> set[str]:
        return {body["alert"]["subject"] for _, body in seen[who]}

    wait_until(lambda: subjects("admin") >= {"D1", "D2"}, timeout=60,
               message="both stalled deals on the admin's stream")
    wait_until(lambda: subjects("rep R1") and subjects("manager T2"), timeout=10,
               message="the scoped streams")
    assert subjects("rep R1") == {"D1"}
    assert subjects("manager T2") == {"D2"}
    with stack.client(keys["rep R1"]) as rep:
        listed = rep.get("/v1/alerts").json()["alerts"]
        assert {a["subject"] for a in listed} == {"D1"}
        other = next(a for _, b in seen["admin"] for a in [b["alert"]] if a["subject"] == "D2")
        refused = rep.post(f"/v1/alerts/{other['id']}/ack", json={})
        assert refused.status_code == 403, refused.text
