"""Event-time timers per partition, persisted in keyed state.

A timer belongs to an owner (a rule id, or the alert manager) and a key.
Setting a timer again for the same owner and key moves it. The heap is only
an index rebuilt from state after a restart; a cancelled or moved timer's
stale heap entry is skipped when it comes up.

A heap entry is one bytes object, the fire time as 8 order-preserving bytes
followed by the timer's key, so entries compare as ``(fire_at, key)`` tuples
would: some 75 bytes a timer instead of a tuple, a float and a str (165
bytes). With two timers a watch, this index was most of an SLA watch's
memory in a rocksdb worker (benchmark 5, ``bench/memory.py``).
"""

from __future__ import annotations

import heapq
import struct
from collections.abc import Iterator

import msgspec

from yujing.protocols import KeyedState

__all__ = ["TimerEntry", "Timers"]

SEP = "\x1f"
_DOUBLE = struct.Struct(">d")
_UINT = struct.Struct(">Q")
_SIGN = 1 << 63
_ALL = (1 << 64) - 1


def sortable(fire_at: float) -> bytes:
    """8 bytes whose order is the order of the floats (IEEE 754, sign bit flipped; negatives all bits).

    >>> sorted([3.5, -1.0, 0.0, -2.5, 1e9], key=sortable) == sorted([3.5, -1.0, 0.0, -2.5, 1e9])
    True
    """
    bits = _UINT.unpack(_DOUBLE.pack(fire_at + 0.0))[0]  # + 0.0: -0.0 is 0.0
    return _UINT.pack(bits ^ _ALL if bits & _SIGN else bits | _SIGN)


def unsortable(head: bytes) -> float:
    """The float :func:`sortable` encoded in ``head[:8]``."""
    bits = _UINT.unpack_from(head)[0]
    return _DOUBLE.unpack(_UINT.pack(bits ^ _SIGN if bits & _SIGN else bits ^ _ALL))[0]


class TimerEntry(msgspec.Struct, array_like=True):
    """A pending timer as stored."""

    fire_at: float
    partition: int


class Timers:
    """All timers of the partitions this process owns.

    >>> from streams.engine.state import DictState
    >>> t = Timers(DictState())
    >>> t.set(0, "rule", "ord-1", 100.0)
    >>> [(o, k, at) for o, k, at in t.pop_due(0, 150.0)]
    [('rule', 'ord-1', 100.0)]
    """

    def __init__(self, store: KeyedState[TimerEntry]) -> None:
        self.store = store
        self.heaps: dict[int, list[bytes]] = {}  # per partition: sortable(fire_at) + timer key, a heap

    def set(self, partition: int, owner: str, key: str, fire_at: float) -> None:
        tkey = owner + SEP + key
        self.store.set(tkey, TimerEntry(fire_at, partition))
        heapq.heappush(self.heaps.setdefault(partition, []), sortable(fire_at) + tkey.encode())

    def cancel(self, owner: str, key: str) -> None:
        self.store.delete(owner + SEP + key)

    def pop_due(self, partition: int, watermark: float) -> Iterator[tuple[str, str, float]]:
        """Timers of ``partition`` at or before ``watermark``, earliest first, each removed."""
        heap = self.heaps.get(partition)
        if not heap:
            return
        until = sortable(watermark) + b"\xff"  # past every entry firing at the watermark itself
        while heap and heap[0] < until:
            top = heapq.heappop(heap)
            fire_at, tkey = unsortable(top), top[8:].decode()
            entry = self.store.get(tkey)
            if entry is None or entry.fire_at != fire_at or entry.partition != partition:
                continue
            self.store.delete(tkey)
            owner, _, key = tkey.partition(SEP)
            yield owner, key, fire_at

    def rebuild(self) -> int:
        """Rebuild the heaps from state (after a restart); returns the number of timers."""
        self.heaps.clear()
        count = 0
        for tkey, entry in self.store.items():
            self.heaps.setdefault(entry.partition, []).append(sortable(entry.fire_at) + tkey.encode())
            count += 1
        for heap in self.heaps.values():
            heapq.heapify(heap)
        return count
