"""The one composition root: settings in, wired adapters out. No module-level clients."""

from __future__ import annotations

from eventsourcing.persistence import TrackingRecorder
from redis.asyncio import Redis

from events.ledger import SalesLedger
from projections.readmodel import FactStore
from services.access.keystore import KeyStore
from services.access.principal import Role
from services.access.tokens import TokenVerifier
from services.settings import Settings


def ledger(settings: Settings) -> SalesLedger:
    return SalesLedger(env=settings.event_store_env())


def tracking(ledger: SalesLedger) -> TrackingRecorder:
    # Same database as the events, so the relay's position survives with them.
    return ledger.factory.tracking_recorder()


def key_store(ledger: SalesLedger) -> KeyStore:
    # Same database as the events: one backup covers both.
    return KeyStore(ledger.recorder.datastore)  # type: ignore[attr-defined]


def token_verifier(settings: Settings) -> TokenVerifier | None:
    key = settings.jwt_public_key if settings.jwt_algorithm.startswith("RS") \
        else settings.jwt_secret
    if not key:
        return None
    return TokenVerifier(settings.jwt_algorithm, key, settings.jwt_audience, settings.jwt_issuer)


def redis(settings: Settings) -> Redis:
    return Redis.from_url(settings.redis_url, socket_timeout=settings.redis_socket_timeout,
                          socket_connect_timeout=2)


def fact_store(settings: Settings, client: Redis) -> FactStore:
    return FactStore(client, settings.redis_prefix)


def issue_key(settings: Settings, tenant: str, role: Role, **scope: str | None) -> str:
    """A new API key straight in the store (no API needed): for operators bootstrapping a
    tenant's first admin key, `salespulse up` and the tests. Returns the token."""
    store_owner = ledger(settings)
    try:
        return key_store(store_owner).create(tenant, role, **scope)[1]  # type: ignore[arg-type]
    finally:
        store_owner.close()
