"""The one composition root: settings in, wired adapters out. No module-level clients."""

from __future__ import annotations

from eventsourcing.persistence import TrackingRecorder
from redis.asyncio import Redis

from events.ledger import SalesLedger
from projections.readmodel import FactStore
from services.settings import Settings


def ledger(settings: Settings) -> SalesLedger:
    return SalesLedger(env=settings.event_store_env())


def tracking(ledger: SalesLedger) -> TrackingRecorder:
    # Same database as the events, so the relay's position survives with them.
    return ledger.factory.tracking_recorder()


def redis(settings: Settings) -> Redis:
    return Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)


def fact_store(settings: Settings, client: Redis) -> FactStore:
    return FactStore(client, settings.redis_prefix)
