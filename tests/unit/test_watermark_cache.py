"""The watermark a partition's events are judged by is cached between events; the cache never changes it."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.engine.watermark import Watermarks

STREAMS = ("orders", "billing", "complaints")

TIMES = [-math.inf, 0.0, 50.0, 100.0, 130.0, 200.0, 400.0, math.inf]
observe = st.tuples(st.just("observe"), st.integers(0, 1), st.sampled_from(STREAMS), st.sampled_from(TIMES))
current = st.tuples(st.just("current"), st.integers(0, 1))
backlog = st.tuples(st.just("backlog"), st.frozensets(st.tuples(st.integers(0, 1), st.sampled_from(STREAMS)), max_size=2))
step = st.tuples(st.sampled_from([0.0, 0.0, 0.0, 10.0, 40.0]), st.one_of(observe, observe, current, backlog))


@settings(max_examples=400, deadline=None)
@given(
    steps=st.lists(step, max_size=60),
    lateness=st.sampled_from([0.0, 60.0]),
    idle_after=st.sampled_from([None, 30.0]),
    streams=st.sampled_from([(), STREAMS]),
    required=st.booleans(),
)
def test_the_cached_watermark_equals_one_computed_afresh(steps, lateness, idle_after, streams, required) -> None:
    cached = Watermarks(lateness, idle_after, streams=streams, required=required)
    fresh = Watermarks(lateness, idle_after, streams=streams, required=required)
    wall = 0.0
    for advance, (op, *args) in steps:
        wall += advance
        if op == "observe":
            partition, stream, ts = args
            cached.observe(partition, stream, ts, wall)
            fresh.observe(partition, stream, ts, wall)
        elif op == "backlog":
            cached.set_backlog(args[0])
            fresh.set_backlog(args[0])
        else:
            fresh._known.clear()  # computed from the clocks every time
            assert cached.current(args[0], wall) == fresh.current(args[0], wall)
    for partition in (0, 1):
        fresh._known.clear()
        assert cached.current(partition, wall) == fresh.current(partition, wall)
