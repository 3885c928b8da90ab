"""The one composition root: settings in, wired adapters out. No module-level clients."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventsourcing.persistence import TrackingRecorder
from redis.asyncio import BlockingConnectionPool, Redis

from services.access.keycache import KeyCache
from services.access.keystore import KeyStore
from services.access.principal import Role
from services.access.revocation import AccessGate
from services.access.tokens import TokenVerifier
from services.connectors.store import ConnectorStore
from services.eventstore.ledger import SalesLedger
from services.readmodels.store import FactStore
from services.settings import Settings

if TYPE_CHECKING:
    from services.api.auth import Authenticator


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
    pool = BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=settings.redis_max_connections,
        timeout=settings.redis_socket_timeout, socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=2)
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes both


def authenticator(settings: Settings, ledger: SalesLedger, client: Redis) -> Authenticator:
    """API keys (cached, revocation announced through Redis), tokens, rate limits."""
    from services.api.auth import Authenticator  # the API's; other processes skip FastAPI

    return Authenticator(key_store(ledger), token_verifier(settings),
                         AccessGate(client, settings.redis_prefix),
                         KeyCache(settings.key_cache_seconds, settings.key_cache_size),
                         settings.rate_limit, settings.key_cache_seconds)


def fact_store(settings: Settings, client: Redis) -> FactStore:
    return FactStore(client, settings.redis_prefix)


def connector_store(settings: Settings, client: Redis) -> ConnectorStore:
    return ConnectorStore(client, settings.redis_prefix)


def issue_key(settings: Settings, tenant: str, role: Role, **scope: str | None) -> str:
    """A new API key straight in the store (no API needed): for operators bootstrapping a
    tenant's first admin key, `salespulse up` and the tests. Returns the token."""
    store_owner = ledger(settings)
    try:
        return key_store(store_owner).create(tenant, role, **scope)[1]  # type: ignore[arg-type]
    finally:
        store_owner.close()
