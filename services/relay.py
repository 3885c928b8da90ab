"""The relay: follows the event store's notification log onto Kafka, in order.

Position is recorded with the library's tracking recorder only after Kafka has
acknowledged the batch, so a crash repeats at most one batch (consumers are
idempotent) and never skips an event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any
from uuid import UUID

import orjson
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from eventsourcing.persistence import (
    Mapper,
    Notification,
    PersistenceError,
    Tracking,
    TrackingRecorder,
)
from prometheus_client import Counter, Gauge

from events.ledger import SalesLedger
from projections.facts import MESSAGE_SCHEMA
from services.kafka import send_batched
from services.signing import Signer

RELAY_NAME = "kafka-relay"
log = structlog.get_logger("relay")
RELAYED = Counter("salespulse_relayed_events_total", "Events published to Kafka by the relay")
POSITION = Gauge("salespulse_relay_position", "Last notification id acknowledged by Kafka")


def message(ledger: SalesLedger, notification: Notification,
            previous: int) -> tuple[bytes, bytes]:
    """Key (the aggregate id) and value of one stored event on the events topic; `previous`
    is the position published just before it, so a reader merging partitions knows when
    it has everything that came first (notification ids can have gaps)."""
    kind, key, envelope = _subject_event(ledger.mapper, notification)
    body = {
        "schema": MESSAGE_SCHEMA,
        "position": notification.id,
        "previous": previous,
        "kind": kind,
        "key": key,
        "version": notification.originator_version,
        "event": envelope,
        "relayed_at": time.time(),  # readers measure freshness from here
    }
    return _key(notification.originator_id), orjson.dumps(body)


@lru_cache(maxsize=100_000)
def _key(originator_id: UUID) -> bytes:
    # The aggregate id as text: `UUID.__str__` is Python, ~3 us, and a subject's id comes
    # back with each of its events.
    return str(originator_id).encode()


def _subject_event(mapper: Mapper[Any], notification: Notification
                   ) -> tuple[str, str, dict[str, Any]]:
    """The kind, key and envelope of a stored `SalesSubject` event.

    All three are plain JSON in the stored state (the envelope is the canonical, JSON-ready
    event), so they are read with orjson, without the library's decoder walking the state
    for its transcodings or building the domain event (a fifth of the relay's CPU). With a
    cipher or a compressor configured, the library reads the state as it wrote it."""
    if mapper.cipher is None and mapper.compressor is None:
        state = orjson.loads(notification.state)
        return state["kind"], state["key"], state["envelope"]
    domain_event: Any = mapper.to_domain_event(notification)
    return domain_event.kind, domain_event.key, domain_event.envelope


class Relay:
    def __init__(self, ledger: SalesLedger, tracking: TrackingRecorder,
                 producer: AIOKafkaProducer, topic: str, *, batch_size: int = 1000,
                 idle_wait: float = 0.02, signer: Signer | None = None) -> None:
        self.ledger, self.tracking, self.producer = ledger, tracking, producer
        self.topic, self.batch_size, self.idle_wait = topic, batch_size, idle_wait
        self.signer = signer

    def position(self) -> int:
        return self.tracking.max_tracking_id(RELAY_NAME) or 0

    async def run(self, stop: asyncio.Event) -> None:
        position = await asyncio.to_thread(self.position)
        delay = 0.1
        log.info("relay.started", position=position, topic=self.topic)
        while not stop.is_set():
            try:
                notifications = await asyncio.to_thread(
                    self.ledger.recorder.select_notifications, position, self.batch_size,
                    inclusive_of_start=False)
            except PersistenceError as exc:
                # The store is away: nothing was read, so nothing is lost; read again later.
                log.error("relay.store_unavailable", error=str(exc), retry_in=delay)
                delay = await self._pause(stop, delay)
                continue
            if not notifications:
                try:
                    await asyncio.wait_for(stop.wait(), self.idle_wait)
                except TimeoutError:
                    pass
                continue
            try:
                await self.publish(notifications, after=position)
            except KafkaError as exc:
                # The broker is away: keep the position and send the batch again once it is
                # back (the events wait in the event store; the API goes on accepting).
                log.error("relay.kafka_unavailable", error=str(exc), retry_in=delay)
                delay = await self._pause(stop, delay)
                continue
            delay = 0.1
            position = notifications[-1].id
            try:
                await asyncio.to_thread(self.tracking.insert_tracking,
                                        Tracking(RELAY_NAME, position))
            except PersistenceError as exc:
                # Published but not recorded: a later batch's position is recorded instead
                # (a restart before that repeats this batch, which consumers skip).
                log.error("relay.position_unrecorded", error=str(exc), position=position)
            RELAYED.inc(len(notifications))
            POSITION.set(position)
        log.info("relay.stopped", position=position)

    @staticmethod
    async def _pause(stop: asyncio.Event, delay: float) -> float:
        """Wait `delay` (or until stopped); the next, doubled delay, at most 5 s."""
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            pass
        return min(delay * 2, 5.0)

    async def publish(self, notifications: Sequence[Notification], after: int) -> None:
        """Send `notifications`, which follow position `after`, and wait for every ack."""
        outgoing = []
        previous = after
        for notification in notifications:
            key, value = message(self.ledger, notification, previous)
            previous = notification.id
            outgoing.append((key, value, self.signer.headers(value) if self.signer else []))
        # every one acknowledged before the position moves
        await asyncio.gather(*await send_batched(self.producer, self.topic, outgoing))
