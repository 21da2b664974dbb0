"""The ``sequence`` rule type: A then B for one key within a span, in any arrival order."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.types.sequence import Seen, SequenceState
from streams.engine import DictBackend, Engine, EngineConfig
from streams.engine.timers import SEP, TimerEntry
from tests.helpers import assert_arrival_order_and_replay_do_not_matter, complaint, order, rules_from, run, to_event

FIRST_WEEK = """
    id: first-week-complaint
    type: sequence
    title: 装机后首周投诉
    severity: major
    key: customer_id
    first: {on: order.completed}
    then: {on: complaint.opened}
    within: 7d
    summary: "客户 {customer_id} 装机后一周内投诉：{text}"
"""

REPEAT = """
    id: repeat-complaint
    type: sequence
    title: 重复投诉
    severity: critical
    key: customer_id
    first: {on: [complaint.closed, complaint.opened]}
    then: {on: complaint.opened}
    within: 60m
    summary: "客户 {customer_id} 重复投诉"
"""

DAY = 24 * 60


def test_then_within_span_fires_once_per_then(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, FIRST_WEEK)
    out = run(
        rules,
        [
            order("completed", 0),
            complaint("opened", 3 * DAY),
            complaint("opened", 8 * DAY, complaint_id="late"),
            order("completed", 9 * DAY, order_id="o2", customer="c-2"),
        ],
    )
    assert [(a.rule_id, a.status, a.labels["complaint_id"], a.evidence["event_ids"][0]) for a in out] == [
        ("first-week-complaint", "firing", "cp-1", "completed-ord-1-0"),
        ("first-week-complaint", "resolved", "cp-1", "completed-ord-1-0"),  # a one-off alert: it expired after 3 days
    ]
    assert out[1].evidence["closed_by"] == "expired" and (out[1].ends_at - out[1].starts_at).days == 3
    assert out[0].summary == "客户 c-1 装机后一周内投诉：宽带断网了" and out[0].evidence["gap_seconds"] == 3 * 86400


def test_other_keys_and_outside_the_span_do_not_fire(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, FIRST_WEEK)
    assert (
        run(
            rules,
            [
                order("completed", 0),
                complaint("opened", 10, customer="c-9"),
                complaint("opened", 8 * DAY, complaint_id="x"),
                complaint("opened", -5, complaint_id="before"),
            ],
        )
        == []
    )


def test_an_event_never_pairs_with_itself(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, REPEAT)
    assert run(rules, [complaint("opened", 0), complaint("closed", 500, complaint_id="z", customer="c-3")]) == []
    out = run(rules, [complaint("opened", 0), complaint("opened", 30, complaint_id="cp-2"), complaint("closed", 500, complaint_id="z")])
    assert [a.labels["complaint_id"] for a in out] == ["cp-2"]


def test_b_before_a_within_lateness_still_pairs(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, REPEAT)
    out = run(rules, [complaint("opened", 20, complaint_id="b"), complaint("closed", 18, complaint_id="a")], lateness=600)
    assert [a.labels["complaint_id"] for a in out] == ["b"]


def test_state_is_released_after_the_span(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, REPEAT)
    backend = DictBackend()
    engine = Engine(rules, backend, EngineConfig(allowed_lateness=60, idle_after=None, streams=("complaints",)))
    run(rules, [complaint("closed", 0), complaint("closed", 500, customer="c-2", complaint_id="k")], engine=engine, close=False)
    assert "c-1" not in backend.namespaces["seq:repeat-complaint"].data


def _events(seed: int) -> list[dict]:
    rng = random.Random(seed)
    events = []
    for i in range(25):
        customer = f"c{rng.randrange(4)}"
        t = rng.uniform(0, 600)
        kind = rng.choice(["opened", "opened", "closed"])
        events.append(complaint(kind, t, complaint_id=f"k{i}", customer=customer))
    events.sort(key=lambda e: e["ts"])
    return events


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), shuffle_seed=st.integers(0, 10_000), batch=st.integers(1, 6))
def test_shuffling_within_lateness_and_replaying_give_the_same_alerts(tmp_path_factory, seed: int, shuffle_seed: int, batch: int) -> None:
    rules = rules_from(tmp_path_factory.mktemp("r"), REPEAT)
    events = _events(seed)
    assert_arrival_order_and_replay_do_not_matter(rules, events, shuffle_seed, batch)


def test_an_event_remembered_by_an_earlier_version_is_forgotten_by_its_timer_record(tmp_path: Path) -> None:
    """Before, each remembered event had a timer record of its own (``key SEP f|t SEP event_id``) and the state no
    partition: the record, indexed at the restart, still forgets the event a week on."""
    backend = DictBackend()
    closed = order("completed", 0)
    start = to_event(closed).ts.timestamp()
    backend.namespace("seq:first-week-complaint", SequenceState).set("c-1", SequenceState(firsts=[Seen(start, closed["event_id"])]))
    records = backend.namespace("~timers", TimerEntry)
    records.set("first-week-complaint" + SEP + "c-1\x1ef\x1e" + closed["event_id"], TimerEntry(start + 7 * DAY * 60, 0))
    engine = Engine(rules_from(tmp_path, FIRST_WEEK), backend, EngineConfig(allowed_lateness=300.0, idle_after=None))
    assert engine.recover() == 1 and len(records) == 0
    states = backend.namespace("seq:first-week-complaint", SequenceState)
    for day in (6, 8):  # both streams of the partition move on: six days after the A, then eight
        run(
            [],
            [order("created", day * DAY, order_id=f"o-{day}"), complaint("updated", day * DAY, complaint_id=f"cp-{day}")],
            engine=engine,
            close=False,
        )
        assert (states.get("c-1") is None) == (day == 8)
    assert run([], [complaint("opened", 8 * DAY + 1, complaint_id="cp-2")], engine=engine, close=False) == []
