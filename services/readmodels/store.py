"""The fact records in Redis: applied in batches, read whole per tenant.

Layout: hash `{prefix}:{tenant}:{kind}` maps a subject's key to its JSON record;
`{prefix}:{tenant}:rev` counts applied batches (readers cache on it);
`{prefix}:{tenant}:changes` is a stream with one entry per batch, naming the
(kind, key) slots it changed: readers holding their own copy (the column store) fetch
only those; `rev` counts its entries ever added, so a reader knows when trimming cost it
one and starts over. `{prefix}:{tenant}:applied` counts events applied (a rebuild or
a test knows when it has caught up); `{prefix}:tenants` lists tenants. `{prefix}:built`
says the read models hold the whole log: it is missing when Redis lost them, and
readers must not trust them until a rebuild sets it again. Each record carries the version of its
last event, so a batch replayed after a crash changes nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from events.vocabulary import HELD
from projections.facts import Change, Record, apply
from services.readmodels.codec import decode, encode


@dataclass
class Applied:
    applied: int = 0
    skipped: int = 0  # already applied: a redelivery
    rejected: list[tuple[Change, str]] = field(default_factory=list)


KINDS = ("rep", "customer", "lead", "deal", "order", "target", "pipeline", "scoring")
# The last part of every per-tenant key the read models own (`clear` removes no other)
_READ_MODEL_NAMES = frozenset((*KINDS, HELD, "rev", "changes", "applied"))
CHANGES_KEPT = 1_000  # batches a reader may fall behind by before it must load everything
Slot = tuple[str, str]  # (kind, key)


@dataclass
class Changes:
    """A reader's place in a tenant's change stream, and the slots that changed since its
    previous place (None: unknown, load everything)."""

    build: str
    revision: int
    last_id: str
    slots: set[Slot] | None


class NotBuilt(Exception):
    """The read models are missing the log's history (e.g. Redis was flushed): rebuild first."""


# The records a batch touches, per hash: {(tenant, kind): {key: record or None}}. Kept per
# hash so that a change finds its record with one key, not a tuple.
Held = dict[tuple[str, str], dict[str, Record | None]]
Changed = dict[tuple[str, str], set[str]]  # the keys each hash's write must carry


def held_slots(changes: Sequence[Change]) -> Held:
    """Every slot `changes` touch, holding nothing yet."""
    records: Held = {}
    holding = records.get
    for c in changes:
        held = holding((c.tenant, c.kind))
        if held is None:
            held = records[c.tenant, c.kind] = {}
        held[c.key] = None
    return records


def fold(changes: Sequence[Change], records: Held,
         result: Applied) -> tuple[Changed, dict[str, int]] | None:
    """Apply `changes` in order to the records held for them, counting into `result`; the
    keys changed per hash and the events applied per tenant, or None when nothing changed."""
    changed: Changed = {}
    applied_per_tenant: dict[str, int] = {}
    for change in changes:
        hash_slot = (change.tenant, change.kind)
        held = records[hash_slot]
        key = change.key
        try:
            updated = apply(held[key], change)
        except Exception as exc:  # noqa: BLE001 - whatever the class, it is this event's alone
            # An event of a shape the reducer cannot use: set aside, never block the stream.
            result.rejected.append((change, f"{type(exc).__name__}: {exc}"))
            continue
        if updated is None:
            result.skipped += 1
            continue
        held[key] = updated
        keys = changed.get(hash_slot)
        if keys is None:
            keys = changed[hash_slot] = set()
        keys.add(key)
        applied_per_tenant[change.tenant] = applied_per_tenant.get(change.tenant, 0) + 1
    result.applied = sum(applied_per_tenant.values())
    return (changed, applied_per_tenant) if changed else None


class FactStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis, self.prefix = redis, prefix
        self.built_key = f"{prefix}:built"

    async def is_built(self) -> bool:
        return bool(await self.redis.exists(self.built_key))

    async def mark_built(self) -> None:
        # A new token per build: readers caching on (build, revision) never mix two builds.
        await self.redis.set(self.built_key, uuid.uuid4().hex)

    async def version(self, tenant: str) -> tuple[str, int] | None:
        """(build token, revision) of the tenant's read models; None while not built."""
        build, revision = await self.redis.mget(self.built_key, f"{self.prefix}:{tenant}:rev")
        if build is None:
            return None
        return (build.decode() if isinstance(build, bytes) else str(build), int(revision or 0))

    def _hash(self, tenant: str, kind: str) -> str:
        return f"{self.prefix}:{tenant}:{kind}"

    async def apply(self, changes: Sequence[Change], *, require_built: bool = False) -> Applied:
        """Apply changes in order. Safe to repeat: an applied change is skipped.

        With `require_built`, raises NotBuilt instead of writing on top of lost history: a
        record started from nothing would carry a version that hides its missing events.
        """
        result = Applied()
        if not changes:
            return result
        async with self.redis.pipeline(transaction=True) as write:
            if require_built:
                await write.watch(self.built_key)  # a flush before EXEC aborts the write
                if not await write.exists(self.built_key):
                    raise NotBuilt
            try:
                await self._apply(changes, result, write)
            except WatchError:
                raise NotBuilt from None
        return result

    async def _apply(self, changes: Sequence[Change], result: Applied, write: Pipeline) -> None:
        records = held_slots(changes)
        await self.read(records)
        folded = fold(changes, records, result)
        if folded is not None:
            self.queue_write(write, records, *folded)
            await write.execute()

    async def read(self, records: Held) -> None:
        """Fill `records` (slots held as None) with what Redis holds: one HMGET per hash, not
        one HGET per subject, since redis-py's cost is per command."""
        read = self.redis.pipeline(transaction=False)
        for (tenant, kind), held in records.items():
            read.hmget(self._hash(tenant, kind), list(held))
        for held, values in zip(records.values(), await read.execute(), strict=True):
            for key, raw in zip(list(held), values, strict=True):
                held[key] = decode(raw) if raw else None

    def queue_write(self, write: Pipeline, records: Held, changed: Changed,
                    applied_per_tenant: dict[str, int]) -> None:
        """Queue one MULTI on `write`: the changed records (one HSET per hash), each tenant's
        change-stream entry, revision, applied count and listing."""
        write.multi()
        named: dict[str, list[tuple[str, str]]] = {}
        for hash_slot in sorted(changed):
            tenant, kind = hash_slot
            held = records[hash_slot]
            names = sorted(changed[hash_slot])
            write.hset(self._hash(tenant, kind),  # type: ignore[arg-type]
                       mapping={key: encode(held[key], kind) for key in names})
            named.setdefault(tenant, []).extend((kind, key) for key in names)
        for tenant, count in applied_per_tenant.items():
            # (kind, key) in order: hashes sorted by kind, keys sorted within each.
            write.xadd(f"{self.prefix}:{tenant}:changes", {"slots": orjson.dumps(named[tenant])},
                       maxlen=CHANGES_KEPT, approximate=True)
            write.incr(f"{self.prefix}:{tenant}:rev")
            write.incrby(f"{self.prefix}:{tenant}:applied", count)
            write.sadd(f"{self.prefix}:tenants", tenant)

    async def revision(self, tenant: str) -> int:
        return int(await self.redis.get(f"{self.prefix}:{tenant}:rev") or 0)

    async def applied(self, tenant: str) -> int:
        return int(await self.redis.get(f"{self.prefix}:{tenant}:applied") or 0)

    async def load(self, tenant: str) -> dict[str, dict[str, Record]]:
        read = self.redis.pipeline(transaction=True)
        for kind in KINDS:
            read.hgetall(self._hash(tenant, kind))
        # Sorted by key: every reader sees the same order, however the hash was filled.
        return {
            kind: {k.decode(): decode(v) for k, v in sorted(raw.items())}
            for kind, raw in zip(KINDS, await read.execute(), strict=True)
        }

    async def position(self, tenant: str) -> Changes | None:
        """Where the tenant's change stream is now, for a reader about to load everything
        (slots None); None while not built."""
        read = self.redis.pipeline(transaction=True)
        read.get(self.built_key)
        read.get(f"{self.prefix}:{tenant}:rev")
        read.xrevrange(f"{self.prefix}:{tenant}:changes", count=1)
        build, revision, last = await read.execute()
        if build is None:
            return None
        return Changes(build.decode(), int(revision or 0),
                       last[0][0].decode() if last else "0-0", None)

    async def changes(self, tenant: str, since: Changes) -> Changes | None:
        """The slots changed after `since` (slots None: the stream was trimmed past it, so
        the reader must load everything); None while not built."""
        read = self.redis.pipeline(transaction=True)
        read.get(self.built_key)
        read.get(f"{self.prefix}:{tenant}:rev")
        read.xrange(f"{self.prefix}:{tenant}:changes", min=f"({since.last_id}", max="+")
        build, revision, entries = await read.execute()
        if build is None:
            return None
        revision = int(revision or 0)
        slots: set[Slot] | None = None
        if build.decode() == since.build and since.revision + len(entries) == revision:
            slots = {(kind, key) for _, fields in entries
                     for kind, key in orjson.loads(fields[b"slots"])}
        return Changes(build.decode(), revision,
                       entries[-1][0].decode() if entries else since.last_id, slots)

    async def get(self, tenant: str, slots: Sequence[Slot]) -> list[Record | None]:
        read = self.redis.pipeline(transaction=False)
        for kind, key in slots:
            read.hget(self._hash(tenant, kind), key)
        return [decode(raw) if raw else None for raw in await read.execute()]

    async def scan(self, tenant: str, kind: str, count: int = 2_000
                   ) -> AsyncIterator[list[bytes]]:
        """Every record of a kind as stored (`codec.decode` gives the record), a
        chunk at a time: never the whole hash in memory, and the caller decides where
        the decoding runs."""
        cursor = 0
        while True:
            cursor, chunk = await self.redis.hscan(self._hash(tenant, kind), cursor,
                                                   count=count)
            assert isinstance(chunk, dict)
            yield list(chunk.values())  # type: ignore[arg-type]  # bytes: no decode_responses
            if cursor == 0:
                return

    async def count(self, tenant: str, kind: str) -> int:
        """How many records of a kind the tenant has."""
        return int(await self.redis.hlen(self._hash(tenant, kind)))

    async def tenants(self) -> set[str]:
        members = await self.redis.smembers(f"{self.prefix}:tenants")
        return {t.decode() if isinstance(t, bytes) else t for t in members}

    async def clear(self) -> None:
        """Forget every read model under this prefix (before a rebuild), and nothing else:
        alerts, their acknowledgements, webhooks, the key generation and rate limits share
        the prefix and are not rebuilt from the log. By the last part of each name, not the
        tenant list, so a tenant whose listing was lost is cleared too."""
        doomed = []
        async for key in self.redis.scan_iter(match=f"{self.prefix}:*", count=1000):
            name = key.decode() if isinstance(key, bytes) else key
            if name in (self.built_key, f"{self.prefix}:tenants") or (
                    name.count(":") >= 2 and name.rsplit(":", 1)[1] in _READ_MODEL_NAMES):
                doomed.append(key)
        for at in range(0, len(doomed), 500):
            await self.redis.delete(*doomed[at:at + 500])
