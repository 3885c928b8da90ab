"""The API's column stores on a real Redis: kept current from the change stream batch by
batch, answering as a Snapshot of the same records does; loaded whole again after a
rebuild, a trimmed stream or a new pipeline, and never answering while not built; and
replicas taking each other's answers at the same place in the stream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from functools import cache
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from projections import columnar_views
from projections.breakdown import breakdown
from projections.columnar import Columns
from projections.columnar_export import json_chunks, selected_deals
from projections.export import deal_rows
from projections.facts import Change
from projections.funnel import funnel
from projections.snapshot import Filters, Snapshot
from services.api.columns import (
    ANSWER_BYTES,
    ANSWERS,
    ANSWERS_KEPT,
    LOADS,
    Abandoned,
    ColumnStores,
    hung_up,
)
from services.api.route_json import route_json
from services.api.shared_answers import SharedAnswers
from services.readmodels import store as readmodel
from services.readmodels.store import FactStore, NotBuilt
from services.simulate.scaled import Template, template
from tests.unit.test_deal_export_stream import rendered

pytestmark = pytest.mark.integration
TZ = "Asia/Shanghai"
TEAM = Filters(dims={"team": "T-2"})


@cache
def year() -> Template:
    return template(200, seed=5, tenant="t")


@pytest.fixture
async def store(containers: dict[str, str]) -> AsyncIterator[FactStore]:
    client = Redis.from_url(containers["redis"])
    facts = FactStore(client, f"test-columns-{uuid.uuid4().hex[:8]}")
    await facts.mark_built()
    yield facts
    await facts.clear()
    async for key in client.scan_iter(f"{facts.prefix}:*"):  # shared answers would expire
        await client.unlink(key)
    await client.aclose()


async def same_as_snapshot(facts: FactStore, stores: ColumnStores) -> None:
    snapshot = Snapshot(await facts.load("t"), TZ)
    for filters in (Filters(), TEAM):
        assert await stores.answer("t", ("funnel", filters.dims.get("team")),
                                   lambda c, f=filters: _funnel(c, f)) == funnel(snapshot, filters)
        assert (await stores.answer("t", ("breakdown", filters.dims.get("team")),
                                    lambda c, f=filters: _breakdown(c, f))
                == breakdown(snapshot, filters, "rep"))


def _funnel(columns: object, filters: Filters) -> object:
    from projections import columnar_views

    return columnar_views.funnel(columns, filters)  # type: ignore[arg-type]


def _breakdown(columns: object, filters: Filters) -> object:
    from projections import columnar_views

    return columnar_views.breakdown(columns, filters, "rep")  # type: ignore[arg-type]


def loads(reason: str) -> float:
    return LOADS.labels(reason)._value.get()  # noqa: SLF001 - the counter is the evidence


async def test_batches_reach_the_columns_through_the_change_stream_alone(
        store: FactStore) -> None:
    changes = year().changes
    stores = ColumnStores(store, TZ)
    await store.apply(changes[:500])
    await same_as_snapshot(store, stores)
    whole_loads = sum(loads(r) for r in ("start", "behind", "rebuilt", "pipeline"))
    for start in range(500, len(changes), 1_500):
        await store.apply(changes[start:start + 1_500])
        await same_as_snapshot(store, stores)
    assert sum(loads(r) for r in ("start", "behind", "rebuilt", "pipeline")) == whole_loads


async def test_a_reader_behind_a_trimmed_stream_loads_everything_again(
        store: FactStore, monkeypatch: pytest.MonkeyPatch) -> None:
    changes = year().changes
    stores = ColumnStores(store, TZ)
    await store.apply(changes[:300])
    await same_as_snapshot(store, stores)
    monkeypatch.setattr(readmodel, "CHANGES_KEPT", 1)
    before = loads("behind")
    for start in range(300, 3_000, 100):  # many batches while the reader is away
        await store.apply(changes[start:start + 100])
    await store.redis.xtrim(f"{store.prefix}:t:changes", maxlen=1)
    await same_as_snapshot(store, stores)
    assert loads("behind") == before + 1


async def test_a_rebuild_or_a_new_pipeline_loads_everything_and_a_flush_refuses(
        store: FactStore) -> None:
    changes = year().changes
    stores = ColumnStores(store, TZ)
    await store.apply(changes[:1_000])
    await same_as_snapshot(store, stores)
    rebuilt = loads("rebuilt")
    await store.mark_built()  # a new build token: what a rebuild leaves
    await same_as_snapshot(store, stores)
    assert loads("rebuilt") == rebuilt + 1

    pipeline = loads("pipeline")
    event = {"id": "p1", "type": "pipeline.configured", "occurred_at": "2017-06-01T00:00:00+08:00",
             "tenant": "t", "data": {"stages": ["discovery", "proposal", "negotiation"]}}
    await store.apply([Change(10**9, "t", "pipeline", "pipeline", 1, event)])
    await same_as_snapshot(store, stores)
    assert loads("pipeline") == pipeline + 1
    assert [s["stage"] for s in (await stores.answer("t", "stages", _funnel_all))["stages"]] == [
        "discovery", "proposal", "negotiation"]

    await store.redis.delete(store.built_key)
    with pytest.raises(NotBuilt):
        await stores.answer("t", "after the flush", _funnel_all)


def _funnel_all(columns: object) -> object:
    return _funnel(columns, Filters())


async def test_a_wave_of_requests_shares_one_look_at_the_change_stream_and_one_computation(
        store: FactStore) -> None:
    changes = year().changes
    stores = ColumnStores(store, TZ)
    await store.apply(changes[:2_000])
    await stores.answer("t", "warm", _funnel_all)
    looks = 0
    look = store.changes

    async def counted(*args: object) -> object:
        nonlocal looks
        looks += 1
        return await look(*args)  # type: ignore[arg-type]

    store.changes = counted  # type: ignore[method-assign]
    computed = ANSWERS.labels("computed")._value.get()  # noqa: SLF001
    await store.apply(changes[2_000:2_100])  # the wave must see this batch
    answers = await asyncio.gather(*(stores.answer("t", "funnel", _funnel_all)
                                     for _ in range(100)))
    snapshot = Snapshot(await store.load("t"), TZ)
    assert all(answer == funnel(snapshot, Filters()) for answer in answers)
    assert looks == 1
    assert ANSWERS.labels("computed")._value.get() == computed + 1  # noqa: SLF001


async def test_a_question_whose_client_hung_up_is_not_computed(store: FactStore) -> None:
    stores = ColumnStores(store, TZ)
    await store.apply(year().changes[:2_000])
    await stores.answer("t", "asked before", _funnel_all)
    computed: list[str] = []

    def counted(columns: object) -> object:
        computed.append("funnel")
        return _funnel_all(columns)

    async def gone() -> bool:
        return True

    token = hung_up.set(gone)
    try:
        with pytest.raises(Abandoned):
            await stores.answer("t", "never asked", counted)
        # An answer already made costs nothing: it is still given.
        assert await stores.answer("t", "asked before", counted) == \
            await stores.answer("t", "asked before", _funnel_all)
    finally:
        hung_up.reset(token)
    assert computed == []
    await stores.answer("t", "never asked", counted)  # a client that waits is answered
    assert computed == ["funnel"]


async def test_an_answer_made_from_another_computes_that_other_once_and_keeps_it(
        store: FactStore) -> None:
    stores = ColumnStores(store, TZ)
    await store.apply(year().changes[:2_000])
    computed: list[str] = []

    def whole(columns: object) -> object:
        computed.append("whole")
        return _funnel_all(columns)

    def part(_columns: object, board: object) -> object:
        computed.append("part")
        return {"won": board["won"]}  # type: ignore[index]

    first = await stores.answer_from("t", "part 1", ("whole", whole), part)
    second = await stores.answer_from("t", "part 2", ("whole", whole), part)
    assert first == second == {"won": (await stores.answer("t", "whole", whole))["won"]}
    assert computed == ["whole", "part", "part"]
    await store.apply(year().changes[2_000:2_100])  # a new place: everything anew
    await stores.answer_from("t", "part 1", ("whole", whole), part)
    assert computed == ["whole", "part", "part", "whole", "part"]


async def test_a_part_outlives_the_answers_that_new_questions_push_out(
        store: FactStore) -> None:
    # A busy dashboard mix asks hundreds of new questions a minute, some of them large (a
    # whole tenant's leaderboard is MBs); the part most of them are made from (the
    # forecast's stage history, a window's board) is kept apart from them.
    stores = ColumnStores(store, TZ)
    await store.apply(year().changes[:2_000])
    computed: list[str] = []

    def whole(columns: object) -> object:
        computed.append("whole")
        return _funnel_all(columns)

    for n in range(ANSWERS_KEPT + 50):
        if n % 100 == 0:  # as large as every answer kept may be: it pushes out all others
            await stores.answer("t", ("large", n), lambda _c: {"rows": "x" * ANSWER_BYTES})
        await stores.answer_from("t", ("part", n), ("whole", whole),
                                 lambda _c, board: {"won": board["won"]})
    assert computed == ["whole"]


async def test_an_answer_is_sent_as_the_json_made_once_beside_it(store: FactStore) -> None:
    stores = ColumnStores(store, TZ)
    await store.apply(year().changes[:2_000])
    computed: list[str] = []

    def counted(columns: Columns) -> dict[str, Any]:
        computed.append("funnel")
        return _funnel_all(columns)

    first = await stores.answer_json("t", "funnel", counted)
    again = await stores.answer_json("t", "funnel", counted)
    assert first.body == again.body == route_json(await stores.answer("t", "funnel", counted))
    assert first.media_type == "application/json" and computed == ["funnel"]
    # An answer kept without its JSON (asked by a route that reshapes it) gets it once asked.
    await stores.answer("t", "funnel, kept", counted)
    assert (await stores.answer_json("t", "funnel, kept", counted)).body == first.body
    # ...and one made from another question's answer, as the forecast from its history.
    won = await stores.answer_json("t", "won", lambda _c, board: {"won": board["won"]},
                                   given=("funnel", counted))
    assert orjson.loads(won.body) == {"won": orjson.loads(first.body)["won"]}
    assert computed == ["funnel", "funnel"]
    await store.apply(year().changes[2_000:2_100])  # a new place: a new answer, new JSON
    assert (await stores.answer_json("t", "funnel", counted)).body != first.body


async def test_an_export_streams_the_deals_it_copied_while_the_columns_move_on(
        store: FactStore) -> None:
    stores = ColumnStores(store, TZ)
    await store.apply(year().changes[:2_000])
    then = Snapshot(await store.load("t"), TZ)
    deals = await stores.copied("t", lambda columns: selected_deals(columns, Filters()))
    chunks = json_chunks(deals, 25)
    first = next(chunks)
    await store.apply(year().changes[2_000:])
    # The lock is free while the stream is open: the columns take the changes meanwhile.
    await asyncio.wait_for(same_as_snapshot(store, stores), timeout=60)
    assert first + b"".join(chunks) == rendered(deal_rows(then, Filters()))[1]
    assert b"".join(json_chunks(await stores.copied(
        "t", lambda columns: selected_deals(columns, Filters())))) != \
        rendered(deal_rows(then, Filters()))[1]


# --- replicas sharing their answers (services/api/shared_answers.py) ---


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
