"""Counting events of a group over event-time windows, decided only behind the watermark.

The window rules (``threshold``, ``flatline``) remember a group's matching
events as *hits* and let the engine call them back when the watermark passes
the next point where the count can change: an arrival (a hit's time) or a
departure (a hit leaving the window). :func:`sweep` replays those points in
time order, departures before arrivals at the same instant, and reports each
instant the condition starts or stops holding. Because nothing is decided
ahead of the watermark, the outcome is the same whatever order the events
arrived in within the allowed lateness, and replaying them changes nothing
(a hit is known by its event id).

Windows are ``sliding`` (``(t − size, t]``) or ``tumbling`` (fixed buckets
``[k·size, (k+1)·size)`` aligned to midnight at the rule's UTC offset, by
default :data:`DEFAULT_TIMEZONE`, the same for every rule type: a day is a
Beijing day unless the rule says otherwise).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from rules.errors import SpecError
from rules.fields import field_or_error
from yujing.timeutil import parse_duration

__all__ = [
    "DEFAULT_TIMEZONE",
    "GroupKey",
    "Hit",
    "LabelFields",
    "Transition",
    "Window",
    "WindowCloser",
    "WindowState",
    "drop_departed",
    "first_reaching",
    "group_key",
    "hits_near",
    "next_point",
    "sweep",
]

NEVER = -math.inf
_SEP = "\x1f"
#: The UTC offset of calendar windows (days, weeks, hours of the week) when a rule names none.
DEFAULT_TIMEZONE = "+08:00"


class Hit(msgspec.Struct, array_like=True):
    """One matching event as a window remembers it."""

    ts: float
    event_id: str
    value: str = ""  # the distinct-counted field's value, or ""


class WindowState(msgspec.Struct, array_like=True, omit_defaults=True):
    """A group's hits and where its evaluation stands."""

    hits: list[Hit] = []
    done_to: float = NEVER  # evaluated up to this event time
    next_at: float | None = None  # the pending timer
    active_since: float | None = None  # the condition holds since (an open alert)
    first_ts: float | None = None  # earliest hit ever seen (flatline needs a full window of history)
    labels: dict[str, str] = {}
    partition: int = -1  # the input partition whose timer ``next_at`` is (-1: stored by a version that kept timer records)
    #: Known that no window still to be evaluated holds as many hits as a firing needs (``False``: not known),
    #: so the group is quiet however many hits it keeps, e.g. a cohort's hits of several buckets ahead.
    sparse: bool = False


@dataclass(frozen=True)
class Window:
    """A window's shape: size, sliding or tumbling, and for tumbling the UTC offset of its day."""

    size: float
    kind: Literal["sliding", "tumbling"] = "sliding"
    utc_offset: float = 0.0

    @classmethod
    def from_spec(cls, size: Any, kind: str, timezone: str, where: tuple[str | int, ...] = ("window",)) -> Window:
        try:
            seconds = parse_duration(size)
        except ValueError as exc:
            raise SpecError(str(exc), where, "durations look like 90s, 15m, 48h, 7d") from None
        if seconds <= 0:
            raise SpecError("a window must be longer than zero", where)
        if seconds > 366 * 86400:
            raise SpecError("a window longer than a year cannot be kept in state", where, "use at most 366d")
        if kind not in ("sliding", "tumbling"):
            raise SpecError(f"unknown window kind `{kind}`", ("mode",), "use sliding or tumbling")
        return cls(seconds, kind, parse_utc_offset(timezone))  # type: ignore[arg-type]

    def start_of(self, ts: float) -> float:
        """Start of the tumbling bucket holding ``ts``."""
        shifted = ts + self.utc_offset
        return shifted - (shifted % self.size) - self.utc_offset

    def departure(self, ts: float) -> float:
        """When a hit at ``ts`` stops counting."""
        return ts + self.size if self.kind == "sliding" else self.start_of(ts) + self.size


def parse_utc_offset(text: str) -> float:
    """Seconds east of UTC in ``+08:00`` / ``-05:30`` / ``Z``."""
    if text in ("Z", "UTC", "+00:00", ""):
        return 0.0
    sign = {"+": 1, "-": -1}.get(text[:1])
    hours, _, minutes = text[1:].partition(":")
    if sign is None or not hours.isdigit() or (minutes and not minutes.isdigit()):
        raise SpecError(f"not a UTC offset: {text!r}", ("timezone",), "write it like +08:00")
    return sign * (int(hours) * 3600 + int(minutes or 0) * 60)


class WindowCloser:
    """The one close timer per tumbling window that a cohort-stage detector judges windows by.

    :meth:`open_window` places a record (``None`` once its window has closed) and sets the
    window's timer the first time it sees the window, not once per record, and with
    ``peeks`` also that many timers inside it (a detector that looks at a window before it
    ends); :meth:`closing` and :meth:`peeking` read a fired timer's key back.
    """

    PREFIX = "close:"
    PEEK = "peek:"

    def __init__(self, window: Window, owner: str, peeks: int = 0) -> None:
        self.window = window
        self.owner = owner
        self.peeks = peeks
        self.timed: set[float] = set()  # windows whose timer is set (after a restart, set again: harmless)

    def open_window(self, ts: float, ctx: Any) -> float | None:
        start = self.window.start_of(ts)
        size = self.window.size
        if start + size <= ctx.watermark:
            return None  # closed already (later than the allowed lateness)
        if start not in self.timed:
            self.timed.add(start)
            ctx.set_timer(self.owner, f"{self.PREFIX}{start!r}", start + size)
            for k in range(1, self.peeks + 1):
                at = start + k * size / (self.peeks + 1)
                if at > ctx.watermark:
                    ctx.set_timer(self.owner, f"{self.PEEK}{start!r}:{k}", at)
        return start

    def closing(self, key: str) -> float | None:
        if not key.startswith(self.PREFIX):
            return None
        start = float(key[len(self.PREFIX) :])
        self.timed.discard(start)
        return start

    def peeking(self, key: str) -> float | None:
        """The start of the window a peek timer looks into (the timer's time is when it looks)."""
        if not key.startswith(self.PEEK):
            return None
        return float(key[len(self.PEEK) :].rsplit(":", 1)[0])


class LabelFields:
    """A group's labels as attributes, for summary templates."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.__dict__.update(labels)


@dataclass(frozen=True)
class GroupKey:
    """Turns an event into its group's key and labels (``None`` when a group field is missing)."""

    fields: tuple[str, ...]
    getters: tuple[Callable[[Any], Any], ...]

    def __call__(self, event: Any) -> tuple[str, dict[str, str]] | None:
        values = []
        for get in self.getters:
            value = get(event)
            if value is None:
                return None
            values.append(str(value))
        return _SEP.join(values), dict(zip(self.fields, values, strict=True))


def group_key(group_by: str | list[str], where: tuple[str | int, ...] = ("group_by",)) -> GroupKey:
    fields = (group_by,) if isinstance(group_by, str) else tuple(group_by)
    if not fields:
        raise SpecError("`group_by` needs at least one field", where)
    return GroupKey(fields, tuple(field_or_error(f, (*where, i)) for i, f in enumerate(fields)))


def add_hit(state: WindowState, hit: Hit, window: Window) -> bool:
    """Remember ``hit`` unless it is known already or has left every window still to be evaluated."""
    if window.departure(hit.ts) <= state.done_to:
        return False
    hits = state.hits
    at = bisect.bisect_left(hits, (hit.ts, hit.event_id), key=lambda h: (h.ts, h.event_id))
    if at < len(hits) and hits[at].event_id == hit.event_id and hits[at].ts == hit.ts:
        return False  # a redelivery or a replay (same event, same time)
    hits.insert(at, hit)
    if state.first_ts is None or hit.ts < state.first_ts:
        state.first_ts = hit.ts
    return True


@dataclass(frozen=True)
class Transition:
    """The condition started (``active``) or stopped holding at ``at``, with the count then."""

    at: float
    active: bool
    since: float  # when the condition started holding (this instant, or earlier for a stop)
    count: int
    window_start: float
    event_ids: tuple[str, ...]


def _count(live: Counter[str], distinct: bool) -> int:
    return len(live) if distinct else sum(live.values())


def sweep(
    state: WindowState,
    window: Window,
    until: float,
    holds: Callable[[int, float], bool],
    distinct: bool = False,
) -> Iterator[Transition]:
    """Replay arrivals and departures in ``(state.done_to, until]``; yield each change of ``holds(count, t)``.

    ``state.active_since`` says whether the condition held before; it is updated,
    as is ``done_to``, and hits that can no longer count are dropped.

    The hits are sorted by time and a hit's departure grows with its time, so the
    hits that matter (in the window at ``done_to``, arriving or leaving up to
    ``until``) are one slice found by bisection: a sweep costs what it replays,
    not every hit the group holds (a worker reading one stream far ahead of the
    watermark keeps many hits of later times).
    """
    start = state.done_to
    hits = state.hits
    departure = window.departure
    first = _first_leaving_after(hits, start, departure)  # earlier hits left before start
    last = bisect.bisect_right(hits, until, key=_ts)  # later hits arrive after until
    live: Counter[str] = Counter()
    members: dict[str, Hit] = {}
    points: list[tuple[float, int, int]] = []
    for i in range(first, last):
        hit = hits[i]
        leaves = departure(hit.ts)
        if hit.ts <= start:
            live[hit.value or hit.event_id] += 1
            members[hit.event_id] = hit
        else:
            points.append((hit.ts, 1, i))
        if leaves <= until:
            points.append((leaves, 0, i))
    points.sort()
    active = state.active_since is not None
    j = 0
    while j < len(points):
        t = points[j][0]
        while j < len(points) and points[j][0] == t:
            _, kind, i = points[j]
            hit = hits[i]
            tag = hit.value or hit.event_id
            if kind == 1:
                live[tag] += 1
                members[hit.event_id] = hit
            else:
                live[tag] -= 1
                if live[tag] <= 0:
                    del live[tag]
                members.pop(hit.event_id, None)
            j += 1
        count = _count(live, distinct)
        now = holds(count, t)
        if now != active:
            active = now
            since = t if now or state.active_since is None else state.active_since
            state.active_since = t if now else None
            window_start = window.start_of(t) if window.kind == "tumbling" else t - window.size
            recent = sorted(members.values(), key=lambda h: (h.ts, h.event_id))[-20:]
            yield Transition(t, now, since, count, window_start, tuple(h.event_id for h in recent))
    state.done_to = max(start, until)
    drop_departed(state, window)


def drop_departed(state: WindowState, window: Window) -> None:
    """Forget the hits that left the window by ``done_to`` (the oldest: a prefix of the sorted hits)."""
    gone = _first_leaving_after(state.hits, state.done_to, window.departure)
    if gone:
        del state.hits[:gone]


def hits_near(state: WindowState, ts: float, window: Window) -> int:
    """How many hits may share a window with a hit at ``ts``: its bucket's (tumbling), or those less than a
    window's size away (sliding: a bound on the count of any window that holds it)."""
    hits = state.hits
    if window.kind == "tumbling":
        start = window.start_of(ts)
        return bisect.bisect_left(hits, start + window.size, key=_ts) - bisect.bisect_left(hits, start, key=_ts)
    return bisect.bisect_left(hits, ts + window.size, key=_ts) - bisect.bisect_right(hits, ts - window.size, key=_ts)


def first_reaching(state: WindowState, window: Window, count: int) -> float | None:
    """The earliest arrival at which a window holds ``count`` hits (a count grows only at arrivals), or ``None``
    when no window does. It may lie at or before ``done_to`` (late hits brought a window there)."""
    hits = state.hits
    if len(hits) < count:
        return None
    if window.kind == "tumbling":
        i, n = 0, len(hits)
        while i < n:
            end = window.start_of(hits[i].ts) + window.size
            j = bisect.bisect_left(hits, end, lo=i, key=_ts)
            if j - i >= count:
                return hits[i + count - 1].ts
            i = j
        return None
    size = window.size
    first = 0
    for last, hit in enumerate(hits):  # the window (t − size, t] at each arrival t
        while hits[first].ts <= hit.ts - size:
            first += 1
        if last - first + 1 >= count:
            return hit.ts
    return None


def next_point(state: WindowState, window: Window, arrivals: bool = True) -> float | None:
    """The earliest arrival or departure after ``done_to`` (where a sweep could change something); with
    ``arrivals=False`` the earliest departure only."""
    after = state.done_to
    hits = state.hits
    best = math.inf
    arriving = bisect.bisect_right(hits, after, key=_ts) if arrivals else len(hits)
    if arriving < len(hits):
        best = hits[arriving].ts
    leaving = _first_leaving_after(hits, after, window.departure)
    if leaving < len(hits):
        best = min(best, window.departure(hits[leaving].ts))
    return None if best == math.inf else best


def _ts(hit: Hit) -> float:
    return hit.ts


def _first_leaving_after(hits: list[Hit], t: float, departure: Callable[[float], float]) -> int:
    """Index of the first hit still in the window after ``t`` (departures grow with the sorted hits' times)."""
    return bisect.bisect_right(hits, t, key=lambda h: departure(h.ts))
