"""Rebuild: replay the events topic from offset zero into fresh read models.

The same pure reducer as the live projector (`FactStore.apply`), run by a plain
aiokafka consumer in large batches: a replay pays no per-message stream-processor
cost. It reads up to the end offsets seen at its start, so it finishes while
the live stream goes on; the live projector continues from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from projections.readmodel import FactStore
from services.messages import decode_all, gc_paused
from services.signing import Signer

log = structlog.get_logger("rebuild")


@dataclass
class Rebuilt:
    messages: int
    applied: int
    skipped: int
    unusable: int  # poison messages: the live projector dead-letters them; a rebuild skips
    seconds: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


async def rebuild(bootstrap: str, topic: str, store: FactStore, *, batch: int = 20_000,
                  signer: Signer | None = None,
                  on_progress: Callable[[int, int], None] | None = None) -> Rebuilt:
    """Clear `store`'s prefix and fold every message of `topic` into it (messages `signer`
    verifies as the relay's are not checked against the contract again)."""
    started = time.perf_counter()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, fetch_max_wait_ms=50,
                                max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
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
        messages = applied = skipped = unusable = 0
        remaining = {tp for tp in partitions if end[tp] > begin[tp]}
        known: set[TopicPartition] = set()
        while remaining:
            fetched = await consumer.getmany(*remaining, timeout_ms=500, max_records=batch)
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
            with gc_paused():
                changes, poisoned = decode_all(wanted, signer)
                result = await store.apply(changes)
                del changes  # gone before collection resumes, which has none of it to walk
            unusable += len(poisoned)
            applied, skipped = applied + result.applied, skipped + result.skipped
            unusable += len(result.rejected)
            if on_progress:
                on_progress(messages, sum(end[tp] - begin[tp] for tp in partitions))
    finally:
        await consumer.stop()
    rebuilt = Rebuilt(messages, applied, skipped, unusable, time.perf_counter() - started)
    log.info("rebuild.done", **vars(rebuilt))
    return rebuilt
