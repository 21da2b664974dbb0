"""Event-time timers per partition: a record of each in keyed state, or in its owner's own state, and an index
that hands out the due ones in bulk.

A timer belongs to an owner (a rule id, or the alert manager) and a key.
Setting a timer again for the same owner and key moves it. The record says
where a timer stands (``~timers``, one entry per owner and key); the index is
only a way to find the due ones, rebuilt from the records after a restart, and
an index entry whose record has moved or gone is skipped when it comes up.

An owner whose stored state already says when each of its keys is due (an SLA
watch knows its deadline; see :class:`yujing.protocols.KeepsTimers`) keeps no
record here: its index entries fire as they come up, it ignores the ones its
state no longer expects, and after a restart it says what it has pending.
With a million open watches the records were most of a watch's memory.

The index of a partition is a few runs of columns sorted by fire time (the
time as float64, the owner as a small code, the key as a reference to the str
the owner already holds, some 18 bytes an entry instead of a heap's tuple or
bytes object of 70 or more), and the entries added since the last look. A look
seals those into a run, merges runs of like size (so a run's entries are
copied O(log n) times), and takes every run's due prefix at once. The due
entries fire from a small heap in ``(fire time, owner + SEP + key)`` order, and
a timer set while they fire that is already due joins that heap, so the order
is the one a single heap of every timer would give.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping

import msgspec
import numpy as np

from yujing.protocols import KeyedState
from yujing.timer_keys import LAST, SEP

__all__ = ["LAST", "SEP", "TimerEntry", "Timers"]


#: ``(key, partition, fire_at)`` of an owner's pending timers, read from its own state after a restart.
StoredTimers = Callable[[], Iterable[tuple[str, int, float]]]


class TimerEntry(msgspec.Struct, array_like=True):
    """A pending timer as stored."""

    fire_at: float
    partition: int


class _Run:
    """Index entries sorted by fire time, as columns; ``start`` skips those already taken."""

    __slots__ = ("at", "key", "owner", "start")

    def __init__(self, at: np.ndarray, owner: np.ndarray, key: np.ndarray) -> None:
        self.at, self.owner, self.key, self.start = at, owner, key, 0

    def __len__(self) -> int:
        return len(self.at) - self.start

    def take_due(self, mark: float) -> list[tuple[float, int, str]]:
        """Remove and return the entries at or before ``mark``."""
        end = int(np.searchsorted(self.at, mark, side="right"))
        if end <= self.start:
            return []
        s = self.start
        due = list(zip(self.at[s:end].tolist(), self.owner[s:end].tolist(), self.key[s:end].tolist(), strict=True))
        self.key[s:end] = None  # the owners' keys are not held by what has fired
        self.start = end
        if self.start > len(self.at) // 2:  # most of it taken: give the memory back
            self.at, self.owner, self.key, self.start = self.at[end:].copy(), self.owner[end:].copy(), self.key[end:].copy(), 0
        return due

    def live(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = self.start
        return self.at[s:], self.owner[s:], self.key[s:]


class _PartitionIndex:
    """One partition's index: sorted runs and the entries added since the last look."""

    __slots__ = ("at", "key", "owner", "runs")

    def __init__(self) -> None:
        self.at: list[float] = []
        self.owner: list[int] = []
        self.key: list[str] = []
        self.runs: list[_Run] = []

    def add(self, fire_at: float, owner: int, key: str) -> None:
        self.at.append(fire_at)
        self.owner.append(owner)
        self.key.append(key)

    def take_due(self, mark: float) -> list[tuple[float, int, str]]:
        self._seal()
        due: list[tuple[float, int, str]] = []
        for run in self.runs:
            due.extend(run.take_due(mark))
        if due:
            self.runs = [run for run in self.runs if len(run)]
        return due

    def _seal(self) -> None:
        """The entries added since the last look become a run; runs of like size merge."""
        if not self.at:
            return
        keys = np.empty(len(self.key), dtype=object)
        keys[:] = self.key
        self._push(np.array(self.at, dtype=np.float64), np.array(self.owner, dtype=np.int16), keys)
        self.at, self.owner, self.key = [], [], []
        runs = self.runs
        while len(runs) > 1 and len(runs[-2]) <= 2 * len(runs[-1]):
            newer, older = runs.pop().live(), runs.pop().live()
            self._push(*(np.concatenate((a, b)) for a, b in zip(older, newer, strict=True)))

    def _push(self, at: np.ndarray, owner: np.ndarray, key: np.ndarray) -> None:
        order = np.argsort(at, kind="stable")  # timsort: two sorted runs merge in linear time
        self.runs.append(_Run(at[order], owner[order], key[order]))

    def __len__(self) -> int:
        return len(self.at) + sum(len(run) for run in self.runs)


class Timers:
    """All timers of the partitions this process owns.

    >>> from streams.engine.state import DictState
    >>> t = Timers(DictState())
    >>> t.set(0, "rule", "ord-1", 100.0)
    >>> [(o, k, at) for o, k, at in t.pop_due(0, 150.0)]
    [('rule', 'ord-1', 100.0)]
    """

    def __init__(self, store: KeyedState[TimerEntry], owned: Mapping[str, StoredTimers] | None = None) -> None:
        self.store = store
        self.owned: Mapping[str, StoredTimers] = owned or {}
        self.index: dict[int, _PartitionIndex] = {}
        self.owners: list[str] = []  # an owner's code in the index is its position here
        self.codes: dict[str, int] = {}
        self.firing: dict[int, tuple[float, list[tuple[float, str, str, str]]]] = {}  # partition -> (mark, due heap)

    def own(self, owned: Mapping[str, StoredTimers]) -> None:
        """The owners that keep their timers in their own state (see the module's docstring)."""
        self.owned = owned

    def reindex(self, owner: str) -> int:
        """Index again the timers an owner that keeps its own says it has (its rule changed: the times its state
        now gives may not be those its entries have); an entry it no longer expects is ignored when it comes up."""
        count = 0
        for key, partition, fire_at in self.owned[owner]():
            self._index(partition, owner, key, fire_at)
            count += 1
        return count

    def set(self, partition: int, owner: str, key: str, fire_at: float) -> None:
        if owner not in self.owned:
            self.store.set(owner + SEP + key, TimerEntry(fire_at, partition))
        firing = self.firing.get(partition)
        if firing is not None and fire_at <= firing[0]:  # due already: it fires in the round under way
            heapq.heappush(firing[1], (fire_at, owner + SEP + key, owner, key))
            return
        self._index(partition, owner, key, fire_at)

    def _index(self, partition: int, owner: str, key: str, fire_at: float) -> None:
        index = self.index.get(partition)
        if index is None:
            index = self.index[partition] = _PartitionIndex()
        code = self.codes.get(owner)
        if code is None:
            code = self.codes[owner] = len(self.owners)
            self.owners.append(owner)
        index.add(fire_at, code, key)

    def cancel(self, owner: str, key: str) -> None:
        """Forget a timer (an owner that keeps its own ignores the entry when it comes up instead)."""
        if owner not in self.owned:
            self.store.delete(owner + SEP + key)

    def pop_due(self, partition: int, watermark: float) -> Iterator[tuple[str, str, float]]:
        """Timers of ``partition`` at or before ``watermark``, in (time, owner and key) order, each removed."""
        index = self.index.get(partition)
        if index is None:
            return
        owners = self.owners
        heap = [(at, owners[code] + SEP + key, owners[code], key) for at, code, key in index.take_due(watermark)]
        if not heap:
            return
        heapq.heapify(heap)
        self.firing[partition] = (watermark, heap)
        owned, store = self.owned, self.store
        try:
            while heap:
                fire_at, tkey, owner, key = heapq.heappop(heap)
                if owner not in owned:
                    entry = store.get(tkey)
                    if entry is None or entry.fire_at != fire_at or entry.partition != partition:
                        continue
                    store.delete(tkey)
                yield owner, key, fire_at
        finally:
            del self.firing[partition]

    def next_due(self, partition: int) -> tuple[float, str]:
        """While ``partition``'s due timers fire: where the next one stands, ``(fire_at, owner + SEP + key)``, or the
        round's watermark and :data:`LAST` when none is left. Outside a round: ``(-inf, "")``.

        An owner that hands out several due items from one timer (:class:`rules.ordered.OrderedBuffer`) hands out
        only those that sort before it, so the order is the one a timer per item would give.
        """
        firing = self.firing.get(partition)
        if firing is None:
            return float("-inf"), ""
        mark, heap = firing
        return heap[0][:2] if heap else (mark, LAST)

    def pending(self) -> int:
        """Index entries not yet fired (moved or cancelled ones included until they come up)."""
        return sum(len(index) for index in self.index.values())

    def pending_keys(self) -> Iterator[tuple[str, str]]:
        """``(owner, key)`` of each index entry not yet fired (what :meth:`pending` counts)."""
        owners = self.owners
        for index in self.index.values():
            yield from zip((owners[code] for code in index.owner), index.key, strict=True)
            for run in index.runs:
                _, owner, key = run.live()
                yield from zip((owners[code] for code in owner.tolist()), key.tolist(), strict=True)

    def rebuild(self) -> int:
        """Rebuild the index from the records and the owners' state (after a restart); returns the timers.

        A record of an owner that now keeps its own (stored by an earlier version) is indexed and dropped.
        """
        self.index.clear()
        count = 0
        moved: list[str] = []
        for tkey, entry in self.store.items():
            owner, _, key = tkey.partition(SEP)
            self._index(entry.partition, owner, key, entry.fire_at)
            if owner in self.owned:
                moved.append(tkey)
            count += 1
        for tkey in moved:
            self.store.delete(tkey)
        for owner in self.owned:
            count += self.reindex(owner)
        return count
