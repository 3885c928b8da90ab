"""The ledger's PostgreSQL recorder (services/eventstore/recorder.py) stores a batch as the
library's own would: every row in order, its bytes as given, numbered in order, or none at all."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from services.eventstore.ledger import SalesLedger
from services.eventstore.recorder import BinaryBatchRecorder
from services.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def ledger(pg_schema: str) -> Iterator[SalesLedger]:
    app = SalesLedger(env=Settings(database_url=pg_schema).event_store_env())
    yield app
    app.close()


def rows(n: int, start: int = 1) -> list[StoredEvent]:
    ids = [uuid4() for _ in range(3)]
    return [StoredEvent(ids[i % 3], start + i // 3, f"topic:{i}", f"state é {i}\x00".encode())
            for i in range(n)]


def test_a_batch_is_stored_in_order_with_its_bytes_and_numbered_in_order(
        ledger: SalesLedger) -> None:
    assert isinstance(ledger.recorder, BinaryBatchRecorder)
    batch = rows(30)
    ids = ledger.recorder.insert_events(batch)
    assert ids is not None and len(ids) == 30 and list(ids) == sorted(ids)
    stored = ledger.recorder.select_notifications(0, 100, inclusive_of_start=False)
    assert [n.id for n in stored] == list(ids)
    assert [(n.originator_id, n.originator_version, n.topic, n.state) for n in stored] == [
        (e.originator_id, e.originator_version, e.topic, e.state) for e in batch]


def test_a_batch_with_a_version_already_stored_is_refused_whole(ledger: SalesLedger) -> None:
    first = rows(3)
    ledger.recorder.insert_events(first)
    clash = [*rows(3), first[1]]  # three new rows, then one already stored
    with pytest.raises(IntegrityError):
        ledger.recorder.insert_events(clash)
    stored = ledger.recorder.select_notifications(0, 100, inclusive_of_start=False)
    assert len(stored) == 3
