"""The alerter's start and its scale-out, measured with real `salespulse alerter` processes
on a Tansu topic holding simulated years of several tenants (the relay's messages, signed).

- restart to live: from spawning an alerter to its first catching up with the log
  (`salespulse_alerter_caught_up_seconds`, and the wall time from the spawn, which adds
  the interpreter's start), replaying from offset zero (no checkpoint) and resuming from
  the checkpoint an earlier alerter saved at SIGTERM; with the checkpoint's size and the
  time its save took;
- scale-out: the same log through one alerter, then through K alerters sharing the tenants
  side by side (`ALERTER_INSTANCES`): events per second (every event of the log over the
  wall time until the last of them caught up), and the ratio.

The tenants are named so each of the K alerters owns as many (a hash shares few tenants
unevenly). Each of the K still reads every message (its place in the relay's order: a
partial decode of position, predecessor and tenant) and folds a K-th of them, so K alerters
cannot go K times as fast, and on a machine with fewer cores than alerters they share the
cores; on a machine shared with other work, K processes also get a larger share of it than
one, which flatters the ratio. Reports, never asserts.

    salespulse-bench alerter --days 365 --tenants 3 --instances 3
    python -m bench.alerter --days 365 --tenants 3 --instances 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path
from typing import Annotated

import httpx
import orjson
import typer
from redis import Redis

from alerts.checkpoint import restore, state_of
from alerts.engine import AlertEngine
from alerts.tenancy import owner_of
from services.alerter.store import rule_settings
from services.broker import TansuBroker, free_port
from services.processes import spawn
from services.settings import Settings
from services.signing import Signer
from services.simulate.relayed import keyed_messages, produce

SIGNING_KEY = uuid.uuid4().hex
TOPIC = "bench-alerter"


def _say(line: str) -> None:
    print(line, flush=True)  # noqa: T201 - a benchmark reports on stdout


def balanced_tenants(count: int, instances: int) -> list[str]:
    """`count` tenant names, each of `instances` alerters owning as many (± 1)."""
    chosen: list[str] = []
    per = [0] * instances
    n = 0
    while len(chosen) < count:
        name, n = f"tenant-{n}", n + 1
        owner = owner_of(name, instances)
        if per[owner] <= min(per):
            chosen.append(name)
            per[owner] += 1
    return chosen


def interleaved(days: int, seed: int, tenants: list[str]) -> list[tuple[bytes, bytes]]:
    """The tenants' copies of one history, one event of each in turn (so the log is in
    business time), numbered as one relay numbers them."""
    copies = [keyed_messages(seed, days, tenant=tenant) for tenant in tenants]
    out = []
    for position, (key, value) in enumerate(
            (m for row in zip(*copies, strict=True) for m in row), 1):
        body = orjson.loads(value)
        body["position"], body["previous"] = position, position - 1
        out.append((key, orjson.dumps(body)))
    return out


class Alerter:
    """One `salespulse alerter` process and its metrics."""

    def __init__(self, env: dict[str, str], logs: Path, name: str, **extra: str) -> None:
        self.port = free_port()
        self.started = time.perf_counter()
        self.process: subprocess.Popen[bytes] = spawn(["alerter"], {
            **env, "METRICS_PORT": str(self.port), "METRICS_HOST": "127.0.0.1", **extra},
            logs / f"{name}.log")

    def metric(self, family: str) -> float | None:
        try:
            text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        except httpx.HTTPError:
            return None
        for line in text.splitlines():
            if line.startswith(family + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def wait_caught_up(self, timeout: float = 1800) -> tuple[float, float]:
        """(its own seconds to catching up, wall seconds since the spawn)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the alerter exited with {self.process.returncode}")
            seconds = self.metric("salespulse_alerter_caught_up_seconds")
            if seconds:
                return seconds, time.perf_counter() - self.started
            time.sleep(0.05)
        raise TimeoutError("the alerter did not catch up")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(60)


def _forget(redis_url: str, prefix: str) -> None:
    client = Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)


def restart_to_live(env: dict[str, str], logs: Path, prefix: str, events: int) -> None:
    env = {**env, "REDIS_PREFIX": prefix}
    cold = Alerter(env, logs, "cold", ALERTER_CHECKPOINT="false")
    own, wall = cold.wait_caught_up()
    cold.stop()
    _say(f"restart to live, from offset zero     {wall:7.2f} s from spawn  ({own:.2f} s in "
         f"the process; {events / own:,.0f} events/s)")
    first = Alerter(env, logs, "first")
    first.wait_caught_up()
    first.stop()  # saves its checkpoint at SIGTERM
    warm = Alerter(env, logs, "warm")
    own, wall = warm.wait_caught_up()
    resumed = warm.metric("salespulse_alerter_resumed_position")
    warm.stop()
    _say(f"restart to live, from the checkpoint  {wall:7.2f} s from spawn  ({own:.2f} s in "
         f"the process; resumed at position {resumed or 0:,.0f})")
    size, load, save = _time_checkpoint(env["REDIS_URL"], prefix)
    _say(f"checkpoint: {size / 1e6:.1f} MB compressed; load (GET, inflate, decode, restore) "
         f"{load:.2f} s, save (state, encode, deflate, SET) {save:.2f} s, in this process")


def _time_checkpoint(redis_url: str, prefix: str) -> tuple[int, float, float]:
    """The saved checkpoint's size, and one load and one save of it, timed."""
    client = Redis.from_url(redis_url)
    key = f"{prefix}:alerter:checkpoint:0of1"
    started = time.perf_counter()
    raw = client.get(key)
    assert isinstance(raw, bytes), "no checkpoint saved"
    body = orjson.loads(zlib.decompress(raw))
    engine = AlertEngine(rule_settings(Settings()))
    restore(engine, body["engine"])
    loaded = time.perf_counter()
    body["engine"] = state_of(engine)
    client.set(key, zlib.compress(orjson.dumps(body), 1))
    return len(raw), loaded - started, time.perf_counter() - loaded


def scale_out(env: dict[str, str], logs: Path, prefix: str, events: int,
              instances: int) -> None:
    rates = {}
    for k in (1, instances):
        env_k = {**env, "REDIS_PREFIX": f"{prefix}-{k}", "ALERTER_CHECKPOINT": "false"}
        started = time.perf_counter()
        alerters = [Alerter(env_k, logs, f"scale-{k}-{i}", ALERTER_INSTANCES=str(k),
                            ALERTER_INDEX=str(i)) for i in range(k)]
        own = [a.wait_caught_up()[0] for a in alerters]
        wall = time.perf_counter() - started
        folded = [a.metric("salespulse_alerter_events_folded_total") or 0 for a in alerters]
        for alerter in alerters:
            alerter.stop()
        rates[k] = events / max(own)
        _say(f"{k} alerter(s): {events / wall:>9,.0f} events/s from spawn, "
             f"{rates[k]:>9,.0f} events/s in the processes (slowest {max(own):.2f} s); "
             f"events folded each: {', '.join(f'{f:,.0f}' for f in folded)}")
    _say(f"{instances} alerters / 1 alerter, events/s in the processes: "
         f"{rates[instances] / rates[1]:.2f} (cores: {os.cpu_count()}, load average "
         f"{os.getloadavg()[0]:.2f})")


async def _produce(bootstrap: str, keyed: list[tuple[bytes, bytes]], partitions: int) -> None:
    await produce(bootstrap, TOPIC, keyed, partitions, Signer(SIGNING_KEY))


def main(args: argparse.Namespace) -> None:
    tenants = balanced_tenants(args.tenants, args.instances)
    keyed = interleaved(args.days, args.seed, tenants)
    _say(f"{len(keyed):,} events: {args.days} simulated days x {len(tenants)} tenants "
         f"({', '.join(tenants)}), {args.partitions} partitions")
    prefix = f"bench-alerter-{uuid.uuid4().hex[:8]}"
    with TansuBroker() as broker, tempfile.TemporaryDirectory(prefix="bench-alerter-") as logs:
        asyncio.run(_produce(broker.bootstrap_servers, keyed, args.partitions))
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
               "REDIS_URL": args.redis_url, "EVENTS_TOPIC": TOPIC,
               "ALERTS_TOPIC": f"{TOPIC}-alerts", "DEAD_LETTER_TOPIC": f"{TOPIC}-dlq",
               "KAFKA_PARTITIONS": str(args.partitions), "EVENTS_SIGNING_KEY": SIGNING_KEY}
        try:
            restart_to_live(env, Path(logs), prefix, len(keyed))
            scale_out(env, Path(logs), prefix, len(keyed), args.instances)
        finally:
            for name in (prefix, f"{prefix}-1", f"{prefix}-{args.instances}"):
                _forget(args.redis_url, name)


def command(
    days: Annotated[int, typer.Option(help="Simulated days of each tenant's history")] = 365,
    tenants: Annotated[int, typer.Option(min=1, help="Tenants (copies of the history)")] = 3,
    instances: Annotated[int, typer.Option(min=2, help="K: alerters sharing the tenants")] = 3,
    partitions: Annotated[int, typer.Option(min=1, help="Partitions of the events topic")] = 4,
    seed: Annotated[int, typer.Option(help="The simulation's seed")] = 11,
) -> None:
    """Measure the alerter's start and scale-out (reports only, never asserts)."""
    main(argparse.Namespace(days=days, tenants=tenants, instances=instances,
                            partitions=partitions, seed=seed,
                            redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL",
                                                              "redis://127.0.0.1:6379/0"))
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args(sys.argv[1:]))
