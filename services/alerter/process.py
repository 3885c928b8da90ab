"""The alerter process (`salespulse alerter`): the events topic in, alerts out.

It reads every partition of the events topic from the beginning and rebuilds its
state (the engine is pure and fast: a year of history in seconds), merging the
partitions in the relay's global order (`position`) so rules that join subjects
see them as they were. Timers fire on event time while it replays and on the
clock once it has caught up with events as recent as the clock (until then, imported
history keeps its own time: the latest event's). Because alert and transition ids are deterministic
and delivered ids are remembered in Redis, a restart re-derives everything and
delivers nothing twice. A checkpoint (`services/alerter/checkpoints.py`: the engine's state
with the offsets it reflects) lets a restart resume from there instead of offset zero;
K alerters share the tenants (`alerts/tenancy.py`), each reading every partition for the
order and folding only its own tenants' events.

A transition that is delivered more than `alert_history_grace_seconds` after the
moment it became known (in event time: the moment it describes, or the clock when a late
event showed it) is history: stored and streamed, marked `history: true`, and never sent
to webhooks. So is one a late event found held only in the past (`past`). A retraction
is told on every channel, webhooks included, unless it is itself history.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx
import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import Counter, Gauge

from alerts.engine import AlertEngine
from alerts.lifecycle import Alert, Transition
from alerts.tenancy import TenantShare
from projections.facts import Change
from services import bootstrap, signing
from services.alerter.checkpoints import CAUGHT_UP, FOLDED, RESUMED, Checkpoints
from services.alerter.delivery import Composer, Send
from services.alerter.dispatcher import Dispatcher
from services.alerter.merge import PartitionMerge
from services.alerter.routes import routed
from services.alerter.store import AlertStore, rule_settings
from services.alerter.webhooks import Delivery, deliver
from services.kafka import ensure_topics, producer
from services.progress import ProgressBoard
from services.settings import Settings

log = structlog.get_logger("alerter")
STOP_GRACE_SECONDS = 3.0  # for webhook deliveries in flight when the alerter stops
TRANSITIONS = Counter("salespulse_alerts_total", "Alert transitions delivered",
                      ["rule", "kind", "history"])
LAG = Gauge("salespulse_alert_fire_delay_seconds",
            "Clock time of delivery minus the moment the transition describes (last)")
DEAD_LETTERED = Counter("salespulse_alerter_dead_lettered_total",
                        "Events the alert engine could not use, sent to the dead-letter topic")
REPORT_SECONDS = 1.0


class Clock(Protocol):
    def now(self) -> datetime: ...


class WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class Alerter:
    def __init__(self, settings: Settings, store: AlertStore, producer: AIOKafkaProducer | None,
                 clock: Clock | None = None, progress: ProgressBoard | None = None,
                 dispatcher: Dispatcher | None = None,
                 checkpoints: Checkpoints | None = None) -> None:
        self.settings, self.store, self.producer = settings, store, producer
        self.dispatcher = dispatcher  # routes to people's channels through the outbox
        self.progress = progress
        self.share = TenantShare(settings.alerter_instances, settings.alerter_index)
        self.checkpoints = checkpoints
        self.reported_at = 0.0
        self.clock = clock or WallClock()
        self.engine = AlertEngine(rule_settings(settings))
        self.signer = signing.signer(settings)
        self.http = httpx.AsyncClient(timeout=5)
        self.pending: set[asyncio.Task[bool]] = set()
        # Replaying history, the clock is the latest event time; live, the wall clock.
        self.live = False

    def now(self) -> datetime:
        """The wall clock, but never behind the latest event seen: a front end whose clock
        runs ahead (or the demo's time-compressed feed) still gets its alerts on time."""
        wall = self.clock.now()
        return max(wall, self.engine.clock) if self.engine.clock else wall

    async def publish(self, transitions: list[Transition]) -> None:
        now = self.clock.now()
        grace = timedelta(seconds=self.settings.alert_history_grace_seconds)
        stamped = [(t, {"history": t.past or now - (t.known_at or t.at) > grace,
                        "delivered_at": now.isoformat()}) for t in transitions]
        if self.dispatcher is not None:  # in the outbox before marked delivered: never lost
            await self.dispatcher.told(stamped, now)
        fresh = await self.store.record(stamped)
        for transition, extra in fresh:
            TRANSITIONS.labels(transition.alert.rule, transition.kind,
                               str(extra["history"]).lower()).inc()
            body = orjson.dumps({**transition.as_json(), **extra})
            if self.producer is not None:
                await self.producer.send(self.settings.alerts_topic, value=body,
                                         key=transition.alert.id.encode())
            if not extra["history"]:
                LAG.set((now - (transition.known_at or transition.at)).total_seconds())
                await self.notify(transition.alert.tenant, transition.id, body)

    async def notify(self, tenant: str, transition_id: str, body: bytes) -> None:
        for endpoint in await self.store.webhooks(tenant):
            async def dead(entry: dict[str, Any], tenant: str = tenant) -> None:
                await self.store.dead_letter(tenant, entry)

            task = asyncio.create_task(deliver(
                self.http, endpoint, Delivery(tenant, transition_id, body),
                self.settings.webhook_attempts, self.settings.webhook_backoff_seconds, dead))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

    async def run(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        topic = self.settings.events_topic
        started, caught_up = time.monotonic(), False  # restart to live: what resuming shortens
        partitions = await _partitions(consumer, topic)
        consumer.assign(partitions)
        merge = PartitionMerge(partitions, self.signer,
                               None if self.share.whole else self.share.owns)
        await self.resume(consumer, partitions, merge)
        log.info("alerter.started", partitions=len(partitions), topic=topic,
                 share=self.share.unit, resumed_from=merge.last)
        while not stop.is_set():
            # Wall-clock timers matter only once live; while replaying, events move time.
            # Never wait 0: a loop that never suspends starves signals (a stop) and the CPU.
            due = self.engine.next_due() if self.live else None
            wait = 0.2 if due is None else min(0.2, max(
                (due - self.now()).total_seconds(), 0.01))
            merge.add(await consumer.getmany(timeout_ms=int(wait * 1000), max_records=5000))
            lagging = {tp for tp in partitions
                       if (consumer.highwater(tp) is None
                           or await consumer.position(tp) < (consumer.highwater(tp) or 0))}
            transitions = []
            grace = timedelta(seconds=self.settings.alert_history_grace_seconds)
            taken = merge.take(lagging)
            FOLDED.inc(len(taken))
            for change in taken:
                try:
                    transitions += self.engine.apply(change)
                except Exception as exc:  # noqa: BLE001 - one bad message must not stop alerts
                    await self.dead_letter(change, f"{type(exc).__name__}: {exc}")
                    continue
                # Once an event as recent as the clock arrives, time is the clock's.
                self.live = self.live or self.engine.clock is not None and (
                    self.engine.clock >= self.clock.now() - grace)
            if not lagging and not any(merge.buffers.values()):
                if not caught_up:
                    caught_up = True
                    CAUGHT_UP.set(time.monotonic() - started)
                    log.info("alerter.caught_up", seconds=time.monotonic() - started)
                if self.live:  # each tenant to the wall clock, or to its own if ahead
                    transitions += self.engine.advance(self.clock.now())
            if self.live and self.dispatcher is not None:
                transitions += await self.dispatcher.escalations(self.clock.now(),
                                                                 self.open_alerts)
            if transitions:
                await self.publish(transitions)
            if self.checkpoints is not None and self.checkpoints.due(
                    len(taken) + len(transitions)):
                await self.checkpoint(consumer, partitions, merge)
            await self.report(consumer, partitions, merge)
        if self.checkpoints is not None:
            await self.checkpoint(consumer, partitions, merge)
        if self.progress is not None:
            try:  # stopped on purpose: no longer watched
                await self.progress.withdraw(self.share.unit)
            except Exception as exc:  # noqa: BLE001 - stopping anyway
                log.warning("alerter.progress_unwithdrawn", error=str(exc))
        # Deliveries in flight get a moment to finish; a long backoff must not hold a stop
        # past the supervisor's patience (they are lost, as with a crash: docs/ALERTS.md).
        if self.pending:
            _, unfinished = await asyncio.wait(self.pending, timeout=STOP_GRACE_SECONDS)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        await self.http.aclose()

    def managers(self, tenant: str) -> dict[str, str | None]:
        """Each rep's current manager (rep.joined, rep.moved), for the escalation ladder."""
        reps = self.engine.tenant(tenant).ctx.kind("rep")
        return {rep: rec["history"][-1][2] for rep, rec in reps.items() if rec.get("history")}

    def open_alerts(self) -> list[Alert]:
        return [a for tenant in self.engine.tenants.values() for a in tenant.open.values()]

    async def dead_letter(self, change: Change, reason: str) -> None:
        """An event the engine could not use: to the dead-letter topic with its reason and
        position; the alerts go on without it."""
        DEAD_LETTERED.inc()
        log.warning("alerter.dead_letter", position=change.position, reason=reason[:500])
        if self.producer is None:
            return
        try:
            body = orjson.dumps(change._asdict())
        except TypeError:
            body = repr(change).encode("utf-8", "backslashreplace")
        await self.producer.send(self.settings.dead_letter_topic, value=body, headers=[
            ("source", b"alerter"), ("position", str(change.position).encode()),
            ("reason", reason.encode("utf-8", "backslashreplace")[:1000])])

    async def report(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition],
                     merge: PartitionMerge) -> None:
        """Once a second: the last position taken, and the messages not yet taken (fetched
        and waiting in the merge, or not yet fetched)."""
        now = time.monotonic()
        if self.progress is None or now - self.reported_at < REPORT_SECONDS:
            return
        self.reported_at = now
        behind = sum(len(buffer) for buffer in merge.buffers.values())
        for tp in partitions:
            highwater = consumer.highwater(tp)
            if highwater is not None:
                behind += max(highwater - await consumer.position(tp), 0)
        try:
            await self.progress.report(self.share.unit, merge.last or 0, behind)
        except Exception as exc:  # noqa: BLE001 - reporting must never stop alerts
            log.warning("alerter.progress_unreported", error=f"{type(exc).__name__}: {exc}")

    async def resume(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition],
                     merge: PartitionMerge) -> None:
        """From the checkpoint's offsets and state if there is a usable one (the engine, the
        merge's place, live or not); else from offset zero, rebuilding everything."""
        async def first() -> dict[int, int]:
            offsets = await consumer.beginning_offsets(partitions)
            return {tp.partition: offsets[tp] for tp in partitions}

        resumed = None if self.checkpoints is None else await self.checkpoints.load(
            lambda: AlertEngine(rule_settings(self.settings)), len(partitions), first)
        if resumed is None:
            await consumer.seek_to_beginning(*partitions)
            RESUMED.set(0)
            return
        self.engine, self.live, merge.last = resumed.engine, resumed.live, resumed.last
        for tp in partitions:
            consumer.seek(tp, resumed.offsets[tp.partition])
        RESUMED.set(resumed.last or 0)

    async def checkpoint(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition],
                         merge: PartitionMerge) -> None:
        """The engine's state with the offsets of the first message not yet taken of each
        partition (fetched and waiting in the merge, or the next to fetch)."""
        assert self.checkpoints is not None
        unread = merge.unread()
        offsets = {tp.partition: unread[tp] if tp in unread else await consumer.position(tp)
                   for tp in partitions}
        try:
            await self.checkpoints.save(self.engine, offsets, merge.last, self.live)
        except Exception as exc:  # noqa: BLE001 - a missed checkpoint costs a longer replay
            log.warning("alerter.checkpoint_unsaved", error=f"{type(exc).__name__}: {exc}")


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    for _ in range(600):
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        await consumer._client.force_metadata_update()  # noqa: SLF001 - no public call
        await asyncio.sleep(0.1)
    raise RuntimeError(f"topic {topic} has no partitions")


async def main(settings: Settings, stop: asyncio.Event, composer: Composer | None = None,
               send: Send | None = None) -> None:
    """The alerter; `composer` and `send` make and send people's messages (default: the
    tenant's words, alerts/messages.py, through services/alerter/channels)."""
    assert settings.kafka_bootstrap_servers, "KAFKA_BOOTSTRAP_SERVERS is required"
    share = TenantShare(settings.alerter_instances, settings.alerter_index)  # refused early
    await ensure_topics(settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=20)
    kafka = producer(settings)
    redis = bootstrap.redis(settings)
    await consumer.start()
    await kafka.start()
    store = AlertStore(redis, settings.redis_prefix)
    try:
        async with routed(settings, redis, store, composer, send, share) as dispatcher:
            alerter = Alerter(settings, store, kafka, dispatcher=dispatcher,
                              progress=ProgressBoard(redis, settings.redis_prefix),
                              checkpoints=Checkpoints(redis, settings, share)
                              if settings.alerter_checkpoint else None)
            dispatcher.managers = alerter.managers
            await alerter.run(consumer, stop)
    finally:
        await consumer.stop()
        await kafka.stop()
        await redis.aclose()
