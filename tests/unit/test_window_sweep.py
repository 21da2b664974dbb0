"""The window sweep replays only the hits that matter, with the outcome of replaying them all.

``sweep`` and ``next_point`` find the hits in play by bisection over the sorted
hits (a hit's departure grows with its time). The reference below is the
earlier whole-list scan; both must give the same transitions, the same kept
hits and the same next point, for any hits, window and sequence of sweeps.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.window import Hit, Transition, Window, WindowState, add_hit, next_point, sweep


def reference_sweep(
    state: WindowState, window: Window, until: float, holds: Callable[[int, float], bool], distinct: bool
) -> Iterator[Transition]:
    """Every hit looked at on every sweep (the implementation before bisection)."""
    start = state.done_to
    live: Counter[str] = Counter()
    members: dict[str, Hit] = {}
    points: list[tuple[float, int, int]] = []
    for i, hit in enumerate(state.hits):
        leaves = window.departure(hit.ts)
        if hit.ts <= start < leaves:
            live[hit.value or hit.event_id] += 1
            members[hit.event_id] = hit
        if start < hit.ts <= until:
            points.append((hit.ts, 1, i))
        if start < leaves <= until:
            points.append((leaves, 0, i))
    points.sort()
    active = state.active_since is not None
    j = 0
    while j < len(points):
        t = points[j][0]
        while j < len(points) and points[j][0] == t:
            _, kind, i = points[j]
            hit = state.hits[i]
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
        count = len(live) if distinct else sum(live.values())
        now = holds(count, t)
        if now != active:
            active = now
            since = t if now or state.active_since is None else state.active_since
            state.active_since = t if now else None
            window_start = window.start_of(t) if window.kind == "tumbling" else t - window.size
            recent = sorted(members.values(), key=lambda h: (h.ts, h.event_id))[-20:]
            yield Transition(t, now, since, count, window_start, tuple(h.event_id for h in recent))
    state.done_to = max(start, until)
    state.hits = [h for h in state.hits if window.departure(h.ts) > state.done_to]


def reference_next_point(state: WindowState, window: Window) -> float | None:
    best = math.inf
    for hit in state.hits:
        if hit.ts > state.done_to:
            best = min(best, hit.ts)
        leaves = window.departure(hit.ts)
        if leaves > state.done_to:
            best = min(best, leaves)
    return None if best == math.inf else best


windows = st.builds(
    Window,
    size=st.sampled_from([10.0, 60.0, 600.0, 3600.0]),
    kind=st.sampled_from(["sliding", "tumbling"]),
    utc_offset=st.sampled_from([0.0, 28800.0, -19800.0]),
)
steps = st.lists(
    st.tuples(
        st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 30), st.sampled_from(["", "a", "b"])), max_size=12),
        st.integers(0, 1500),  # how far this step's sweep goes past the previous one
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(window=windows, steps=steps, threshold=st.integers(1, 4), distinct=st.booleans())
def test_bisected_sweep_equals_the_whole_scan(window: Window, steps: list, threshold: int, distinct: bool) -> None:
    fast, slow = WindowState(), WindowState()
    until = 0.0
    holds = lambda n, t: n >= threshold
    for arrivals, advance in steps:
        for ts, n, value in arrivals:  # hits of any time, ahead of the sweeps as a fast stream's are
            hit = Hit(float(ts), f"e{ts}-{n}", value)
            assert add_hit(fast, hit, window) == add_hit(slow, Hit(hit.ts, hit.event_id, hit.value), window)
        until += advance
        assert list(sweep(fast, window, until, holds, distinct)) == list(reference_sweep(slow, window, until, holds, distinct))
        assert fast == slow
        assert next_point(fast, window) == reference_next_point(slow, window)


def test_a_sweep_does_not_touch_hits_far_ahead_of_it() -> None:
    """A group holding many hits of later times (read ahead of the watermark) sweeps only what it replays."""
    window = Window(600.0, "tumbling")
    state = WindowState()
    for i in range(10_000):
        add_hit(state, Hit(1000.0 + i, f"e{i}"), window)
    looked: list[float] = []

    class Counting(Window):
        def departure(self, ts: float) -> float:
            looked.append(ts)
            return super().departure(ts)

    counting = Counting(600.0, "tumbling")
    list(sweep(state, counting, 1010.0, lambda n, t: n >= 3))
    assert len(looked) < 200, f"{len(looked)} departures computed for 11 hits replayed"
