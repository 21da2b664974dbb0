"""The Kafka default partitioner, so local runs place each customer where Kafka would."""

from __future__ import annotations

from kafka.partitioner.default import murmur2

__all__ = ["partition_for"]


def partition_for(key: str | bytes, partitions: int) -> int:
    """Partition of ``key`` among ``partitions`` (murmur2, as Kafka's Java and Python clients do).

    >>> partition_for("c-1001", 8) == partition_for(b"c-1001", 8)
    True
    """
    raw = key.encode() if isinstance(key, str) else key
    return (murmur2(raw) & 0x7FFFFFFF) % partitions
