"""The API's column stores: one per tenant, loaded once, then kept current from the
projector's change stream, with each answer computed once per change.

A request for a view served from columns (docs/PERFORMANCE.md, "Query path"):
1. reads the tenant's place in the change stream (one Redis round trip);
2. if records changed, fetches only those and updates the columns (everything is
   loaded again only after a rebuild of the read models, a pipeline change, or a
   reader so far behind that the stream was trimmed);
3. answers from the per-place cache, or from the answers other replicas at the same place
   gave (`services/api/shared_answers.py`), or computes once while identical requests wait
   and gives the answer to the others.
Computation runs in a worker thread, so the event loop keeps serving other requests. A
question whose client hung up while it waited for the worker is not computed: a backlog of
abandoned requests (a dashboard that moved on, a client that timed out) must not keep the
worker from the ones still waiting.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import orjson
import structlog
from prometheus_client import Counter, Histogram
from redis.exceptions import RedisError
from starlette.responses import Response

from events.vocabulary import DEFAULT_STAGES
from projections.columnar import LOAD_ORDER, Columns
from projections.columnar_checkpoint import CheckpointError
from projections.facts import Record
from services.api import checkpoints
from services.api.route_json import route_json
from services.api.shared_answers import SharedAnswers
from services.readmodels.codec import decode
from services.readmodels.store import Changes, FactStore, NotBuilt

log = structlog.get_logger("api.columns")
T = TypeVar("T")
# Whether the client of the request being answered has hung up (set per request by
# `services.api.deps.get_services`; unset outside a request: always wanted).
hung_up: ContextVar[Callable[[], Awaitable[bool]] | None] = ContextVar("hung_up", default=None)
LOADS = Counter("salespulse_column_loads_total", "Column stores loaded whole", ["reason"])
CHECKPOINTS = Counter("salespulse_column_checkpoints_total",
                      "Column checkpoints written and read", ["outcome"])
UPDATE_SECONDS = Histogram("salespulse_column_update_seconds",
                           "Bringing a column store up to date with the change stream")
ANSWERS = Counter("salespulse_column_answers_total", "Answers from the column stores",
                  ["source"])
ANSWERS_KEPT = 256
# ...and at most this much of them as JSON: at 1M deals one breakdown by rep is 1.7 MB of
# JSON and 4.4 MB of Python objects, so 256 of them would hold over 1 GB.
ANSWER_BYTES = 8 << 20
PARTS_KEPT = 16  # per tenant: the stage history, and the boards of the windows asked lately
_MISSING = object()
RELEASE_EVERY = 50  # chunks of a whole load between two returns of the C heap's free pages


def _computed(encode: bool, compute: Callable[..., Any], *args: Any) -> tuple[Any, bytes | None]:
    """`compute(*args)`, and its `route_json` when `encode` (both in the worker)."""
    answer = compute(*args)
    return answer, route_json(answer) if encode else None


class Abandoned(Exception):
    """The client hung up before its question was computed: nobody is left to answer."""


@dataclass
class _Kept:
    answer: Any
    size: int
    encoded: bytes | None  # its JSON as a route sends it, once asked for (`route_json`)


class Answers:
    """Answers for one place in the change stream: at most `count` of them and `size`
    bytes of them as JSON (the one just added always stays); the least recently used go
    first."""

    def __init__(self, count: int = ANSWERS_KEPT, size: int = ANSWER_BYTES) -> None:
        self.count, self.size, self.nbytes = count, size, 0
        self._kept: OrderedDict[Hashable, _Kept] = OrderedDict()

    def __contains__(self, question: Hashable) -> bool:
        return question in self._kept

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, question: Hashable) -> Any:
        self._kept.move_to_end(question)
        return self._kept[question].answer

    def json(self, question: Hashable) -> bytes:
        """The answer's `route_json`, made the first time it is asked for."""
        self._kept.move_to_end(question)
        kept = self._kept[question]
        if kept.encoded is None:
            kept.encoded = route_json(kept.answer)
        return kept.encoded

    def put(self, question: Hashable, answer: Any, encoded: bytes | None = None) -> None:
        if question in self._kept:
            self.nbytes -= self._kept.pop(question).size
        # Parts that are not answers (the forecast's stage history) count as their text.
        size = len(encoded) if encoded is not None else len(orjson.dumps(answer, default=str))
        self._kept[question] = _Kept(answer, size, encoded)
        self.nbytes += size
        while len(self._kept) > 1 and (len(self._kept) > self.count or self.nbytes > self.size):
            self.nbytes -= self._kept.popitem(last=False)[1].size

    def clear(self) -> None:
        self._kept.clear()
        self.nbytes = 0


@dataclass
class Tenant:
    columns: Columns
    place: Changes
    answers: Answers = field(default_factory=Answers)
    # Parts many answers are computed from (the forecast's stage history, a window's whole
    # leaderboard), kept apart from the answers: among them, the new questions of a busy
    # dashboard mix pushed them out within seconds, and each was made again (0.2-0.5 s).
    parts: OrderedDict[Hashable, Any] = field(default_factory=OrderedDict)
    changed: int = 0  # slots applied since the last checkpoint
    saved_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class CheckpointPolicy:
    """Where the columns are checkpointed (None: never) and how often after a whole load:
    once `seconds` have passed with changes, or at once after `changes` changed slots."""

    directory: Path | None = None
    seconds: float = 300.0
    changes: int = 100_000


class ColumnStores:
    def __init__(self, facts: FactStore, tz: str,
                 checkpoint: CheckpointPolicy = CheckpointPolicy(),
                 shared: SharedAnswers | None = None) -> None:
        self.facts, self.tz, self.checkpoint, self.shared = facts, tz, checkpoint, shared
        self._giving: set[asyncio.Task[None]] = set()
        self._saving: dict[str, asyncio.Task[None]] = {}
        self._tenants: dict[str, Tenant] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._checks: dict[str, asyncio.Future[Tenant]] = {}
        # One thread for every load, update and computation: they take turns under the
        # tenant's lock anyway, and memory freed in one malloc arena is reused by the next
        # chunk instead of stranded across the default pool's (at 1M deals, hundreds of MB).
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="columns")

    async def answer(self, tenant: str, question: Hashable,
                     compute: Callable[[Columns], T]) -> T:
        """`compute` over the tenant's current columns, once per change stream place.

        Raises NotBuilt while the read models are being rebuilt (never a partial answer),
        Abandoned when the request's client hung up before the worker was free.
        """
        return await self.answer_from(tenant, question, None, compute)

    async def answer_from(self, tenant: str, question: Hashable,
                          given: tuple[Hashable, Callable[[Columns], Any]] | None,
                          compute: Callable[..., T]) -> T:
        """`answer`, where `compute` also takes the answer to another question (`given`:
        the question and how to compute it) at the same place: both from the same columns,
        the other one computed at most once and kept for its own askers. It may be a part
        rather than an answer (the forecast's stage history): kept the same way, it counts
        towards ANSWER_BYTES only as its repr, so it must stay one per tenant."""
        answer, _ = await self._answered(tenant, question, given, compute, encode=False)
        return answer

    async def answer_json(self, tenant: str, question: Hashable,
                          compute: Callable[..., dict[str, Any]],
                          given: tuple[Hashable, Callable[[Columns], Any]] | None = None
                          ) -> Response:
        """`answer_from`'s answer as the response a route returning it sends
        (`route_json`): made once per answer, in the worker beside it, not per request."""
        _, encoded = await self._answered(tenant, question, given, compute, encode=True)
        assert encoded is not None
        return Response(encoded, media_type="application/json")

    async def _answered(self, tenant: str, question: Hashable,
                        given: tuple[Hashable, Callable[[Columns], Any]] | None,
                        compute: Callable[..., Any], encode: bool) -> tuple[Any, bytes | None]:
        """(answer, its `route_json` when `encode`)."""
        state = await self._fresh(tenant)
        if question in state.answers:  # a cached answer touches no array: no lock
            return self._cached(state, question, encode)
        found, answer = await self._taken(tenant, state, question)
        if found:
            return answer, self._json_of_taken(state, question, answer, encode)
        # Updates and computations never overlap: they share the arrays.
        async with self._lock(tenant):
            state = self._tenants.get(tenant) or await self._current(tenant)
            if question in state.answers:  # computed while this request waited
                return self._cached(state, question, encode)
            # ...or by another replica meanwhile (its worker may be ahead of this one's)
            found, answer = await self._taken(tenant, state, question)
            if found:
                return answer, self._json_of_taken(state, question, answer, encode)
            await self._unless_abandoned()
            if given is None:
                result, encoded = await self._in_worker(_computed, encode, compute,
                                                        state.columns)
            else:
                other, make = given
                base = state.parts.get(other, _MISSING)
                if base is not _MISSING:
                    state.parts.move_to_end(other)
                    ANSWERS.labels("cached").inc()
                elif other in state.answers:
                    base, _ = self._cached(state, other, False)
                else:
                    found, base = await self._taken(tenant, state, other)
                    if not found:
                        base = await self._in_worker(make, state.columns)
                        ANSWERS.labels("computed").inc()
                        state.answers.put(other, base)
                        self._give(tenant, state.place, other, base)
                state.parts[other] = base
                while len(state.parts) > PARTS_KEPT:
                    state.parts.popitem(last=False)
                result, encoded = await self._in_worker(_computed, encode, compute,
                                                        state.columns, base)
            ANSWERS.labels("computed").inc()
            state.answers.put(question, result, encoded)
            self._give(tenant, state.place, question, result)
            return result, encoded

    async def _taken(self, tenant: str, state: Tenant, question: Hashable) -> tuple[bool, Any]:
        """(True, answer) if another replica gave the answer at the columns' place."""
        if self.shared is None:
            return False, None
        place = state.place
        found, answer = await self.shared.get(tenant, place, question)
        if found:
            ANSWERS.labels("shared").inc()
            if state.place is place:  # not moved on while Redis answered
                state.answers.put(question, answer)
        return found, answer

    @staticmethod
    def _json_of_taken(state: Tenant, question: Hashable, answer: Any, encode: bool
                       ) -> bytes | None:
        """The `route_json` of an answer `_taken` found: made once, where it was kept."""
        if not encode:
            return None
        kept = question in state.answers and state.answers.get(question) is answer
        return state.answers.json(question) if kept else route_json(answer)

    def _give(self, tenant: str, place: Changes, question: Hashable, answer: Any) -> None:
        """Put the answer where the other replicas look, without holding up this one's."""
        if self.shared is None:
            return
        task = asyncio.ensure_future(self.shared.put(tenant, place, question, answer))
        self._giving.add(task)
        task.add_done_callback(self._giving.discard)

    async def drain_shared(self) -> None:
        """Wait for the answers being given to the other replicas (a test's: a replica
        stopping lets them go, and the others compute those questions themselves)."""
        while self._giving:
            await asyncio.gather(*self._giving)

    async def copied(self, tenant: str, take: Callable[[Columns], T]) -> T:
        """`take` over the tenant's current columns, under the same lock and with the same
        errors as `answer`, but not kept: for copies read after the lock is let go (a
        streamed export), too large to keep among the answers."""
        await self._fresh(tenant)
        async with self._lock(tenant):
            state = self._tenants.get(tenant) or await self._current(tenant)
            await self._unless_abandoned()
            taken = await self._in_worker(take, state.columns)
            ANSWERS.labels("computed").inc()
            return taken

    @staticmethod
    async def _unless_abandoned() -> None:
        gone = hung_up.get()
        if gone is not None and await gone():
            ANSWERS.labels("abandoned").inc()
            raise Abandoned

    @staticmethod
    def _cached(state: Tenant, question: Hashable, encode: bool) -> tuple[Any, bytes | None]:
        ANSWERS.labels("cached").inc()
        return state.answers.get(question), state.answers.json(question) if encode else None

    async def _in_worker(self, work: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, work, *args)

    def _lock(self, tenant: str) -> asyncio.Lock:
        return self._locks.setdefault(tenant, asyncio.Lock())

    async def _fresh(self, tenant: str) -> Tenant:
        """The tenant's columns brought up to date. Requests arriving while a check is under
        way share it: a wave of requests costs one Redis round trip, not one each in turn
        under the lock (which bounded a cached answer to one per round trip)."""
        check = self._checks.get(tenant)
        if check is None:
            check = self._checks[tenant] = asyncio.ensure_future(self._checked(tenant))
            check.add_done_callback(lambda done: self._forget_check(tenant, done))
        # Shielded: a caller that goes away does not cancel the check the others wait on.
        return await asyncio.shield(check)

    async def _checked(self, tenant: str) -> Tenant:
        async with self._lock(tenant):
            return await self._current(tenant)

    def _forget_check(self, tenant: str, done: asyncio.Future[Tenant]) -> None:
        if self._checks.get(tenant) is done:
            del self._checks[tenant]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have gone

    async def warm(self) -> None:
        """Load every known tenant's columns (at start: the first reader need not wait)."""
        try:
            tenants = await self.facts.tenants()
        except (RedisError, OSError) as exc:
            log.warning("columns.not_warmed", error=str(exc))
            return
        for tenant in sorted(tenants):
            try:
                await self._checked(tenant)
            except NotBuilt:
                return  # being rebuilt: the first reader loads it
            except (RedisError, OSError) as exc:
                log.warning("columns.not_warmed", tenant=tenant, error=str(exc))

    async def team_members(self, tenant: str, team: str | None) -> list[str]:
        await self._fresh(tenant)
        async with self._lock(tenant):  # an update in a worker thread changes the reps
            state = self._tenants.get(tenant) or await self._current(tenant)
            return state.columns.team_members(team)

    async def _current(self, tenant: str) -> Tenant:
        state = self._tenants.get(tenant)
        if state is None:
            if await self._from_checkpoint(tenant):
                return await self._current(tenant)  # then the changes made since
            return await self._load(tenant, "start")
        changes = await self.facts.changes(tenant, state.place)
        if changes is None:
            raise NotBuilt
        if changes.slots is None:
            return await self._load(tenant, "rebuilt" if changes.build != state.place.build
                                    else "behind")
        if not changes.slots:
            return state
        if any(kind == "pipeline" for kind, _ in changes.slots):
            return await self._load(tenant, "pipeline")
        with UPDATE_SECONDS.time():
            slots = sorted(changes.slots)
            records = await self.facts.get(tenant, slots)
            await self._in_worker(_put_all, state.columns,
                                    [(kind, r) for (kind, _), r in zip(slots, records, strict=True)
                                     if r is not None])
        state.place = changes
        state.answers.clear()
        state.parts.clear()
        state.changed += len(slots)
        if (state.changed >= self.checkpoint.changes
                or time.monotonic() - state.saved_at >= self.checkpoint.seconds):
            self._save_later(tenant)
        return state

    async def _load(self, tenant: str, reason: str) -> Tenant:
        """Everything again, a chunk at a time; changes made meanwhile arrive on the next
        update from the place read before loading (applying a record twice is harmless)."""
        LOADS.labels(reason).inc()
        self._tenants.pop(tenant, None)
        place = await self.facts.position(tenant)
        if place is None:
            raise NotBuilt
        pipeline = await self.facts.get(tenant, [("pipeline", key) for key in
                                                 await self._pipeline_keys(tenant)])
        stages = next((p["stages"] for p in pipeline if p), DEFAULT_STAGES)
        columns = Columns(self.tz, stages)
        columns.pipeline = next((p for p in pipeline if p), {})
        # Every kind's room at once: deals name leads, which then have rows before theirs.
        for kind in LOAD_ORDER:
            columns.reserve(kind, await self.facts.count(tenant, kind))
        loaded = chunks = 0
        for kind in LOAD_ORDER:
            async for chunk in self.facts.scan(tenant, kind):
                # Decoded in the worker too: the event loop keeps answering meanwhile.
                await self._in_worker(_decode_and_put, columns, kind, chunk)
                loaded, chunks = loaded + len(chunk), chunks + 1
                if chunks % RELEASE_EVERY == 0:
                    await self._in_worker(_release_free_heap)
        await self._in_worker(_trimmed, columns)
        if await self.facts.position(tenant) is None:
            raise NotBuilt  # lost while loading
        log.info("columns.loaded", tenant=tenant, reason=reason, records=loaded,
                 megabytes=round(columns.nbytes() / 1e6, 1))
        state = self._tenants[tenant] = Tenant(columns, place)
        self._save_later(tenant)
        return state

    # --- checkpoints (services/api/checkpoints.py) ------------------------------------

    async def _from_checkpoint(self, tenant: str) -> bool:
        """The tenant's columns from its checkpoint, if it has one of the read models'
        current build (their place then the checkpoint's); False: load everything."""
        if self.checkpoint.directory is None:
            return False
        try:
            found = await self._in_worker(checkpoints.load, self.checkpoint.directory,
                                          tenant, self.tz)
        except (CheckpointError, ValueError) as exc:
            CHECKPOINTS.labels("refused").inc()
            log.warning("columns.checkpoint_refused", tenant=tenant, error=str(exc))
            return False
        if found is None:
            return False
        place = await self.facts.position(tenant)
        if place is None:
            raise NotBuilt
        if place.build != found.place.build:
            CHECKPOINTS.labels("other_build").inc()
            return False
        LOADS.labels("checkpoint").inc()
        CHECKPOINTS.labels("read").inc()
        log.info("columns.from_checkpoint", tenant=tenant, revision=found.place.revision,
                 behind=place.revision - found.place.revision)
        # Saved at once after it: a starting API need not write what it has just read.
        self._tenants[tenant] = Tenant(found.columns, found.place)
        return True

    def _save_later(self, tenant: str) -> None:
        """Checkpoint the tenant's columns once the current request lets go of them."""
        running = self._saving.get(tenant)
        if self.checkpoint.directory is None or (running is not None and not running.done()):
            return
        self._saving[tenant] = asyncio.ensure_future(self._save(tenant))

    async def _save(self, tenant: str) -> None:
        assert self.checkpoint.directory is not None
        async with self._lock(tenant):  # no update changes the arrays while they are written
            state = self._tenants.get(tenant)
            if state is None:
                return
            try:
                started = time.monotonic()
                await self._in_worker(checkpoints.save, self.checkpoint.directory, tenant,
                                      state.columns, state.place, self.tz)
            except Exception as exc:  # noqa: BLE001 - a checkpoint is an optimisation
                CHECKPOINTS.labels("failed").inc()
                log.warning("columns.checkpoint_failed", tenant=tenant, error=repr(exc))
                return
            state.changed, state.saved_at = 0, time.monotonic()
            CHECKPOINTS.labels("written").inc()
            log.info("columns.checkpointed", tenant=tenant, revision=state.place.revision,
                     seconds=round(state.saved_at - started, 2))

    async def _pipeline_keys(self, tenant: str) -> list[str]:
        # `Snapshot` takes the first pipeline record in key order.
        keys = await self.facts.redis.hkeys(f"{self.facts.prefix}:{tenant}:pipeline")
        return sorted(k.decode() if isinstance(k, bytes) else k for k in keys)[:1]


def _trimmed(columns: Columns) -> None:
    columns.trim()
    _release_free_heap()


def _release_free_heap() -> None:
    # A load frees every chunk's decoded records and each merge's old key arrays, but the
    # C heap keeps such pages until told otherwise: at 1M deals, tens of MB held for
    # nothing at the load's peak and after it.
    malloc_trim = _malloc_trim()
    if malloc_trim is not None:
        malloc_trim(0)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    found = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    return found if callable(found) else None


def _decode_and_put(columns: Columns, kind: str, chunk: list[bytes]) -> None:
    columns.put_many(kind, [decode(raw) for raw in chunk])


def _put_all(columns: Columns, records: list[tuple[str, Record]]) -> None:
    # Reps first: rows then find their team at once. Joined lazily, by the next answer.
    for kind in LOAD_ORDER:
        columns.put_many(kind, [record for k, record in records if k == kind])
