"""The alerter's checkpoint in Redis: the engine's state with the offsets it reflects.

A checkpoint holds, for one alerter (`{prefix}:alerter:checkpoint:<index>of<instances>`),
the engine's state (`alerts.checkpoint`), the offset of the first message of each
partition not yet folded, the relay position last taken by the merge, and whether the
alerter was live. It is written after the transitions it reflects were stored (so a crash
between two checkpoints re-derives transitions the store already holds, and drops them as
delivered), every `ALERTER_CHECKPOINT_SECONDS` or `ALERTER_CHECKPOINT_EVENTS`, and at
shutdown. JSON, compressed; one SET, so a reader sees the old one or the new one.

A checkpoint is ignored (the alerter replays from offset zero, as without one) when its
version, topic, partition count, share of tenants, rule settings or signing differ, when
an offset is before its partition's first (the log was cut or made anew), or when it does
not decode. (Past the end is not checked: Tansu's end offsets can be short. A topic made
anew under the same name and shorter makes the consumer start over from its first offset,
and the engine drops what it already folded as redelivered.)
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from prometheus_client import Counter, Gauge
from redis.asyncio import Redis

from alerts.checkpoint import restore, state_of
from alerts.engine import AlertEngine
from alerts.tenancy import TenantShare
from services.alerter.store import rule_settings
from services.settings import Settings

log = structlog.get_logger("alerter")
CHECKPOINT_VERSION = 1  # the envelope's layout; the engine's own is alerts.checkpoint's
RESUMED = Gauge("salespulse_alerter_resumed_position",
                "Relay position the alerter resumed from at start (0: from the beginning)")
FOLDED = Counter("salespulse_alerter_events_folded_total",
                 "Events of its tenants the alerter folded since it started")
CAUGHT_UP = Gauge("salespulse_alerter_caught_up_seconds",
                  "Seconds from start until the alerter first caught up with the log")
SAVE_SECONDS = Gauge("salespulse_alerter_checkpoint_seconds", "Time the last checkpoint took")
SAVE_BYTES = Gauge("salespulse_alerter_checkpoint_bytes", "Size of the last checkpoint")
SAVED = Counter("salespulse_alerter_checkpoints_total", "Checkpoints written")


@dataclass(frozen=True)
class Resumed:
    """Where a checkpoint leaves the alerter: its engine, the next offset to read of each
    partition (by number), the position last taken and whether it was live."""

    engine: AlertEngine
    offsets: dict[int, int]
    last: int | None
    live: bool


class Checkpoints:
    def __init__(self, redis: Redis, settings: Settings, share: TenantShare) -> None:
        self.redis = redis
        self.key = (f"{settings.redis_prefix}:alerter:checkpoint:"
                    f"{share.index}of{share.instances}")
        self.every_seconds = settings.alerter_checkpoint_seconds
        self.every_events = settings.alerter_checkpoint_events
        # What the state depends on besides the log: another value makes it another state.
        self.identity = {"topic": settings.events_topic, "instances": share.instances,
                         "index": share.index, "rules": repr(rule_settings(settings)),
                         "signed": settings.events_signing_key is not None}
        self.saved_at = time.monotonic()
        self.unsaved = 0  # events taken since the last checkpoint

    async def load(self, new_engine: Callable[[], AlertEngine], partitions: int,
                   first: Callable[[], Awaitable[dict[int, int]]]) -> Resumed | None:
        """The checkpoint as a restored engine and offsets; None without a usable one.
        `first()` gives each partition's first offset."""
        raw = await self.redis.get(self.key)
        if not isinstance(raw, bytes):  # none (or a client decoding replies: not ours)
            return None
        try:
            body = orjson.loads(zlib.decompress(raw))
            why = self._mismatch(body, partitions)
            if why is None:
                offsets = {int(p): int(o) for p, o in body["offsets"].items()}
                starts = await first()
                if any(o < starts[p] for p, o in offsets.items()):
                    why = "offsets before the partitions' first (a log cut or made anew)"
            if why is not None:
                log.warning("alerter.checkpoint_ignored", reason=why)
                return None
            engine = new_engine()
            restore(engine, body["engine"])
        except (ValueError, KeyError, TypeError, zlib.error) as exc:
            log.warning("alerter.checkpoint_ignored", reason=f"{type(exc).__name__}: {exc}")
            return None
        return Resumed(engine, offsets, body["last"], bool(body["live"]))

    def _mismatch(self, body: dict[str, Any], partitions: int) -> str | None:
        if body.get("version") != CHECKPOINT_VERSION:
            return f"checkpoint version {body.get('version')!r}, not {CHECKPOINT_VERSION}"
        if body.get("identity") != self.identity:
            return f"made for {body.get('identity')!r}, this alerter is {self.identity!r}"
        if len(body.get("offsets", {})) != partitions:
            return f"{len(body.get('offsets', {}))} partitions, the topic has {partitions}"
        return None

    def due(self, taken: int) -> bool:
        """Count `taken` events; whether a checkpoint is due."""
        self.unsaved += taken
        return self.unsaved > 0 and (
            self.unsaved >= self.every_events
            or time.monotonic() - self.saved_at >= self.every_seconds)

    async def save(self, engine: AlertEngine, offsets: dict[int, int], last: int | None,
                   live: bool) -> None:
        started = time.perf_counter()
        body = orjson.dumps({"version": CHECKPOINT_VERSION, "identity": self.identity,
                             "offsets": {str(p): o for p, o in offsets.items()},
                             "last": last, "live": live, "engine": state_of(engine)})
        packed = zlib.compress(body, 1)
        await self.redis.set(self.key, packed)
        self.saved_at, self.unsaved = time.monotonic(), 0
        SAVED.inc()
        SAVE_BYTES.set(len(packed))
        SAVE_SECONDS.set(time.perf_counter() - started)
