"""What the ledger stores reads as it did: the same bytes as eventsourcing's JSON
encoding, readable by the relay and by a replay, old rows and new rows alike.

The ledger writes with orjson (services/eventstore/transcoder.py) and declares its aggregate's
events explicitly (services/eventstore/ledger.py); rows written before both changes, by the
library's own `JSONTranscoder`, must stay readable, and new rows must be what
that encoder would have written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)

from services.eventstore.ledger import SalesLedger
from services.eventstore.transcoder import OrjsonTranscoder
from services.relay import message
from tests.history import simulated

TENANT = "default"
LIBRARY_TRANSCODER = "eventsourcing.persistence:JSONTranscoder"


def sqlite_env(path: Path, **more: str) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path), **more}


def library_transcoder() -> JSONTranscoder:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return transcoder


def ours() -> OrjsonTranscoder:
    transcoder = OrjsonTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return transcoder


def history() -> list[dict[str, Any]]:
    return simulated(days=40)


def record_history(ledger: SalesLedger, events: list[dict[str, Any]]) -> None:
    for at in range(0, len(events), 500):
        ledger.record(events[at:at + 500], tenant=TENANT)


def test_the_ledger_writes_with_orjson_by_default() -> None:
    ledger = SalesLedger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    assert isinstance(ledger.mapper.transcoder, OrjsonTranscoder)


def test_every_stored_event_is_byte_for_byte_what_the_library_would_have_written() -> None:
    ledger = SalesLedger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    record_history(ledger, history())
    library = Mapper(library_transcoder())
    notifications = ledger.recorder.select_notifications(0, 100_000, inclusive_of_start=False)
    assert len(notifications) == len(history())
    for notification in notifications:
        domain_event = ledger.mapper.to_domain_event(notification)
        assert library.to_stored_event(domain_event).state == notification.state
        assert library.to_domain_event(notification).__dict__ == domain_event.__dict__


def test_rows_written_by_the_library_encoder_are_relayed_and_replayed_as_before(
        tmp_path: Path) -> None:
    path = tmp_path / "es.db"
    before = SalesLedger(env=sqlite_env(path, TRANSCODER_TOPIC=LIBRARY_TRANSCODER))
    events = history()
    record_history(before, events[:1000])
    assert not isinstance(before.mapper.transcoder, OrjsonTranscoder)
    now = SalesLedger(env=sqlite_env(path, SUBJECT_CACHE_MAXSIZE="0"))
    record_history(now, events[1000:])  # replays the old rows to decide the new ones
    read = now.recorder.select_notifications(0, 100_000, inclusive_of_start=False)
    assert [message(now, n, 0)[1] for n in read[:3]]  # the relay reads old rows
    relayed = [now.mapper.to_domain_event(n).envelope["id"] for n in read]  # type: ignore[attr-defined]
    assert relayed == [e["id"] for e in events]
    deal = next(e for e in events[:1000] if e["type"] == "deal.created")
    replayed = now.load(TENANT, "deal", deal["data"]["deal_id"])
    assert replayed is not None and deal["id"] in replayed.seen


def test_the_relay_reads_a_new_row_as_it_read_an_old_one(tmp_path: Path) -> None:
    events = history()[:200]
    old = SalesLedger(env=sqlite_env(tmp_path / "old.db", TRANSCODER_TOPIC=LIBRARY_TRANSCODER))
    new = SalesLedger(env=sqlite_env(tmp_path / "new.db"))
    for ledger in (old, new):
        record_history(ledger, events)

    def relayed(ledger: SalesLedger) -> list[tuple[bytes, dict[str, Any]]]:
        out = []
        for n in ledger.recorder.select_notifications(0, 1000, inclusive_of_start=False):
            key, value = message(ledger, n, 0)
            body = orjson.loads(value)
            body.pop("relayed_at")
            out.append((key, body))
        return out

    assert relayed(old) == relayed(new)


def library_message(ledger: SalesLedger, notification: Any) -> dict[str, Any]:
    """The relayed message as it was made from the library's domain event."""
    domain_event: Any = ledger.mapper.to_domain_event(notification)
    return {"kind": domain_event.kind, "key": domain_event.key,
            "event": domain_event.envelope}


@pytest.mark.parametrize("more", [
    {}, {"COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor"}],
    ids=["plain", "compressed"])
def test_the_relay_reads_kind_key_and_envelope_as_the_library_decodes_them(
        tmp_path: Path, more: dict[str, str]) -> None:
    """The relay reads the stored JSON itself (no domain event is built); the library's
    decoding, which a compressed or enciphered store still goes through, says the same."""
    ledger = SalesLedger(env=sqlite_env(tmp_path / "store.db", **more))
    assert (ledger.mapper.compressor is not None) == bool(more)
    events = history()
    record_history(ledger, events)
    read = ledger.recorder.select_notifications(0, 100_000, inclusive_of_start=False)
    assert len(read) == len(events)
    for notification in read:
        body = orjson.loads(message(ledger, notification, 0)[1])
        assert {k: body[k] for k in ("kind", "key", "event")} == library_message(
            ledger, notification)


@pytest.mark.parametrize("value", [
    {"at": datetime(2017, 3, 1, 10, tzinfo=UTC), "n": 1, "s": "é 中 \x00 \"\\\n"},
    {"amount": Decimal("12.50"), "nested": [{"at": datetime(2017, 1, 1, tzinfo=UTC)}]},
    {"id": UUID(int=7), "more": [1, 2]},  # a UUID value: uuid_hex, as the library writes it
    {"big": 2 ** 70},  # beyond orjson's integers: the library's encoder writes it
    {1: "a key that is not a string"},
    {"t": (1, 2), "b": True, "none": None},
])
def test_the_transcoder_writes_what_the_library_writes(value: dict[Any, Any]) -> None:
    assert ours().encode(value) == library_transcoder().encode(value)
    assert ours().decode(ours().encode(value)) == library_transcoder().decode(
        library_transcoder().encode(value))


def test_a_float_may_be_spelled_otherwise_but_reads_as_the_same_number() -> None:
    values = {"p": [1e-05, 0.25, 1e16, 2.5e-8, 1 / 3]}
    assert library_transcoder().decode(ours().encode(values)) == values


def test_an_unregistered_type_is_refused_with_the_library_error() -> None:
    with pytest.raises(TranscodingNotRegisteredError):
        ours().encode({"x": object()})


def test_rows_stored_before_the_ledger_moved_still_name_its_classes() -> None:
    from eventsourcing.utils import resolve_topic

    from services.eventstore.ledger import HeldEvents, SalesSubject

    for cls in (SalesSubject, SalesSubject.Created, SalesSubject.Recorded,
                HeldEvents, HeldEvents.Created, HeldEvents.Recorded):
        assert resolve_topic(f"events.ledger:{cls.__qualname__}") is cls
