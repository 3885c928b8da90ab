"""Who is calling: every route but /healthz takes `Authorization: Bearer <API key or JWT>`,
resolves it to a Principal (tenant, role, scope), and charges the credential's rate limit.
The tenant always comes from the credential, never from the request.

An API key costs one Redis round trip when it is in the process's key cache (the
revocation generation and the rate limit, one script: services/access/revocation.py), and
a database read besides when it is not, or when a revocation has been announced since it
was cached, or when Redis cannot be reached (then nothing cached is trusted)."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Annotated

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.exceptions import RedisError

from services.access import keycache
from services.access.keycache import KeyCache
from services.access.keystore import KeyRecord, KeyStore
from services.access.principal import ADMINS, READERS, WRITERS, Forbidden, Principal, Role
from services.access.revocation import AccessGate, Check, parse_rate
from services.access.tokens import BadToken, ExpiredToken, TokenVerifier
from services.api.problems import problem

log = structlog.get_logger("auth")
_bearer = HTTPBearer(auto_error=False, description="An API key (`sp_…`, see POST /v1/keys) "
                     "or a signed token (JWT) with the claims tenant, role, sub, exp and "
                     "rep_id (role rep) or team_id (role manager).")
# Redis unreachable or failing: redis-py's own errors, and the socket's.
_REDIS_DOWN = (RedisError, OSError, asyncio.TimeoutError)


class Unauthenticated(Exception):
    pass


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class CredentialStoreUnavailable(Exception):
    pass


class RevocationUnannounced(Exception):
    """The key is revoked in the database, but Redis did not take the new generation."""

    def __init__(self, record: KeyRecord, cache_seconds: float) -> None:
        super().__init__(record.id)
        self.record, self.cache_seconds = record, cache_seconds


@dataclass
class Authenticator:
    keys: KeyStore
    tokens: TokenVerifier | None
    gate: AccessGate
    cache: KeyCache
    default_rate: str
    cache_seconds: float = 30.0  # KEY_CACHE_SECONDS, for the revocation-unannounced message
    # A revocation this process could not announce: announced on its next Redis answer.
    _unannounced: bool = field(default=False, init=False)

    async def admit(self, token: str) -> Principal:
        """The principal behind `token`, its rate limit charged; or Unauthenticated,
        RateLimited, CredentialStoreUnavailable."""
        if token.startswith("sp_"):
            principal, check = await self._key(token)
        elif self.tokens is not None and token.count(".") == 2:
            try:
                principal = self.tokens.principal(token)
            except BadToken as exc:
                raise Unauthenticated(f"invalid token: {exc}") from None
            check = await self._check(principal)
        else:
            raise Unauthenticated("the credential is neither an API key (sp_…) nor a token "
                                  "this service is configured to accept")
        if check is not None and not check.allowed:
            raise RateLimited(max(1, math.ceil(check.retry_after)))
        return principal

    async def _key(self, token: str) -> tuple[Principal, Check | None]:
        found_by = keycache.lookup(token)
        cached = self.cache.candidate(found_by)
        if cached is not None:
            check = await self._check(cached.principal)
            generation = check.generation if check is not None else None
            trusted = self.cache.trusted(found_by, generation)
            if trusted is not None:
                return trusted, check
            # A revocation since, or no Redis: ask the database. The hit is charged
            # already, to this key id, whose rate cannot have changed.
            principal = await self._stored(token)
            self.cache.remember(found_by, principal, generation)
            return principal, check
        # Read before the database: a revocation committed after this read replaces the
        # generation, so what the database says now is never trusted past it.
        generation = await self._generation()
        principal = await self._stored(token)
        self.cache.remember(found_by, principal, generation)
        # No generation: Redis did not answer just now; the limit goes unchecked (below).
        return principal, await self._check(principal) if generation is not None else None

    async def _stored(self, token: str) -> Principal:
        try:
            record = await asyncio.to_thread(self.keys.authenticate, token)
        except Exception as exc:  # noqa: BLE001 - any database failure: 503, never 500
            raise CredentialStoreUnavailable(type(exc).__name__) from exc
        if record is None:
            raise Unauthenticated("unknown or revoked API key")
        return record.principal()

    async def _check(self, principal: Principal) -> Check | None:
        """The generation and the charge; None when Redis did not answer. Then the rate
        limit is not checked (ingest must not depend on Redis, which holds read models)
        and the cache is emptied: entries kept through an outage would match the old
        generation again once Redis is back, even if a revocation could not be announced."""
        rate = parse_rate(principal.rate_limit or self.default_rate)
        try:
            return await self._announce_pending(
                await self.gate.check(rate, principal.tenant, principal.subject))
        except _REDIS_DOWN as exc:
            self._redis_down("rate limit unchecked", exc)
            return None

    async def _generation(self) -> str | None:
        try:
            return (await self._announce_pending(await self.gate.check())).generation
        except _REDIS_DOWN as exc:
            self._redis_down("key cache bypassed", exc)
            return None

    async def _announce_pending(self, check: Check) -> Check:
        if not self._unannounced:
            return check
        generation = await self.gate.announce()
        self._unannounced = False
        log.warning("revocation announced late")
        return Check(generation, check.allowed, check.retry_after)

    def _redis_down(self, what: str, exc: BaseException) -> None:
        self.cache.clear()
        log.warning(what, error=f"{type(exc).__name__}: {exc}")

    async def revoke(self, tenant: str, key_id: str) -> KeyRecord | None:
        """Revoke in the database, then announce it to every API process (a new
        generation). Raises RevocationUnannounced when Redis does not take it."""
        record = await asyncio.to_thread(self.keys.revoke, tenant, key_id)
        return await self._announce_change(record)

    async def rescope(self, tenant: str, key_id: str, role: Role, rep_id: str | None,
                      team_id: str | None) -> KeyRecord | None:
        """Another role or scope for a key, announced like a revocation: no process goes on
        trusting what it cached, and open streams on the key end."""
        record = await asyncio.to_thread(self.keys.rescope, tenant, key_id, role,
                                         rep_id=rep_id, team_id=team_id)
        return await self._announce_change(record)

    async def _announce_change(self, record: KeyRecord | None) -> KeyRecord | None:
        if record is None:
            return None
        self.cache.clear()  # this process at least never trusts the old record again
        try:
            await self.gate.announce()
        except _REDIS_DOWN as exc:
            self._unannounced = True
            log.error("revocation unannounced", key=record.id,
                      error=f"{type(exc).__name__}: {exc}")
            raise RevocationUnannounced(record, self.cache_seconds) from None
        return record

    async def generation(self) -> str | None:
        """The revocation generation now; None when Redis does not answer."""
        try:
            return (await self.gate.check()).generation
        except _REDIS_DOWN:
            return None

    async def recheck(self, token: str) -> Principal:
        """What `token` stands for now, asked of the database (a key) or checked again (a
        token: signature and `exp`), its rate limit not charged; raises Unauthenticated
        (ExpiredToken for a token past its `exp`) or CredentialStoreUnavailable."""
        if token.startswith("sp_"):
            return await self._stored(token)
        if self.tokens is None:
            raise Unauthenticated("tokens are no longer accepted")
        try:
            return self.tokens.principal(token)
        except BadToken as exc:
            raise Unauthenticated(f"invalid token: {exc}") from exc


# How often an open stream checks that its credential still stands (docs/SECURITY.md).
STANDING_CHECK_SECONDS = 0.5


@dataclass
class Standing:
    """Whether the credential an open stream was admitted with still stands as it did then:
    not revoked, not expired, the same role and scope. A key is read again from the
    database only when the revocation generation moved (a revocation or a rescope anywhere),
    or when Redis does not say; a token's signature and `exp` are checked each time."""

    auth: Authenticator
    token: str
    principal: Principal
    _generation: str | None = field(default=None, init=False)
    _read_at: float = field(default=-math.inf, init=False)  # monotonic, last store read

    async def lapsed(self) -> str | None:
        """None while the credential stands; else why not: `revoked`, `expired`, `changed`
        (another role or scope), or `unverifiable` (the credential store did not answer).
        A key is read again at least every KEY_CACHE_SECONDS whatever the generation says,
        so a revocation that could not be announced ends the stream within the same bound
        as it leaves a cached key trusted."""
        generation = None
        if self.token.startswith("sp_"):
            generation = await self.auth.generation()
            if generation is not None and generation == self._generation and \
                    time.monotonic() - self._read_at < self.auth.cache_seconds:
                return None
        try:
            now = await self.auth.recheck(self.token)
        except Unauthenticated as exc:
            return "expired" if isinstance(exc.__cause__, ExpiredToken) else "revoked"
        except CredentialStoreUnavailable:
            return "unverifiable"  # fail closed: the client reconnects and is asked again
        if (now.tenant, now.role, now.rep_id, now.team_id) != (
                self.principal.tenant, self.principal.role, self.principal.rep_id,
                self.principal.team_id):
            return "changed"
        self._generation, self._read_at = generation, time.monotonic()
        return None


async def get_principal(request: Request, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    if credentials is None:
        raise Unauthenticated("a credential is required: Authorization: Bearer <API key or "
                              "token>")
    authenticator: Authenticator = request.app.state.services.auth
    principal = await authenticator.admit(credentials.credentials)
    structlog.contextvars.bind_contextvars(tenant=principal.tenant, role=principal.role,
                                           credential=principal.subject)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_standing(request: Request, principal: PrincipalDep, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Standing:
    if credentials is None:  # get_principal has refused it already
        raise Unauthenticated("a credential is required")
    return Standing(request.app.state.services.auth, credentials.credentials, principal)


StandingDep = Annotated[Standing, Depends(get_standing)]


async def get_tenant(principal: PrincipalDep) -> str:
    return principal.tenant


TenantDep = Annotated[str, Depends(get_tenant)]


def requires(roles: frozenset[Role], action: str) -> Depends:  # type: ignore[valid-type]
    async def check(principal: PrincipalDep) -> Principal:
        principal.require(roles, action)
        return principal
    return Depends(check)


READ = requires(READERS, "read figures")
WRITE = requires(WRITERS, "write events")
ADMINISTER = requires(ADMINS, "configure the tenant")


def install(app: FastAPI) -> None:
    """Problem answers for the access failures."""

    @app.exception_handler(Unauthenticated)
    async def unauthenticated(_request: Request, exc: Unauthenticated) -> Response:
        answer = problem(401, "unauthenticated", "Credential required or invalid", str(exc))
        answer.headers["WWW-Authenticate"] = 'Bearer realm="salespulse"'
        return answer

    @app.exception_handler(Forbidden)
    async def forbidden(_request: Request, exc: Forbidden) -> Response:
        return problem(403, "forbidden", "Not allowed for this credential", exc.message,
                       [{"field": exc.field or "", "message": exc.message}])

    @app.exception_handler(RateLimited)
    async def rate_limited(_request: Request, exc: RateLimited) -> Response:
        answer = problem(429, "rate-limited", "Too many requests",
                         f"this credential's rate limit is spent; retry in {exc.retry_after} s")
        answer.headers["Retry-After"] = str(exc.retry_after)
        return answer

    @app.exception_handler(RevocationUnannounced)
    async def unannounced(_request: Request, exc: RevocationUnannounced) -> Response:
        answer = problem(503, "revocation-unannounced", "Revoked, but not yet announced",
                         f"key {exc.record.id} IS revoked in the database, but the revocation "
                         "could not be announced to the API processes (Redis unreachable): "
                         "one that cached the key may still accept it for up to "
                         f"{exc.cache_seconds:g} s (KEY_CACHE_SECONDS). This process announces "
                         "it as soon as Redis answers; DELETE again to make sure.")
        answer.headers["Retry-After"] = "1"
        return answer

    @app.exception_handler(CredentialStoreUnavailable)
    async def store_down(_request: Request, exc: CredentialStoreUnavailable) -> Response:
        answer = problem(503, "credential-store-unavailable", "Credentials cannot be checked",
                         f"the credential store cannot be reached; retry later ({exc})")
        answer.headers["Retry-After"] = "1"
        return answer
