"""The API key cache and the revocation generation, on a fake clock and hand-written fakes
of the key store and of Redis: a key is looked up in the database once, trusted from the
cache only under the generation it was cached under, and never trusted without Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import jwt
import pytest
from limits import RateLimitItem

from services.access import keycache, keys
from services.access.keycache import KeyCache
from services.access.keystore import KeyRecord
from services.access.principal import Principal
from services.access.revocation import Check
from services.access.tokens import TokenVerifier
from services.api.auth import Authenticator, RateLimited, RevocationUnannounced, Unauthenticated

REP = Principal("acme", "rep", "k1", rep_id="R-1")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_cached_key_is_trusted_only_under_the_generation_it_was_cached_under() -> None:
    cache = KeyCache(30, 100)
    cache.remember("h1", REP, "g1")
    assert cache.trusted("h1", "g1") == REP
    assert cache.trusted("h1", "g2") is None  # a revocation was announced since
    assert cache.trusted("h1", None) is None  # no word from Redis: trust nothing
    assert cache.trusted("h2", "g1") is None


def test_an_entry_lasts_key_cache_seconds() -> None:
    clock = Clock()
    cache = KeyCache(30, 100, clock=clock)
    cache.remember("h1", REP, "g1")
    clock.now += 29.9
    assert cache.trusted("h1", "g1") == REP
    clock.now += 0.2
    assert cache.trusted("h1", "g1") is None


def test_nothing_is_cached_without_a_generation_or_with_the_cache_turned_off() -> None:
    cache = KeyCache(30, 100)
    cache.remember("h1", REP, None)
    assert len(cache) == 0
    for off in (KeyCache(0, 100), KeyCache(30, 0)):
        off.remember("h1", REP, "g1")
        assert off.trusted("h1", "g1") is None


def test_the_cache_holds_at_most_key_cache_size_keys() -> None:
    cache = KeyCache(30, 2)
    for n in range(5):
        cache.remember(f"h{n}", REP, "g1")
    assert len(cache) == 2


def test_entries_are_found_by_a_digest_never_by_the_token() -> None:
    token = keys.mint().token
    found_by = keycache.lookup(token)
    assert found_by == keycache.lookup(token) and token not in found_by
    assert keycache.lookup(token + "x") != found_by


# The authenticator over fakes of its two ports: the key store and the Redis gate.

@dataclass
class FakeKeys:
    """The key store: tokens it knows, how often it was asked, and a hook run mid-read."""

    tokens: dict[str, KeyRecord] = field(default_factory=dict)
    asked: int = 0
    during_read: Callable[[], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, role: str = "rep", rate_limit: str | None = None) -> str:
        minted = keys.mint()
        self.tokens[minted.token] = KeyRecord(
            minted.id, "acme", role, "R-1" if role == "rep" else None, None,  # type: ignore[arg-type]
            None, rate_limit, keys.digest(minted.secret), "2026-01-01T00:00:00+00:00", None)
        return minted.token

    def authenticate(self, token: str) -> KeyRecord | None:
        with self.lock:
            self.asked += 1
        record = self.tokens.get(token)
        if self.during_read is not None:
            self.during_read()
        return record if record is not None and record.revoked_at is None else None

    def revoke(self, tenant: str, key_id: str) -> KeyRecord | None:
        for token, record in self.tokens.items():
            if record.id == key_id and record.tenant == tenant:
                self.tokens[token] = KeyRecord(*(
                    getattr(record, c) if c != "revoked_at" else "now"
                    for c in record.__dataclass_fields__))
                return self.tokens[token]
        return None


@dataclass
class FakeGate:
    """Redis: the generation and a count of hits per window; `down` refuses every call."""

    generation: str = "g1"
    down: bool = False
    read_only: bool = False  # answers checks, refuses the announcement
    hits: dict[str, int] = field(default_factory=dict)
    announced: int = 0

    async def check(self, rate: RateLimitItem | None = None, *identifiers: str) -> Check:
        if self.down:
            raise ConnectionError("Redis unreachable")
        if rate is None:
            return Check(self.generation, True, 0.0)
        window = rate.key_for(*identifiers)
        self.hits[window] = self.hits.get(window, 0) + 1
        allowed = self.hits[window] <= rate.amount
        return Check(self.generation, allowed, 0.0 if allowed else 12.3)

    async def announce(self) -> str:
        if self.down or self.read_only:
            raise ConnectionError("Redis unreachable")
        self.announced += 1
        self.generation = f"g{self.announced + 1}-{id(self)}"
        return self.generation


def _authenticator(store: FakeKeys, gate: FakeGate) -> Authenticator:
    return Authenticator(store, None, gate, KeyCache(30, 100),  # type: ignore[arg-type]
                         "1000/minute")


async def test_a_key_is_read_from_the_store_once_then_answered_from_the_cache() -> None:
    store, gate = FakeKeys(), FakeGate()
    token = store.add()
    auth = _authenticator(store, gate)
    for _ in range(5):
        assert (await auth.admit(token)).rep_id == "R-1"
    assert store.asked == 1
    assert sum(gate.hits.values()) == 5  # every request charged


async def test_a_revocation_announced_elsewhere_is_honoured_on_the_next_request() -> None:
    store, gate = FakeKeys(), FakeGate()
    token = store.add()
    auth = _authenticator(store, gate)
    await auth.admit(token)
    other_process = _authenticator(store, gate)
    key_id = keys.parse(token)[0]  # type: ignore[index]
    assert await other_process.revoke("acme", key_id) is not None
    with pytest.raises(Unauthenticated):
        await auth.admit(token)


async def test_a_revocation_during_the_store_read_is_never_trusted_afterwards() -> None:
    """The generation is read before the store: a revocation committed after the read and
    announced after it leaves the entry under a generation no longer in force."""
    store, gate = FakeKeys(), FakeGate()
    token = store.add()
    auth = _authenticator(store, gate)

    def revoked_meanwhile() -> None:
        store.during_read = None
        store.revoke("acme", keys.parse(token)[0])  # type: ignore[index]
        gate.generation = "g-after-revocation"
    store.during_read = revoked_meanwhile
    await auth.admit(token)  # the store said yes before the revocation committed
    with pytest.raises(Unauthenticated):
        await auth.admit(token)


async def test_without_redis_every_request_asks_the_store_and_the_limit_is_open() -> None:
    store, gate = FakeKeys(), FakeGate()
    token = store.add(rate_limit="1/minute")
    auth = _authenticator(store, gate)
    await auth.admit(token)
    gate.down = True
    for _ in range(3):
        await auth.admit(token)  # over its limit, but the limit cannot be checked
    assert store.asked == 4


async def test_a_key_revoked_while_redis_was_down_stays_refused_when_it_returns() -> None:
    store, gate = FakeKeys(), FakeGate()
    token = store.add()
    admin = store.add(role="admin")
    auth = _authenticator(store, gate)
    await auth.admit(token)
    other_process = _authenticator(store, gate)
    await other_process.admit(token)  # cached there too; it sees no request in the outage
    gate.down = True
    with pytest.raises(RevocationUnannounced) as unannounced:
        await auth.revoke("acme", keys.parse(token)[0])  # type: ignore[index]
    assert unannounced.value.record.revoked_at
    with pytest.raises(Unauthenticated):
        await auth.admit(token)  # the store says so
    gate.down = False
    with pytest.raises(Unauthenticated):
        await auth.admit(token)
    await auth.admit(admin)  # this process announces what it could not
    assert gate.announced == 1
    with pytest.raises(Unauthenticated):
        await other_process.admit(token)


async def test_an_announcement_refused_again_admits_keys_and_tokens_and_stays_pending() -> None:
    store, gate = FakeKeys(), FakeGate(read_only=True)
    token, admin = store.add(), store.add(role="admin")
    auth = _authenticator(store, gate)
    auth.tokens = TokenVerifier("HS256", "s" * 32)
    signed = jwt.encode({"sub": "u-1", "tenant": "acme", "role": "admin",
                         "exp": int(time.time()) + 60}, "s" * 32, algorithm="HS256")
    await auth.admit(admin)
    with pytest.raises(RevocationUnannounced):
        await auth.revoke("acme", keys.parse(token)[0])  # type: ignore[index]
    for _ in range(2):  # never a 500 for them, and the key is read from the store
        assert (await auth.admit(admin)).role == "admin"
        assert (await auth.admit(signed)).subject == "jwt:u-1"
    assert gate.announced == 0 and store.asked == 3
    gate.read_only = False
    await auth.admit(admin)
    assert gate.announced == 1


async def test_over_its_limit_a_credential_is_told_when_to_retry() -> None:
    store, gate = FakeKeys(), FakeGate()
    token = store.add(rate_limit="2/minute")
    auth = _authenticator(store, gate)
    await auth.admit(token)
    await auth.admit(token)
    with pytest.raises(RateLimited) as limited:
        await auth.admit(token)
    assert limited.value.retry_after == 13  # whole seconds, rounded up
