"""The projector: a faust worker that keeps the fact records in Redis up to date.

faust's streams cost 100-250 µs a message in asyncio machinery, whatever their batch
settings (FIELD-NOTES): several times the fold itself. So the worker's event path is not
an agent but one task that consumes the events topic in whole fetches, with aiokafka
(the client faust drives) in the projector's consumer group, folds each fetch with the
same reducer the rebuild uses (`FactStore.apply`) and commits the fetch's offsets once
Redis holds it. A message that cannot be decoded, or whose event the reducer cannot use,
goes to the dead-letter topic with the reason and the stream carries on. Messages the
relay signed were checked against the contract when stored and are not checked again
(`services.signing`); any other message is.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from typing import Any

import faust
import mode
import numpy as np
import orjson
import structlog
from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    TopicPartition,
)
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge
from redis.exceptions import RedisError

from projections.facts import Change
from services import bootstrap, faust_transport, kafka, signing
from services.batch_metrics import BatchHistogram
from services.messages import decode_all, event_id, gc_paused
from services.progress import ProgressBoard
from services.readmodels.store import FactStore, NotBuilt
from services.rebuild import HelperFailed, Helpers, rebuild
from services.settings import Settings

log = structlog.get_logger("projector")
PROJECTED = Counter("salespulse_projected_events_total", "Events applied to the read models")
FRESHNESS = BatchHistogram(
    "salespulse_projection_freshness_seconds", "From the relay publishing an event to its "
    "read model being written", buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
LAG = Gauge("salespulse_projector_lag_messages", "Messages not yet consumed, per partition",
            ["partition"])
DEAD_LETTERED = Counter("salespulse_dead_lettered_total", "Messages sent to the dead-letter topic")
FETCH_MAX_RECORDS = 20_000  # per fetch: one Redis read and one MULTI; a record touched by
# several fetches is read, decoded and written again by each (5,000: a quarter slower)
JOIN_WAIT_SECONDS = 60.0  # before building anyway: a member may get no partition at all


class _Handover(ConsumerRebalanceListener):  # type: ignore[misc]
    """A partition is given up only between fetches: the fetch in hand is applied and its
    offsets committed first, so two members never fold the same subject at once."""

    def __init__(self, folding: asyncio.Lock) -> None:
        self.folding = folding
        self.assigned = asyncio.Event()  # set once this member has joined the group

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self.folding:
            pass

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("projector.assigned", partitions=sorted(tp.partition for tp in assigned))
        self.assigned.set()


class LiveProjection:
    """The projector's event path: fetch, fold, write, commit; at least once, and
    idempotent because every record keeps the version of its last event."""

    def __init__(self, settings: Settings, store: FactStore) -> None:
        self.settings, self.store = settings, store
        self.signer = signing.signer(settings)
        self.dead_letters: AIOKafkaProducer | None = None  # made in the running loop
        self.building = asyncio.Lock()
        self.folding = asyncio.Lock()
        self.consumer: AIOKafkaConsumer | None = None
        self.folding_live = False  # joined and built: what the watch and the lag look at
        self.progress: ProgressBoard | None = None  # made by `run`, beside the consumer
        self.reported: set[str] = set()  # the units (partitions) this member reports

    def new_consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=self.settings.projector_group, enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=faust_transport.FETCH_MAX_WAIT_MS,  # Tansu holds empty fetches
            max_partition_fetch_bytes=8 * 1024 * 1024,
            # Tansu lets a member join after about half the rebalance timeout (FIELD-NOTES).
            session_timeout_ms=10_000, rebalance_timeout_ms=10_000, heartbeat_interval_ms=1_000)

    async def run(self) -> None:
        consumer = self.consumer = self.new_consumer()
        handover = _Handover(self.folding)
        consumer.subscribe([self.settings.events_topic], listener=handover)
        dead_letters = self.dead_letters = kafka.producer(self.settings)
        self.progress = ProgressBoard(self.store.redis, self.settings.redis_prefix)
        await dead_letters.start()
        await consumer.start()
        try:
            # Joined before building: once the read models say they are built, an event is
            # folded as it arrives, not after a group join (~5 s on Tansu).
            try:
                await asyncio.wait_for(handover.assigned.wait(), JOIN_WAIT_SECONDS)
            except TimeoutError:
                log.warning("projector.not_yet_assigned", waited_s=JOIN_WAIT_SECONDS)
            await self.ensure_built()
            self.folding_live = True
            while True:
                await self.fetch_and_fold(consumer)
        finally:
            self.consumer, self.folding_live = None, False
            await consumer.stop()
            await dead_letters.stop()
            try:  # stopped on purpose: its partitions are no longer watched here
                await self.progress.withdraw(*self.reported)  # type: ignore[union-attr]
            except (RedisError, OSError) as exc:
                log.warning("projector.progress_unwithdrawn", error=str(exc))

    async def fetch_and_fold(self, consumer: AIOKafkaConsumer) -> None:
        """One fetch, folded and committed. aiokafka unpacks it into up to 20,000
        ConsumerRecords: no collection walks them, and they are gone (with this coroutine's
        locals) before collection resumes."""
        with gc_paused():
            await self._fetch_and_fold(consumer)

    async def _fetch_and_fold(self, consumer: AIOKafkaConsumer) -> None:
        fetched = await consumer.getmany(timeout_ms=1000, max_records=FETCH_MAX_RECORDS)
        if fetched:
            async with self.folding:
                await self.fold(fetched)
                await self.commit(consumer, fetched)

    async def dead_letter(self, raw: bytes, reason: str, position: int | None = None) -> None:
        DEAD_LETTERED.inc()
        log.warning("projector.dead_letter", reason=reason, event_id=event_id(raw),
                    position=position)
        assert self.dead_letters is not None, "dead letters come from the running fold"
        headers = [("source", b"projector"),
                   ("reason", reason.encode("utf-8", "backslashreplace")[:1000])]
        if position is not None:
            headers.append(("position", str(position).encode()))
        await self.dead_letters.send_and_wait(self.settings.dead_letter_topic, value=raw,
                                              headers=headers)

    async def fold(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        """Run with collection paused (`fetch_and_fold`): the records read, folded and written
        are as acyclic as the JSON, and its changes die with this coroutine's locals."""
        changes, poisoned = decode_all(
            [record for records in fetched.values() for record in records], self.signer)
        for raw, reason in poisoned:
            await self.dead_letter(raw, reason)
        await self.apply_until_done(changes)

    @staticmethod
    async def commit(consumer: AIOKafkaConsumer,
                     fetched: dict[TopicPartition, list[Any]]) -> None:
        try:
            await consumer.commit({tp: records[-1].offset + 1
                                   for tp, records in fetched.items() if records})
        except KafkaError as exc:  # CommitFailedError, IllegalStateError among them
            # Rebalanced meanwhile, or the broker away: whoever next owns the partitions folds
            # the fetch again, which changes nothing (every record keeps its version).
            log.warning("projector.commit_failed", error=str(exc))

    async def ensure_built(self) -> None:
        """Rebuild from offset zero if the read models lost the log's history (a fresh
        Redis, or a flushed one); the API answers 503 meanwhile, never wrong numbers."""
        async with self.building:
            if await self.store.is_built():
                return
            log.warning("projector.rebuilding", reason="read models missing")
            assert self.settings.kafka_bootstrap_servers
            result = await rebuild(self.settings.kafka_bootstrap_servers,
                                   self.settings.events_topic, self.store, signer=self.signer,
                                   helpers=Helpers.of(self.settings))
            await self.store.mark_built()
            log.warning("projector.rebuilt", messages=result.messages, processes=result.processes,
                        seconds=round(result.seconds, 2))

    async def apply_until_done(self, changes: list[Change]) -> None:
        """Apply `changes`; if the batch fails for a reason of its own (not Redis, not a
        rebuild), each change is applied alone and the ones that still fail are
        dead-lettered: one event never stops the fold. Safe to repeat (versions)."""
        try:
            await self._apply_until_done(changes)
        except (HelperFailed, KafkaError):
            raise
        except Exception as exc:  # noqa: BLE001 - which change is at fault is found below
            if len(changes) == 1:
                change = changes[0]
                await self.dead_letter(_dead_body(change), f"{type(exc).__name__}: {exc}",
                                       change.position)
                return
            log.warning("projector.batch_unusable", changes=len(changes),
                        error=f"{type(exc).__name__}: {exc}")
            for change in changes:
                await self.apply_until_done([change])

    async def _apply_until_done(self, changes: list[Change]) -> None:
        # A Redis outage is waited out: the fetch is committed only once it is written.
        delay = 0.1
        while True:
            try:
                result = await self.store.apply(changes, require_built=True)
                break
            except NotBuilt:
                await self.ensure_built()
            except (RedisError, OSError) as exc:
                log.error("projector.redis_unavailable", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        for change, reason in result.rejected:
            await self.dead_letter(_dead_body(change), reason, change.position)
        PROJECTED.inc(result.applied)
        relayed = np.fromiter((c.relayed_at for c in changes if c.relayed_at), np.float64)
        FRESHNESS.observe_many(np.maximum(time.time() - relayed, 0.0))

    async def watch(self) -> None:
        """Rebuild if the read models were lost while no event arrived."""
        if self.folding_live:
            await self.ensure_built()

    async def measure_lag(self) -> None:
        consumer = self.consumer
        if consumer is None or not self.folding_live:
            return
        for tp in consumer.assignment():
            try:
                position = await consumer.position(tp)
                highwater = consumer.highwater(tp)
            except (KafkaError, AssertionError):  # IllegalStateError is a KafkaError
                continue  # not yet fetched or mid-rebalance: next tick
            if highwater is not None:
                LAG.labels(str(tp.partition)).set(max(highwater - position, 0))
                if self.progress is None:
                    continue
                unit = f"projector:{tp.partition}"
                try:
                    await self.progress.report(unit, position, highwater - position)
                    self.reported.add(unit)
                except (RedisError, OSError) as exc:
                    log.warning("projector.progress_unreported", error=str(exc))


def _dead_body(change: Change) -> bytes:
    """What a dead letter carries of a change the reducer could not use."""
    body = {"position": change.position, "kind": change.kind, "key": change.key,
            "version": change.version, "event": change.event}
    try:
        return orjson.dumps(body)
    except TypeError:  # not JSON-writable (the reason it is here, perhaps): its text
        return repr(body).encode("utf-8", "backslashreplace")


class EventPath(mode.Service):
    """The live path as a service of the faust worker, started beside the app rather than
    after it: the app's own group join (its leader topic) is not waited for. A failure
    crashes the worker, which exits to be restarted."""

    def __init__(self, projection: LiveProjection, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.projection = projection

    @mode.Service.task
    async def _project(self) -> None:
        await self.projection.run()


def create_app(settings: Settings, projection: LiveProjection) -> faust.App:
    """The worker's app: the timers that watch the read models and the lag."""
    assert settings.kafka_bootstrap_servers, "KAFKA_BOOTSTRAP_SERVERS is required"
    app = faust.App(
        # The worker's own group (its leader topic) is not the event path's: one group
        # cannot mix faust's assignor with aiokafka's.
        f"{settings.projector_group}-worker",
        broker=[f"{faust_transport.SCHEME}://{s}"
                for s in settings.kafka_bootstrap_servers.split(",")],
        datadir=tempfile.mkdtemp(prefix="salespulse-faust-"),
        web_enabled=False,
        consumer_auto_offset_reset="earliest",  # faust #651: recovery can hang on latest
        broker_session_timeout=10,
        broker_rebalance_timeout=10,
        broker_heartbeat_interval=1,
    )

    @app.timer(1.0)
    async def watch_read_models() -> None:
        # Redis can lose everything while no event arrives: notice it within a second.
        try:
            await projection.watch()
        except (RedisError, OSError) as exc:
            log.error("projector.redis_unavailable", error=str(exc))
        except HelperFailed as exc:  # the next tick rebuilds again
            log.error("projector.rebuild_failed", error=str(exc))

    @app.timer(1.0)  # also the partitions' progress: a halt shows in /healthz within seconds
    async def measure_lag() -> None:
        await projection.measure_lag()

    return app


def run(settings: Settings, loglevel: str = "warning") -> None:
    """Run the projector worker until interrupted."""
    projection = LiveProjection(settings, bootstrap.fact_store(settings,
                                                               bootstrap.redis(settings)))
    worker = faust.Worker(create_app(settings, projection), EventPath(projection),
                          loglevel=loglevel, override_logging=False)
    worker.execute_from_commandline()
