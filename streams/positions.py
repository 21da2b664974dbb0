"""Input positions kept in state: the worker trusts its state, not the consumer, about what it has read.

faust acknowledges a batch's offsets after the batch ends, and its consumer can
(in rebalance races, see :mod:`streams.stuck`) mark messages read that it never
delivered; their offsets are then committed past them and the events are lost
for good. So the worker keeps, beside its state and in the same changelog, the
next offset it expects of each input partition, and checks every record
against it before the engine sees it:

* ``offset == expected`` (or nothing stored yet): processed; the position moves on.
* ``offset < expected``: a redelivery of a record whose effects are already in
  state (the position is stored after the state it covers): skipped.
* ``offset > expected``: the records in between never arrived. The record is
  skipped and the runner seeks the partition back to ``expected``; records
  still queued from before the seek are skipped too, until the re-fetch begins
  (an offset not above the highest seen since the seek); should no re-fetch
  begin within ``patience`` seconds (its first record lost too), the seek is
  made again. If a re-fetch begins
  beyond ``expected`` twice at the same offset, the offsets in between do not
  exist (transaction markers, records deleted by retention): the gap is
  accepted, logged and counted.

After a restart the consumer resumes from its committed offset; if that lies
beyond the stored position (the commit ran ahead of the state), the first record
opens a gap and the partition is read again from where the state ends.

>>> from streams.engine.state import DictBackend
>>> p = InputPositions(DictBackend())
>>> admitted, seeks = p.admit([("orders", 0, 5), ("orders", 0, 6)])
>>> admitted, seeks
([0, 1], {})
>>> p.admit([("orders", 0, 6), ("orders", 0, 9)])  # 6 again: done; 9: 7 and 8 are missing
([], {('orders', 0): 7})
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from yujing.protocols import StateBackend

__all__ = ["POSITIONS_NAMESPACE", "InputPositions"]

log = logging.getLogger(__name__)

POSITIONS_NAMESPACE = "~positions"

TopicPartition = tuple[str, int]


@dataclass
class _Rewind:
    """A partition sought back to ``to``: what has been seen since."""

    to: int
    high: int  # the highest offset seen since the last seek
    sought_at: float  # when the last seek was asked for
    landed: int | None = None  # where the last re-fetch began, when beyond ``to``


class InputPositions:
    """The next offset expected of each input partition, stored in a state namespace.

    :meth:`admit` says which records of a batch to process and which partitions
    to seek back; :meth:`store` writes the positions of the admitted records
    (call it after the engine has processed them, before the state is committed).
    """

    def __init__(self, backend: StateBackend, patience: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.backend = backend
        self.patience = patience
        self.clock = clock
        self.state = backend.namespace(POSITIONS_NAMESPACE, int)
        self.expected: dict[TopicPartition, int | None] = {}
        self.rewinds: dict[TopicPartition, _Rewind] = {}
        self.changed: dict[TopicPartition, int] = {}
        self.skipped: Counter[tuple[str, str]] = Counter()  # (topic, duplicate | beyond_gap)
        self.seeks: Counter[str] = Counter()
        self.gaps: Counter[str] = Counter()

    def forget(self) -> None:
        """Drop what is cached (after a rebalance or a recovery the state decides again)."""
        self.expected.clear()
        self.rewinds.clear()

    def _expected(self, tp: TopicPartition) -> int | None:
        if tp not in self.expected:
            self.expected[tp] = self.state.get(f"{tp[0]}:{tp[1]}")
        return self.expected[tp]

    def admit(self, records: Sequence[tuple[str, int, int]]) -> tuple[list[int], dict[TopicPartition, int]]:
        """For ``(topic, partition, offset)`` records: the indexes to process, and ``{partition: offset}`` to seek to."""
        admitted: list[int] = []
        seeks: dict[TopicPartition, int] = {}
        for i, (topic, partition, offset) in enumerate(records):
            tp = (topic, partition)
            expected = self._expected(tp)
            if expected is None or offset == expected:
                self._advance(tp, offset)
                admitted.append(i)
            elif offset < expected:
                self.skipped[(topic, "duplicate")] += 1
            elif self._beyond(tp, expected, offset, seeks):
                self._advance(tp, offset)
                admitted.append(i)
            else:
                self.skipped[(topic, "beyond_gap")] += 1
        return admitted, seeks

    def _advance(self, tp: TopicPartition, offset: int) -> None:
        self.expected[tp] = self.changed[tp] = offset + 1
        self.rewinds.pop(tp, None)

    def _beyond(self, tp: TopicPartition, expected: int, offset: int, seeks: dict[TopicPartition, int]) -> bool:
        """A record past a gap: seek back (False), or accept a gap seen twice (True)."""
        rewind = self.rewinds.get(tp)
        now = self.clock()
        if rewind is None or rewind.to != expected:
            self.rewinds[tp] = _Rewind(expected, offset, now)
            self._seek(tp, expected, offset, seeks)
            return False
        if offset > rewind.high:  # still queued from before the seek, or the re-fetch's start was lost
            rewind.high = offset
            if now - rewind.sought_at > self.patience:
                rewind.sought_at = now
                self._seek(tp, expected, offset, seeks)
            return False
        if rewind.landed == offset:
            log.warning("%s[%d]: offsets %d..%d do not exist (read twice from %d); going on", *tp, expected, offset - 1, expected)
            self.gaps[tp[0]] += 1
            return True
        rewind.landed = rewind.high = offset
        rewind.sought_at = now
        self._seek(tp, expected, offset, seeks)
        return False

    def _seek(self, tp: TopicPartition, expected: int, offset: int, seeks: dict[TopicPartition, int]) -> None:
        log.warning("%s[%d]: expected offset %d, got %d: reading it again from %d", *tp, expected, offset, expected)
        seeks[tp] = expected
        self.seeks[tp[0]] += 1

    def store(self) -> None:
        """Write the positions moved since the last call, each under its own partition."""
        for (topic, partition), offset in self.changed.items():
            self.backend.use_partition(partition)
            self.state.set(f"{topic}:{partition}", offset)
        self.changed.clear()

    def take_counts(self) -> tuple[Counter[tuple[str, str]], Counter[str], Counter[str]]:
        """Skipped records by (topic, reason), seeks and accepted gaps by topic, since the last call."""
        counts = self.skipped, self.seeks, self.gaps
        self.skipped, self.seeks, self.gaps = Counter(), Counter(), Counter()
        return counts
