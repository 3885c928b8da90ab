"""The alerter's merge of the event partitions: the relay's order, whatever the partitions'
timing. Found by tests/integration/test_chaos.py: with the relay killed mid-batch, one
partition looked caught up while the events before its next one were still to come, and
the alerter raised lead SLA and stall alerts a replay of the finished log never raises."""

from __future__ import annotations

from typing import Any

import orjson
from aiokafka import ConsumerRecord, TopicPartition

from projections.facts import Change
from services.alerter.merge import PartitionMerge
from services.signing import Signer

A, B = TopicPartition("events", 0), TopicPartition("events", 1)


def record(tp: TopicPartition, position: int, previous: int | None) -> ConsumerRecord[Any, Any]:
    """A relayed message as the relay writes it (a rep joining), at `position`."""
    body: dict[str, Any] = {
        "schema": 1, "position": position, "kind": "rep", "key": f"R-{position}", "version": 1,
        "event": {"id": f"e-{position}", "type": "rep.joined", "tenant": "default",
                  "occurred_at": "2017-01-02T09:00:00+08:00",
                  "data": {"rep_id": f"R-{position}", "name": "A", "team_id": "T"}}}
    if previous is not None:
        body["previous"] = previous
    return ConsumerRecord(tp.topic, tp.partition, position, 0, 0, None, orjson.dumps(body),
                          None, 0, 0, [])


def positions(changes: list[Change]) -> list[int]:
    return [change.position for change in changes]


def test_an_event_waits_for_its_predecessor_even_when_no_partition_looks_behind() -> None:
    merge = PartitionMerge([A, B])
    merge.add({A: [record(A, 1, 0), record(A, 3, 2)]})
    # B has not fetched position 2 yet, and its high watermark does not show it either.
    assert positions(merge.take(lagging=set())) == [1]
    merge.add({B: [record(B, 2, 1)]})
    assert positions(merge.take(lagging=set())) == [2, 3]


def test_gaps_in_positions_do_not_hold_anything_back() -> None:
    merge = PartitionMerge([A, B])
    merge.add({A: [record(A, 4, 0)], B: [record(B, 9, 4)]})
    assert positions(merge.take(lagging=set())) == [4, 9]


def test_copies_published_again_after_a_relay_crash_are_taken_once() -> None:
    merge = PartitionMerge([A, B])
    merge.add({A: [record(A, 1, 0), record(A, 2, 1)], B: [record(B, 3, 2)]})
    assert positions(merge.take(lagging=set())) == [1, 2, 3]
    merge.add({A: [record(A, 2, 1), record(A, 4, 3)], B: [record(B, 3, 2)]})
    assert positions(merge.take(lagging=set())) == [4]


def test_a_log_that_does_not_start_at_zero_begins_where_the_partitions_agree() -> None:
    merge = PartitionMerge([A, B])
    merge.add({A: [record(A, 60, 57)]})
    assert merge.take(lagging={B}) == []  # B may still hold something earlier
    merge.add({B: [record(B, 61, 60)]})
    assert positions(merge.take(lagging=set())) == [60, 61]


def test_messages_of_an_older_relay_fall_back_to_waiting_for_lagging_partitions() -> None:
    merge = PartitionMerge([A, B])
    merge.add({A: [record(A, 1, None), record(A, 3, None)]})
    assert merge.take(lagging={B}) == []
    merge.add({B: [record(B, 2, None)]})
    assert positions(merge.take(lagging=set())) == [1, 2, 3]


def test_poison_messages_are_skipped_and_the_rest_still_flows_in_order() -> None:
    merge = PartitionMerge([A, B])
    forged = orjson.loads(record(A, 10**9, 10**9 - 1).value)
    unknown_type = {**forged, "event": {**forged["event"], "type": "rep.teleported"}}
    poison = [ConsumerRecord(A.topic, A.partition, 9, 0, 0, None, value, None, 0, 0, [])
              for value in (b"\x00\xffnot json", b'{"valid": "json"}',
                            orjson.dumps({**forged, "schema": 2}),
                            orjson.dumps(unknown_type))]
    merge.add({A: [poison[0], record(A, 1, 0), poison[1], poison[2]],
               B: [poison[3], record(B, 2, 1)]})
    assert positions(merge.take(lagging=set())) == [1, 2]
    assert merge.unreadable == 4


def signed(value: bytes, signer: Signer, offset: int = 0) -> ConsumerRecord[Any, Any]:
    return ConsumerRecord(A.topic, A.partition, offset, 0, 0, None, value, None, 0, 0,
                          signer.headers(value))


def test_a_message_the_relay_signed_is_not_checked_against_the_contract_again() -> None:
    """The ledger checked it before storing it; the signature proves it came from there."""
    signer = Signer("the relay's key")
    body = orjson.loads(record(A, 1, 0).value)
    body["event"]["data"]["team_id"] = 7  # the contract wants a string: proof of no check
    value = orjson.dumps(body)
    merge = PartitionMerge([A], signer)
    merge.add({A: [signed(value, signer)]})
    assert positions(merge.take(lagging=set())) == [1]
    assert merge.unreadable == 0


def test_a_message_signed_with_another_key_or_altered_is_checked_and_set_aside() -> None:
    signer = Signer("the relay's key")
    body = orjson.loads(record(A, 1, 0).value)
    body["event"]["data"]["team_id"] = 7
    value = orjson.dumps(body)
    altered = signed(orjson.dumps({**body, "version": 2}), signer)
    altered = ConsumerRecord(A.topic, A.partition, 1, 0, 0, None, value, None, 0, 0,
                             altered.headers)  # the signature of other bytes
    merge = PartitionMerge([A], signer)
    merge.add({A: [signed(value, Signer("another key")), altered, record(A, 1, 0)]})
    assert positions(merge.take(lagging=set())) == [1]
    assert merge.unreadable == 2
