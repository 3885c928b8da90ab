"""The merge of an alerter that owns some of the tenants: every message keeps its place in
the relay's order, only its own tenants' changes come out, and it knows from which offset
of each partition a checkpoint resumes."""

from __future__ import annotations

from typing import Any

import orjson
from aiokafka import ConsumerRecord, TopicPartition

from alerts.tenancy import TenantShare
from services.alerter.merge import PartitionMerge
from services.signing import Signer

A, B = TopicPartition("events", 0), TopicPartition("events", 1)
SIGNER = Signer("the relay's key")
MINE = TenantShare(3, 1)  # "stark" is alerter 1's of 3, "acme" alerter 0's


def record(tp: TopicPartition, offset: int, position: int, tenant: str, *,
           signed: bool = True, team: Any = "T") -> ConsumerRecord[Any, Any]:
    value = orjson.dumps({
        "schema": 1, "position": position, "previous": position - 1, "kind": "rep",
        "key": f"R-{position}", "version": 1,
        "event": {"id": f"e-{position}", "type": "rep.joined", "tenant": tenant,
                  "occurred_at": "2017-01-02T09:00:00+08:00",
                  "data": {"rep_id": f"R-{position}", "name": "A", "team_id": team}}})
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, None, value, None, 0, 0,
                          SIGNER.headers(value) if signed else [])


def test_only_its_tenants_come_out_in_the_relays_order() -> None:
    merge = PartitionMerge([A, B], SIGNER, MINE.owns)
    merge.add({A: [record(A, 0, 1, "acme"), record(A, 1, 3, "stark")],
               B: [record(B, 0, 2, "stark"), record(B, 1, 4, "acme")]})
    assert [(c.position, c.tenant) for c in merge.take(lagging=set())] == [
        (2, "stark"), (3, "stark")]
    assert merge.last == 4  # the others' messages were taken for their place


def test_another_tenants_message_waits_for_its_predecessor_like_any() -> None:
    merge = PartitionMerge([A, B], SIGNER, MINE.owns)
    merge.add({A: [record(A, 0, 1, "stark"), record(A, 1, 3, "stark")]})
    assert [c.position for c in merge.take(lagging=set())] == [1]
    merge.add({B: [record(B, 0, 2, "acme")]})
    assert [c.position for c in merge.take(lagging=set())] == [3]


def test_an_unsigned_message_of_another_tenant_is_checked_in_full() -> None:
    """Only the relay's signature lets the tenant be read without the contract check: an
    unsigned message breaking the contract is poison, and takes no place in the order."""
    merge = PartitionMerge([A], SIGNER, MINE.owns)
    merge.add({A: [record(A, 0, 1, "acme", signed=False, team=7), record(A, 1, 1, "stark")]})
    assert [c.position for c in merge.take(lagging=set())] == [1]
    assert merge.unreadable == 1


def test_unread_names_the_first_message_not_taken_of_each_partition() -> None:
    merge = PartitionMerge([A, B], SIGNER, MINE.owns)
    merge.add({A: [record(A, 10, 1, "acme"), record(A, 11, 3, "stark")],
               B: [record(B, 20, 4, "stark")]})
    assert merge.take(lagging=set()) == []  # position 2 is still on its way
    assert merge.unread() == {A: 11, B: 20}
