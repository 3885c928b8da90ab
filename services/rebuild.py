"""Rebuild: replay the events topic from offset zero into fresh read models.

The same pure reducer as the live projector (`projections.readmodel.fold`), run by a
plain aiokafka consumer in large batches: a replay pays no per-message stream-processor
cost. Its writer (`projections.replay.Replay`) keeps the records it wrote instead of
reading them back, and writes a batch while it folds the next. It reads up to the end
offsets seen at its start, so it finishes while the live stream goes on; the live
projector continues from there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from projections.readmodel import FactStore
from projections.replay import REPLAY_KEPT, Replay
from services.messages import decode_all, gc_paused
from services.signing import Signer

log = structlog.get_logger("rebuild")


@dataclass
class Rebuilt:
    messages: int
    applied: int
    skipped: int
    unusable: int  # poison messages: the live projector dead-letters them; a rebuild skips
    seconds: float  # the whole call: connecting, clearing, replaying, the last write
    first_batch: int = 0  # messages of the first batch folded
    after_first_s: float = 0.0  # from that batch's write being sent to the last one landing

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def steady_per_second(self) -> float:
        """Messages after the first batch over the time they took: the clock
        `services.bench_projector` times the live projector's steady pace by."""
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


async def rebuild(bootstrap: str, topic: str, store: FactStore, *, batch: int = 20_000,
                  signer: Signer | None = None, keep: int = REPLAY_KEPT,
                  on_progress: Callable[[int, int], None] | None = None) -> Rebuilt:
    """Clear `store`'s prefix and fold every message of `topic` into it (messages `signer`
    verifies as the relay's are not checked against the contract again); `keep`: records
    held in memory meanwhile."""
    started = time.perf_counter()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, fetch_max_wait_ms=50,
                                max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    replay: Replay | None = None
    try:
        await consumer.topics()  # loads the cluster metadata partitions_for_topic reads
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        begin = await consumer.beginning_offsets(partitions)
        # Tansu's end_offsets() can be short by one batch (FIELD-NOTES): the end of each
        # partition is the larger of it and the high watermark of the first fetch.
        end = await consumer.end_offsets(partitions)
        await store.clear()
        replay = Replay(store, keep=keep)
        messages = applied = skipped = unusable = 0
        remaining = {tp for tp in partitions if end[tp] > begin[tp]}
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
                    on_progress(messages, sum(end[tp] - begin[tp] for tp in partitions))
        await replay.finish()
        done = time.perf_counter()
    finally:
        if replay is not None:
            replay.abandon()  # a failed rebuild leaves no write of its own still running
        await consumer.stop()
    rebuilt = Rebuilt(messages, applied, skipped, unusable, done - started, first_batch,
                      done - first_at if first_batch else 0.0)
    log.info("rebuild.done", **vars(rebuilt))
    return rebuilt
