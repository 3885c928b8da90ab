"""The relay: follows the event store's notification log onto Kafka, in order.

Position is recorded with the library's tracking recorder only after Kafka has
acknowledged the batch, so a crash repeats at most one batch (consumers are
idempotent) and never skips an event.

A stored event that cannot be made into a message (not JSON-writable, larger than a
Kafka message) is dead-lettered with its reason and position, and the relay goes on: one
event never halts the log. Only the broker being away makes it wait.
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

from projections.facts import MESSAGE_SCHEMA
from services.eventstore.ledger import SalesLedger
from services.kafka import send_batched
from services.progress import ProgressBoard
from services.signing import Signer

RELAY_NAME = "kafka-relay"
log = structlog.get_logger("relay")
RELAYED = Counter("salespulse_relayed_events_total", "Events published to Kafka by the relay")
POSITION = Gauge("salespulse_relay_position", "Last notification id acknowledged by Kafka")
DEAD_LETTERED = Counter("salespulse_relay_dead_lettered_total",
                        "Stored events the relay could not publish, sent to the dead-letter topic")
# Kafka's default message.max.bytes is 1,048,588: room for the headers and framing.
MAX_MESSAGE_BYTES = 1_000_000
DEAD_LETTER_STATE_BYTES = 256 * 1024  # of the stored state kept in a dead letter
REPORT_SECONDS = 1.0


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


class Unrelayable(Exception):
    """A stored event that cannot be made into a message on the events topic."""


class Relay:
    def __init__(self, ledger: SalesLedger, tracking: TrackingRecorder,
                 producer: AIOKafkaProducer, topic: str, *, batch_size: int = 1000,
                 idle_wait: float = 0.02, signer: Signer | None = None,
                 dead_letter_topic: str | None = None,
                 progress: ProgressBoard | None = None) -> None:
        self.ledger, self.tracking, self.producer = ledger, tracking, producer
        self.topic, self.batch_size, self.idle_wait = topic, batch_size, idle_wait
        self.signer, self.dead_letter_topic, self.progress = signer, dead_letter_topic, progress
        # The last position published: the next message's `previous`. A dead-lettered event
        # is never published, so the chain readers follow skips it.
        self.published = 0
        self.cursor = 0  # the last position read and handled (published or dead-lettered)
        self.recorded = 0  # the last position in the tracking table

    def position(self) -> int:
        return self.tracking.max_tracking_id(RELAY_NAME) or 0

    async def run(self, stop: asyncio.Event) -> None:
        position = await asyncio.to_thread(self.position)
        self.published = self.cursor = self.recorded = position
        reporting = asyncio.create_task(self._report(stop)) if self.progress else None
        try:
            await self._run(stop, position)
        finally:
            if reporting is not None:
                reporting.cancel()
                await asyncio.gather(reporting, return_exceptions=True)
                try:  # stopped on purpose: no longer watched
                    await self.progress.withdraw("relay")  # type: ignore[union-attr]
                except Exception as exc:  # noqa: BLE001 - stopping anyway
                    log.warning("relay.progress_unwithdrawn", error=str(exc))

    async def _report(self, stop: asyncio.Event) -> None:
        """Every second: the position and how many stored events are still to relay."""
        assert self.progress is not None
        while not stop.is_set():
            try:
                head = await asyncio.to_thread(self.ledger.recorder.max_notification_id)
                await self.progress.report("relay", self.cursor, (head or 0) - self.cursor)
            except Exception as exc:  # noqa: BLE001 - reporting must never stop relaying
                log.warning("relay.progress_unreported", error=f"{type(exc).__name__}: {exc}")
            try:
                await asyncio.wait_for(stop.wait(), REPORT_SECONDS)
            except TimeoutError:
                pass

    async def _run(self, stop: asyncio.Event, position: int) -> None:
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
            position = self.cursor = notifications[-1].id
            # The last *published* position is recorded, so a restart's first message names
            # a predecessor readers have seen (dead letters at the end are sent again).
            if self.published > self.recorded:
                try:
                    await asyncio.to_thread(self.tracking.insert_tracking,
                                            Tracking(RELAY_NAME, self.published))
                    self.recorded = self.published
                except PersistenceError as exc:
                    # Published but not recorded: a later batch's position is recorded
                    # instead (a restart before that repeats this batch, which consumers
                    # skip).
                    log.error("relay.position_unrecorded", error=str(exc),
                              position=self.published)
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
        """Send `notifications`, which follow position `after`, and wait for every ack; one
        that cannot be a message goes to the dead-letter topic instead, with its reason."""
        outgoing = []
        dead: list[tuple[Notification, str]] = []
        # Following the relay's own run, `previous` skips what it dead-lettered.
        previous = self.published if self.cursor == after else after
        for notification in notifications:
            try:
                key, value = message(self.ledger, notification, previous)
                if len(value) > MAX_MESSAGE_BYTES:
                    raise Unrelayable(f"{len(value):,} bytes as a message; Kafka takes at most "
                                      f"{MAX_MESSAGE_BYTES:,}")
            except Exception as exc:  # noqa: BLE001 - whatever it is, it is this event's alone
                dead.append((notification, f"{type(exc).__name__}: {exc}"))
                continue
            previous = notification.id
            outgoing.append((key, value, self.signer.headers(value) if self.signer else []))
        sent = await send_batched(self.producer, self.topic, outgoing)
        sent += [await self.dead_letter(notification, reason) for notification, reason in dead]
        # every one acknowledged before the position moves
        await asyncio.gather(*sent)
        self.published = previous

    async def dead_letter(self, notification: Notification, reason: str) -> asyncio.Future[Any]:
        """Send a stored event the relay cannot publish to the dead-letter topic: its stored
        state (cut to DEAD_LETTER_STATE_BYTES), its reason and position in the headers."""
        DEAD_LETTERED.inc()
        log.error("relay.dead_letter", position=notification.id, reason=reason[:500],
                  originator_id=str(notification.originator_id))
        if self.dead_letter_topic is None:
            raise Unrelayable(f"position {notification.id}: {reason}; no dead-letter topic")
        headers = [("source", b"relay"), ("reason", reason.encode()[:1000]),
                   ("position", str(notification.id).encode()),
                   ("originator_id", str(notification.originator_id).encode()),
                   ("version", str(notification.originator_version).encode())]
        return await self.producer.send(  # type: ignore[no-any-return]
            self.dead_letter_topic, value=bytes(notification.state[:DEAD_LETTER_STATE_BYTES]),
            key=_key(notification.originator_id), headers=headers)
