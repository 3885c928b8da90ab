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

import asyncio
import secrets
from dataclasses import dataclass
from functools import lru_cache

from limits import RateLimitItem
from limits import parse as _parse_rate
from redis import Redis as SyncRedis
from redis.asyncio import Redis

CHECK = """
-- KEYS[1] the revocation generation; KEYS[2..n] the moving windows charged one hit each, in
-- the order the hits came (a window repeats when one credential is charged twice).
-- ARGV[1] a fresh generation, stored only when there is none; then limit and period per
-- window. Returns the generation, then allowed (1/0) and retry-after per window.
local generation = redis.call('GET', KEYS[1])
if not generation then
  generation = ARGV[1]
  redis.call('SET', KEYS[1], generation)
end
local answers = {generation}
if #KEYS == 1 then
  return answers
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local stamp = string.format('%.6f', now)
for i = 2, #KEYS do
  local limit, period = tonumber(ARGV[2 * i - 2]), tonumber(ARGV[2 * i - 1])
  local oldest = limit >= 1 and redis.call('LINDEX', KEYS[i], limit - 1)
  if limit < 1 then
    answers[#answers + 1] = 0
    answers[#answers + 1] = tostring(period)
  elseif oldest and tonumber(oldest) >= now - period then
    answers[#answers + 1] = 0
    answers[#answers + 1] = tostring(tonumber(oldest) + period - now)
  else
    redis.call('LPUSH', KEYS[i], stamp)
    redis.call('LTRIM', KEYS[i], 0, limit - 1)
    redis.call('EXPIRE', KEYS[i], period)
    answers[#answers + 1] = 1
    answers[#answers + 1] = '0'
  end
end
return answers
"""

# Checks waiting while one script call is out go together in the next: under load one round
# trip serves many requests, while a lone request still goes at once. The bound keeps one
# script's run (Redis runs nothing else meanwhile) short.
MAX_BATCH = 256


@dataclass(frozen=True)
class _Window:
    key: str
    limit: int
    period: int  # seconds


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
        self._waiting: list[tuple[_Window | None, asyncio.Future[Check]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def check(self, rate: RateLimitItem | None = None, *identifiers: str) -> Check:
        """The current generation; with a rate, one hit charged to `identifiers`' window."""
        window = None if rate is None else _Window(
            f"{self._windows}:{rate.key_for(*identifiers)}", rate.amount, rate.get_expiry())
        answer: asyncio.Future[Check] = asyncio.get_running_loop().create_future()
        self._waiting.append((window, answer))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send())
        return await answer

    async def _send(self) -> None:
        batch: list[tuple[_Window | None, asyncio.Future[Check]]] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                windows = [window for window, _ in batch if window is not None]
                args: list[str | int] = [_new_generation()]
                for charged_to in windows:
                    args += [charged_to.limit, charged_to.period]
                try:
                    replies = await self._check(
                        keys=[self.generation_key, *(w.key for w in windows)], args=args)
                except Exception as exc:  # noqa: BLE001 - each caller applies its policy
                    for _, answer in batch:
                        if not answer.done():
                            answer.set_exception(exc)
                    continue
                generation, charged = replies[0].decode(), iter(replies[1:])
                for window, answer in batch:
                    check = (Check(generation, True, 0.0) if window is None else
                             Check(generation, bool(next(charged)), float(next(charged))))
                    if not answer.done():  # its request may be gone; the hit stays charged
                        answer.set_result(check)
        finally:
            self._sender = None
            # Only when cancelled (the loop is closing) is anyone left: none waits forever.
            for _, answer in (*batch, *self._waiting):
                answer.cancel()
            self._waiting = []

    async def announce(self) -> str:
        """A key was revoked: every cached key must be checked with the database again.
        Returns the new generation."""
        generation = _new_generation()
        await self._redis.set(self.generation_key, generation)
        return generation


def announce(redis: SyncRedis, prefix: str) -> None:
    """`AccessGate.announce` for a process without an event loop (`salespulse keys`)."""
    redis.set(generation_key(prefix), _new_generation())
