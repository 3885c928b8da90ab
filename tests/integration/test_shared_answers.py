"""Two API replicas on one Redis: a question one of them computed is answered by the other
from Redis at the same place in the change stream, and computed afresh once the records
changed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from functools import cache
from typing import Any

import pytest
from redis.asyncio import Redis

from projections import columnar_views
from projections.columnar import Columns
from projections.funnel import funnel
from projections.snapshot import Filters, Snapshot
from services.api.columns import ANSWERS, ColumnStores
from services.api.shared_answers import SharedAnswers
from services.readmodels.store import FactStore
from services.simulate.scaled import Template, template

pytestmark = pytest.mark.integration
TZ = "Asia/Shanghai"
TEAM = Filters(dims={"team": "T-2"})


@cache
def year() -> Template:
    return template(120, seed=3, tenant="t")


@pytest.fixture
async def store(containers: dict[str, str]) -> AsyncIterator[FactStore]:
    client = Redis.from_url(containers["redis"])
    facts = FactStore(client, f"test-shared-{uuid.uuid4().hex[:8]}")
    await facts.mark_built()
    yield facts
    await facts.clear()
    async for key in client.scan_iter(f"{facts.prefix}:*"):  # the shared answers expire
        await client.delete(key)
    await client.aclose()


def replica(facts: FactStore) -> ColumnStores:
    return ColumnStores(facts, TZ, shared=SharedAnswers(facts.redis, facts.prefix, TZ))


def team_funnel(columns: Columns) -> dict[str, Any]:
    return columnar_views.funnel(columns, TEAM)


def never(_: Columns) -> dict[str, Any]:
    raise AssertionError("the other replica's answer was there to take")


def count(source: str) -> float:
    return ANSWERS.labels(source)._value.get()  # noqa: SLF001 - the counter is the evidence


async def test_the_other_replica_takes_the_answer_until_the_records_change(
        store: FactStore) -> None:
    changes = year().changes
    half = len(changes) // 2
    await store.apply(changes[:half])
    first, second = replica(store), replica(store)

    computed = await first.answer("t", ("funnel", "T-2"), team_funnel)
    await first.drain_shared()
    shared_before = count("shared")
    assert await second.answer("t", ("funnel", "T-2"), never) == computed
    assert count("shared") == shared_before + 1
    assert computed == funnel(Snapshot(await store.load("t"), TZ), TEAM)

    await store.apply(changes[half:])  # a new place: the old answer is not taken
    answered = await second.answer("t", ("funnel", "T-2"), team_funnel)
    assert answered == funnel(Snapshot(await store.load("t"), TZ), TEAM)
    assert answered != computed


async def test_a_replica_without_sharing_computes_its_own(store: FactStore) -> None:
    await store.apply(year().changes)
    sharing, alone = replica(store), ColumnStores(store, TZ)
    await sharing.answer("t", ("funnel", "T-2"), team_funnel)
    await sharing.drain_shared()
    with pytest.raises(AssertionError, match="the other replica's answer"):
        await alone.answer("t", ("funnel", "T-2"), never)
