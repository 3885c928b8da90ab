"""The producers' partitioner puts every key where aiokafka's default (the Java client's
murmur2) puts it, whatever the partition count, remembered hash or not."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from services.kafka import KeyedPartitioner

KEYED = KeyedPartitioner(keys=64)  # small: keys fall out of the cache and come back


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=50),
       st.integers(min_value=1, max_value=64))
def test_a_key_lands_where_the_default_partitioner_puts_it(keys: list[bytes], count: int) -> None:
    partitions = list(range(count))
    for key in keys + keys:  # the second time from the cache
        assert KEYED(key, partitions, partitions) == DefaultPartitioner()(key, partitions,
                                                                          partitions)


def test_the_same_key_moves_with_the_partition_count_as_kafka_would() -> None:
    key = b"8f0c3d9e-3c1e-5b8a-9d7f-0123456789ab"
    for count in (1, 4, 8, 3, 4):
        assert KEYED(key, list(range(count)), []) == DefaultPartitioner()(
            key, list(range(count)), [])


def test_a_message_without_a_key_goes_to_an_available_partition() -> None:
    assert KEYED(None, [0, 1, 2, 3], [2]) == 2
