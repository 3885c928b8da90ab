"""Reading a whole topic as it stands, for tests that check what reached Kafka."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

Message = tuple[bytes, list[tuple[str, bytes]]]  # value and headers


def read_all(bootstrap: str, topic: str, timeout: float = 60) -> list[bytes]:
    """Every message value on `topic` now, from offset zero to each partition's high
    watermark (Tansu's end_offsets() can be short by one batch: FIELD-NOTES). A topic not
    created yet reads as empty."""
    return [value for value, _ in read_messages(bootstrap, topic, timeout)]


def read_messages(bootstrap: str, topic: str, timeout: float = 60) -> list[Message]:
    """As `read_all`, with each message's headers."""
    return [(r.value, list(r.headers)) for r in read_records(bootstrap, topic, timeout)]


def read_records(bootstrap: str, topic: str,
                 timeout: float = 60) -> list[ConsumerRecord[Any, Any]]:
    """As `read_all`, whole records (partition, offset, key, headers), each partition's in
    order."""

    async def read() -> list[ConsumerRecord[Any, Any]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            await consumer.topics()
            partitions = [TopicPartition(topic, p)
                          for p in sorted(consumer.partitions_for_topic(topic) or ())]
            if not partitions:
                return []
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end = await consumer.end_offsets(partitions)
            values: list[ConsumerRecord[Any, Any]] = []
            pending, deadline = set(partitions), time.monotonic() + timeout
            while pending:
                assert time.monotonic() < deadline, f"{topic}: no end reached in {timeout}s"
                for records in (await consumer.getmany(*pending, timeout_ms=1000)).values():
                    values += records
                for tp in list(pending):
                    last = max(end[tp], consumer.highwater(tp) or 0)
                    if await consumer.position(tp) >= last and consumer.highwater(tp) is not None:
                        pending.discard(tp)
            return values
        finally:
            await consumer.stop()

    return asyncio.run(read())
