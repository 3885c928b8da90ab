"""FactStore on a real Redis: the records are the pure fold's, a batch's entry in the change
stream names its slots in (kind, key) order, whatever order they changed in, and clearing
the read models before a rebuild leaves the rest of the prefix alone."""

from __future__ import annotations

import random
import uuid

import orjson
import pytest
from redis.asyncio import Redis

from projections.facts import Change, Record, apply
from services.readmodels.store import KINDS, FactStore
from services.simulate.relayed import messages

pytestmark = pytest.mark.integration


async def test_a_batch_writes_the_folded_records_and_names_its_slots_in_order(
        containers: dict[str, str]) -> None:
    changes = [Change.from_json(raw) for raw in messages(11, 60)]
    batches = [changes[:400], changes[400:]]
    random.Random(3).shuffle(batches[0])  # slots changed in no particular order
    batches[0].sort(key=lambda c: c.version)  # a subject's events still in order
    client = Redis.from_url(containers["redis"])
    store = FactStore(client, f"test-facts-{uuid.uuid4().hex[:8]}")
    try:
        expected: dict[tuple[str, str], Record] = {}
        for batch in batches:
            await store.apply(batch)
            for change in batch:
                expected[change.kind, change.key] = apply(
                    expected.get((change.kind, change.key)), change) or {}
        loaded = await store.load("default")
        assert {(kind, key): record for kind in KINDS
                for key, record in loaded[kind].items()} == expected
        entries = await client.xrange(f"{store.prefix}:default:changes")
        assert entries is not None and len(entries) == len(batches)
        for (_, fields), batch in zip(entries, batches, strict=True):
            assert fields is not None
            assert orjson.loads(fields[b"slots"]) == [
                list(slot) for slot in sorted({(c.kind, c.key) for c in batch})]
    finally:
        await store.clear()
        await client.aclose()


async def test_clearing_the_read_models_keeps_what_is_not_rebuilt_from_the_log(
        containers: dict[str, str]) -> None:
    client = Redis.from_url(containers["redis"])
    store = FactStore(client, f"test-facts-{uuid.uuid4().hex[:8]}")
    p = store.prefix
    try:
        await store.apply([Change.from_json(raw) for raw in messages(5, 30)])
        await client.set(store.built_key, "1")
        await client.hset(f"{p}:lost:deal", "D1", "{}")  # a tenant no longer listed
        await client.hset(f"{p}:default:held", "deal/D9", "{}")  # what waits is rebuilt too
        # what the alerter, the API's alert actions and the credential gate keep there
        await client.hset(f"{p}:default:alerts", "A1", "{}")
        await client.hset(f"{p}:default:alerts:user", "A1", "{}")
        await client.sadd(f"{p}:default:alerts:delivered", "A1:opened")
        await client.set(f"{p}:default:webhooks", "[]")
        await client.rpush(f"{p}:default:webhooks:dead", "{}")
        await client.set(f"{p}:keys:generation", "g1")
        await client.rpush(f"{p}:limits:LIMITER/default/k1/6000/1/minute", "1")
        kept = {f"{p}:default:alerts", f"{p}:default:alerts:user",
                f"{p}:default:alerts:delivered", f"{p}:default:webhooks",
                f"{p}:default:webhooks:dead", f"{p}:keys:generation",
                f"{p}:limits:LIMITER/default/k1/6000/1/minute"}
        before = {key.decode() async for key in client.scan_iter(match=f"{p}:*")}
        assert {f"{p}:default:deal", f"{p}:default:rev", f"{p}:default:changes",
                f"{p}:default:applied", f"{p}:tenants", store.built_key} <= before

        await store.clear()

        after = {key.decode() async for key in client.scan_iter(match=f"{p}:*")}
        assert after == kept
    finally:
        async for key in client.scan_iter(match=f"{p}:*"):
            await client.delete(key)
        await client.aclose()
