"""The timer index: entries fire in (time, key) order, whatever their times, and a moved or cancelled timer never fires."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.engine.state import DictState
from streams.engine.timers import SEP, Timers, sortable, unsortable

times = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=300, deadline=None)
@given(st.lists(times, max_size=50))
def test_sortable_bytes_keep_the_floats_order_and_value(values: list[float]) -> None:
    assert sorted(values, key=sortable) == sorted(values)
    assert all(unsortable(sortable(v)) == v for v in values)


@settings(max_examples=200, deadline=None)
@given(
    timers=st.dictionaries(st.text(min_size=1, max_size=6).filter(lambda k: SEP not in k), times, max_size=30),
    moved=st.dictionaries(st.text(min_size=1, max_size=6).filter(lambda k: SEP not in k), times, max_size=5),
    cancelled=st.sets(st.text(min_size=1, max_size=6), max_size=5),
    watermark=times,
)
def test_due_timers_fire_once_in_time_then_key_order(
    timers: dict[str, float], moved: dict[str, float], cancelled: set[str], watermark: float
) -> None:
    t = Timers(DictState())
    for key, at in timers.items():
        t.set(0, "rule", key, at)
    for key, at in moved.items():
        t.set(0, "rule", key, at)
    for key in cancelled:
        t.cancel("rule", key)
    live = {k: at for k, at in {**timers, **moved}.items() if k not in cancelled}
    due = sorted((at, "rule" + SEP + k) for k, at in live.items() if at <= watermark)
    fired = [(at, owner + SEP + key) for owner, key, at in t.pop_due(0, watermark)]
    assert fired == due
    assert list(t.pop_due(0, watermark)) == []
    rest = sorted(at for k, at in live.items() if at > watermark)
    rebuilt = Timers(t.store)
    assert rebuilt.rebuild() == len(rest)
    assert [(at, key) for _, key, at in rebuilt.pop_due(0, float("inf"))] == sorted((at, k) for k, at in live.items() if at > watermark)
