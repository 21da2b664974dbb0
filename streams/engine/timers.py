"""Event-time timers per partition, persisted in keyed state.

A timer belongs to an owner (a rule id, or the alert manager) and a key.
Setting a timer again for the same owner and key moves it. The heap is only
an index rebuilt from state after a restart; a cancelled or moved timer's
stale heap entry is skipped when it comes up.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

import msgspec

from yujing.protocols import KeyedState

__all__ = ["TimerEntry", "Timers"]

SEP = "\x1f"


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
        self.heaps: dict[int, list[tuple[float, str]]] = {}

    def set(self, partition: int, owner: str, key: str, fire_at: float) -> None:
        tkey = owner + SEP + key
        self.store.set(tkey, TimerEntry(fire_at, partition))
        heapq.heappush(self.heaps.setdefault(partition, []), (fire_at, tkey))

    def cancel(self, owner: str, key: str) -> None:
        self.store.delete(owner + SEP + key)

    def next_due(self, partition: int) -> float | None:
        heap = self.heaps.get(partition)
        return heap[0][0] if heap else None

    def pop_due(self, partition: int, watermark: float) -> Iterator[tuple[str, str, float]]:
        """Timers of ``partition`` at or before ``watermark``, earliest first, each removed."""
        heap = self.heaps.get(partition)
        while heap and heap[0][0] <= watermark:
            fire_at, tkey = heapq.heappop(heap)
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
            self.heaps.setdefault(entry.partition, []).append((entry.fire_at, tkey))
            count += 1
        for heap in self.heaps.values():
            heapq.heapify(heap)
        return count
