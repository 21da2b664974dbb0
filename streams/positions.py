"""Input positions kept in state: the worker trusts its state, not the consumer, about what it has read.

A consumer's committed offsets and its fetch position are not proof of what
was processed: a commit can run ahead of the state (a kill between the two, or
an operator's reset), a fetch made across a rebalance or a seek can deliver
records again or skip some (seen with faust's per-message stream, see
:mod:`streams.stuck`). So the worker keeps, beside its state and in the same
changelog, the next offset it expects of each input partition, checks every
record against it before the engine sees it, and commits to the group only
what the state holds (:meth:`InputPositions.take_committable`):

* ``offset == expected`` (or nothing stored yet): processed; the position moves on.
* ``offset < expected``: a redelivery of a record whose effects are already in
  state (the position is stored after the state it covers): skipped.
* ``offset > expected``: a gap. A probe asks the broker for the first record at
  or after ``expected``. If that is this record, the offsets in between hold
  no records (transaction markers, retention): the gap is accepted and counted.
  Otherwise records were lost on the way: this one is skipped and the runner
  seeks the partition back. Records still queued from before the seek are
  skipped without a probe for ``patience`` seconds, until the re-fetch brings
  the expected offset; after that the next record past the gap probes again.

After a rebalance (a restart among them) the runner seeks an input partition to
where the state ends (:meth:`InputPositions.starts`) when the consumer's committed
offset lies beyond it (the commit ran ahead of the state) or is unknown (a new
group, or a broker that lost its offsets: the fetch position is then wherever
the consumer left it, seen at the partition's end). A partition the state holds
nothing of (never read by this app, or read by a worker killed before its first
changelog) is read from its start, whatever the group says: left where the
consumer put it, a new owner took over at the high water and never read what
the dead worker had not committed (one cohort group's alerts all missing after
a kill). A commit behind the state is left alone: the records read again are
skipped as duplicates.

>>> import asyncio
>>> from streams.engine.state import DictBackend
>>> async def broker_has_every_offset(topic: str, partition: int, offset: int) -> int:
...     return offset
>>> p = InputPositions(DictBackend(), broker_has_every_offset)
>>> asyncio.run(p.admit([("orders", 0, 5), ("orders", 0, 6)]))
([0, 1], {})
>>> asyncio.run(p.admit([("orders", 0, 6), ("orders", 0, 9)]))  # 6 again: done; 9: 7 and 8 were lost
([], {('orders', 0): 7})
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from yujing.protocols import StateBackend

__all__ = ["POSITIONS_NAMESPACE", "InputPositions", "Probe"]

log = logging.getLogger(__name__)

POSITIONS_NAMESPACE = "~positions"

TopicPartition = tuple[str, int]
#: ``probe(topic, partition, offset)``: the offset of the first record at or after ``offset``, ``None`` if unknown.
Probe = Callable[[str, int, int], Awaitable[int | None]]


@dataclass
class _Rewind:
    """A partition sought back to ``to`` at ``sought_at``."""

    to: int
    sought_at: float


class InputPositions:
    """The next offset expected of each input partition, stored in a state namespace.

    :meth:`admit` says which records of a batch to process and which partitions
    to seek back; :meth:`store` writes the positions of the admitted records
    (call it after the engine has processed them, before the state is committed).
    """

    def __init__(self, backend: StateBackend, probe: Probe, patience: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.backend = backend
        self.state = backend.namespace(POSITIONS_NAMESPACE, int)
        self.probe = probe
        self.patience = patience
        self.clock = clock
        self.expected: dict[TopicPartition, int | None] = {}
        self.rewinds: dict[TopicPartition, _Rewind] = {}
        self.changed: dict[TopicPartition, int] = {}
        self.committable: dict[TopicPartition, int] = {}
        self.skipped: Counter[tuple[str, str]] = Counter()  # (topic, duplicate | beyond_gap)
        self.seeks: Counter[str] = Counter()
        self.gaps: Counter[str] = Counter()
        self.suspects: dict[TopicPartition, int] = {}  # behind the consumer's fetch position at the last check

    def forget(self) -> None:
        """Drop what is cached (after a rebalance or a recovery the state decides again)."""
        self.expected.clear()
        self.rewinds.clear()
        self.suspects.clear()

    def next_offset(self, topic: str, partition: int) -> int | None:
        """The next offset expected of an input partition (read from state once after a restart), ``None`` if never read."""
        return self._expected((topic, partition))

    def starts(self, partitions: Iterable[TopicPartition], committed: Callable[[TopicPartition], int | None]) -> dict[TopicPartition, int]:
        """Partitions to seek after a rebalance, each to where the state ends: those whose ``committed`` offset
        (where the consumer now reads from) is unknown, or beyond the state's. One behind the state is left:
        what it reads again is skipped, and a seek past it would leave offsets the consumer never acknowledges,
        which stops faust's commits for good. A partition the state holds no position of is read from offset 0
        (the broker's earliest, if retention took it), since the state holds nothing of it. Each seek is counted."""
        out = {}
        for tp in partitions:
            offset = self._expected(tp)
            at = committed(tp)
            if offset is None:
                if at:
                    log.warning("%s[%d]: committed at %d, but the state holds nothing of it: reading it from the start", *tp, at)
                offset = 0
            if at is None or at > offset:
                out[tp] = offset
                self.seeks[tp[0]] += 1
        return out

    def _expected(self, tp: TopicPartition) -> int | None:
        if tp not in self.expected:
            self.expected[tp] = self.state.get(f"{tp[0]}:{tp[1]}")
        return self.expected[tp]

    async def admit(self, records: Sequence[Sequence[Any]]) -> tuple[list[int], dict[TopicPartition, int]]:
        """For records that begin ``(topic, partition, offset, …)`` (a :class:`~streams.pipeline.Record`
        does): the indexes to process, and ``{partition: offset}`` to seek to."""
        admitted: list[int] = []
        seeks: dict[TopicPartition, int] = {}
        for i, record in enumerate(records):
            topic, partition, offset = record[0], record[1], record[2]
            tp = (topic, partition)
            expected = self._expected(tp)
            if expected is None or offset == expected:
                self._advance(tp, offset)
                admitted.append(i)
            elif offset < expected:
                self.skipped[(topic, "duplicate")] += 1
            elif await self._gap_is_empty(tp, expected, offset, seeks):
                self._advance(tp, offset)
                admitted.append(i)
            else:
                self.skipped[(topic, "beyond_gap")] += 1
        return admitted, seeks

    def _advance(self, tp: TopicPartition, offset: int) -> None:
        self.expected[tp] = self.changed[tp] = offset + 1
        self.rewinds.pop(tp, None)

    async def _gap_is_empty(self, tp: TopicPartition, expected: int, offset: int, seeks: dict[TopicPartition, int]) -> bool:
        """True when no record lies between ``expected`` and ``offset``; else seek back (once per ``patience``)."""
        now = self.clock()
        rewind = self.rewinds.get(tp)
        if rewind is not None and rewind.to == expected and now - rewind.sought_at <= self.patience:
            return False  # queued before the seek; the re-fetch is on its way
        first = await self.probe(tp[0], tp[1], expected)
        if first == offset:
            log.info("%s[%d]: offsets %d..%d hold no records; going on", *tp, expected, offset - 1)
            self.gaps[tp[0]] += 1
            return True
        if first is not None and expected < first < offset:  # the offsets before ``first`` hold no records
            self.expected[tp] = self.changed[tp] = expected = first
        log.warning("%s[%d]: expected offset %d, got %d: reading it again from %d", *tp, expected, offset, expected)
        self.rewinds[tp] = _Rewind(expected, now)
        seeks[tp] = expected
        self.seeks[tp[0]] += 1
        return False

    def overdue(self) -> dict[TopicPartition, int]:
        """Seeks to make again: partitions sought back more than ``patience`` ago whose re-fetch never came
        (the runner calls this on a timer, so a lost re-fetch at the end of a partition is read again too)."""
        now = self.clock()
        seeks = {}
        for tp, rewind in self.rewinds.items():
            if now - rewind.sought_at > self.patience:
                log.warning("%s[%d]: still waiting for offset %d: reading it again", *tp, rewind.to)
                rewind.sought_at = now
                seeks[tp] = rewind.to
                self.seeks[tp[0]] += 1
        return seeks

    def lost(self, fetched: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        """Seeks for records the consumer handed over and the worker never processed: partitions whose ``fetched``
        position (the consumer's next offset to fetch) has stood beyond the expected offset, with the expected
        offset unchanged, at two checks in a row and no seek back pending. Nothing reads those records again by
        itself: the positions notice a gap only at the next record, and a partition with nothing more to come
        stands still for good (the drain's re-reads, :func:`streams.faust_internals.read_again`, cover the causes
        known; this catches any other). Call it on a timer; each seek is counted and logged."""
        seeks = {}
        suspects: dict[TopicPartition, int] = {}
        for tp, position in fetched.items():
            expected = self.expected.get(tp)
            if expected is None or position <= expected or tp in self.rewinds:
                continue
            if self.suspects.get(tp) == expected:
                log.warning("%s[%d]: fetched to offset %d, processed to %d: reading it again from %d", *tp, position, expected, expected)
                self.rewinds[tp] = _Rewind(expected, self.clock())
                seeks[tp] = expected
                self.seeks[tp[0]] += 1
            else:
                suspects[tp] = expected
        self.suspects = suspects
        return seeks

    def store(self) -> None:
        """Write the positions moved since the last call, each under its own partition."""
        for (topic, partition), offset in self.changed.items():
            self.backend.use_partition(partition)
            self.state.set(f"{topic}:{partition}", offset)
        self.committable.update(self.changed)
        self.changed.clear()

    def take_committable(self) -> dict[TopicPartition, int]:
        """Positions stored since the last call, for the runner to commit to the consumer group once the state
        that covers them is in the changelog (the group's offsets then lag the state, never lead it)."""
        out, self.committable = self.committable, {}
        return out

    def take_counts(self) -> tuple[Counter[tuple[str, str]], Counter[str], Counter[str]]:
        """Skipped records by (topic, reason), seeks and accepted gaps by topic, since the last call."""
        counts = self.skipped, self.seeks, self.gaps
        self.skipped, self.seeks, self.gaps = Counter(), Counter(), Counter()
        return counts
