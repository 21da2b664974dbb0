"""The timer index: entries fire in (time, key) order, whatever their times, and a moved or cancelled timer never fires."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.engine.state import DictState
from streams.engine.timers import SEP, Timers

times = st.floats(allow_nan=False, allow_infinity=False, width=64)


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


class _Reference:
    """The timers' meaning without an index: the live ones, the earliest (time, owner and key) first."""

    def __init__(self) -> None:
        self.live: dict[str, float] = {}

    def pop_due(self, watermark: float) -> Iterator[tuple[str, float]]:
        while True:
            due = [(at, key) for key, at in self.live.items() if at <= watermark]
            if not due:
                return
            at, key = min(due)
            del self.live[key]
            yield key, at


keys = st.sampled_from(["a", "b", "ab", "b0", "c", "d"])
operations = st.lists(
    st.one_of(
        st.tuples(st.just("set"), keys, st.integers(0, 40)),
        st.tuples(st.just("cancel"), keys, st.just(0)),
        st.tuples(st.just("pop"), st.just(""), st.integers(0, 40)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(operations, st.dictionaries(keys, st.tuples(keys, st.integers(-5, 10)), max_size=4))
def test_sets_cancels_and_looks_in_any_order_fire_as_one_heap_of_the_live_timers_would(
    ops: list[tuple[str, str, int]], chain: dict[str, tuple[str, int]]
) -> None:
    """``chain``: when a key fires, the handler sets another key's timer ``offset`` after it, as an SLA watch
    sets its deadline when its warning fires: one already due fires in the same look, in order."""
    t, ref = Timers(DictState()), _Reference()
    for op, key, at in ops:
        if op == "set":
            t.set(0, "rule", key, float(at))
            ref.live[key] = float(at)
        elif op == "cancel":
            t.cancel("rule", key)
            ref.live.pop(key, None)
        else:
            fired, expected = [], []
            # a chain may cycle through keys with offsets <= 0 and never end: both sides stop after 100
            for _, key_fired, fire_at in islice(t.pop_due(0, float(at)), 100):
                fired.append((key_fired, fire_at))
                if key_fired in chain:
                    then, offset = chain[key_fired]
                    t.set(0, "rule", then, fire_at + offset)
            for key_fired, fire_at in islice(ref.pop_due(float(at)), 100):
                expected.append((key_fired, fire_at))
                if key_fired in chain:
                    then, offset = chain[key_fired]
                    ref.live[then] = fire_at + offset
            assert fired == expected
            if len(fired) == 100:
                return  # an endless chain: its firing left unfinished, the rest of the story is undefined
    assert t.rebuild() == len(ref.live)
    assert [(k, at) for _, k, at in t.pop_due(0, float("inf"))] == list(ref.pop_due(float("inf")))


def test_an_owner_that_keeps_its_timers_leaves_no_record_and_says_them_after_a_restart() -> None:
    watches = {"o1": (3, 50.0), "o2": (3, 20.0)}  # the owner's own state: key -> (partition, due)
    store: DictState = DictState()
    t = Timers(store, owned={"sla": lambda: [(k, p, at) for k, (p, at) in watches.items()]})
    t.set(3, "sla", "o1", 50.0)
    t.set(3, "sla", "o2", 10.0)
    t.set(3, "sla", "o2", 20.0)  # moved: the entry at 10 still comes up, the owner ignores it
    t.set(3, "other", "x", 30.0)
    assert list(store.data) == ["other" + SEP + "x"]
    assert [(o, k, at) for o, k, at in t.pop_due(3, 25.0)] == [("sla", "o2", 10.0), ("sla", "o2", 20.0)]
    restarted = Timers(store, owned=t.owned)
    assert restarted.rebuild() == 3
    assert [(o, k, at) for o, k, at in restarted.pop_due(3, 100.0)] == [("sla", "o2", 20.0), ("other", "x", 30.0), ("sla", "o1", 50.0)]


def test_an_earlier_versions_record_of_an_owner_that_now_keeps_its_own_is_indexed_once_and_dropped() -> None:
    store: DictState = DictState()
    Timers(store).set(1, "sla", "o1", 5.0)
    t = Timers(store, owned={"sla": lambda: []})
    assert t.rebuild() == 1 and len(store) == 0
    assert list(t.pop_due(1, 10.0)) == [("sla", "o1", 5.0)]


def test_fired_entries_release_their_keys_and_the_index_shrinks_back() -> None:
    t = Timers(DictState())
    for i in range(1000):
        t.set(0, "rule", f"k{i}", float(i))
    assert len(list(t.pop_due(0, 899.0))) == 900
    assert t.pending() == 100
    run = t.index[0].runs[0]
    assert len(run.at) == 100 and all(k is not None for k in run.key)  # copied down to what is left
