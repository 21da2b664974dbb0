"""Our murmur2 places keys exactly where Kafka's clients do."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_murmur2

from streams.partitioning import murmur2, partition_for, partitions_for


@given(st.binary(max_size=64))
def test_murmur2_equals_kafka_python(data: bytes) -> None:
    assert murmur2(data) == kafka_murmur2(data)


def test_known_keys() -> None:
    assert [partition_for(f"c-{i:06d}", 8) for i in range(5)] == [(kafka_murmur2(f"c-{i:06d}".encode()) & 0x7FFFFFFF) % 8 for i in range(5)]
    assert partition_for("台州", 8) == (kafka_murmur2("台州".encode()) & 0x7FFFFFFF) % 8


@given(st.lists(st.text(max_size=20), max_size=40), st.integers(1, 64))
def test_a_batch_of_keys_is_placed_as_each_key_alone(keys: list[str], partitions: int) -> None:
    assert partitions_for(keys, partitions) == [(kafka_murmur2(k.encode()) & 0x7FFFFFFF) % partitions for k in keys]
