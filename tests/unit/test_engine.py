"""Engine semantics: watermarks, timers, idle advance, late events, dedup, recovery."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.engine import DictBackend, Engine, EngineConfig
from streams.engine.watermark import Watermarks
from tests.helpers import MATCH_RULE, SLA_RULE, complaint, keys, order, rules_from, run, shuffle_within, to_event


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_watermark_is_max_event_time_minus_lateness_and_never_goes_back() -> None:
    w = Watermarks(lateness=60, idle_after=None)
    w.observe(0, "orders", 1000, wall=0)
    assert w.current(0, 0) == 940
    w.observe(0, "orders", 900, wall=0)
    assert w.current(0, 0) == 940


def test_watermark_is_held_by_the_stream_read_behind() -> None:
    w = Watermarks(lateness=0, idle_after=30, streams=("orders", "complaints"))
    w.observe(0, "complaints", 10_000, wall=0)
    assert w.current(0, 1) == float("-inf")  # orders not seen yet and not idle
    w.observe(0, "orders", 500, wall=1)
    assert w.current(0, 2) == 500
    # complaints are silent for longer than idle_after while orders keep flowing
    w.observe(0, "orders", 600, wall=40)
    assert w.current(0, 40) == 600


def test_timer_fires_only_when_watermark_passes_deadline(tmp_path) -> None:
    rules = rules_from(tmp_path, SLA_RULE)
    engine = Engine(rules, DictBackend(), EngineConfig(allowed_lateness=300, idle_after=None))
    out = run(rules, [order("created", 0), order("created", 64, order_id="other")], engine=engine, close=False)
    assert out == []  # watermark = 64m - 5m < 60m deadline
    out = run(rules, [order("created", 65.5, order_id="third")], engine=engine, close=False)
    assert [(a.rule_id, a.status, a.labels["order_id"]) for a in out] == [("install-sla", "firing", "ord-1")]


def test_idle_partition_advances_with_wall_clock_so_deadline_fires_without_traffic(tmp_path) -> None:
    rules = rules_from(tmp_path, SLA_RULE)
    clock = FakeClock(1000.0)
    engine = Engine(rules, DictBackend(), EngineConfig(allowed_lateness=60, idle_after=30, streams=("orders",)), clock=clock)
    engine.process([(0, to_event(order("created", 0)))])
    clock.now += 30 * 60
    assert engine.tick() == []  # 30 minutes of silence: watermark ≈ 0m - 1m + 29.5m
    clock.now += 40 * 60
    fired = engine.tick()
    assert [(a.status, a.labels["order_id"]) for a in fired] == [("firing", "ord-1")]


def test_a_stream_with_records_left_to_read_holds_the_watermark_however_long_it_was_silent(tmp_path) -> None:
    """A worker far behind its input: the order's completion waits unread while the wall clock runs on. Idle
    advance must not move the watermark past it, or the install SLA breaches though it was met."""
    rules = rules_from(tmp_path, SLA_RULE)
    clock = FakeClock(1000.0)
    config = EngineConfig(allowed_lateness=60, idle_after=30, streams=("orders", "complaints"))
    engine = Engine(rules, DictBackend(), config, clock=clock)
    engine.process([(0, to_event(order("created", 0))), (0, to_event(complaint("opened", 0, complaint_id="k0")))])
    engine.set_backlog({(0, "orders")})  # the runner still has orders of partition 0 to read
    for minute in range(1, 180, 10):  # complaints flow; the orders stream is silent on the wall clock meanwhile
        clock.now += 60
        assert engine.process([(0, to_event(complaint("opened", minute, complaint_id=f"k{minute}")))]) == []
        assert engine.tick() == []
    held = engine.watermarks.current(0, clock.now)
    assert engine.process([(0, to_event(order("completed", 50)))]) == []  # read at last: in time, not late
    engine.set_backlog(())  # caught up: silence is idleness again
    clock.now += 31
    assert engine.tick() == []  # the watch was closed in time: nothing breaches...
    assert engine.watermarks.current(0, clock.now) > held + 100 * 60  # ...though the watermark moved on


def test_late_events_are_counted_and_processed_by_default(tmp_path) -> None:
    rules = rules_from(tmp_path, MATCH_RULE)
    counts: dict[str, int] = {}

    class Obs:
        def late_events(self, kind: str, n: int) -> None:
            counts[kind] = counts.get(kind, 0) + n

        def rule_error(self, rule_id: str) -> None:
            raise AssertionError(rule_id)

    engine = Engine(rules, DictBackend(), EngineConfig(allowed_lateness=60, idle_after=None), observer=Obs())
    engine.process([(0, to_event(complaint("opened", 100, complaint_id="a")))])
    out = engine.process([(0, to_event(complaint("opened", 10, complaint_id="b", text="我要去工信部投诉")))])
    assert counts == {"complaints": 1}
    assert len(out) == 1


def test_late_events_can_be_dropped(tmp_path) -> None:
    rules = rules_from(tmp_path, MATCH_RULE)
    engine = Engine(rules, DictBackend(), EngineConfig(allowed_lateness=60, idle_after=None, late_policy="drop"))
    engine.process([(0, to_event(complaint("opened", 100, complaint_id="a")))])
    assert engine.process([(0, to_event(complaint("opened", 10, complaint_id="b", text="工信部")))]) == []


def test_a_failing_rule_is_counted_and_the_others_still_run(tmp_path) -> None:
    rules = rules_from(tmp_path, MATCH_RULE)
    errors: list[str] = []

    class Broken:
        rule_id, version, event_types = "broken", "1", frozenset({"complaint.opened"})

        def on_event(self, event, ts, ctx):
            raise RuntimeError("boom")

        def on_timer(self, key, fire_at, ctx):
            pass

    class Obs:
        def late_events(self, kind: str, n: int) -> None:
            pass

        def rule_error(self, rule_id: str) -> None:
            errors.append(rule_id)

    engine = Engine([Broken(), *rules], DictBackend(), EngineConfig(idle_after=None), observer=Obs())
    out = engine.process([(0, to_event(complaint("opened", 0, text="315晚会见")))])
    assert errors == ["broken"] and len(out) == 1


def test_redelivered_events_do_not_duplicate_alerts(tmp_path) -> None:
    rules = rules_from(tmp_path, SLA_RULE, MATCH_RULE)
    events = [
        order("created", 0),
        complaint("opened", 1, text="工信部"),
        order("created", 200, order_id="x"),
        complaint("opened", 200, complaint_id="k2"),
    ]
    engine = Engine(rules, DictBackend(), EngineConfig(idle_after=None))
    first = run(rules, events, engine=engine, close=False)
    again = run(rules, events, engine=engine, close=False)
    assert len(first) == 2 and again == []


def test_restart_from_state_gives_the_same_alerts_as_an_uninterrupted_run(tmp_path) -> None:
    rules = rules_from(tmp_path, SLA_RULE, MATCH_RULE)
    events = [
        order("created", 0),
        order("created", 5, order_id="o2"),
        order("completed", 30, order_id="o2"),
        complaint("opened", 40, text="315"),
        order("created", 100, order_id="o3"),
        order("created", 200, order_id="o4"),
        complaint("opened", 210, complaint_id="k2"),
    ]
    whole = run(rules, events, close=False)
    backend = DictBackend()
    first = run(rules, events[:3], engine=Engine(rules, backend, EngineConfig(idle_after=None)), close=False)
    restarted = Engine(rules_from(tmp_path, SLA_RULE, MATCH_RULE), backend, EngineConfig(idle_after=None))
    assert restarted.recover() == 2  # ord-1's deadline, and o2's tombstone until its deadline
    second = run(rules, events[3:], engine=restarted, close=False)
    assert keys(first + second) == keys(whole)


def _stream(seed: int) -> list[dict]:
    rng = random.Random(seed)
    events = []
    for i in range(12):
        t = rng.uniform(0, 600)
        oid = f"o{i}"
        events.append(order("created", t, order_id=oid, customer=f"c{i % 3}"))
        fate = rng.random()
        if fate < 0.4:
            events.append(order("completed", t + rng.uniform(1, 120), order_id=oid, customer=f"c{i % 3}"))
        elif fate < 0.5:
            events.append(order("cancelled", t + rng.uniform(1, 120), order_id=oid, customer=f"c{i % 3}"))
        if rng.random() < 0.3:
            events.append(
                complaint("opened", t + 3, complaint_id=f"k{i}", customer=f"c{i % 3}", text=rng.choice(["工信部", "断网", "315"]))
            )
    events.sort(key=lambda e: e["ts"])
    return events


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), shuffle_seed=st.integers(0, 10_000), batch=st.integers(1, 7))
def test_shuffling_within_allowed_lateness_gives_the_same_alerts(tmp_path_factory, seed: int, shuffle_seed: int, batch: int) -> None:
    rules = rules_from(tmp_path_factory.mktemp("r"), SLA_RULE, MATCH_RULE)
    events = _stream(seed)
    ordered = run(rules, events, lateness=300)
    shuffled = run(rules, shuffle_within(events, random.Random(shuffle_seed), 5), lateness=300, batch=batch)
    assert keys(shuffled) == keys(ordered)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_replaying_a_stream_twice_changes_nothing(tmp_path_factory, seed: int) -> None:
    rules = rules_from(tmp_path_factory.mktemp("r"), SLA_RULE, MATCH_RULE)
    events = _stream(seed)
    engine = Engine(rules, DictBackend(), EngineConfig(idle_after=None))
    once = run(rules, events, engine=engine, close=False)
    twice = run(rules, events, engine=engine, close=False)
    assert twice == []
    fresh = run(rules, events, close=False)
    assert keys(once) == keys(fresh)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_streams_read_at_different_speeds_give_the_same_alerts(tmp_path_factory, seed: int) -> None:
    """All complaints first, then all orders (a worker catching up): same alerts as time order."""
    rules = rules_from(tmp_path_factory.mktemp("r"), SLA_RULE, MATCH_RULE)
    events = _stream(seed)
    skewed = [e for e in events if e["event_type"].startswith("complaint")] + [e for e in events if e["event_type"].startswith("order")]
    engine = Engine(rules, DictBackend(), EngineConfig(allowed_lateness=300, idle_after=3600, streams=("orders", "complaints")))
    assert keys(run(rules, skewed, engine=engine)) == keys(run(rules, events))


def test_switching_idle_advance_on_counts_silence_from_then_and_never_jumps_the_watermark() -> None:
    """The demo replays history with idle advance off, then switches it on: a stream silent for an hour of
    wall time before the switch must not count as idle at once, and the watermark asked for before the
    switch must not be served again from what was known then."""
    w = Watermarks(lateness=60, idle_after=None, streams=("orders", "billing"))
    w.observe(0, "orders", 1000.0, wall=0.0)
    w.observe(0, "billing", 500.0, wall=0.0)
    assert w.current(0, wall=3600.0) == 440.0  # billing, read behind, holds it
    w.set_idle_after(30.0, wall=3600.0)
    assert w.current(0, wall=3600.0) == 440.0  # silence counts from the switch: nothing idle yet
    assert w.current(0, wall=3631.0) == 1000.0 - 60 + 1.0  # both silent 31 s: event time flows on with the wall clock
