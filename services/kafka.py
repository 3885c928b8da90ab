"""Kafka at the edges: topics, producers and consumers configured one way."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner, murmur2

from services.settings import Settings


async def ensure_topics(settings: Settings) -> None:
    """Create the events and dead-letter topics if missing (idempotent)."""
    assert settings.kafka_bootstrap_servers
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(settings.events_topic, settings.kafka_partitions, 1),
            NewTopic(settings.dead_letter_topic, 1, 1),
            NewTopic(settings.alerts_topic, 1, 1),
        ]
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process won the race
    finally:
        await admin.close()


class KeyedPartitioner:
    """aiokafka's default partitioner (the Java client's: murmur2 of the key), with each
    key's hash remembered. aiokafka's murmur2 is pure Python, ~12% of the relay's CPU, and
    a subject's key comes back with each of its events. The hash, not the partition, is
    kept, so a topic given more partitions is still partitioned as Kafka would."""

    def __init__(self, keys: int = 100_000) -> None:
        self._hash = lru_cache(maxsize=keys)(murmur2)

    def __call__(self, key: bytes | None, all_partitions: Sequence[int],
                 available: Sequence[int]) -> int:
        if key is None:
            return DefaultPartitioner()(key, all_partitions, available)  # type: ignore[no-any-return]
        return all_partitions[(self._hash(key) & 0x7FFFFFFF) % len(all_partitions)]


def producer(settings: Settings) -> AIOKafkaProducer:
    # No idempotence: Tansu refuses aiokafka's InitProducerId v0 (FIELD-NOTES).
    # Duplicates are harmless downstream: consumers are idempotent per aggregate version.
    return AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all",
                            linger_ms=2, max_batch_size=256 * 1024,
                            partitioner=KeyedPartitioner())
