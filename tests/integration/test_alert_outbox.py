"""The outbox and its delivery worker against real PostgreSQL (and the embedded SQLite file)
and a signed-webhook receiver on loopback: a dispatch is written once, retried with backoff
under its idempotency key, given up into `dead`, and due digest rows go as one message."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from alerts.lifecycle import Alert, Transition, opened
from alerts.notify import Channel, Links, Message, Recipient
from alerts.planning import plan
from alerts.routing import Route, Routing
from services.alerter import channels
from services.alerter.delivery import DeliveryWorker, fixed
from services.alerter.links import LinkSigner
from services.alerter.outbox import Outbox
from services.broker import free_port
from services.settings import Settings

pytestmark = pytest.mark.integration
NOW = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)


class IdsComposer:
    """The smallest composer: the transition ids, so the receiver can tell what it got."""

    def compose(self, transition: Transition, recipient: Recipient, links: Links) -> Message:
        return Message(transition.kind, transition.id, [], links, transition.alert.severity,
                       recipient.language)

    def compose_digest(self, transitions: list[Transition], recipient: Recipient,
                       links_for: Callable[[Transition], Links]) -> Message:
        return Message("digest", f"digest for {recipient.id}", [t.id for t in transitions],
                       links_for(transitions[0]), "medium", recipient.language)


class Receiver:
    """Answers `statuses` in turn (then 200); counts accepted bodies by Idempotency-Key."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses, self.calls = list(statuses), 0
        self.accepted: dict[str, list[dict[str, Any]]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.calls += 1
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status == 200:
                    receiver.accepted.setdefault(self.headers["Idempotency-Key"], []).append(
                        body)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver_factory() -> Iterator[Callable[[list[int]], Receiver]]:
    made: list[Receiver] = []

    def make(statuses: list[int]) -> Receiver:
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for receiver in made:
        receiver.server.shutdown()


def routing(url: str) -> Routing:
    return Routing(channels=(Channel("hook", "webhook", url, "a-secret"),),
                   routes=(Route("hook", ("owner",)),),
                   contacts={"R-1": Recipient("R-1", "Wei", "zh-CN")})


def transition(name: str) -> Transition:
    return opened(Alert(name, "acme", "stalled_deal", "deal", f"D-{name}", NOW, "evidence",
                        "medium", "R-1", "M-1", "T-1"))


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def worker(outbox: Outbox, url: str, clock: Clock, attempts: int = 3) -> DeliveryWorker:
    signer = LinkSigner(b"k" * 32, "https://sp.example", timedelta(hours=72))
    return DeliveryWorker(outbox, IdsComposer(), channels.send, fixed(routing(url)), signer,
                          httpx.AsyncClient(timeout=5), clock, attempts=attempts,
                          backoff_seconds=10)


async def write(outbox: Outbox, url: str, names: list[str], at: datetime) -> None:
    for name in names:
        t = transition(name)
        dispatches = plan(t, routing(url), managers={}, zone="Asia/Shanghai",
                          interruptions={}, now=at)
        await outbox.add([(d, t.as_json(), NOW) for d in dispatches], at)


def test_a_failed_attempt_is_retried_after_its_backoff_under_the_same_key(
        pg_schema: str, receiver_factory: Callable[[list[int]], Receiver]) -> None:
    receiver = receiver_factory([500])
    outbox, clock = Outbox(Settings(database_url=pg_schema)), Clock()

    async def run() -> list[dict[str, Any]]:
        await write(outbox, receiver.url, ["a1"], NOW)
        await write(outbox, receiver.url, ["a1"], NOW)  # a replay: the same row
        deliverer = worker(outbox, receiver.url, clock)
        assert await deliverer.deliver_due() == 1
        assert await deliverer.deliver_due() == 0  # not due again before its backoff
        clock.now = NOW + timedelta(seconds=10)
        assert await deliverer.deliver_due() == 1
        assert await deliverer.deliver_due() == 0  # sent: never again
        await deliverer.http.aclose()
        return await outbox.rows("acme")

    rows = asyncio.run(run())
    assert [(r["state"], r["attempts"], r["last_error"]) for r in rows] == [("sent", 2, None)]
    assert receiver.calls == 2
    assert list(receiver.accepted) == [rows[0]["key"]]
    assert receiver.accepted[rows[0]["key"]][0]["summary"] == "a1:opened"


def test_a_delivery_is_given_up_into_dead_after_its_attempts(
        pg_schema: str, receiver_factory: Callable[[list[int]], Receiver]) -> None:
    receiver = receiver_factory([503, 503, 503, 503])
    outbox, clock = Outbox(Settings(database_url=pg_schema)), Clock()

    async def run() -> list[dict[str, Any]]:
        await write(outbox, receiver.url, ["a1"], NOW)
        deliverer = worker(outbox, receiver.url, clock, attempts=3)
        for step in range(4):
            clock.now = NOW + timedelta(seconds=10 * 2 ** step)
            await deliverer.deliver_due()
        await deliverer.http.aclose()
        return await outbox.rows("acme")

    [row] = asyncio.run(run())
    assert (row["state"], row["attempts"], row["last_error"]) == (
        "dead", 3, "DeliveryError: webhook: HTTP 503")
    assert receiver.calls == 3 and receiver.accepted == {}


def test_due_digest_rows_of_a_recipient_go_as_one_message(
        pg_schema: str, receiver_factory: Callable[[list[int]], Receiver]) -> None:
    receiver = receiver_factory([])
    outbox, clock = Outbox(Settings(database_url=pg_schema)), Clock()
    friday_night = datetime(2026, 3, 6, 13, 0, tzinfo=UTC)  # 21:00 in Shanghai
    monday_nine = datetime(2026, 3, 9, 1, 0, tzinfo=UTC)
    quiet = routing(receiver.url)
    from alerts.routing import QuietHours

    quiet = Routing(channels=quiet.channels, routes=quiet.routes, quiet=QuietHours(),
                    contacts=quiet.contacts)

    async def run() -> list[dict[str, Any]]:
        for name in ("a1", "a2", "a3"):
            t = transition(name)
            [d] = plan(t, quiet, managers={}, zone="Asia/Shanghai", interruptions={},
                       now=friday_night)
            assert (d.mode, d.deliver_at) == ("digest", monday_nine)
            await outbox.add([(d, t.as_json(), NOW)], friday_night)
        deliverer = worker(outbox, receiver.url, clock)
        clock.now = monday_nine - timedelta(seconds=1)
        assert await deliverer.deliver_due() == 0  # not before Monday 09:00
        clock.now = monday_nine
        assert await deliverer.deliver_due() == 1
        await deliverer.http.aclose()
        return await outbox.rows("acme")

    rows = asyncio.run(run())
    assert {r["state"] for r in rows} == {"sent"}
    assert len({r["batch"] for r in rows}) == 1
    [(key, [body])] = receiver.accepted.items()
    assert key == rows[0]["batch"]
    assert sorted(body["evidence"]) == ["a1:opened", "a2:opened", "a3:opened"]
    assert body["summary"] == "digest for R-1"


def test_the_embedded_stack_keeps_its_outbox_in_the_event_stores_sqlite_file(
        tmp_path: Path, receiver_factory: Callable[[list[int]], Receiver]) -> None:
    receiver = receiver_factory([])
    outbox = Outbox(Settings(data_dir=tmp_path))
    assert outbox.where().endswith(str(tmp_path / "events.sqlite"))

    async def run() -> list[dict[str, Any]]:
        await write(outbox, receiver.url, ["a1", "a1", "a2"], NOW)
        deliverer = worker(outbox, receiver.url, Clock())
        assert await deliverer.deliver_due() == 2
        await deliverer.http.aclose()
        return await outbox.rows("acme")

    rows = asyncio.run(run())
    assert [r["state"] for r in rows] == ["sent", "sent"]
    assert sorted(receiver.accepted) == sorted(r["key"] for r in rows)


def test_a_slow_channel_holds_up_no_other_and_is_not_sent_twice_meanwhile(
        pg_schema: str, receiver_factory: Callable[[list[int]], Receiver]) -> None:
    slow, fast = receiver_factory([]), receiver_factory([])
    release = threading.Event()
    slow_calls: list[str] = []

    class SlowHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
            self.rfile.read(int(self.headers["Content-Length"]))
            slow_calls.append(self.headers["Idempotency-Key"])
            release.wait(30)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    slow.server.RequestHandlerClass = SlowHandler
    two = Routing(channels=(Channel("slow", "webhook", slow.url, "s"),
                            Channel("fast", "webhook", fast.url, "s")),
                  routes=(Route("slow", ("owner",)), Route("fast", ("owner",))))
    outbox = Outbox(Settings(database_url=pg_schema))

    async def run() -> list[dict[str, Any]]:
        t = transition("a1")
        dispatches = plan(t, two, managers={}, zone="Asia/Shanghai", interruptions={},
                          now=datetime.now(UTC))
        await outbox.add([(d, t.as_json(), NOW) for d in dispatches], datetime.now(UTC))
        signer = LinkSigner(b"k" * 32, "https://sp.example", timedelta(hours=72))
        deliverer = DeliveryWorker(outbox, IdsComposer(), channels.send, fixed(two), signer,
                                   httpx.AsyncClient(timeout=30), lambda: datetime.now(UTC),
                                   attempts=3, backoff_seconds=0.05)
        stop = asyncio.Event()
        task = asyncio.create_task(deliverer.run(stop))
        deadline = asyncio.get_running_loop().time() + 30
        while not (fast.accepted and slow_calls) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        # Many rounds of the loop pass while the slow send outlasts its backoff.
        rounds = asyncio.get_running_loop().time() + 1.0
        while asyncio.get_running_loop().time() < rounds:
            deliverer.wake.set()
            await asyncio.sleep(0.05)
        release.set()
        while asyncio.get_running_loop().time() < deadline and {
                r["state"] for r in await outbox.rows("acme")} != {"sent"}:
            await asyncio.sleep(0.05)
        stop.set()
        await task
        await deliverer.http.aclose()
        return await outbox.rows("acme")

    rows = asyncio.run(run())
    assert len(fast.accepted) == 1 and len(slow_calls) == 1
    assert [(r["channel"], r["state"], r["attempts"]) for r in
            sorted(rows, key=lambda r: r["channel"])] == [("fast", "sent", 1), ("slow", "sent", 1)]
