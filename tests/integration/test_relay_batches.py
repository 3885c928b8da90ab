"""The relay sends each partition's messages as batches it fills itself: on the real broker,
every stored event arrives once, in the partition aiokafka's default partitioner gives its
key, each partition in store order, each message naming the one published before it."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiokafka.partitioner import DefaultPartitioner
from eventsourcing.popo import POPOTrackingRecorder

from services import bootstrap
from services.broker import TansuBroker
from services.kafka import ensure_topics, producer
from services.relay import Relay
from services.settings import Settings
from tests.history import simulated
from tests.topics import read_records

PARTITIONS = 4


class _Drain(Relay):
    """The real relay, stopped once the store's last event is acknowledged."""

    def __init__(self, *args: Any, last: int, stop: asyncio.Event, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last, self.stop = last, stop

    async def publish(self, notifications: Any, after: int) -> None:
        await super().publish(notifications, after)
        if notifications[-1].id >= self.last:
            self.stop.set()


def test_the_relay_publishes_every_event_once_in_its_keys_partition_in_order(
        broker: TansuBroker, pg_schema: str) -> None:
    settings = Settings(kafka_bootstrap_servers=broker.bootstrap_servers,
                        events_topic=f"relay-batches-{pg_schema[-12:]}", database_url=pg_schema,
                        kafka_partitions=PARTITIONS)
    ledger = bootstrap.ledger(settings)
    events = simulated(days=60)
    for at in range(0, len(events), 1000):
        ledger.record(events[at:at + 1000], tenant="default")

    async def relay() -> None:
        await ensure_topics(settings)
        kafka = producer(settings)
        await kafka.start()
        stop = asyncio.Event()
        try:
            # Batches of 700 notifications: several Kafka batches per partition each time.
            await _Drain(ledger, POPOTrackingRecorder(), kafka, settings.events_topic,
                         batch_size=700, last=ledger.recorder.max_notification_id() or 0,
                         stop=stop).run(stop)
        finally:
            await kafka.stop()

    asyncio.run(relay())
    ledger.close()
    records = read_records(broker.bootstrap_servers, settings.events_topic)
    bodies = [orjson.loads(r.value) for r in records]
    assert sorted(b["event"]["id"] for b in bodies) == sorted(e["id"] for e in events)
    partitions = list(range(PARTITIONS))
    for record in records:
        assert record.partition == DefaultPartitioner()(record.key, partitions, partitions)
    for partition in partitions:
        positions = [b["position"] for r, b in zip(records, bodies, strict=True)
                     if r.partition == partition]
        assert positions and positions == sorted(positions)
    chain = sorted((b["position"], b["previous"]) for b in bodies)
    assert [previous for _, previous in chain] == [0] + [p for p, _ in chain[:-1]]
