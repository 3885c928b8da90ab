"""The real projector alone, timed on a backlog: `salespulse-bench pipeline`'s projection.

Once a topic holds every event of the run, N `salespulse projector` processes start in a
fresh consumer group on a throwaway Redis prefix, and the bench watches the prefix's
`applied` counters (`FactStore.applied`) until they hold every event. Two rates:
- from process start: includes interpreter start, imports and the consumer group join
  (on Tansu a member joins after about half the rebalance timeout, FIELD-NOTES);
- steady: from the first applied batch seen to the last event, the projector's pace
  once it runs.

The prefix is marked built before the processes start: on an unbuilt prefix the
projector's first act is a rebuild from offset zero by the rebuild runner
(`services/rebuild.py`), which would time that runner, not the projector's live path.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen, TimeoutExpired

from redis.asyncio import Redis

from services import bootstrap
from services.processes import spawn
from services.readmodels.store import FactStore
from services.settings import Settings

POLL_S = 0.005


@dataclass
class Projected:
    """N projectors applying `events` events: when the first and the last were seen."""

    processes: int
    events: int
    from_start_s: float  # process start to the last event applied
    first_seen: int  # events applied at the first poll that saw any
    steady_s: float  # from that poll to the last event applied

    @property
    def from_start_per_s(self) -> float:
        return self.events / self.from_start_s if self.from_start_s > 0 else 0.0

    @property
    def steady_per_s(self) -> float:
        """Events after the first batch seen over the time they took; 0 when the whole
        backlog arrived in one batch (then only the from-start rate says anything)."""
        later = self.events - self.first_seen
        return later / self.steady_s if later and self.steady_s > 0 else 0.0


async def forget(settings: Settings, prefix: str) -> None:
    """Every key under `prefix` deleted: a run's read models, alerts and credentials."""
    redis = bootstrap.redis(settings)
    try:
        await forget_prefix(redis, prefix)
    finally:
        await redis.aclose()


async def forget_prefix(redis: Redis, prefix: str) -> None:
    """Every key under a throwaway `prefix` deleted (`FactStore.clear` keeps all but the
    read models). UNLINK frees in the background: at 1M deals, DEL of the 3.5M-field lead
    hash blocked the Redis every other test and bench shares for seconds."""
    async for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
        await redis.unlink(key)


async def applied_per_tenant(settings: Settings, prefix: str) -> dict[str, int]:
    """Events applied per tenant under `prefix` (the run's: what a projector of the same
    topic must reach)."""
    redis = bootstrap.redis(settings)
    try:
        store = FactStore(redis, prefix)
        return {tenant: await store.applied(tenant) for tenant in sorted(await store.tenants())}
    finally:
        await redis.aclose()


def measure(settings: Settings, env: dict[str, str], topic: str, expected: dict[str, int],
            log_dir: Path, processes: int = 1, timeout: float = 600) -> Projected:
    """`processes` projectors in one new group on `topic`, until they applied `expected`."""
    return asyncio.run(measure_async(settings, env, topic, expected, log_dir, processes,
                                     timeout))


async def measure_async(settings: Settings, env: dict[str, str], topic: str,
                        expected: dict[str, int], log_dir: Path, processes: int = 1,
                        timeout: float = 600, code: Path | None = None) -> Projected:
    """As `measure`, in a running loop; `code`: the checkout to run the projectors from."""
    run = uuid.uuid4().hex[:6]
    prefix = f"{settings.redis_prefix}-alone-{run}"
    redis = bootstrap.redis(settings)
    store = FactStore(redis, prefix)
    total = sum(expected.values())
    spawned: list[Popen[bytes]] = []
    try:
        await store.mark_built()
        child = {**env, "REDIS_PREFIX": prefix, "PROJECTOR_GROUP": f"bench-alone-{run}",
                 "EVENTS_TOPIC": topic}
        started = time.perf_counter()
        spawned = [spawn(["projector"], child, log_dir / f"projector-alone-{run}-{n}.log",
                         cwd=code) for n in range(processes)]
        first_at: float | None = None
        first_seen = 0
        deadline = started + timeout
        while True:
            applied = sum([await store.applied(tenant) for tenant in expected])
            now = time.perf_counter()
            if applied and first_at is None:
                first_at, first_seen = now, applied
            if applied >= total:
                break
            if any(p.poll() is not None for p in spawned):
                raise RuntimeError(f"a projector exited early: see {log_dir}")
            if now > deadline:
                raise TimeoutError(f"{processes} projector(s) applied {applied} of {total} "
                                   f"events in {timeout:g} s")
            await asyncio.sleep(POLL_S)
        assert first_at is not None
        return Projected(processes, applied, now - started, first_seen, now - first_at)
    finally:
        stop(spawned)
        await store.clear()
        await redis.aclose()


def stop(processes: list[Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(15)
        except TimeoutExpired:
            process.kill()
            process.wait(10)
