"""The ``sla`` rule keeps its timers in its watches: one timer a watch, no timer records, and a restart that
rebuilds them from the watches alone gives the alerts of a run never interrupted."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.types.sla import SlaWatch
from streams.engine.engine import Engine, EngineConfig
from streams.engine.state import DictBackend
from streams.engine.timers import SEP, TimerEntry
from tests.helpers import SLA_RULE, T0, keys, order, rules_from, run
from tests.unit.test_sla_warnings import WARNED

CONFIG = EngineConfig(allowed_lateness=300.0, idle_after=None)

# Watches that breach, end between their warnings, end before their start (out of order), are cancelled
# late and started twice: every step of a watch's one timer.
EVENTS = [
    order("created", 0),
    order("created", 5, order_id="o2"),
    order("completed", 40, order_id="o2"),  # after its first warning
    order("completed", 42, order_id="o3"),  # its end before its start
    order("created", 41, order_id="o3"),
    order("created", 50, order_id="o4"),
    order("created", 50, order_id="o4"),  # a duplicate start
    order("created", 70, order_id="o5"),
    order("cancelled", 140, order_id="o4"),  # after its breach: resolves it
    order("created", 200, order_id="o6"),
    order("completed", 230, order_id="o6"),
    order("created", 400, order_id="o7"),
]


@settings(max_examples=30, deadline=None)
@given(cut=st.integers(0, len(EVENTS)), warned=st.booleans())
def test_a_restart_after_any_event_gives_the_alerts_of_an_uninterrupted_run(tmp_path_factory, cut: int, warned: bool) -> None:
    tmp_path = tmp_path_factory.mktemp("rules")
    text = WARNED if warned else SLA_RULE
    whole = run(rules_from(tmp_path, text), EVENTS, close=True)
    backend = DictBackend()
    first = run(rules_from(tmp_path, text), EVENTS[:cut], engine=Engine(rules_from(tmp_path, text), backend, CONFIG), close=False)
    assert not any(k.startswith("install-sla" + SEP) for k, _ in backend.namespace("~timers", TimerEntry).items())
    restarted = Engine(rules_from(tmp_path, text), backend, CONFIG)
    restarted.recover()
    rest = run(rules_from(tmp_path, text), EVENTS[cut:], engine=restarted, close=True)
    assert keys(first + rest) == keys(whole)
    assert len(first) + len(rest) == len(whole)


def test_an_open_watch_is_one_packed_record_and_one_index_entry(tmp_path: Path) -> None:
    backend = DictBackend()
    engine = Engine(rules_from(tmp_path, WARNED), backend, CONFIG)
    run([], [order("created", 0, order_id=f"o{i}") for i in range(50)], engine=engine, close=False)
    watches = backend.namespaces["sla:install-sla"]
    assert len(watches) == 50 and all(isinstance(raw, bytes) for raw in watches.data.values())  # type: ignore[union-attr]
    assert engine.timers.pending() == 50  # the first warning's moment of each; the rest follow one at a time
    assert list(backend.namespace("~timers", TimerEntry).items()) == []


def test_a_jump_of_the_watermark_fires_the_steps_of_all_watches_in_time_order(tmp_path: Path) -> None:
    """Each watch has one timer at a time, set again as it fires: the next steps still interleave by time."""
    events = [order("created", 0), order("created", 10, order_id="ord-2"), order("created", 200, order_id="x")]
    alerts = run(rules_from(tmp_path, WARNED), events)
    fired = [(a.labels["order_id"], (a.starts_at - T0).total_seconds() / 60) for a in alerts if a.status == "firing"]
    assert fired[:6] == [("ord-1", 30), ("ord-2", 40), ("ord-1", 48), ("ord-2", 58), ("ord-1", 60), ("ord-2", 70)]


def test_a_watch_stored_by_an_earlier_version_warns_and_breaches_from_its_timer_records(tmp_path: Path) -> None:
    """Before, a watch had no partition and three timer records (deadline, each warning, cleanup)."""
    backend = DictBackend()
    start, deadline = T0.timestamp(), T0.timestamp() + 3600
    old = SlaWatch(start_ts=start, deadline=deadline, start_event="e-1", values=[], labels={"order_id": "ord-1"}, summary="订单 ord-1 超时")
    backend.namespace("sla:install-sla", SlaWatch, packed=True).set("ord-1", old)
    records = backend.namespace("~timers", TimerEntry)
    records.set("install-sla" + SEP + "ord-1", TimerEntry(deadline, 0))
    records.set("install-sla" + SEP + "ord-1\x1ewarn0", TimerEntry(start + 1800, 0))
    records.set("install-sla" + SEP + "ord-1\x1ewarn1", TimerEntry(start + 2880, 0))
    engine = Engine(rules_from(tmp_path, WARNED), backend, CONFIG)
    assert engine.recover() == 3 and len(records) == 0  # indexed once, dropped: the watch says the rest
    alerts = run([], [order("created", 100, order_id="x")], engine=engine, close=False)
    assert [(a.labels.get("phase", "breach"), a.status, (a.starts_at - T0).total_seconds() / 60) for a in alerts] == [
        ("warning", "firing", 30),
        ("warning", "firing", 48),
        ("warning", "resolved", 30),
        ("warning", "resolved", 48),
        ("breach", "firing", 60),
    ]
    assert backend.namespace("sla:install-sla", SlaWatch, packed=True).get("ord-1").partition == 0  # type: ignore[union-attr]


def test_a_new_version_of_the_rule_times_the_open_watches_by_its_own_terms(tmp_path: Path) -> None:
    """The watch's one timer was at its first warning; the new version has none: it still breaches at the deadline."""
    engine = Engine(rules_from(tmp_path, WARNED), DictBackend(), CONFIG)
    assert run([], [order("created", 0)], engine=engine, close=False) == []
    engine.set_rules(rules_from(tmp_path, SLA_RULE))
    alerts = run([], [order("created", 100, order_id="x")], engine=engine, close=False)
    assert [(a.labels.get("phase", "breach"), a.status, (a.starts_at - T0).total_seconds() / 60) for a in alerts] == [
        ("breach", "firing", 60)
    ]
