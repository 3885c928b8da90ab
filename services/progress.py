"""How far each background process has got: reported to Redis for `/healthz`, and as gauges.

Each unit of work (the relay; each partition a projector folds; the alerter) reports every
second its position and how much is still before it. A unit is *stalled* when it has been
behind without moving for `PROGRESS_STALL_SECONDS`, and *silent* when it has not reported
for as long (its process died or hangs). The time of the last progress is kept in Redis,
so a process that dies and is restarted at the same event still counts as stalled.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from prometheus_client import Gauge
from redis.asyncio import Redis

BACKLOG = Gauge("salespulse_backlog", "Events or messages a unit of work has still to handle",
                ["unit"])
WITHOUT_PROGRESS = Gauge("salespulse_seconds_without_progress",
                         "Seconds a unit of work has been behind without moving (0: moving "
                         "or caught up)", ["unit"])
STALLED = Gauge("salespulse_unit_stalled", "1 when a unit of work is stalled or silent "
                "(as the API's /healthz judges it), else 0", ["unit"])


@dataclass(frozen=True)
class Entry:
    """One unit's last report."""

    position: int
    behind: int
    progressed_at: float  # when its position last moved, or it was last caught up
    beat_at: float  # when it last reported

    def without_progress(self, now: float) -> float:
        return 0.0 if self.behind <= 0 else max(now - self.progressed_at, 0.0)


def advance(previous: Entry | None, position: int, behind: int, now: float) -> Entry:
    """The report after `previous`: progress is a moved position or nothing left to do."""
    if previous is None or position != previous.position or behind <= 0:
        return Entry(position, behind, now, now)
    return Entry(position, behind, previous.progressed_at, now)


def assess(entries: dict[str, Entry], now: float, stall_seconds: float) -> dict[str, Any]:
    """Each unit's state (`ok`, `stalled`, `silent`) with its figures, for `/healthz`."""
    out: dict[str, Any] = {}
    for unit, entry in sorted(entries.items()):
        silent, idle = now - entry.beat_at, entry.without_progress(now)
        state = "silent" if silent > stall_seconds else \
            "stalled" if idle > stall_seconds else "ok"
        out[unit] = {"state": state, "position": entry.position, "behind": entry.behind,
                     "seconds_without_progress": round(idle, 1),
                     "seconds_since_report": round(max(silent, 0.0), 1)}
        STALLED.labels(unit).set(0 if state == "ok" else 1)
    return out


class ProgressBoard:
    """The units' reports in one Redis hash (`{prefix}:progress`)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis, self.key = redis, f"{prefix}:progress"
        self.known: dict[str, Entry] = {}

    async def report(self, unit: str, position: int, behind: int,
                     now: float | None = None) -> Entry:
        now = time.time() if now is None else now
        previous = self.known.get(unit)
        if previous is None:  # a restarted process carries on from its predecessor's report
            stored = await self.redis.hget(self.key, unit)
            previous = Entry(**orjson.loads(stored)) if stored else None
        entry = self.known[unit] = advance(previous, position, max(behind, 0), now)
        await self.redis.hset(self.key, unit, orjson.dumps(asdict(entry)))
        BACKLOG.labels(unit).set(entry.behind)
        WITHOUT_PROGRESS.labels(unit).set(entry.without_progress(now))
        return entry

    async def withdraw(self, *units: str) -> None:
        """A unit stopped on purpose (or handed to another process) is no longer watched."""
        if units:
            await self.redis.hdel(self.key, *units)
        for unit in units:
            self.known.pop(unit, None)

    async def read(self) -> dict[str, Entry]:
        raw = await self.redis.hgetall(self.key)
        return {(k.decode() if isinstance(k, bytes) else k): Entry(**orjson.loads(v))
                for k, v in raw.items()}
