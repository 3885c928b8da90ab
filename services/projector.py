"""The projector: a faust agent that keeps the fact records in Redis up to date.

Messages are taken in batches so Redis is written once per batch; a message
that cannot be decoded, or whose event the reducer cannot use, goes to the
dead-letter topic with the reason and the stream carries on.
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import faust
import orjson
import structlog
from prometheus_client import Counter, Gauge, Histogram
from redis.exceptions import RedisError

from events.parsing import check_event
from projections.facts import Change
from projections.readmodel import FactStore, NotBuilt
from services import bootstrap, faust_transport
from services.settings import Settings

log = structlog.get_logger("projector")
PROJECTED = Counter("salespulse_projected_events_total", "Events applied to the read models")
FRESHNESS = Histogram(
    "salespulse_projection_freshness_seconds", "From the relay publishing an event to its "
    "read model being written", buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
LAG = Gauge("salespulse_projector_lag_messages", "Messages not yet consumed, per partition",
            ["partition"])
DEAD_LETTERED = Counter("salespulse_dead_lettered_total", "Messages sent to the dead-letter topic")


def decode(raw: bytes) -> Change:
    """A relayed message, checked against the contract; raises ValueError if unusable."""
    try:
        change = Change.from_message(orjson.loads(raw))
        check_event(change.event, tenant=change.tenant)
    except Exception as exc:  # noqa: BLE001 - any failure to decode makes it a poison message
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
    return change


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch is folded.

    A batch allocates thousands of JSON dicts, none in a cycle, that refcounting frees when
    the batch is done; meanwhile the collector would walk them again and again (a quarter
    of the decode time in services.bench_fold). Collection resumes after the batch, so
    nothing cyclic is kept for longer than one batch.
    """
    if not gc.isenabled():  # nested, or turned off by someone else: leave it as it is
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _event_id(raw: bytes) -> str | None:
    """The event id in a message, if it has one: what the log names a dead letter by."""
    try:
        return str(orjson.loads(raw)["event"]["id"])
    except Exception:  # noqa: BLE001 - poison has no id
        return None


def create_app(settings: Settings) -> faust.App:
    assert settings.kafka_bootstrap_servers, "KAFKA_BOOTSTRAP_SERVERS is required"
    app = faust.App(
        settings.projector_group,
        broker=[f"{faust_transport.SCHEME}://{s}"
                for s in settings.kafka_bootstrap_servers.split(",")],
        datadir=tempfile.mkdtemp(prefix="salespulse-faust-"),
        web_enabled=False,
        topic_partitions=settings.kafka_partitions,
        consumer_auto_offset_reset="earliest",  # faust #651: recovery can hang on latest
        broker_session_timeout=10,  # Tansu: a member joins after ~half the rebalance timeout
        broker_rebalance_timeout=10,
        broker_heartbeat_interval=1,
        producer_acks=-1,
    )
    events_topic = app.topic(settings.events_topic, key_serializer="raw", value_serializer="raw")
    dead_letters = app.topic(settings.dead_letter_topic, key_serializer="raw",
                             value_serializer="raw")
    state: dict[str, Any] = {}

    async def dead_letter(raw: bytes, reason: str) -> None:
        DEAD_LETTERED.inc()
        log.warning("projector.dead_letter", reason=reason, event_id=_event_id(raw))
        await dead_letters.send(value=raw, headers={"reason": reason.encode()[:1000]})

    building = asyncio.Lock()

    async def ensure_built(store: FactStore) -> None:
        """Rebuild from offset zero if the read models lost the log's history (a fresh
        Redis, or a flushed one); the API answers 503 meanwhile, never wrong numbers."""
        async with building:
            if await store.is_built():
                return
            from services.rebuild import rebuild

            log.warning("projector.rebuilding", reason="read models missing")
            assert settings.kafka_bootstrap_servers
            result = await rebuild(settings.kafka_bootstrap_servers, settings.events_topic,
                                   store)
            await store.mark_built()
            log.warning("projector.rebuilt", messages=result.messages,
                        seconds=round(result.seconds, 2))

    async def apply_until_done(store: FactStore, changes: list[Change]) -> None:
        # Never let a Redis outage escape: take() acks a batch even when its body raises.
        delay = 0.1
        while True:
            try:
                result = await store.apply(changes, require_built=True)
                break
            except NotBuilt:
                await ensure_built(store)
            except (RedisError, OSError) as exc:
                log.error("projector.redis_unavailable", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        for change, reason in result.rejected:
            await dead_letter(orjson.dumps({"position": change.position, "kind": change.kind,
                                            "key": change.key, "version": change.version,
                                            "event": change.event}), reason)
        PROJECTED.inc(result.applied)
        written = time.time()
        for change in changes:
            if change.relayed_at:
                FRESHNESS.observe(max(written - change.relayed_at, 0.0))

    @app.timer(1.0)
    async def watch_read_models() -> None:
        # Redis can lose everything while no event arrives: notice it within a second.
        if "store" in state:
            try:
                await ensure_built(state["store"])
            except (RedisError, OSError) as exc:
                log.error("projector.redis_unavailable", error=str(exc))

    @app.timer(5.0)
    async def measure_lag() -> None:
        for tp in app.consumer.assignment():
            try:
                position = await app.consumer.position(tp)
                highwater = app.consumer.highwater(tp)
            except Exception:  # noqa: BLE001 - not yet fetched or mid-rebalance: next tick
                continue
            if position is not None and highwater is not None:
                LAG.labels(str(tp.partition)).set(max(highwater - position, 0))

    @app.agent(events_topic, concurrency=1)  # faust #606: concurrency>1 can commit too early
    async def project(stream: Any) -> None:
        if "store" not in state:
            state["store"] = bootstrap.fact_store(settings, bootstrap.redis(settings))
            await ensure_built(state["store"])
        async for values in stream.take(2000, within=0.01):
            changes: list[Change] = []
            poisoned: list[tuple[Any, str]] = []
            with gc_paused():
                for raw in values:
                    try:
                        changes.append(decode(raw))
                    except ValueError as exc:
                        poisoned.append((raw, str(exc)))
            for raw, reason in poisoned:
                await dead_letter(raw if isinstance(raw, bytes) else repr(raw).encode(), reason)
            await apply_until_done(state["store"], changes)

    return app


def run(settings: Settings, loglevel: str = "warning") -> None:
    """Run the projector worker until interrupted."""
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, override_logging=False)
    worker.execute_from_commandline()
