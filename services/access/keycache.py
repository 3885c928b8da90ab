"""Authenticated API keys kept in process for KEY_CACHE_SECONDS, so a request need not ask
the database who its key is. Pure: the caller brings the revocation generation (a value in
Redis replaced on every revocation) and the clock.

An entry is trusted only while the generation read for the request equals the one it was
cached under: a revocation anywhere replaces the generation, and with it the trust of every
entry in every process, on their next request. No generation (Redis unreachable): nothing
is trusted and nothing is cached.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TTLCache

from services.access.principal import Principal


@dataclass(frozen=True)
class Cached:
    principal: Principal
    generation: str  # the revocation generation read before the database said yes


def lookup(token: str) -> str:
    """What an entry is found by: the token's SHA-256, so the cache holds no usable secret."""
    return hashlib.sha256(token.encode()).hexdigest()


class KeyCache:
    def __init__(self, seconds: float, size: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`seconds` or `size` 0: nothing is cached (every request asks the database)."""
        self._entries: TTLCache[str, Cached] | None = (
            TTLCache(maxsize=size, ttl=seconds, timer=clock) if seconds > 0 and size > 0
            else None)

    def candidate(self, found_by: str) -> Cached | None:
        """The entry for `found_by`, not yet checked against the current generation."""
        return self._entries.get(found_by) if self._entries is not None else None

    def trusted(self, found_by: str, generation: str | None) -> Principal | None:
        """The cached principal if it was cached under `generation` (None: trust nothing)."""
        entry = self.candidate(found_by)
        if entry is None or generation is None or entry.generation != generation:
            return None
        return entry.principal

    def remember(self, found_by: str, principal: Principal, generation: str | None) -> None:
        """Cache what the database said under the generation read *before* asking it: a
        revocation committed after that read replaces the generation, so the entry is
        never trusted past it."""
        if self._entries is not None and generation is not None:
            self._entries[found_by] = Cached(principal, generation)

    def clear(self) -> None:
        if self._entries is not None:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries) if self._entries is not None else 0
