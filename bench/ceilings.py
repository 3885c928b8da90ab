"""The raw ceilings the bench compares salespulse with, measured on the same stack.

Each ceiling does the least the same part can do with the same bytes:
- ingest: the event store's own rows (read back from its table) inserted into a
  throwaway table of the same shape with psycopg `executemany`, one transaction
  per 1,000 rows, the way a batch of the store is written;
- relay: the relay's own messages (read back from the events topic) sent to a new
  topic by a raw aiokafka producer configured as the relay's, in batches filled per
  partition (`send_batched`, as the relay sends), awaiting every acknowledgement each
  1,000 messages as the relay does;
- projection: a raw aiokafka consumer that only reads the events topic (or the
  scale-out's 8-partition copy of it, `copy_topic`) and `orjson`-decodes every message.
The salespulse side of the relay and the rebuild is measured here too: the real
`Relay` draining the whole store onto a new topic, and `services.rebuild.rebuild`
into a throwaway Redis prefix.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
import psycopg
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from eventsourcing.persistence import Notification
from eventsourcing.popo import POPOTrackingRecorder
from psycopg import sql

from services import bootstrap, signing
from services.eventstore.ledger import SalesLedger
from services.kafka import producer, send_batched
from services.readmodels.store import FactStore
from services.rebuild import Helpers, Rebuilt, rebuild, replay_consumer
from services.relay import Relay
from services.settings import Settings

ROWS_PER_TRANSACTION = 1000


@dataclass
class Rate:
    """`count` items in `seconds`."""

    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


# ---------------------------------------------------------------- ingest


def _store_table(conn: psycopg.Connection, schema: str) -> str:
    """The ledger's event table in `schema`: other applications (the alert settings' log)
    keep tables of the same shape beside it, often empty."""
    table = f"{SalesLedger.name}_events"
    row = conn.execute("SELECT 1 FROM information_schema.tables"
                       " WHERE table_schema = %s AND table_name = %s", (schema, table)).fetchone()
    assert row, f"no event table {table} in schema {schema}"
    return table


def postgres_insert(database_url: str, schema: str) -> Rate:
    """Rows of the store inserted again, raw, into a throwaway table (executemany)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        source = _store_table(conn, schema)
        rows = conn.execute(sql.SQL(
            "SELECT originator_id, originator_version, topic, state FROM {}.{}"
            " ORDER BY notification_id").format(sql.Identifier(schema), sql.Identifier(source))
        ).fetchall()
        assert rows, f"the event table {schema}.{source} is empty: nothing to time"
        scratch = f"ceiling_{uuid.uuid4().hex[:12]}"
        conn.execute(f"CREATE SCHEMA {scratch}")
        try:
            table = sql.SQL("{}.events").format(sql.Identifier(scratch))
            conn.execute(sql.SQL(
                "CREATE TABLE {} (originator_id uuid NOT NULL, originator_version bigint NOT NULL,"
                " topic text, state bytea, notification_id bigserial,"
                " PRIMARY KEY (originator_id, originator_version))").format(table))
            conn.execute(sql.SQL("CREATE UNIQUE INDEX ON {} (notification_id)").format(table))
            insert = sql.SQL("INSERT INTO {} (originator_id, originator_version, topic, state)"
                             " VALUES (%s, %s, %s, %s)").format(table)
            started = time.perf_counter()
            for at in range(0, len(rows), ROWS_PER_TRANSACTION):
                with conn.transaction(), conn.cursor() as cursor:
                    cursor.executemany(insert, rows[at:at + ROWS_PER_TRANSACTION])
            seconds = time.perf_counter() - started
        finally:
            conn.execute(f"DROP SCHEMA {scratch} CASCADE")
    return Rate(len(rows), seconds)


# ---------------------------------------------------------------- Kafka helpers


async def _new_topic(settings: Settings, name: str, partitions: int | None = None) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions or settings.kafka_partitions, 1)])
    finally:
        await admin.close()


Kept = tuple[bytes | None, bytes, list[tuple[str, bytes]]]  # key, value, headers


async def _read_all(bootstrap_servers: str, topic: str, *, keep: bool) -> tuple[
        list[Kept], Rate]:
    """Every message of `topic` up to its high watermark, `orjson`-decoded."""
    consumer = replay_consumer(bootstrap_servers)  # read as the rebuild reads: its ceiling
    await consumer.start()
    kept: list[Kept] = []
    count = 0
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        started = time.perf_counter()
        # end_offsets() can be short by one batch on Tansu (FIELD-NOTES): trust highwater().
        end = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if end[tp] > 0}
        known: set[TopicPartition] = set()
        while remaining:
            fetched = await consumer.getmany(*remaining, timeout_ms=500, max_records=20_000)
            for tp in remaining - known:
                if (highwater := consumer.highwater(tp)) is not None:
                    end[tp] = max(end[tp], highwater)
                    known.add(tp)
            for tp, records in fetched.items():
                for record in records:
                    orjson.loads(record.value or b"")
                    count += 1
                    if keep:
                        kept.append((record.key, record.value or b"", list(record.headers)))
                if tp in known and records and records[-1].offset + 1 >= end[tp]:
                    remaining.discard(tp)
        seconds = time.perf_counter() - started
    finally:
        await consumer.stop()
    return kept, Rate(count, seconds)


async def raw_consumer(settings: Settings, topic: str | None = None) -> Rate:
    """Read and decode a whole topic (the events topic by default), nothing else: the
    projection ceiling."""
    assert settings.kafka_bootstrap_servers
    _, rate = await _read_all(settings.kafka_bootstrap_servers, topic or settings.events_topic,
                              keep=False)
    return rate


async def copy_topic(settings: Settings, name: str, partitions: int | None = None,
                     copies: int = 1) -> tuple[str, Rate]:
    """The events topic's own messages sent again, by key and with their headers, to a new
    topic named after it: (the topic, the rate of sending). Each key keeps its order: one
    source partition is read in order, and one key lands in one partition of the copy.
    With `copies` > 1, copy k > 0 follows under tenant `{tenant}~{k}` (re-signed): the
    same history again for subjects of their own, a topic long enough to time a pace."""
    assert settings.kafka_bootstrap_servers
    messages, _ = await _read_all(settings.kafka_bootstrap_servers, settings.events_topic,
                                  keep=True)
    messages += [renamed for k in range(1, copies)
                 for renamed in _as_tenant_copy(messages, k, signing.signer(settings))]
    topic = f"{settings.events_topic}-{name}-{uuid.uuid4().hex[:6]}"
    await _new_topic(settings, topic, partitions)
    kafka = producer(settings)
    await kafka.start()
    try:
        started = time.perf_counter()
        for at in range(0, len(messages), ROWS_PER_TRANSACTION):
            await asyncio.gather(*await send_batched(
                kafka, topic, messages[at:at + ROWS_PER_TRANSACTION]))
        seconds = time.perf_counter() - started
    finally:
        await kafka.stop()
    return topic, Rate(len(messages), seconds)


def copy_tenant(tenant: str, k: int) -> str:
    return f"{tenant}~{k}"


def _as_tenant_copy(messages: list[Kept], k: int, signer: signing.Signer | None) -> list[Kept]:
    out: list[Kept] = []
    for key, value, _ in messages:
        body = orjson.loads(value)
        body["event"]["tenant"] = copy_tenant(body["event"]["tenant"], k)
        renamed = orjson.dumps(body)
        out.append(((key or b"") + f"~{k}".encode(), renamed,
                    signer.headers(renamed) if signer else []))
    return out


async def raw_producer(settings: Settings) -> Rate:
    """The events topic's own messages sent again to a new topic: the relay ceiling."""
    return (await copy_topic(settings, "ceiling"))[1]


# ---------------------------------------------------------------- salespulse sides


class _DrainingRelay(Relay):
    """The real relay, stopping once it has published `total` notifications."""

    def __init__(self, *args: object, total: int, stop: asyncio.Event, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.total, self.stop, self.published = total, stop, 0

    def position(self) -> int:
        return 0

    async def publish(self, notifications: Sequence[Notification], after: int) -> None:
        await super().publish(notifications, after)
        self.published += len(notifications)
        if self.published >= self.total:
            self.stop.set()


async def relay_backlog(settings: Settings) -> Rate:
    """The relay draining the whole event store onto a new topic (position kept in memory)."""
    ledger = bootstrap.ledger(settings)
    try:
        total = ledger.recorder.max_notification_id() or 0
        topic = f"{settings.events_topic}-relay-{uuid.uuid4().hex[:6]}"
        await _new_topic(settings, topic)
        kafka = producer(settings)
        await kafka.start()
        stop = asyncio.Event()
        runner = _DrainingRelay(ledger, POPOTrackingRecorder(), kafka, topic, total=total,
                                stop=stop, signer=signing.signer(settings))
        try:
            started = time.perf_counter()
            await runner.run(stop)
            seconds = time.perf_counter() - started
        finally:
            await kafka.stop()
    finally:
        ledger.close()
    return Rate(runner.published, seconds)


async def rebuild_rate(settings: Settings, topic: str | None = None, *,
                       processes: int = 1) -> Rebuilt:
    """`services.rebuild.rebuild` of `topic` (the events topic by default) into a throwaway
    Redis prefix, by `processes` processes (0: one per CPU, as deployed)."""
    assert settings.kafka_bootstrap_servers
    redis = bootstrap.redis(settings)
    store = FactStore(redis, f"{settings.redis_prefix}-rebuild-{uuid.uuid4().hex[:6]}")
    try:
        helpers = Helpers.of(settings.model_copy(update={"rebuild_processes": processes}))
        rebuilt = await rebuild(settings.kafka_bootstrap_servers, topic or settings.events_topic,
                                store, signer=signing.signer(settings), helpers=helpers)
        await store.clear()
    finally:
        await redis.aclose()
    return rebuilt
