"""Freshness, idle and under a steady load: from the 202 of a POST to the change in the funnel.

A probe posts one new deal owned by a rep nothing else uses (`PROBE_REP`) and polls
`GET /v1/funnel?rep=PROBE_REP` until its first stage counts one more open deal, so
deals of a load running at the same time never look like the probe's.

Under load, a background thread posts simulated events of the same tenant (the world
continued by `services.simulate.world.live`, its own `L` ids) in small batches on a
fixed schedule, one every `TICK_S`, never skipping a batch when behind: the rate it
actually achieves is reported, as is the lag (events accepted but not yet applied to
the read models) and how long the read models take to catch up once the load stops.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

import httpx

from projections.stats import quantile
from services.simulate.feed import BATCH_PATH
from services.simulate.world import live

PROBE_REP = "R-BENCH-PROBE"
TICK_S = 0.05  # one batch every 50 ms: 50 events a batch at 1,000 events/s
PROBE_TIMEOUT_S = 60.0
PROBE_GAP_S = 0.1  # between probes under load, so the load is not mostly probes
DRAIN_TIMEOUT_S = 300.0
# The live world yields about 5 events per lead; a day at this rate is ~2,500 events.
LEADS_PER_DAY = 500


def probe_rep() -> dict[str, Any]:
    """The event that makes `PROBE_REP` a rep of the tenant (posted once, before probing)."""
    return {"id": str(uuid.uuid4()), "type": "rep.joined",
            "occurred_at": datetime.now(UTC).isoformat(),
            "data": {"rep_id": PROBE_REP, "name": "freshness probe", "team_id": "T-BENCH-PROBE"}}


def _open_deals(client: httpx.Client) -> int | None:
    answer = client.get("/v1/funnel", params={"rep": PROBE_REP})
    if answer.status_code != 200:
        return None  # e.g. 503 while the projector builds its read models
    return int(answer.json()["stages"][0]["open_deals"])


def probe(client: httpx.Client) -> float | None:
    """Milliseconds from the 202 of one new deal to its appearance in the funnel; None if
    it did not appear within PROBE_TIMEOUT_S."""
    before = _open_deals(client)
    assert before is not None, "the funnel does not answer"
    event = {"id": str(uuid.uuid4()), "type": "deal.created",
             "occurred_at": datetime.now(UTC).isoformat(),
             "data": {"deal_id": f"BENCH-{uuid.uuid4().hex}", "owner_id": PROBE_REP,
                      "amount": "1000.00"}}
    assert client.post("/v1/events", json=event).status_code == 202
    accepted = time.perf_counter()
    deadline = accepted + PROBE_TIMEOUT_S
    while time.perf_counter() < deadline:
        if (_open_deals(client) or 0) > before:
            return (time.perf_counter() - accepted) * 1000
        time.sleep(0.005)
    return None


class LoadWorld:
    """Events for the paced loads: one live world, continued from phase to phase."""

    def __init__(self, seed: int, events: int) -> None:
        days = math.ceil(events / (2 * LEADS_PER_DAY)) + 1  # ~2.5k a day: a margin
        # Started in the past so that every event has happened by the time it is posted.
        self.stream = (event for _, event in live(
            seed, datetime.now(UTC) - timedelta(days=days), speed=1, horizon_days=days,
            leads_per_day=LEADS_PER_DAY))
        self.unsent: list[dict[str, Any]] = []

    def take(self, count: int) -> list[dict[str, Any]]:
        events = self.unsent[:count]
        self.unsent = self.unsent[count:]
        events += islice(self.stream, count - len(events))
        if len(events) < count:
            raise RuntimeError(f"the load world ran out: {len(events)} of {count} events")
        return events

    def put_back(self, events: list[dict[str, Any]]) -> None:
        """Events taken but not posted: the next load posts them first (later events of the
        world name the leads and deals they create)."""
        self.unsent = events + self.unsent


class _Pacer(threading.Thread):
    """Posts `events` at `rate` a second, a batch every TICK_S, until `seconds` are up."""

    def __init__(self, url: str, headers: dict[str, str], events: list[dict[str, Any]],
                 rate: float, seconds: float) -> None:
        super().__init__(daemon=True)
        self.url, self.headers, self.events = url, headers, events
        self.rate, self.seconds = rate, seconds
        self.accepted = self.sent = 0
        self.elapsed = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, headers=self.headers, timeout=60) as http:
                started = time.perf_counter()
                end = started + self.seconds
                tick = 0
                while (due := started + tick * TICK_S) < end:
                    if (wait := due - time.perf_counter()) > 0:
                        time.sleep(wait)
                    if time.perf_counter() >= end:
                        break
                    upto = min(round(self.rate * TICK_S * (tick + 1)), len(self.events))
                    batch = self.events[self.sent:upto]
                    tick += 1
                    if not batch:
                        continue
                    answer = http.post(BATCH_PATH, json=batch)
                    if not answer.is_success:
                        raise RuntimeError(f"batch refused: {answer.status_code} {answer.text}")
                    self.sent = upto
                    self.accepted += sum(r.get("status") == "accepted"
                                         for r in answer.json()["results"])
                # A load that fell behind its schedule ran longer than planned.
                self.elapsed = max(time.perf_counter(), end) - started
        except BaseException as exc:  # noqa: BLE001 - re-raised by the bench's thread
            self.error = exc


def paced(client: httpx.Client, url: str, headers: dict[str, str], world: LoadWorld,
          rate: float, seconds: float, applied: Callable[[], int],
          label: str) -> dict[str, float]:
    """Probes while `world`'s events are posted at `rate` for `seconds`; figures named
    `freshness_{label}_…`.

    `applied()` counts the events the read models hold for the tenant: the lag is what was
    accepted (load and probes) and is not applied yet.
    """
    events = world.take(math.ceil(rate * seconds))
    before = applied()
    pacer = _Pacer(url, headers, events, rate, seconds)
    latencies: list[float] = []
    unseen = probes = 0
    lags: list[int] = []
    pacer.start()
    while pacer.is_alive():
        latency = probe(client)
        probes += 1
        if latency is None:
            unseen += 1
        else:
            latencies.append(latency)
        lags.append(pacer.accepted + probes - (applied() - before))
        time.sleep(PROBE_GAP_S)
    pacer.join()
    if pacer.error:
        raise pacer.error
    world.put_back(events[pacer.sent:])
    wanted = pacer.accepted + probes
    lag_end = wanted - (applied() - before)
    stopped = time.perf_counter()
    while applied() - before < wanted and time.perf_counter() - stopped < DRAIN_TIMEOUT_S:
        time.sleep(0.01)
    drain = time.perf_counter() - stopped
    left = wanted - (applied() - before)
    achieved = pacer.accepted / pacer.elapsed if pacer.elapsed else 0.0
    # Kept up: the load went out at (nearly) its rate and less than a second of it was
    # still waiting to be applied when it stopped.
    kept_up = achieved >= 0.95 * rate and lag_end <= rate
    name = f"freshness_{label}"
    return {f"{name}_target_events_per_s": rate, f"{name}_achieved_events_per_s": achieved,
            **_percentiles(latencies, name),
            f"{name}_probes": float(probes), f"{name}_probes_unseen": float(unseen),
            f"{name}_lag_max_events": float(max([*lags, lag_end])),
            f"{name}_lag_end_events": float(lag_end), f"{name}_drain_s": drain,
            f"{name}_left_after_drain_events": float(left),
            f"{name}_kept_up": 1.0 if kept_up else 0.0}


def idle(client: httpx.Client, probes: int, progress: Callable[[Any], Iterable[Any]]
         ) -> dict[str, float]:
    """`probes` probes one after the other, nothing else posting."""
    latencies = [probe(client) for _ in progress(range(probes))]
    seen = [latency for latency in latencies if latency is not None]
    return {**_percentiles(seen, "freshness"),
            "freshness_probes_unseen": float(len(latencies) - len(seen))}


def _percentiles(latencies: list[float], name: str) -> dict[str, float]:
    # No probe seen: no latency to report (NaN), not a made-up one; `…_unseen` says why.
    def at(q: float) -> float:
        value = quantile(latencies, q)
        return math.nan if value is None else value

    return {f"{name}_p50_ms": at(0.5), f"{name}_p99_ms": at(0.99),
            f"{name}_max_ms": max(latencies, default=math.nan)}
