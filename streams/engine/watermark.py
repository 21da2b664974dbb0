"""Per-partition event-time watermarks with idle advance.

The watermark of a partition is ``max event time seen − allowed lateness``.
When a partition has had no event for ``idle_after`` seconds of wall-clock
time, its watermark keeps moving at wall-clock speed from there, so a timer
(an SLA deadline) still fires at 3 a.m. when no traffic arrives. Watermarks
never go backwards.
"""

from __future__ import annotations

import math

import msgspec

from yujing.protocols import KeyedState

__all__ = ["PartitionClock", "Watermarks"]

NEVER = -math.inf


class PartitionClock(msgspec.Struct, array_like=True):
    """What survives a restart of one partition's clock."""

    max_ts: float
    floor: float


class Watermarks:
    """Tracks the watermark of every partition.

    >>> w = Watermarks(lateness=60, idle_after=None)
    >>> w.observe(0, 1000.0, wall=0.0)
    >>> w.current(0, wall=0.0)
    940.0
    """

    def __init__(self, lateness: float, idle_after: float | None, store: KeyedState[PartitionClock] | None = None) -> None:
        self.lateness = lateness
        self.idle_after = idle_after
        self.store = store
        self.max_ts: dict[int, float] = {}
        self.last_wall: dict[int, float] = {}
        self.floor: dict[int, float] = {}

    def observe(self, partition: int, ts: float, wall: float) -> None:
        """An event of ``partition`` with event time ``ts`` arrived at wall time ``wall``."""
        if ts > self.max_ts.get(partition, NEVER):
            self.max_ts[partition] = ts
        self.last_wall[partition] = wall

    def current(self, partition: int, wall: float) -> float:
        """The partition's watermark now (monotonic)."""
        max_ts = self.max_ts.get(partition, NEVER)
        mark = max_ts - self.lateness
        if self.idle_after is not None and max_ts != NEVER:
            idle_for = wall - self.last_wall.get(partition, wall) - self.idle_after
            if idle_for > 0:
                mark += idle_for
        floor = self.floor.get(partition, NEVER)
        if mark > floor:
            self.floor[partition] = mark
            return mark
        return floor

    def close_input(self, partition: int) -> float:
        """End of input (backtests): every event is in, so lateness no longer applies."""
        mark = max(self.max_ts.get(partition, NEVER), self.floor.get(partition, NEVER))
        self.floor[partition] = mark
        return mark

    def partitions(self) -> list[int]:
        return sorted(self.max_ts)

    def save(self) -> None:
        """Persist each partition's clock (called once per batch)."""
        if self.store is None:
            return
        for partition, max_ts in self.max_ts.items():
            self.store.set(str(partition), PartitionClock(max_ts, self.floor.get(partition, NEVER)))

    def restore(self, wall: float) -> None:
        """Reload clocks after a restart; idle time counts from ``wall``."""
        if self.store is None:
            return
        for key, clock in self.store.items():
            partition = int(key)
            self.max_ts[partition] = max(clock.max_ts, self.max_ts.get(partition, NEVER))
            self.floor[partition] = max(clock.floor, self.floor.get(partition, NEVER))
            self.last_wall.setdefault(partition, wall)
