"""When an open stream's credential stops standing (services/api/auth.py, `Standing`): the
decisions, over a hand-written fake of the two questions it asks the authenticator."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from services.access.principal import Principal
from services.access.tokens import ExpiredToken
from services.api.auth import CredentialStoreUnavailable, Standing, Unauthenticated

KEY = "sp_k1_secret"
REP = Principal("acme", "rep", "k1", rep_id="R-1")


@dataclass
class FakeAuthenticator:
    """The revocation generation Redis holds, and what the store says the credential is."""

    cache_seconds: float = 30.0  # KEY_CACHE_SECONDS
    generation_now: str | None = "g1"
    stands_for: Principal | Exception = REP
    rechecks: list[str] = field(default_factory=list)

    async def generation(self) -> str | None:
        return self.generation_now

    async def recheck(self, token: str) -> Principal:
        self.rechecks.append(token)
        if isinstance(self.stands_for, Exception):
            raise self.stands_for
        return self.stands_for


def lapsed(standing: Standing) -> str | None:
    return asyncio.run(standing.lapsed())


def test_a_key_is_read_again_only_when_the_generation_moves() -> None:
    auth = FakeAuthenticator()
    standing = Standing(auth, KEY, REP)  # type: ignore[arg-type]
    assert [lapsed(standing) for _ in range(3)] == [None, None, None]
    assert len(auth.rechecks) == 1  # the first check; then the generation stood still
    auth.generation_now = "g2"
    assert lapsed(standing) is None and len(auth.rechecks) == 2


def test_a_revoked_or_rescoped_key_ends_the_stream() -> None:
    auth = FakeAuthenticator()
    standing = Standing(auth, KEY, REP)  # type: ignore[arg-type]
    assert lapsed(standing) is None
    auth.generation_now, auth.stands_for = "g2", Principal("acme", "manager", "k1",
                                                           team_id="T-1")
    assert lapsed(standing) == "changed"
    auth.stands_for = Unauthenticated("unknown or revoked API key")
    assert lapsed(standing) == "revoked"


def test_without_redis_the_key_is_asked_of_the_store_each_time_and_fails_closed() -> None:
    auth = FakeAuthenticator(generation_now=None)
    standing = Standing(auth, KEY, REP)  # type: ignore[arg-type]
    assert lapsed(standing) is None and lapsed(standing) is None
    assert len(auth.rechecks) == 2
    auth.stands_for = CredentialStoreUnavailable("OperationalError")
    assert lapsed(standing) == "unverifiable"


def test_a_token_is_checked_every_time_and_ends_at_its_expiry() -> None:
    auth = FakeAuthenticator()
    standing = Standing(auth, "a.signed.token", REP)  # type: ignore[arg-type]
    assert lapsed(standing) is None and lapsed(standing) is None
    assert len(auth.rechecks) == 2
    try:
        raise Unauthenticated("invalid token") from ExpiredToken("Signature has expired")
    except Unauthenticated as expired:
        auth.stands_for = expired
    assert lapsed(standing) == "expired"


def test_a_key_is_read_again_once_the_cache_bound_passes_whatever_the_generation() -> None:
    # A revocation Redis could not take leaves the generation where it was: the stream
    # still ends within KEY_CACHE_SECONDS, as a cached key stops being trusted.
    auth = FakeAuthenticator(cache_seconds=0.0)
    standing = Standing(auth, KEY, REP)  # type: ignore[arg-type]
    assert lapsed(standing) is None and len(auth.rechecks) == 1
    auth.stands_for = Unauthenticated("unknown or revoked API key")
    assert lapsed(standing) == "revoked" and len(auth.rechecks) == 2
