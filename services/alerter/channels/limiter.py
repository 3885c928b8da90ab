"""A per-robot send limit that waits instead of being refused (WeCom: 20 messages a
minute per robot, past which it answers errcode 45009)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable


class RobotLimiter:
    """At most `per_window` sends per `window` seconds for each key (a robot's URL); a send
    past that waits until the oldest of the window has aged out. Sends for one key go in
    the order they asked (asyncio's lock is first come, first served)."""

    def __init__(self, per_window: int, window: float, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if per_window < 1 or window <= 0:
            raise ValueError("per_window must be >= 1 and window > 0")
        self.per_window, self.window = per_window, window
        self._clock, self._sleep = clock, sleep
        self._sent: dict[str, deque[float]] = {}
        # One lock per event loop and key: an asyncio lock belongs to the loop it waited in.
        self._locks: dict[tuple[int, str], asyncio.Lock] = {}
        self.waits = 0  # sends that had to wait, for the tests and the benchmark

    async def acquire(self, key: str) -> None:
        lock = self._locks.setdefault((id(asyncio.get_running_loop()), key), asyncio.Lock())
        async with lock:
            sent = self._sent.setdefault(key, deque())
            now = self._expire(sent)
            if len(sent) >= self.per_window:
                self.waits += 1
            while len(sent) >= self.per_window:
                await self._sleep(max(sent[0] + self.window - now, 0.0))
                now = self._expire(sent)
            sent.append(now)

    def _expire(self, sent: deque[float]) -> float:
        now = self._clock()
        while sent and now - sent[0] >= self.window:
            sent.popleft()
        return now
