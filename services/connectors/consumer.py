"""The Kafka side of the connectors (`salespulse connectors`): one consumer group reading

- the ingest topic (`INGEST_TOPIC`): one contract event per message, its tenant in the
  envelope's `tenant` or a `tenant` header, checked and stored as `POST /v1/events/batch`
  does (unknown subjects held); a refused message goes to `INGEST_REFUSED_TOPIC` with the
  same problem body the API answers and the original message;
- each Salesforce CDC topic (`SALESFORCE_CDC_TOPICS`, `topic=tenant`): change events mapped
  by `salesforce_cdc`, dead-lettered like the webhooks' (`GET
  /v1/connectors/salesforce/dead-letters`).

Offsets are committed after what a fetch held is stored and its refusals published; the
event store unreachable, the same fetch is tried again (ids repeat: nothing doubles). A
poison message is refused or dead-lettered, never stops the consumer.
"""

from __future__ import annotations

import asyncio
import base64
from collections import defaultdict
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from eventsourcing.persistence import PersistenceError

from services.api.problems import PROBLEM_BASE
from services.connectors import intake, salesforce_cdc
from services.connectors.mapping import Mapped
from services.connectors.store import NOTIFICATIONS, ConnectorStore
from services.eventstore.ledger import SalesLedger, StoreUnavailable
from services.settings import Settings

log = structlog.get_logger("connectors")
RETRY_SECONDS = 2.0


def cdc_topics(settings: Settings) -> dict[str, str]:
    """`topic=tenant,…` as a map; ValueError naming a malformed pair."""
    pairs = [p.strip() for p in settings.salesforce_cdc_topics.split(",") if p.strip()]
    out = {}
    for pair in pairs:
        topic, sep, tenant = pair.partition("=")
        if not sep or not topic.strip() or not tenant.strip():
            raise ValueError(f"SALESFORCE_CDC_TOPICS: {pair!r} is not topic=tenant")
        out[topic.strip()] = tenant.strip()
    return out


def _tenant(record: ConsumerRecord[bytes, bytes], event: Any) -> str | None:
    for name, value in record.headers or ():
        if name == "tenant" and value:
            return bytes(value).decode()
    tenant = event.get("tenant") if isinstance(event, dict) else None
    return tenant if isinstance(tenant, str) and tenant else None


def refusal(record: ConsumerRecord[bytes, bytes], status: int, title: str, detail: str,
            errors: list[dict[str, Any]]) -> bytes:
    """The refused topic's message: the API's problem body beside the original message."""
    slug = "invalid-event" if status in (409, 422) else "invalid-message"
    try:
        original: Any = {"value": record.value.decode() if record.value is not None else None}
    except UnicodeDecodeError:
        original = {"value_base64": base64.b64encode(record.value or b"").decode()}
    original.update(topic=record.topic, partition=record.partition, offset=record.offset,
                    key=record.key.decode(errors="replace") if record.key else None,
                    headers={k: bytes(v).decode(errors="replace")
                             for k, v in record.headers or ()})
    return orjson.dumps({"problem": {"type": PROBLEM_BASE + slug, "title": title,
                                     "status": status, "detail": detail, "errors": errors},
                         "message": original})


class ConnectorConsumer:
    def __init__(self, settings: Settings, ledger: SalesLedger, store: ConnectorStore,
                 consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
        self.settings, self.ledger, self.store = settings, ledger, store
        self.consumer, self.producer = consumer, producer
        self.cdc = cdc_topics(settings)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        while stop is None or not stop.is_set():
            fetched = await self.consumer.getmany(timeout_ms=500, max_records=5000)
            for _partition, records in fetched.items():
                while True:
                    try:
                        await self.handle(records)
                        break
                    except (StoreUnavailable, PersistenceError, OSError) as exc:
                        log.warning("connectors.store_unavailable", error=str(exc))
                        await asyncio.sleep(RETRY_SECONDS)
            if fetched:
                await self.consumer.commit()

    async def handle(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        if not records:
            return
        if records[0].topic == self.settings.ingest_topic:
            await self._ingest(records)
        else:
            await self._salesforce(self.cdc[records[0].topic], records)

    async def _record(self, tenant: str, mapped: list[Mapped]) -> list[intake.Result]:
        return await asyncio.to_thread(
            intake.record, self.ledger, tenant, mapped, tz=self.settings.tenant_timezone,
            hold_for=self.settings.hold_for)

    async def _salesforce(self, tenant: str, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        mapping = await self.store.mapping("salesforce", tenant)
        mapped = []
        for record in records:
            try:
                message = orjson.loads(record.value or b"")
            except orjson.JSONDecodeError as exc:
                mapped.append(Mapped(f"{record.topic}:{record.partition}:{record.offset}",
                                     (record.value or b"").decode(errors="replace"),
                                     dead=f"not JSON: {exc}"))
                continue
            mapped.append(salesforce_cdc.map_change_event(message, mapping))
        results = await self._record(tenant, mapped)
        await self.store.note("salesforce", tenant, results, [m.payload for m in mapped])

    async def _ingest(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        by_tenant: dict[str, list[tuple[ConsumerRecord[bytes, bytes], Any]]] = defaultdict(list)
        refusals = []
        for record in records:
            try:
                event = orjson.loads(record.value or b"")
            except orjson.JSONDecodeError as exc:
                refusals.append(refusal(record, 400, "Malformed JSON", str(exc), []))
                continue
            tenant = _tenant(record, event)
            if not isinstance(event, dict) or tenant is None:
                refusals.append(refusal(
                    record, 422, "Invalid event", "one contract event per message, its tenant "
                    "in `tenant` or a `tenant` header", [{"index": 0, "field": "tenant" if
                                                           isinstance(event, dict) else "",
                                                           "message": "required"}]))
                continue
            by_tenant[tenant].append((record, event))
        counts: dict[str, int] = defaultdict(int)
        for tenant, items in by_tenant.items():
            mapped = [Mapped(f"{r.topic}:{r.partition}:{r.offset}", r.value,
                             events=({k: v for k, v in e.items() if k != "tenant"},))
                      for r, e in items]
            for (record, _event), result in zip(items, await self._record(tenant, mapped),
                                               strict=True):
                counts[result.outcome] += 1
                if result.outcome != "dead_lettered":
                    continue
                status = result.status or 422
                errors = [{"index": 0, "event_id": event_id, "field": field, "message": message}
                          for event_id, field, message in result.errors]
                refusals.append(refusal(
                    record, status, "Conflicting event" if status == 409 else "Invalid event",
                    f"{len(errors)} problem(s); nothing of this message was stored", errors))
        counts["dead_lettered"] += len(refusals) - counts["dead_lettered"]
        for message in refusals:
            await self.producer.send(self.settings.ingest_refused_topic, message)
        await self.producer.flush()
        for outcome, n in counts.items():
            if n:
                NOTIFICATIONS.labels("ingest", outcome).inc(n)


async def _ensure_topics(settings: Settings, topics: list[str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        missing = [t for t in topics if t not in set(await admin.list_topics())]
        if missing:
            try:
                await admin.create_topics([NewTopic(t, settings.kafka_partitions, 1)
                                           for t in missing])
            except TopicAlreadyExistsError:
                pass  # another process won the race
    finally:
        await admin.close()


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """The `salespulse connectors` process: wired here from the composition root."""
    from services import bootstrap
    from services.kafka import producer

    assert settings.kafka_bootstrap_servers, "KAFKA_BOOTSTRAP_SERVERS is required"
    topics = [settings.ingest_topic, *cdc_topics(settings)]
    await _ensure_topics(settings, [*topics, settings.ingest_refused_topic])
    ledger = await asyncio.to_thread(bootstrap.ledger, settings)
    redis = bootstrap.redis(settings)
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=settings.kafka_bootstrap_servers,
                                group_id=settings.connectors_group, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=100,
                                session_timeout_ms=10_000, heartbeat_interval_ms=1_000,
                                rebalance_timeout_ms=10_000)
    kafka = producer(settings)
    await consumer.start()
    await kafka.start()
    log.info("connectors.started", topics=topics)
    try:
        await ConnectorConsumer(settings, ledger, bootstrap.connector_store(settings, redis),
                                consumer, kafka).run(stop)
    finally:
        await consumer.stop()
        await kafka.stop()
        await redis.aclose()
        ledger.close()
