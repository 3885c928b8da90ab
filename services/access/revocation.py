"""The one Redis round trip of an authenticated request: read the revocation generation and
charge the credential's rate limit, in one Lua script.

The generation (`{prefix}:keys:generation`) is a random value replaced after every
revocation; a cached key is trusted only under the generation it was cached under
(services/access/keycache.py). A missing generation (a fresh or flushed Redis) is set to a
new random value, never one seen before, so a lost Redis cannot revive a stale entry.

The rate limit is the `limits` library's moving window, kept exactly as it keeps it (a list
of hit times, newest first, trimmed to the limit, under the same key), so its semantics
stay and processes of the previous release share the counts during a rolling deploy. Time
is Redis's own clock: every API process measures the window alike.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import lru_cache

from limits import RateLimitItem
from limits import parse as _parse_rate
from redis import Redis as SyncRedis
from redis.asyncio import Redis

CHECK = """
-- KEYS[1] the revocation generation; KEYS[2] (if given) the credential's moving window.
-- ARGV[1] a fresh generation, stored only when there is none; ARGV[2] limit; ARGV[3] period.
local generation = redis.call('GET', KEYS[1])
if not generation then
  generation = ARGV[1]
  redis.call('SET', KEYS[1], generation)
end
if #KEYS == 1 then
  return {generation, 1, '0'}
end
local limit, period = tonumber(ARGV[2]), tonumber(ARGV[3])
if limit < 1 then
  return {generation, 0, tostring(period)}
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local oldest = redis.call('LINDEX', KEYS[2], limit - 1)
if oldest and tonumber(oldest) >= now - period then
  return {generation, 0, tostring(tonumber(oldest) + period - now)}
end
redis.call('LPUSH', KEYS[2], string.format('%.6f', now))
redis.call('LTRIM', KEYS[2], 0, limit - 1)
redis.call('EXPIRE', KEYS[2], period)
return {generation, 1, '0'}
"""


@dataclass(frozen=True)
class Check:
    generation: str
    allowed: bool
    retry_after: float  # seconds until the window lets one more through (0 when allowed)


def generation_key(prefix: str) -> str:
    return f"{prefix}:keys:generation"


def _new_generation() -> str:
    return secrets.token_hex(16)


@lru_cache(maxsize=1024)
def parse_rate(rate: str) -> RateLimitItem:
    """`limits` syntax (`6000/minute`); parsed once per distinct string."""
    return _parse_rate(rate)


class AccessGate:
    """Raises redis-py's errors: what to do without Redis is the caller's policy."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self.generation_key = generation_key(prefix)
        self._windows = f"{prefix}:limits"  # where `limits` kept them (key_prefix)
        self._check = redis.register_script(CHECK)

    async def check(self, rate: RateLimitItem | None = None, *identifiers: str) -> Check:
        """The current generation; with a rate, one hit charged to `identifiers`' window."""
        keys = [self.generation_key]
        args: list[str | int] = [_new_generation()]
        if rate is not None:
            keys.append(f"{self._windows}:{rate.key_for(*identifiers)}")
            args += [rate.amount, rate.get_expiry()]
        generation, allowed, retry_after = await self._check(keys=keys, args=args)
        return Check(generation.decode(), bool(allowed), float(retry_after))

    async def announce(self) -> str:
        """A key was revoked: every cached key must be checked with the database again.
        Returns the new generation."""
        generation = _new_generation()
        await self._redis.set(self.generation_key, generation)
        return generation


def announce(redis: SyncRedis, prefix: str) -> None:
    """`AccessGate.announce` for a process without an event loop (`salespulse keys`)."""
    redis.set(generation_key(prefix), _new_generation())
