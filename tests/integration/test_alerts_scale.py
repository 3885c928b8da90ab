"""Alerters that share the tenants, and an alerter that resumes from its checkpoint, through
the real broker, PostgreSQL and Redis: the same alerts as one alerter that never stopped.

Three tenants' histories are posted interleaved (each tenant to its own alerter of three,
`alerts.tenancy.owner_of`). Every alerter here writes its alerts under its own Redis prefix,
so several read the same log side by side and their alerts can be compared: each
tenant's transitions on its stream, in order, and each alert as last written."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from redis import Redis

from alerts.tenancy import owner_of
from services.broker import free_port
from services.processes import spawn
from services.simulate.feed import post_events
from tests.conftest import Stack, bearer, samples, wait_until
from tests.history import simulated

pytestmark = pytest.mark.integration
TENANTS = ("acme", "stark", "kiel")  # alerters 0, 1 and 2 of three
DAYS = 120
STALL_SECONDS = 2


@dataclass
class World:
    """A stack whose log holds the tenants' histories (its own alerter stopped)."""

    stack: Stack
    keys: dict[str, str]
    events: int  # on the log, every tenant's


@pytest.fixture(scope="module")
def world(module_stack: Stack) -> Iterator[World]:
    assert sorted(owner_of(tenant, 3) for tenant in TENANTS) == [0, 1, 2]
    stack = module_stack
    stack.kill("alerter", signal.SIGTERM)  # ours read the log with their own prefixes
    keys = {tenant: stack.key("admin", tenant=tenant) for tenant in TENANTS}
    histories = {tenant: simulated(seed=11 + n, days=DAYS) for n, tenant in enumerate(TENANTS)}
    step = 500  # interleaved: each tenant's events among the others' on every partition
    for start in range(0, max(map(len, histories.values())), step):
        for tenant, events in histories.items():
            if events[start:start + step]:
                result = post_events(stack.url, events[start:start + step], batch_size=step,
                                     headers=bearer(keys[tenant]))
                assert result.accepted == len(events[start:start + step]), result
    redis = Redis.from_url(stack.env["REDIS_URL"])
    prefix = stack.env["REDIS_PREFIX"]
    wait_until(lambda: all(int(redis.get(f"{prefix}:{t}:applied") or 0) >= len(histories[t])
                           for t in TENANTS), timeout=240, message="every event projected")
    yield World(stack, keys, sum(map(len, histories.values())))
    stack.stop()  # the alerters first: then their keys, which the stack's own sweep misses
    for name in ("one", "three", "steady", "restarted"):
        for key in redis.scan_iter(match=f"{prefix}-{name}:*", count=1000):
            redis.delete(key)


def start_alerter(stack: Stack, name: str, prefix: str, **env: str) -> None:
    """An alerter on the stack's log writing under `prefix` (stopped with the stack)."""
    port = stack.metrics_ports.setdefault(name, free_port())
    stack.processes[name] = spawn(["alerter"], {
        **stack.env, "REDIS_PREFIX": prefix, "ALERTS_TOPIC": f"{prefix}-alerts",
        "METRICS_PORT": str(port), "METRICS_HOST": "127.0.0.1", **env},
        stack.log_dir / f"{name}.log")


def metric(stack: Stack, name: str, family: str) -> float | None:
    """A metric of a running process; None while it does not answer yet."""
    try:
        return samples(f"http://127.0.0.1:{stack.metrics_ports[name]}/metrics", family)
    except httpx.HTTPError:
        return None


def folded(stack: Stack, name: str) -> float:
    return metric(stack, name, "salespulse_alerter_events_folded_total") or 0.0


def caught_up(stack: Stack, *names: str) -> bool:
    return all((metric(stack, n, "salespulse_alerter_caught_up_seconds") or 0) > 0
               for n in names)


def told(stack: Stack, prefix: str, tenant: str) -> tuple[list[str], dict[str, Any]]:
    """A tenant's transition ids on its stream, in order, and its alerts as last written
    (without the wall-clock moment of delivery)."""
    redis = Redis.from_url(stack.env["REDIS_URL"])
    stream = [orjson.loads(fields[b"data"])["id"]
              for _, fields in redis.xrange(f"{prefix}:{tenant}:alerts:stream")]
    alerts = {}
    for alert_id, raw in redis.hgetall(f"{prefix}:{tenant}:alerts").items():
        alert = orjson.loads(raw)
        alert.pop("delivered_at", None)
        alerts[alert_id.decode()] = alert
    return stream, alerts


def test_one_and_three_alerters_side_by_side_tell_the_same_alerts(world: World) -> None:
    stack, base = world.stack, world.stack.env["REDIS_PREFIX"]
    start_alerter(stack, "one", f"{base}-one")
    for index in range(3):
        start_alerter(stack, f"three-{index}", f"{base}-three",
                      ALERTER_INSTANCES="3", ALERTER_INDEX=str(index))
    shares = [f"three-{index}" for index in range(3)]
    wait_until(lambda: folded(stack, "one") >= world.events
               and sum(folded(stack, n) for n in shares) >= world.events
               and caught_up(stack, "one", *shares), timeout=300,
               message="four alerters through the log")
    # Each of the three folded its own tenant's events only, and together all of them.
    assert sum(folded(stack, n) for n in shares) == folded(stack, "one") == world.events
    assert all(0 < folded(stack, n) < world.events for n in shares)
    for tenant in TENANTS:
        stream, alerts = told(stack, f"{base}-one", tenant)
        assert len(alerts) > 20 and len(stream) >= len(alerts), tenant
        assert told(stack, f"{base}-three", tenant) == (stream, alerts), tenant
    for name in ("one", *shares):
        stack.kill(name, signal.SIGTERM)


def stall_now(world: World, tenant: str, deal: str) -> None:
    """A deal created now in a stage whose stall threshold is a couple of seconds."""
    with httpx.Client(base_url=world.stack.url, headers=bearer(world.keys[tenant]),
                      timeout=60) as client:
        assert client.put("/v1/pipeline", json={
            "stages": ["prospecting", "qualification", "proposal", "negotiation", "expedite"],
            "stall_days": {"expedite": STALL_SECONDS / 86400}}).status_code == 202
        assert client.post("/v1/events", json={
            "id": f"e-{tenant}-{deal}", "type": "deal.created",
            "occurred_at": datetime.now(UTC).isoformat(),
            "data": {"deal_id": deal, "owner_id": "R-001", "stage": "expedite",
                     "amount": "100"}}).status_code == 202


def test_a_restarted_alerter_resumes_from_its_checkpoint_with_the_same_alerts(
        world: World) -> None:
    stack, base = world.stack, world.stack.env["REDIS_PREFIX"]
    steady, restarted = f"{base}-steady", f"{base}-restarted"
    often = {"ALERTER_CHECKPOINT_EVENTS": "2000"}
    start_alerter(stack, "steady", steady)
    start_alerter(stack, "restarted", restarted, **often)
    # Killed outright once it has saved a checkpoint, most likely in the middle of the log.
    wait_until(lambda: (metric(stack, "restarted", "salespulse_alerter_checkpoints_total")
                        or 0) >= 1, timeout=120, message="a first checkpoint")
    stack.kill("restarted", signal.SIGKILL)
    start_alerter(stack, "restarted", restarted, **often)
    wait_until(lambda: caught_up(stack, "restarted"), timeout=240, message="caught up again")
    resumed = metric(stack, "restarted", "salespulse_alerter_resumed_position") or 0
    assert resumed > 0  # not from offset zero: fewer events folded than the log holds
    assert folded(stack, "restarted") < world.events

    # Stopped on purpose, it saves where it is: nothing to fold again.
    stack.kill("restarted", signal.SIGTERM)
    start_alerter(stack, "restarted", restarted, **often)
    wait_until(lambda: caught_up(stack, "restarted", "steady"), timeout=240,
               message="both caught up")
    assert (metric(stack, "restarted", "salespulse_alerter_resumed_position") or 0) >= resumed
    assert folded(stack, "restarted") == 0

    # Then live events: each tenant's deal stalls a couple of seconds after it is created.
    for tenant in TENANTS:
        stall_now(world, tenant, f"D-LIVE-{tenant}")

    def live_alerts(prefix: str) -> bool:
        return all(any(a["subject"] == f"D-LIVE-{t}" for a in told(stack, prefix, t)[1].values())
                   for t in TENANTS)

    wait_until(lambda: live_alerts(steady) and live_alerts(restarted), timeout=150,
               message="the live alerts")
    for tenant in TENANTS:
        stream, alerts = told(stack, steady, tenant)
        assert any(a["subject"] == f"D-LIVE-{tenant}" and a["history"] is False
                   for a in alerts.values()), tenant
        assert told(stack, restarted, tenant) == (stream, alerts), tenant
    for name in ("steady", "restarted"):
        stack.kill(name, signal.SIGTERM)
