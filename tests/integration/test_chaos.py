"""Faults while history streams in: the relay, the projector and the alerter are killed
(SIGKILL) at seeded points of a simulated history being posted, several times each, and
started again. Afterwards nothing is lost, and nothing counts twice: the topic holds every
accepted event (a batch the relay sent again after a kill repeats the same messages, which
consumers skip), the live projections answer like a rebuild from offset zero and like the
independent oracle, and the alerts are those a fresh alerter finds in the finished log.
`CHAOS_SEED` picks the history and the kill points (`make chaos`)."""

from __future__ import annotations

import inspect
import itertools
import os
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis import Redis

from services.processes import spawn
from services.relay import Relay
from tests import oracle
from tests.conftest import Stack, _forget_redis, _projected, wait_until
from tests.history import simulated
from tests.integration.test_event_path import STAGES, comparable
from tests.integration.test_rebuild import answers_like_a_rebuild
from tests.topics import read_all

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("CHAOS_SEED", "7"))
DAYS = 150
BATCH = 100  # events per POST: the kill points fall between batches
FEED_PAUSE = 0.15  # seconds between batches: the feed's pace, so faults hit a moving stream
VICTIMS = ("relay", "projector", "alerter")
KILLS_EACH = 3
MAX_DOWN = 4  # batches a killed process stays down at most
RELAY_BATCH = inspect.signature(Relay).parameters["batch_size"].default  # stored events a read


@dataclass(frozen=True)
class Fault:
    process: str
    kill_at: int  # index of the batch after whose POST the process is killed
    delay: float  # seconds after that POST: the relay and projector are mid-work or idle
    start_at: int  # index of the batch after which it is started again (>= kill_at)


def plan(rng: random.Random, batches: int) -> list[Fault]:
    """KILLS_EACH kills per process at seeded moments of the feed, each down for
    0..MAX_DOWN batches and up again before its next kill."""
    faults = []
    for process in VICTIMS:
        points = sorted(rng.sample(range(1, batches - 1), KILLS_EACH))
        for kill_at, following in zip(points, [*points[1:], batches], strict=True):
            faults.append(Fault(process, kill_at, rng.uniform(0, FEED_PAUSE),
                                min(kill_at + rng.randint(0, MAX_DOWN), following - 1)))
    return faults


def topic_messages(stack: Stack) -> list[dict[str, Any]]:
    """Every message on the events topic, read from offset zero to the high watermark."""
    return [orjson.loads(value) for value in read_all(stack.env["KAFKA_BOOTSTRAP_SERVERS"],
                                                      stack.env["EVENTS_TOPIC"])]


def assert_every_event_and_chained(messages: list[dict[str, Any]],
                                   events: list[dict[str, Any]], relay_kills: int) -> None:
    """Every event on the topic, each message naming the one the relay published before it
    (what the alerter merges partitions by). A relay killed between Kafka's acknowledgement
    and recording its position sends that batch again when it starts (services/relay.py:
    at least once, consumers idempotent): a repeat is the same message, and each kill
    repeats at most one batch."""
    copies: dict[str, list[dict[str, Any]]] = {}
    for m in messages:
        copies.setdefault(m["event"]["id"], []).append(m)
    repeated = [same for same in copies.values() if len(same) > 1]
    assert all(m == same[0] for same in repeated for m in same), "a repeat that differs"
    assert len(repeated) <= relay_kills * RELAY_BATCH, f"{len(repeated)} events repeated"
    assert set(copies) == {e["id"] for e in events}
    assert len(copies) == len(events)
    chain = sorted((same[0]["position"], same[0]["previous"]) for same in copies.values())
    assert chain[0][1] == 0
    assert all(later[1] == earlier[0] for earlier, later in itertools.pairwise(chain))


def held_alerts(stack: Stack, prefix: str) -> dict[str, dict[str, Any]]:
    """The alerts an alerter writing under `prefix` holds, without its delivery stamp."""
    stored = Redis.from_url(stack.env["REDIS_URL"]).hgetall(f"{prefix}:default:alerts")
    alerts = {k.decode(): orjson.loads(v) for k, v in stored.items()}
    for alert in alerts.values():
        alert.pop("delivered_at", None)
    return alerts


def differences(held: dict[str, dict[str, Any]], expected: dict[str, dict[str, Any]]
                ) -> dict[str, Any]:
    """What tells two sets of alerts apart ({} when equal): ids on one side only, and the
    fields that differ for ids on both."""
    changed = {i: {k: (held[i].get(k), v) for k, v in expected[i].items() if held[i].get(k) != v}
               for i in held.keys() & expected.keys() if held[i] != expected[i]}
    extra = [(held[i]["rule"], held[i]["subject"], held[i]["became_true_at"], held[i]["state"])
             for i in held.keys() - expected.keys()]
    missing = [(expected[i]["rule"], expected[i]["subject"], expected[i]["became_true_at"],
                expected[i]["state"]) for i in expected.keys() - held.keys()]
    return {k: v for k, v in
            {"only held": extra, "only fresh": missing, "changed": changed}.items() if v}


def alerts_like_a_fresh_alerter(stack: Stack, directory: Path) -> int:
    """Start a fresh alerter (own Redis prefix and alerts topic) on the finished log and
    wait until the stack's alerter holds exactly its alerts on three polls in a row (both
    may still be catching up); the differences if they never agree. Returns the count."""
    prefix = f"{stack.env['REDIS_PREFIX']}-fresh"
    env = {**stack.env, "REDIS_PREFIX": prefix,
           "ALERTS_TOPIC": f"{stack.env['ALERTS_TOPIC']}-fresh"}
    alerter = spawn(["alerter"], env, directory / "fresh-alerter.log")
    agreed: list[bool] = []
    last: dict[str, Any] = {}
    try:
        def agree() -> bool:
            fresh = held_alerts(stack, prefix)
            last.update(count=len(fresh),
                        differences=differences(held_alerts(stack, stack.env["REDIS_PREFIX"]),
                                                fresh))
            agreed.append(bool(fresh) and not last["differences"])
            return agreed[-3:] == [True] * 3

        try:
            wait_until(agree, timeout=120, interval=1, message="the fresh alerter's alerts")
        except AssertionError:
            raise AssertionError(last["differences"]) from None
        return int(last["count"])
    finally:
        alerter.kill()
        alerter.wait(15)
        _forget_redis(stack.env["REDIS_URL"], prefix)


def test_killed_relay_projector_and_alerter_lose_and_double_nothing(
        stack: Stack, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    events = simulated(seed=SEED, days=DAYS)
    batches = [events[i:i + BATCH] for i in range(0, len(events), BATCH)]
    faults = plan(rng, len(batches))
    started = time.monotonic()

    accepted = 0
    with stack.client() as client:
        for index, batch in enumerate(batches):
            answer = client.post("/v1/events/batch", json=batch)
            assert answer.status_code == 202, answer.text
            accepted += [r["status"] for r in answer.json()["results"]].count("accepted")
            posted = time.monotonic()
            for fault in sorted((f for f in faults if f.kill_at == index),
                                key=lambda f: f.delay):
                time.sleep(max(posted + fault.delay - time.monotonic(), 0))  # the feed's pace
                stack.kill(fault.process)  # SIGKILL
            for fault in faults:
                if fault.start_at == index:
                    stack.start(fault.process)
            time.sleep(max(posted + FEED_PAUSE - time.monotonic(), 0))
    assert accepted == len(events)
    wait_until(lambda: _projected(stack, accepted), timeout=120,
               message="every accepted event in the read models")
    streamed = time.monotonic() - started

    messages = topic_messages(stack)
    kills = Counter(f.process for f in faults)
    assert_every_event_and_chained(messages, events, kills["relay"])

    with stack.client() as client:
        funnel = client.get("/v1/funnel").json()
    assert comparable(funnel) == comparable(oracle.funnel(events, stages=STAGES, filters={}))
    compared = answers_like_a_rebuild(stack, accepted, tmp_path)

    alerts = alerts_like_a_fresh_alerter(stack, tmp_path)

    print(f"chaos seed {SEED}: {accepted} events in {len(batches)} batches, kills "
          f"{dict(kills)}, {len(messages)} on the topic, {compared} answers equal to a rebuild, "
          f"{alerts} alerts equal to a fresh alerter's; streamed and projected in "
          f"{streamed:.1f} s")
