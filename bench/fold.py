"""Micro-benchmark of the projection fold, without a broker: relayed messages in memory.

A simulated history is turned into the messages the relay publishes (same body as
`services.relay.message`), then timed three ways, each `--runs` times:

- ceiling: `orjson.loads` of every message, nothing else (what the raw consumer pays);
- decode: `services.messages.decode_all` of every message (contract check included), in
  batches of `--batch` as the projector decodes them; "signed": the relay's signature
  verified instead of the contract check (`services.signing`);
- decode+apply: decode, then `FactStore.apply` in batches of `--batch`, into a throwaway
  Redis prefix cleared before each run; unsigned and signed.

With `--broker`, the messages are also produced to a topic of a spawned Tansu broker and
two more figures are taken: the raw consumer (`getmany` + `orjson.loads`, the bench's
projection ceiling) and `services.rebuild.rebuild` of that topic (without the key, so
checking every message, and with it; the signed one also on the projector's clock, from
its first batch on). With `--projector` as
well, a real `salespulse projector` process is timed on that topic too (its steady rate,
`bench.projector`), and with `--code DIR` also one run from that checkout (a
before), interleaved with the others.

Prints the median and the spread (min–max) of events/s of each, with the 1-minute load
average at the start and end of the run. Reports, never asserts.

    python -m bench.fold --days 365 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from redis.asyncio import Redis

from bench import projector as bench_projector
from bench.ceilings import _read_all, copy_tenant
from projections.facts import Change
from services.broker import TansuBroker
from services.messages import decode_all, gc_paused
from services.readmodels.store import FactStore
from services.rebuild import rebuild
from services.settings import Settings
from services.signing import Signer
from services.simulate.relayed import Relayed, keyed_messages, produce

# The relay's signature on every message, as a deployment with EVENTS_SIGNING_KEY has it;
# the unsigned figures are those of one without.
SIGNING_KEY = uuid.uuid4().hex
SIGNER = Signer(SIGNING_KEY)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def ceiling(raws: list[bytes]) -> None:
    for raw in raws:
        orjson.loads(raw)


def decode_batch(messages: list[Relayed], signer: Signer | None) -> list[Change]:
    """As the projector and the rebuild decode a batch."""
    changes, poisoned = decode_all(messages, signer)
    if poisoned:
        raise RuntimeError(f"a simulated event was refused: {poisoned[0][1]}")
    return changes


def decode_every(messages: list[Relayed], batch: int, signer: Signer | None) -> None:
    for start in range(0, len(messages), batch):
        decode_batch(messages[start:start + batch], signer)


async def decode_and_apply(messages: list[Relayed], store: FactStore, batch: int,
                           signer: Signer | None) -> None:
    for start in range(0, len(messages), batch):
        with gc_paused():  # as the projector and the rebuild fold a batch
            changes = decode_batch(messages[start:start + batch], signer)
            result = await store.apply(changes)
        if result.rejected:
            raise RuntimeError(f"the reducer refused a simulated event: {result.rejected[0][1]}")


# (wall seconds, this process's CPU seconds): on a shared machine the CPU time per event
# moves less with other work than the wall-clock rate does (Redis's own time is not in it).
Timing = tuple[float, float]


def _timed(run: Callable[[], Any]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


async def _timed_async(run: Callable[[], Any]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    await run()
    return time.perf_counter() - wall, time.process_time() - cpu


def _summary(name: str, events: int, timings: list[Timing]) -> str:
    rates = sorted(events / wall for wall, _ in timings)
    cpu = sorted(seconds / events * 1e6 for _, seconds in timings if seconds == seconds)
    used = (f"CPU {statistics.median(cpu):6.2f} µs/ev ({cpu[0]:.2f} – {cpu[-1]:.2f})" if cpu
            else "CPU in another process")
    return (f"{name:<14} median {statistics.median(rates):>10,.0f} ev/s   "
            f"spread {rates[0]:>9,.0f} – {rates[-1]:>9,.0f}   {used}   ({len(rates)} runs)")


def tenants(copies: int) -> list[str]:
    """The tenants of `--tenants` copies of the history, named as `salespulse-bench pipeline` names
    its copies of a run's tenant."""
    return ["default", *(copy_tenant("default", k) for k in range(1, copies))]


async def _projector(args: argparse.Namespace, bootstrap: str, topic: str, events: int,
                     code: Path | None) -> Timing:
    """A `salespulse projector` process on the topic, with the key the messages were signed
    with: the time its steady pace would take for every event (its CPU is another
    process's: NaN)."""
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "REDIS_URL": args.redis_url,
           "KAFKA_PARTITIONS": str(args.partitions), "EVENTS_SIGNING_KEY": SIGNING_KEY}
    with tempfile.TemporaryDirectory(prefix="bench-fold-") as logs:
        projected = await bench_projector.measure_async(
            Settings(redis_url=args.redis_url), env, topic,
            dict.fromkeys(tenants(args.tenants), events // args.tenants), Path(logs),
            code=code)
    later = projected.events - projected.first_seen
    seconds = projected.steady_s * events / later if later else projected.from_start_s
    return seconds, float("nan")


async def _on_broker(args: argparse.Namespace, keyed: list[tuple[bytes, bytes]],
                     store: FactStore) -> dict[str, list[Timing]]:
    topic = "bench-fold"
    times: dict[str, list[Timing]] = {"raw consumer": [], "rebuild": [], "rebuild signed": [],
                                      "rebuild signed, steady": []}
    if args.projector:
        times["projector"] = []
        if args.code:
            times[f"projector@{args.code.name}"] = []
    with TansuBroker() as broker:
        await produce(broker.bootstrap_servers, topic, keyed, args.partitions, SIGNER)
        for _ in range(args.runs):
            if args.projector:
                times["projector"].append(await _projector(
                    args, broker.bootstrap_servers, topic, len(keyed), None))
                if args.code:
                    times[f"projector@{args.code.name}"].append(await _projector(
                        args, broker.bootstrap_servers, topic, len(keyed), args.code))
            cpu = time.process_time()
            _, rate = await _read_all(broker.bootstrap_servers, topic, keep=False)
            if rate.count != len(keyed):
                raise RuntimeError(f"the raw consumer read {rate.count} of {len(keyed)}")
            # Its own clock starts after the consumer is assigned; CPU covers the whole call.
            times["raw consumer"].append((rate.seconds, time.process_time() - cpu))
            for name, signer in (("rebuild", None), ("rebuild signed", SIGNER)):
                cpu = time.process_time()
                rebuilt = await rebuild(broker.bootstrap_servers, topic, store, signer=signer)
                if rebuilt.messages != len(keyed) or rebuilt.unusable:
                    raise RuntimeError(f"the rebuild read {rebuilt.messages} of {len(keyed)} "
                                       f"({rebuilt.unusable} unusable)")
                times[name].append((rebuilt.seconds, time.process_time() - cpu))
            # On the projector's clock: the time its steady pace would take for every event
            # (the whole call when one batch held them all, as for the projector).
            steady = rebuilt.steady_per_second
            times["rebuild signed, steady"].append(
                (len(keyed) / steady if steady else rebuilt.seconds, float("nan")))
    return times


async def main(args: argparse.Namespace) -> None:
    keyed = [message for tenant in tenants(args.tenants)
             for message in keyed_messages(args.seed, args.days, tenant=tenant,
                                           leads_per_day=args.leads_per_day)]
    raws = [value for _, value in keyed]
    _say(f"{len(raws):,} messages ({args.days} simulated days, seed {args.seed}, "
         f"{args.tenants} tenant(s)); {sum(map(len, raws)) / len(raws):.0f} bytes each on average")
    redis = Redis.from_url(args.redis_url)
    store = FactStore(redis, f"{args.prefix}-{uuid.uuid4().hex[:8]}")
    load_before = os.getloadavg()[0]
    unsigned = [Relayed(raw, []) for raw in raws]
    signed = [Relayed(raw, SIGNER.headers(raw)) for raw in raws]
    times: dict[str, list[Timing]] = {"ceiling": [], "decode": [], "decode signed": [],
                                      "decode+apply": [], "decode+apply signed": []}
    try:
        # Interleaved, so a burst of load on the shared machine hits every figure alike.
        for _ in range(args.runs):
            times["ceiling"].append(_timed(lambda: ceiling(raws)))
            times["decode"].append(_timed(lambda: decode_every(unsigned, args.batch, None)))
            times["decode signed"].append(
                _timed(lambda: decode_every(signed, args.batch, SIGNER)))
            for name, messages, signer in (("decode+apply", unsigned, None),
                                           ("decode+apply signed", signed, SIGNER)):
                await store.clear()
                times[name].append(await _timed_async(
                    functools.partial(decode_and_apply, messages, store, args.batch, signer)))
        if args.broker:
            times.update(await _on_broker(args, keyed, store))
    finally:
        await store.clear()
        await redis.aclose()
    _say(f"load average (1 min): {load_before:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    for name, timings in times.items():
        _say(_summary(name, len(raws), timings))
    ceiling_rate = statistics.median(len(raws) / wall for wall, _ in times["ceiling"])
    for name in ("decode", "decode signed", "decode+apply", "decode+apply signed"):
        rate = statistics.median(len(raws) / wall for wall, _ in times[name])
        _say(f"{name} / ceiling (medians): {rate / ceiling_rate:.3f}")
    if args.broker:
        raw_rate = statistics.median(len(raws) / wall for wall, _ in times["raw consumer"])
        for name in [n for n in times if n.startswith(("rebuild", "projector"))]:
            rate = statistics.median(len(raws) / wall for wall, _ in times[name])
            _say(f"{name} / raw consumer (medians): {rate / raw_rate:.3f}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--leads-per-day", type=float, default=4.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL",
                                                              "redis://127.0.0.1:6379/0"))
    parser.add_argument("--prefix", default="bench-fold")
    parser.add_argument("--broker", action="store_true",
                        help="also time the raw consumer and the rebuild on a Tansu topic")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--tenants", type=int, default=1,
                        help="copies of the history, one tenant each (a longer steady part "
                             "for --projector)")
    parser.add_argument("--projector", action="store_true",
                        help="with --broker: also time a real projector process (steady)")
    parser.add_argument("--code", type=Path, default=None,
                        help="with --projector: also time the projector of this checkout")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
