"""Rebuild: replay the events topic from offset zero into fresh read models.

The same pure reducer as the live projector (`services.readmodels.store.fold`), run by a
plain aiokafka consumer in large batches: a replay pays no per-message stream-processor
cost. Its writer (`services.readmodels.replay.Replay`) keeps the records it wrote instead of
reading them back, and writes a batch while it folds the next. It reads up to the end
offsets seen at its start, so it finishes while the live stream goes on; the live
projector continues from there. A long log is shared out by partition between this
process and helper processes (`Helpers`, `services/rebuild_part.py`), one per CPU.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.messages import decode_all, gc_paused
from services.readmodels.replay import REPLAY_KEPT, Replay
from services.readmodels.store import FactStore
from services.settings import Settings
from services.signing import Signer

log = structlog.get_logger("rebuild")


@dataclass
class Rebuilt:
    messages: int
    applied: int
    skipped: int
    unusable: int  # poison messages: the live projector dead-letters them; a rebuild skips
    seconds: float  # the whole call: connecting, clearing, replaying, the last write
    # For one process: the messages of its first batch, and the time from that batch's write
    # being sent to the last write landing (0 with helpers, whose clocks are their own).
    first_batch: int = 0
    after_first_s: float = 0.0
    processes: int = 1  # this one and its helpers

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def steady_per_second(self) -> float:
        """Messages after the first batch over the time they took: the clock
        `bench.projector` times the live projector's steady pace by."""
        later = self.messages - self.first_batch
        return later / self.after_first_s if later and self.after_first_s > 0 else 0.0


async def _let_the_next_fetch_go() -> None:
    """Three turns of the event loop, so that aiokafka's fetch routine sends the next fetch
    before this fetch is folded: it wakes once the records are taken (1), starts a fetch
    task (2), which sends the request (3). The broker then reads the next batch while this
    one is folded; without them the request went out only once the fold was done (a
    replay's write waits for nothing, so the fold yields nowhere), 15% slower."""
    for _ in range(3):
        await asyncio.sleep(0)


# A helper process takes ~0.4 s to start (its imports), ~40,000 messages' replay: two
# processes were slower than one on 63,592 messages and 12% faster on 127,184.
SHARE_MIN_MESSAGES = 100_000


@dataclass(frozen=True)
class Helpers:
    """How many helper processes a rebuild may start besides itself, and what they need that
    neither a Redis client nor a `Signer` can hand on: the Redis URL and the signing key."""

    processes: int  # all of them, this one included
    redis_url: str
    signing_key: str | None
    share_min: int = SHARE_MIN_MESSAGES  # fewer messages a process: fewer processes

    @classmethod
    def of(cls, settings: Settings) -> Helpers:
        return cls(settings.rebuild_processes or os.cpu_count() or 1, settings.redis_url,
                   settings.events_signing_key)


@dataclass
class Progress:
    """Messages read by this process and each helper, reported together. Each reports its
    share's size too, corrected once its first fetch has seen the partitions' ends
    (end_offsets() can be short on Tansu); until all have, the estimate stands."""

    report: Callable[[int, int], None]
    estimate: int
    read: dict[int, tuple[int, int]] = field(default_factory=dict)  # 0: this process; pids

    def own(self, messages: int, of: int) -> None:
        self.of(0, messages, of)

    def of(self, who: int, messages: int, total: int) -> None:
        self.read[who] = (messages, total)
        self.report(sum(done for done, _ in self.read.values()),
                    max(self.estimate, sum(total for _, total in self.read.values())))


class Helper:
    """A helper process (`python -m services.rebuild_part`) replaying its share of the
    partitions; it prints its progress and then what it rebuilt, one JSON line each."""

    def __init__(self, process: asyncio.subprocess.Process, partitions: list[int],
                 progress: Progress | None) -> None:
        self.process, self.partitions, self.progress = process, partitions, progress
        self.reading = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, helpers: Helpers, bootstrap: str, topic: str, prefix: str,
                    partitions: list[int], batch: int, keep: int,
                    progress: Progress | None) -> Helper:
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "EVENTS_TOPIC": topic,
               "REDIS_URL": helpers.redis_url, "REDIS_PREFIX": prefix}
        env.pop("EVENTS_SIGNING_KEY", None)
        if helpers.signing_key:
            env["EVENTS_SIGNING_KEY"] = helpers.signing_key
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.rebuild_part", ",".join(map(str, partitions)),
            str(batch), str(keep), env=env,
            stdout=asyncio.subprocess.PIPE)  # its logs go where this one's go
        return cls(process, partitions, progress)

    async def _read(self) -> Rebuilt | None:
        assert self.process.stdout is not None
        rebuilt = None
        async for line in self.process.stdout:
            said = orjson.loads(line)
            if "rebuilt" in said:
                rebuilt = Rebuilt(**said["rebuilt"])
            elif self.progress:
                self.progress.of(self.process.pid, said["messages"], said["total"])
        return rebuilt

    async def result(self) -> Rebuilt:
        rebuilt = await self.reading
        code = await self.process.wait()
        if code != 0 or rebuilt is None:
            raise HelperFailed(f"the rebuild's helper for partitions {self.partitions} "
                               f"exited with {code}")
        return rebuilt

    async def stop(self) -> None:
        """Kill it unless it is done, and reap it."""
        if self.process.returncode is None:
            self.process.kill()
        self.reading.cancel()
        await self.process.wait()


class HelperFailed(RuntimeError):
    """A helper process did not finish its share: the read models are not whole."""


def replay_consumer(bootstrap: str) -> AIOKafkaConsumer:
    """A consumer outside any group, fetching up to 8 MB a partition: a replay's reader."""
    return AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                            enable_auto_commit=False, fetch_max_wait_ms=50,
                            max_partition_fetch_bytes=8 * 1024 * 1024)


async def rebuild(bootstrap: str, topic: str, store: FactStore, *, batch: int = 20_000,
                  signer: Signer | None = None, keep: int = REPLAY_KEPT,
                  helpers: Helpers | None = None,
                  on_progress: Callable[[int, int], None] | None = None) -> Rebuilt:
    """Clear `store`'s prefix and fold every message of `topic` into it (messages `signer`
    verifies as the relay's are not checked against the contract again); `keep`: records
    each process holds in memory meanwhile. With `helpers`, the partitions are shared out
    between this process and helper processes, each replaying its own: a subject's events
    all live in one partition, and the per-tenant counters they share are sums."""
    started = time.perf_counter()
    consumer = replay_consumer(bootstrap)
    await consumer.start()
    running: list[Helper] = []
    try:
        await consumer.topics()  # loads the cluster metadata partitions_for_topic reads
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        total = await _messages(consumer, topic, partitions)
        await store.clear()
        processes = max(1, min(helpers.processes, len(partitions),
                               -(-total // helpers.share_min))) if helpers else 1
        shares = [partitions[at::processes] for at in range(processes)]
        progress = Progress(on_progress, total) if on_progress else None
        for share in shares[1:]:
            assert helpers is not None
            running.append(await Helper.start(helpers, bootstrap, topic, store.prefix, share,
                                              batch, keep, progress))
        own = await replay_partitions(consumer, topic, shares[0], store, batch=batch,
                                      signer=signer, keep=keep,
                                      on_progress=progress.own if progress else None)
        results = [own, *[await helper.result() for helper in running]]
    finally:
        for helper in running:
            await helper.stop()  # a no-op once it is done; a failed rebuild leaves none running
        await consumer.stop()
    steady = (own.first_batch, own.after_first_s) if len(results) == 1 else (0, 0.0)
    rebuilt = Rebuilt(
        sum(r.messages for r in results), sum(r.applied for r in results),
        sum(r.skipped for r in results), sum(r.unusable for r in results),
        time.perf_counter() - started, *steady, len(results))
    log.info("rebuild.done", **vars(rebuilt))
    return rebuilt


async def _messages(consumer: AIOKafkaConsumer, topic: str, partitions: list[int]) -> int:
    tps = [TopicPartition(topic, p) for p in partitions]
    begin, end = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
    return sum(end[tp] - begin[tp] for tp in tps)


async def replay_partitions(consumer: AIOKafkaConsumer, topic: str, partitions: list[int],
                            store: FactStore, *, batch: int = 20_000,
                            signer: Signer | None = None, keep: int = REPLAY_KEPT,
                            on_progress: Callable[[int, int], None] | None = None) -> Rebuilt:
    """Fold `partitions` of `topic` from their beginning into `store`, whose read models were
    cleared, up to the end offsets seen now; `on_progress` gets the messages read so far and
    how many there are."""
    started = time.perf_counter()
    replay = Replay(store, keep=keep)
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        begin = await consumer.beginning_offsets(tps)
        # Tansu's end_offsets() can be short by one batch (FIELD-NOTES): the end of each
        # partition is the larger of it and the high watermark of the first fetch.
        end = await consumer.end_offsets(tps)
        messages = applied = skipped = unusable = 0
        remaining = {tp for tp in tps if end[tp] > begin[tp]}
        known: set[TopicPartition] = set()
        first_batch, first_at = 0, 0.0
        # No cyclic collection during the replay: the records it keeps (and each fetch's
        # records) are acyclic, and each collection would walk every one of them again.
        with gc_paused():
            while remaining:
                fetched = await consumer.getmany(*remaining, timeout_ms=500, max_records=batch)
                await _let_the_next_fetch_go()
                for tp in remaining - known:
                    if (highwater := consumer.highwater(tp)) is not None:
                        end[tp] = max(end[tp], highwater)
                        known.add(tp)
                wanted = [record for tp, records in fetched.items() for record in records
                          if record.offset < end[tp]]  # later ones are the live stream's
                messages += len(wanted)
                for tp, records in fetched.items():
                    if tp in known and records and records[-1].offset + 1 >= end[tp]:
                        remaining.discard(tp)
                changes, poisoned = decode_all(wanted, signer)
                result = await replay.apply(changes)
                if not first_batch:
                    first_batch, first_at = messages, time.perf_counter()
                unusable += len(poisoned)
                applied, skipped = applied + result.applied, skipped + result.skipped
                unusable += len(result.rejected)
                if on_progress:
                    on_progress(messages, sum(end[tp] - begin[tp] for tp in tps))
        await replay.finish()
        done = time.perf_counter()
    finally:
        replay.abandon()  # a failed replay leaves no write of its own still running
    return Rebuilt(messages, applied, skipped, unusable, done - started, first_batch,
                   done - first_at if first_batch else 0.0)
