"""Rules that keep a view of their state in memory (``CachesState``: hot words' open windows, a cohort rule's
count keys by step) build it from state: a fresh process on the state of any cut, and a process told to
recover (its views dropped and read again), give the alerts and the state of a run never interrupted."""

from __future__ import annotations

from pathlib import Path

from rules.loader import load_rules
from streams.engine.engine import Engine, EngineConfig
from streams.engine.state import DictBackend
from streams.simulator.scenarios import ScenarioConfig, scenario
from tests.helpers import keys, spread_over_partitions
from yujing.protocols import CachesState

PACK = Path(__file__).resolve().parents[2] / "rules" / "packs" / "default"
COHORT_RULES = ("complaint-hot-words.yaml", "complaint-spike.yaml", "intake-silence.yaml")
CONFIG = EngineConfig(allowed_lateness=300.0, idle_after=None)


def cohort_rules(tmp_path: Path) -> list:
    for name in COHORT_RULES:
        text = (PACK / name).read_text(encoding="utf-8").replace("warmup: 7d", "warmup: 1d")  # a short history
        (tmp_path / name).write_text(text, encoding="utf-8")
    return load_rules(tmp_path).rules


def state_of(backend: DictBackend) -> dict:
    return {name: dict(ns.data) for name, ns in backend.namespaces.items() if ns.data}  # type: ignore[union-attr]


def run_in(engine: Engine, batches: list, *, recover_before: int | None = None) -> list:
    out = []
    for i, batch in enumerate(batches):
        if i == recover_before:
            engine.recover()
        out.extend(engine.process(batch))
        engine.commit()
    return out


def test_a_restart_from_state_and_a_recovery_mid_run_give_the_uninterrupted_run(tmp_path: Path) -> None:
    sim = scenario(ScenarioConfig(kind="outage", seed=1, history_days=2, complaints_per_day=1_200, orders_per_day=100, customers=5_000))
    events = spread_over_partitions([e for e in sim.events if e["event_type"].startswith("complaint")])
    batches = [events[i : i + 200] for i in range(0, len(events), 200)]
    cut = len(batches) * 2 // 3  # on the incident's day, windows open

    whole_backend = DictBackend()
    whole = Engine(cohort_rules(tmp_path), whole_backend, CONFIG)
    expected = run_in(whole, batches) + whole.close_input()
    assert any(a.source == "hot_word" for a in expected) and any(a.source == "cohort_spike" for a in expected)

    # a fresh process on the state of the cut: its rules read their views from state
    backend = DictBackend()
    first = run_in(Engine(cohort_rules(tmp_path), backend, CONFIG), batches[:cut])
    restarted = Engine(cohort_rules(tmp_path), backend, CONFIG)
    restarted.recover()
    rest = run_in(restarted, batches[cut:]) + restarted.close_input()
    assert keys(first + rest) == keys(expected)
    assert state_of(backend) == state_of(whole_backend)

    # the same process told to recover at the cut: its rules drop their views and read them again, which must
    # change nothing when state did not change (that a view goes stale when state does change behind it, in a
    # rebalance, is what forget_cached is for; the engine's own recovery of watermarks and timers has no such test)
    backend = DictBackend()
    engine = Engine(cohort_rules(tmp_path), backend, CONFIG)
    assert all(isinstance(rule, CachesState) for rule in engine.rules if rule.rule_id != "intake-silence")
    got = run_in(engine, batches, recover_before=cut) + engine.close_input()
    assert keys(got) == keys(expected)
    assert state_of(backend) == state_of(whole_backend)
