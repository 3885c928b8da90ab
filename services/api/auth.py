"""Who is calling: every route but /healthz takes `Authorization: Bearer <API key or JWT>`,
resolves it to a Principal (tenant, role, scope), and charges the credential's rate limit.
The tenant always comes from the credential, never from the request."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import parse as parse_rate
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import BlockingConnectionPool

from services.access.keystore import KeyStore
from services.access.principal import ADMINS, READERS, WRITERS, Forbidden, Principal, Role
from services.access.tokens import BadToken, TokenVerifier
from services.api.deps import get_services
from services.api.problems import problem

log = structlog.get_logger("auth")
_bearer = HTTPBearer(auto_error=False, description="An API key (`sp_…`, see POST /v1/keys) "
                     "or a signed token (JWT) with the claims tenant, role, sub, exp and "
                     "rep_id (role rep) or team_id (role manager).")


class Unauthenticated(Exception):
    pass


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class CredentialStoreUnavailable(Exception):
    pass


@dataclass
class Authenticator:
    keys: KeyStore
    tokens: TokenVerifier | None
    limiter: MovingWindowRateLimiter
    default_rate: str

    async def principal(self, token: str) -> Principal:
        if token.startswith("sp_"):
            try:
                record = await asyncio.to_thread(self.keys.authenticate, token)
            except Exception as exc:  # noqa: BLE001 - any database failure: 503, never 500
                raise CredentialStoreUnavailable(type(exc).__name__) from exc
            if record is None:
                raise Unauthenticated("unknown or revoked API key")
            return record.principal()
        if self.tokens is not None and token.count(".") == 2:
            try:
                return self.tokens.principal(token)
            except BadToken as exc:
                raise Unauthenticated(f"invalid token: {exc}") from None
        raise Unauthenticated("the credential is neither an API key (sp_…) nor a token this "
                              "service is configured to accept")

    async def charge(self, principal: Principal) -> None:
        rate = parse_rate(principal.rate_limit or self.default_rate)
        who = (principal.tenant, principal.subject)
        try:
            allowed = await self.limiter.hit(rate, *who)
            reset = 0.0 if allowed else (await self.limiter.get_window_stats(rate, *who))[0]
        except Exception as exc:  # noqa: BLE001
            # Fail open: ingest must not depend on Redis, which only holds read models.
            log.warning("rate limit unchecked", error=f"{type(exc).__name__}: {exc}")
            return
        if not allowed:
            raise RateLimited(max(1, math.ceil(reset - time.time())))


def rate_limiter(redis_url: str, prefix: str, connections: int = 64
                 ) -> MovingWindowRateLimiter:
    # A blocking pool: under a burst a check waits for a connection instead of failing
    # (a failing check lets the request through, see `charge`), so a burst cannot slip
    # past the limit by exhausting the pool.
    pool = BlockingConnectionPool.from_url(redis_url, max_connections=connections, timeout=10)
    storage = RedisStorage(redis_url.replace("redis://", "async+redis://", 1)
                           .replace("rediss://", "async+rediss://", 1),
                           implementation="redispy", key_prefix=f"{prefix}:limits",
                           connection_pool=pool)  # type: ignore[arg-type]
    return MovingWindowRateLimiter(storage)


async def get_principal(request: Request, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    if credentials is None:
        raise Unauthenticated("a credential is required: Authorization: Bearer <API key or "
                              "token>")
    authenticator: Authenticator = get_services(request).auth
    principal = await authenticator.principal(credentials.credentials)
    await authenticator.charge(principal)
    structlog.contextvars.bind_contextvars(tenant=principal.tenant, role=principal.role,
                                           credential=principal.subject)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_tenant(principal: PrincipalDep) -> str:
    return principal.tenant


TenantDep = Annotated[str, Depends(get_tenant)]


def requires(roles: frozenset[Role], action: str) -> Depends:  # type: ignore[valid-type]
    def check(principal: PrincipalDep) -> Principal:
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

    @app.exception_handler(CredentialStoreUnavailable)
    async def store_down(_request: Request, exc: CredentialStoreUnavailable) -> Response:
        answer = problem(503, "credential-store-unavailable", "Credentials cannot be checked",
                         f"the credential store cannot be reached; retry later ({exc})")
        answer.headers["Retry-After"] = "1"
        return answer
