"""Per-partition event-time watermarks over several input streams, with idle advance.

A partition number names one partition of each stream (orders, billing,
complaints are co-partitioned). Each stream of a partition has its own max
event time; the partition's watermark is

    min over active streams of (max event time) − allowed lateness

so a stream that is read behind the others (the worker fetches topics
independently, far apart while it catches up) holds the watermark back
instead of seeing its events turn late. A stream is *active* unless it has
been silent for ``idle_after`` seconds of wall-clock time; an expected
stream not yet seen counts as silent since the partition was first seen.
When every stream of a partition is silent, its watermark moves on at
wall-clock speed from the latest event time, so a deadline still fires at
3 a.m. with no traffic. Watermarks never go backwards.

With ``idle_after=None`` (backtests) every stream seen so far is active and
nothing is extrapolated.

Silence alone does not make a stream idle when the runner still has records
of it to read (:meth:`Watermarks.set_backlog`): a worker far behind its input
sees long wall-clock gaps on a stream whose next events wait unread, and
moving the watermark past them would turn them late (alerts lost, deadlines
fired early).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import msgspec

from yujing.protocols import KeyedState

__all__ = ["PartitionClock", "Watermarks"]

NEVER = -math.inf


class PartitionClock(msgspec.Struct, array_like=True):
    """What survives a restart of one partition's clock."""

    max_ts: dict[str, float]
    floor: float


class Watermarks:
    """Tracks the watermark of every partition.

    >>> w = Watermarks(lateness=60, idle_after=None)
    >>> w.observe(0, "orders", 1000.0, wall=0.0)
    >>> w.current(0, wall=0.0)
    940.0
    >>> w.observe(0, "billing", 500.0, wall=0.0)
    >>> w.current(0, wall=0.0)  # the stream behind holds it; it never goes back
    940.0
    """

    def __init__(
        self,
        lateness: float,
        idle_after: float | None,
        store: KeyedState[PartitionClock] | None = None,
        streams: tuple[str, ...] = (),
        required: bool = False,
    ) -> None:
        self.lateness = lateness
        self.idle_after = idle_after
        self.store = store
        self.streams = streams
        #: Every one of ``streams`` holds the mark until it reports, idle advance or not (the cohort stage across
        #: workers: a group partition waits for every input partition's mark, see :mod:`.exchange`).
        self.required = required
        self.max_ts: dict[int, dict[str, float]] = {}
        self.last_wall: dict[int, dict[str, float]] = {}
        self.first_wall: dict[int, float] = {}
        self.floor: dict[int, float] = {}
        self.expected: dict[int, float] = {}  # partitions a runner reads, with when it said so (see expect)
        #: Each partition's watermark as last computed: the wall time it was computed at, the mark, and the stream
        #: whose time set it (``None``: no active stream did). The engine asks before and after every event, and most
        #: events move nothing, or a stream other than that one (see observe).
        self._known: dict[int, tuple[float, float, str | None]] = {}
        self.backlog: frozenset[tuple[int, str]] = frozenset()  # (partition, stream) with records not yet read

    def expect(self, partitions: Iterable[int], wall: float) -> None:
        """The partitions a runner reads (a worker: those assigned to it), seen or not. One not yet seen
        makes :meth:`waiting` true until it has been silent for ``idle_after``: a worker catching up
        reads some partitions before others, and the later ones' events are not late for it."""
        self.expected = {p: self.expected.get(p, wall) for p in partitions}

    def given_up(self, wall: float) -> list[int]:
        """Expected partitions not seen yet and silent for longer than ``idle_after`` (none without idle advance)."""
        idle_after = self.idle_after
        if idle_after is None:
            return []
        return [p for p, since in self.expected.items() if p not in self.max_ts and wall - since > idle_after]

    def waiting(self, wall: float) -> bool:
        """Whether an expected partition has not been seen yet, and not been silent for ``idle_after``."""
        idle_after = self.idle_after
        return any(p not in self.max_ts and (idle_after is None or wall - since <= idle_after) for p, since in self.expected.items())

    def observe(self, partition: int, stream: str, ts: float, wall: float) -> None:
        """An event of ``stream`` in ``partition`` with event time ``ts`` arrived at wall time ``wall``.

        ``ts`` may be ``-inf``: the cohort stage observes each input partition's watermark as a stream, and an
        input partition with a stream not read yet has none. It still holds the mark, as a stream behind does:

        >>> w = Watermarks(lateness=0, idle_after=None)
        >>> w.observe(0, "p0", 5000.0, wall=0.0); w.observe(0, "p1", -math.inf, wall=0.0)
        >>> w.current(0, wall=0.0)
        -inf
        """
        maxes = self.max_ts.get(partition)
        if maxes is None:
            maxes = self.max_ts[partition] = {}
            self.last_wall[partition] = {}
            self.first_wall[partition] = wall
        walls = self.last_wall[partition]
        known = maxes.get(stream)
        if known is None or ts > known or known == math.inf:  # -inf: known, and holding; +inf (idle): until it reports
            if ts == math.inf and known is not None:
                return  # idle only until a stream first reports (an idle notice never overtakes a real mark)
            maxes[stream] = ts
            if known is not None and known != math.inf and self._keeps_mark(partition, stream, wall):
                walls[stream] = wall
                return  # an active stream other than the one holding the watermark moved on: the minimum stands
        elif walls.get(stream) == wall:
            return  # nothing the watermark depends on moved
        walls[stream] = wall
        self._known.pop(partition, None)

    def _keeps_mark(self, partition: int, stream: str, wall: float) -> bool:
        """Whether the watermark known for ``partition`` at ``wall`` stands when ``stream`` moves on: it was computed
        at this wall time from another stream's time. The minimum then stays (an active ``stream`` was at or above
        it; one idle until now can only lower it, and the watermark never goes back)."""
        known = self._known.get(partition)
        return known is not None and known[0] == wall and known[2] is not None and known[2] != stream

    def current(self, partition: int, wall: float) -> float:
        """The partition's watermark now (monotonic)."""
        known = self._known.get(partition)
        if known is not None and known[0] == wall:
            return known[1]
        mark, binding = self._compute(partition, wall)
        self._known[partition] = (wall, mark, binding)
        return mark

    def set_backlog(self, behind: Iterable[tuple[int, str]]) -> None:
        """The ``(partition, stream)`` pairs the runner knows have records left to read: never idle, however
        long they have been silent.

        >>> w = Watermarks(lateness=0, idle_after=30, streams=("orders", "billing"))
        >>> w.observe(0, "orders", 1000.0, wall=0.0); w.observe(0, "billing", 400.0, wall=0.0)
        >>> w.observe(0, "orders", 2000.0, wall=100.0)
        >>> w.set_backlog({(0, "billing")}); w.current(0, wall=100.0)  # billing waits unread: it holds
        400.0
        >>> w.set_backlog(()); w.current(0, wall=100.0)  # read to its end and silent: idle
        2000.0
        """
        behind = frozenset(behind)
        if behind != self.backlog:
            self.backlog = behind
            self._known.clear()

    def set_idle_after(self, idle_after: float | None, wall: float) -> None:
        """Turn idle advance on (seconds of silence) or off (``None``); silence counts from ``wall`` for every
        stream, so switching it on never jumps a watermark."""
        self.idle_after = idle_after
        for partition, walls in self.last_wall.items():
            self.first_wall[partition] = wall
            for stream in walls:
                walls[stream] = wall
        self._known.clear()

    def _compute(self, partition: int, wall: float) -> tuple[float, str | None]:
        """The partition's watermark at ``wall``, and the active stream whose time set it (``None``: none did)."""
        maxes = self.max_ts.get(partition)
        floor = self.floor.get(partition, NEVER)
        if not maxes:
            return floor, None
        walls = self.last_wall[partition]
        idle_after = self.idle_after
        expected = self.streams if self.streams and (idle_after is not None or self.required) else maxes.keys()
        backlog = self.backlog
        low = math.inf
        latest_ts = latest_wall = NEVER
        binding = None
        for stream in expected:
            ts = maxes.get(stream, NEVER)
            seen_at = walls.get(stream, self.first_wall[partition])
            active = idle_after is None or wall - seen_at <= idle_after or (partition, stream) in backlog
            if active and ts < low:
                low, binding = ts, stream
            if ts > latest_ts:
                latest_ts = ts
            if seen_at > latest_wall:
                latest_wall = seen_at
        if low == math.inf and idle_after is None:
            return floor, None  # every stream idle (the cohort stage across workers): nothing to go by
        # When every stream is idle, event time flows on with the wall clock.
        mark = low - self.lateness if low != math.inf else latest_ts - self.lateness + (wall - latest_wall - idle_after)  # type: ignore[operator]
        if mark > floor:
            self.floor[partition] = mark
            return mark, binding
        return floor, binding

    def close_input(self, partition: int, until: float = NEVER) -> float:
        """End of input (backtests): every event is in, so lateness no longer applies.

        ``until`` lets event time run on past the last event (a rule test asking what holds at 72h).
        """
        maxes = self.max_ts.get(partition) or {}
        mark = max([*maxes.values(), self.floor.get(partition, NEVER), until])
        self.floor[partition] = mark
        self._known.pop(partition, None)
        return mark

    def partitions(self) -> list[int]:
        return sorted(self.max_ts)

    def save(self, use_partition: Callable[[int], None]) -> None:
        """Persist each partition's clock (once per batch), each in its own partition's state."""
        if self.store is None:
            return
        for partition, maxes in self.max_ts.items():
            use_partition(partition)
            self.store.set(str(partition), PartitionClock(dict(maxes), self.floor.get(partition, NEVER)))

    def restore(self, wall: float) -> None:
        """Reload clocks after a restart (replacing what is in memory); idle time counts from ``wall``."""
        if self.store is None:
            return
        self.max_ts.clear()
        self.last_wall.clear()
        self.first_wall.clear()
        self.floor.clear()
        self._known.clear()
        for key, clock in self.store.items():
            partition = int(key)
            self.max_ts[partition] = dict(clock.max_ts)
            self.last_wall[partition] = {stream: wall for stream in clock.max_ts}
            self.first_wall[partition] = wall
            self.floor[partition] = clock.floor
