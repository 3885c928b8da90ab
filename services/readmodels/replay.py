"""The rebuild's writer: the same fold as `FactStore.apply`, without reading Redis back.

A rebuild starts from cleared read models and is their only writer until it marks them
built, so the newest state of every record it touched is the one it wrote last. It keeps
those records in memory, the most recently touched last, and reads Redis only for a
record it had to let go of (beyond `keep`) and meets again. A batch's write is sent while
the next batch is folded: Redis writes on its own core while this process folds on the
other, and one write is in flight at a time, so they land in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from itertools import islice
from typing import Any

from projections.facts import Change, Record
from services.readmodels.store import Applied, FactStore, Held, fold, held_slots

REPLAY_KEPT = 200_000  # records held in memory: ~0.9 KB each over a simulated year, ~180 MB


class Replay:
    """Folds batches in log order into `store`'s cleared read models; `finish` awaits the
    last write. Not for live use: another writer's changes would be overwritten."""

    def __init__(self, store: FactStore, *, keep: int = REPLAY_KEPT) -> None:
        self.store, self.keep = store, keep
        self.kept: dict[tuple[str, str, str], Record] = {}  # (tenant, kind, key)
        self.complete = True  # nothing let go yet: a record not kept was never written
        self.writing: asyncio.Future[list[Any]] | None = None

    async def apply(self, changes: Sequence[Change]) -> Applied:
        result = Applied()
        if not changes:
            return result
        records = held_slots(changes)
        missing = self._take_kept(records)
        if missing:
            await self._written()  # the write in flight may hold a record let go since
            await self.store.read(missing)
            for hash_slot, held in missing.items():
                records[hash_slot].update(held)
        folded = fold(changes, records, result)
        self._keep(records)
        if folded is not None:
            write = self.store.redis.pipeline(transaction=True)
            self.store.queue_write(write, records, *folded)  # records serialised here, now
            await self._written()
            self.writing = asyncio.ensure_future(write.execute())
        return result

    async def finish(self) -> None:
        """Wait for the last write (raising its error, if it failed)."""
        await self._written()

    def abandon(self) -> None:
        if self.writing is not None:
            self.writing.cancel()
            self.writing = None

    def _take_kept(self, records: Held) -> Held:
        """Move the kept records into `records`; the slots to read from Redis (none while
        nothing was let go)."""
        kept, missing = self.kept, Held()
        for (tenant, kind), held in records.items():
            for key in held:
                record = kept.pop((tenant, kind, key), None)  # re-kept last once folded
                if record is not None:
                    held[key] = record
                elif not self.complete:
                    missing.setdefault((tenant, kind), {})[key] = None
        return missing

    def _keep(self, records: Held) -> None:
        kept = self.kept
        for (tenant, kind), held in records.items():
            for key, record in held.items():
                if record is not None:
                    kept[tenant, kind, key] = record
        if (over := len(kept) - self.keep) > 0:  # the least recently touched go first
            self.complete = False
            for slot in list(islice(kept, over)):
                del kept[slot]

    async def _written(self) -> None:
        writing, self.writing = self.writing, None
        if writing is not None:
            await writing
