"""The projector's fetch: unpacked and folded with collection paused, committed once the
read models hold it, and nothing of it left for the collector when collection resumes."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Sequence
from typing import Any

from aiokafka import TopicPartition

from projections.facts import Change
from services.projector import LiveProjection
from services.readmodels.store import Applied
from services.settings import Settings
from services.signing import Signer
from services.simulate.relayed import messages

KEY = "the relay's key"


class Fetched:
    """A consumed record as the projector reads it (weakly referenceable, unlike bytes)."""

    def __init__(self, offset: int, value: bytes) -> None:
        self.offset, self.value = offset, value
        self.headers = Signer(KEY).headers(value)


class FakeConsumer:
    def __init__(self, records: list[Fetched]) -> None:
        self.records = records
        self.collecting_while_fetching: bool | None = None
        self.committed: list[dict[TopicPartition, int]] = []

    async def getmany(self, **_: Any) -> dict[TopicPartition, list[Fetched]]:
        self.collecting_while_fetching = gc.isenabled()
        records, self.records = self.records, []
        return {TopicPartition("events", 0): records}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.append(offsets)


class FakeStore:
    def __init__(self) -> None:
        self.applied: list[Change] = []

    async def apply(self, changes: Sequence[Change], *, require_built: bool = False) -> Applied:
        self.applied += changes
        return Applied(applied=len(changes))


async def test_a_fetch_is_folded_committed_and_released_with_collection_paused() -> None:
    records = [Fetched(n, raw) for n, raw in enumerate(messages(11, 30)[:50])]
    seen = [weakref.ref(record) for record in records]
    consumer, store = FakeConsumer(records), FakeStore()
    projection = LiveProjection(Settings(events_signing_key=KEY), store)  # type: ignore[arg-type]
    del records
    assert gc.isenabled()
    await projection.fetch_and_fold(consumer)  # type: ignore[arg-type]
    assert consumer.collecting_while_fetching is False
    assert gc.isenabled()
    assert all(ref() is None for ref in seen)
    assert [c.position for c in store.applied] == [
        Change.from_json(raw).position for raw in messages(11, 30)[:50]]
    assert consumer.committed == [{TopicPartition("events", 0): 50}]


class DeadLetters:
    """The dead-letter producer: what was sent, by position and reason."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []

    async def send_and_wait(self, _topic: str, value: bytes,
                            headers: list[tuple[str, bytes]]) -> None:
        named = dict(headers)
        self.sent.append((named["position"], named["reason"]))


class StoreRefusing(FakeStore):
    """A store whose write fails, whatever the exception, for any batch holding `bad`."""

    def __init__(self, bad: int, error: Exception) -> None:
        super().__init__()
        self.bad, self.error = bad, error

    async def apply(self, changes: Sequence[Change], *, require_built: bool = False) -> Applied:
        if any(c.position == self.bad for c in changes):
            raise self.error
        return await super().apply(changes)


async def test_a_change_that_fails_its_batch_is_dead_lettered_alone_and_the_rest_applied(
        ) -> None:
    raws = messages(11, 30)[:20]
    bad = Change.from_json(raws[7]).position
    for error in (RecursionError("deep"), AttributeError("odd"), MemoryError()):
        consumer, store = FakeConsumer([Fetched(n, raw) for n, raw in enumerate(raws)]), \
            StoreRefusing(bad, error)
        projection = LiveProjection(Settings(events_signing_key=KEY), store)  # type: ignore[arg-type]
        dead = projection.dead_letters = DeadLetters()  # type: ignore[assignment]
        await projection.fetch_and_fold(consumer)  # type: ignore[arg-type]
        assert dead.sent == [(str(bad).encode(), f"{type(error).__name__}: {error}".encode())]
        assert sorted(c.position for c in store.applied) == sorted(
            Change.from_json(raw).position for raw in raws if Change.from_json(raw).position != bad)
        assert consumer.committed == [{TopicPartition("events", 0): 20}]
