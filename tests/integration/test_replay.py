"""The rebuild's writer on a real Redis: folding batch after batch without reading its own
writes back leaves exactly what `FactStore.apply` leaves, also when it holds only a few
records and must read the ones it let go of while its last write may still be in flight."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis

from projections.facts import Change
from services.readmodels.replay import Replay
from services.readmodels.store import KINDS, FactStore
from services.simulate.relayed import messages

pytestmark = pytest.mark.integration


async def _contents(client: Redis, store: FactStore) -> dict[str, object]:
    """Every read model of the tenant as stored, less the change stream's entry ids."""
    tenant = "default"
    stored: dict[str, object] = {kind: await client.hgetall(store._hash(tenant, kind))
                                 for kind in KINDS}
    stored["applied"] = await store.applied(tenant)
    stored["rev"] = await store.revision(tenant)
    stored["changes"] = [fields for _, fields in
                         await client.xrange(f"{store.prefix}:{tenant}:changes")]
    stored["tenants"] = await store.tenants()
    return stored


@pytest.mark.parametrize("keep", [1, 7, 100_000])
async def test_a_replay_leaves_what_the_live_writer_leaves(
        containers: dict[str, str], keep: int) -> None:
    changes = [Change.from_json(raw) for raw in messages(11, 90)]
    batches = [changes[at:at + 250] for at in range(0, len(changes), 250)]
    # a batch that only repeats what was applied: the live writer skips all of it
    batches.insert(3, batches[1])
    client = Redis.from_url(containers["redis"])
    live = FactStore(client, f"test-live-{uuid.uuid4().hex[:8]}")
    replayed = FactStore(client, f"test-replay-{uuid.uuid4().hex[:8]}")
    try:
        replay = Replay(replayed, keep=keep)
        for batch in batches:
            expected = await live.apply(batch)
            got = await replay.apply(batch)
            assert (got.applied, got.skipped, got.rejected) == (
                expected.applied, expected.skipped, expected.rejected)
        await replay.finish()
        assert len(replay.kept) <= keep
        assert replay.complete == (keep >= 100_000)
        assert await _contents(client, replayed) == await _contents(client, live)
        assert (await _contents(client, live))["applied"] == len(changes)
    finally:
        await live.clear()
        await replayed.clear()
        await client.aclose()
