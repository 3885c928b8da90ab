"""Alert delay, measured on a running stack (api, relay, projector, alerter): from the moment
a condition becomes true to its event on `GET /v1/alerts/stream`, to its webhook, and to a
routed channel through the durable outbox (the owner's signed webhook channel).

Deals are created live, at staggered moments, in a stage whose stall threshold is a couple
of seconds, so each one's `stalled_deal` condition becomes true at a known instant
(`became_true_at` = creation + threshold, event time). The delay is the clock time a client
receives the alert minus that instant: it includes relaying, the alerter's timer and Redis,
and the SSE (or webhook) hop. One machine, one clock. Reported, never asserted.

Then, with `Receivers` (`bench/alert_channels.py`), the tenant's routing sends every alert
to one channel of each kind (WeCom, DingTalk, Feishu, Slack, Teams, the signed webhook,
email) and more deals cross their threshold the same way: the delay to each receiver. At
most CHANNEL_DEALS of them, so one WeCom robot's 20 messages a minute (with the warm-up)
are never reached: past them its limiter holds messages back by design.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import redis

from alerts.notify import Channel
from alerts.planning import idempotency_key
from alerts.routing import Route, Routing
from alerts.routing_codec import dump
from bench.alert_channels import Receivers
from bench.alert_channels import figures as channel_figures
from projections.stats import quantile
from services.alerter.dispatcher import ROUTING_SECONDS
from services.alerter.routing_store import routing_key
from services.alerter.secrets import Sealer
from services.broker import free_port
from services.settings import Settings

STAGE = "bench_stall"
STAGES = ["prospecting", "qualification", "proposal", "negotiation", STAGE]
OWNER, CHANNEL = "R-001", "bench-hook"
CHANNEL_DEALS = 19


class _Arrivals:
    """When each deal's live `opened` alert reached a listener (first arrival only)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.at: dict[str, tuple[datetime, datetime]] = {}  # deal -> (received, became true)
        self.ids: dict[str, str] = {}  # deal -> its opened transition's id
        self.keys: dict[str, datetime] = {}  # Idempotency-Key -> first received (outbox)

    def add(self, received: datetime, body: dict[str, Any]) -> None:
        alert = body.get("alert") or {}
        if (body.get("kind") == "opened" and alert.get("rule") == "stalled_deal"
                and not body.get("history") and str(alert.get("subject", "")).startswith(
                    "BENCH-ALERT-")):
            with self.lock:
                self.at.setdefault(alert["subject"], (
                    received, datetime.fromisoformat(alert["became_true_at"])))
                self.ids.setdefault(alert["subject"], body["id"])

    def add_key(self, received: datetime, key: str) -> None:
        with self.lock:
            self.keys.setdefault(key, received)

    def routed_delays_ms(self, deals: list[str], sse: _Arrivals) -> list[float]:
        """Delays to the routed channel: its messages matched to deals by the idempotency
        key the outbox derives from (transition, recipient, channel), whatever their body."""
        with self.lock, sse.lock:
            out = []
            for deal in deals:
                key = idempotency_key(sse.ids.get(deal, ""), OWNER, CHANNEL)
                if deal in sse.at and key in self.keys:
                    out.append((self.keys[key] - sse.at[deal][1]).total_seconds() * 1000)
            return out

    def opened(self, deal: str) -> tuple[str, datetime] | None:
        """The deal's `opened` transition id and when its condition became true."""
        with self.lock:
            if deal not in self.at or deal not in self.ids:
                return None
            return self.ids[deal], self.at[deal][1]

    def delays_ms(self, deals: list[str]) -> list[float]:
        with self.lock:
            return [(self.at[d][0] - self.at[d][1]).total_seconds() * 1000 for d in deals
                    if d in self.at]


def _receiver(arrivals: _Arrivals) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/routed":
                arrivals.add_key(datetime.now(UTC), self.headers["Idempotency-Key"])
            else:
                arrivals.add(datetime.now(UTC), json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _listen(url: str, headers: dict[str, str], arrivals: _Arrivals,
            ready: threading.Event, stop: threading.Event) -> None:
    """Follow the alert stream until `stop`; a stream that ends is resumed after its last
    event (Last-Event-ID), as a client does, so nothing is missed."""
    def run() -> None:
        last: dict[str, str] = {}
        with httpx.Client(base_url=url, timeout=None, headers=headers) as client:
            while not stop.is_set():
                try:
                    with client.stream("GET", "/v1/alerts/stream", headers=last) as response:
                        ready.set()
                        for line in response.iter_lines():
                            if line.startswith("id:"):
                                last = {"Last-Event-ID": line[3:].strip()}
                            elif line.startswith("data:"):
                                arrivals.add(datetime.now(UTC), json.loads(line[5:]))
                except httpx.HTTPError:
                    pass  # cut by the server (a read timeout of the API's): resumed below
                stop.wait(0.2)

    threading.Thread(target=run, daemon=True).start()


def _create(client: httpx.Client, deal: str) -> None:
    response = client.post("/v1/events", json={
        "id": str(uuid.uuid4()), "type": "deal.created",
        "occurred_at": datetime.now(UTC).isoformat(),
        "data": {"deal_id": deal, "owner_id": "R-001", "stage": STAGE, "amount": "1000.00"}})
    response.raise_for_status()


def _wait(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def route_to_channels(settings: Settings, channels: tuple[Channel, ...]) -> None:
    """The tenant's routing, as the admin API leaves it for the alerter: every alert to its
    owner on each of `channels`, no quiet hours, no cap."""
    routing = Routing(channels=channels,
                      routes=tuple(Route(c.id, ("owner",)) for c in channels))
    client = redis.Redis.from_url(settings.redis_url)
    try:
        client.set(routing_key(settings.redis_prefix, "default"),
                   orjson.dumps(dump(routing, Sealer(settings).seal)))
    finally:
        client.close()


def _staggered(client: httpx.Client, names: list[str], spread_seconds: float,
               seed: int) -> None:
    rng = random.Random(seed)
    started = time.monotonic()
    for i, name in enumerate(names):
        # evenly spread, jittered so crossings fall at every phase of the timer loop
        offset = (i + rng.random()) * spread_seconds / len(names)
        time.sleep(max(started + offset - time.monotonic(), 0))
        _create(client, name)


def _through_channels(client: httpx.Client, sse: _Arrivals, settings: Settings,
                      hook: Channel, receivers: Receivers, deals: int, stall_seconds: float,
                      spread_seconds: float, seed: int) -> dict[str, float]:
    """Every alert to one channel of each kind too, then `deals` more deals crossing live;
    `hook` stays routed, so a late delivery of the outbox figure is still made."""
    route_to_channels(settings, (hook, *receivers.channels()))
    time.sleep(ROUTING_SECONDS)  # the alerter's copy of the former routing has expired
    warmup = ["BENCH-ALERT-CH-warmup"]
    _create(client, warmup[0])
    if not _wait(lambda: receivers.all_delivered(warmup, sse.opened, OWNER), 120):
        raise RuntimeError(f"the warm-up alert did not reach every channel: "
                           f"{receivers.delays_ms(warmup, sse.opened, OWNER)}")
    names = [f"BENCH-ALERT-CH-{i:03d}" for i in range(deals)]
    _staggered(client, names, spread_seconds, seed)
    _wait(lambda: receivers.all_delivered(names, sse.opened, OWNER), stall_seconds + 60)
    return {**channel_figures(receivers.delays_ms(names, sse.opened, OWNER)),
            "alert_channel_deals": deals}


def measure(url: str, headers: dict[str, str], deals: int = 40, stall_seconds: float = 2.0,
            spread_seconds: float = 20.0, seed: int = 7, settings: Settings | None = None,
            receivers: Receivers | None = None) -> dict[str, float]:
    """Delay figures (ms) for `deals` deals whose thresholds pass over `spread_seconds`;
    with the stack's `settings`, through the outbox to a routed channel too, and with
    `receivers` (the alerter's SMTP server among them) to one channel of each kind."""
    sse, hook = _Arrivals(), _Arrivals()
    server = _receiver(hook)
    ready, done = threading.Event(), threading.Event()
    _listen(url, headers, sse, ready, done)
    figures: dict[str, float] = {}
    channels: dict[str, float] = {}
    names = [f"BENCH-ALERT-{i:03d}" for i in range(deals)]
    try:
        with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
            client.put("/v1/webhooks", json=[{
                "url": f"http://127.0.0.1:{server.server_address[1]}/hook",
                "secret": uuid.uuid4().hex}]).raise_for_status()
            hook_channel = Channel(CHANNEL, "webhook",
                                   f"http://127.0.0.1:{server.server_address[1]}/routed",
                                   uuid.uuid4().hex)
            if settings is not None:
                route_to_channels(settings, (hook_channel,))
            client.put("/v1/pipeline", json={
                "stages": STAGES, "stall_days": {STAGE: stall_seconds / 86400}}
            ).raise_for_status()
            if not ready.wait(30):
                raise RuntimeError("the alert stream did not open")
            # The alerter is live (caught up with the history) once a warm-up alert arrives.
            _create(client, "BENCH-ALERT-warmup")
            if not _wait(lambda: "BENCH-ALERT-warmup" in sse.at, 300):
                raise RuntimeError("the alerter did not catch up within 300 s")
            _staggered(client, names, spread_seconds, seed)
            _wait(lambda: len(sse.delays_ms(names)) == deals
                  and len(hook.delays_ms(names)) == deals
                  and (settings is None or len(hook.routed_delays_ms(names, sse)) == deals),
                  stall_seconds + 60)
            if settings is not None and receivers is not None:
                channels = _through_channels(
                    client, sse, settings, hook_channel, receivers, min(deals, CHANNEL_DEALS),
                    stall_seconds, spread_seconds, seed)
    finally:
        done.set()
        server.shutdown()
    for name, arrivals in (("sse", sse), ("webhook", hook)):
        delays = arrivals.delays_ms(names)
        figures[f"alert_{name}_received"] = len(delays)
        if delays:
            figures[f"alert_{name}_delay_p50_ms"] = quantile(delays, 0.5) or 0
            figures[f"alert_{name}_delay_p99_ms"] = quantile(delays, 0.99) or 0
            figures[f"alert_{name}_delay_max_ms"] = max(delays)
    if settings is not None:
        routed = hook.routed_delays_ms(names, sse)
        figures["alert_outbox_received"] = len(routed)
        if routed:
            figures["alert_outbox_delay_p50_ms"] = quantile(routed, 0.5) or 0
            figures["alert_outbox_delay_p99_ms"] = quantile(routed, 0.99) or 0
            figures["alert_outbox_delay_max_ms"] = max(routed)
    figures["alert_deals"] = deals
    return {**figures, **channels}

