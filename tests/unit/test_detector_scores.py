"""Detector scores: reported per judged window, the top k exported to Prometheus, kept by sinks that store them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from rules.types.cohort_spike import SCORES_TOP
from streams.decode import Decoder
from streams.engine import DictBackend, Engine, EngineConfig
from streams.metrics import TOP_K, PipelineMetrics
from streams.pipeline import Pipeline
from tests.helpers import rules_from, run
from tests.unit.test_cohort_spike import RULE, daily_cycle, hourly
from tests.unit.test_hot_words_rule import SCOPED, city_complaints
from yujing.scores import Score

OUTAGE_HOUR = 24 * 5 + 3


def outage(h: int, region: str, product: str) -> float:
    base = daily_cycle(h, region, product)
    return base * 6 if h in (OUTAGE_HOUR, OUTAGE_HOUR + 1) and region == "台州" and product == "宽带" else base


def scored_run(tmp_path: Path, rule: str, events: list[dict[str, Any]], batch: int = 50) -> tuple[list[Any], list[Score]]:
    engine = Engine(rules_from(tmp_path, rule), DictBackend(), EngineConfig(allowed_lateness=300, idle_after=None))
    alerts = run([], events, engine=engine, batch=batch)
    return alerts, engine.take_scores()


def test_cohort_spikes_report_their_most_unusual_cohorts_each_step(tmp_path: Path) -> None:
    alerts, scores = scored_run(tmp_path, RULE, hourly(24 * 6, outage))
    steps: dict[float, list[Score]] = {}
    for s in scores:
        steps.setdefault(s.at, []).append(s)
    assert all(len(v) <= SCORES_TOP for v in steps.values())
    assert all(s.source == "cohort_spike" and s.observed > s.expected for s in scores)
    fired = min(a.starts_at for a in alerts if a.status == "firing").timestamp()
    top = max(steps[fired], key=lambda s: s.score)
    assert top.subject.startswith("region=台州") and top.score >= 6  # p ≤ 1e-6: what made it fire
    ordinary = [s.score for at, v in steps.items() if at < fired - 86400 for s in v]
    assert ordinary and max(ordinary) < 6  # the days before stay below the line


def test_hot_words_report_their_top_terms_each_window_with_scoped_ones_prefixed(tmp_path: Path) -> None:
    _, scores = scored_run(tmp_path, SCOPED, city_complaints(20, 12), batch=100)
    assert scores and all(s.source == "hot_word" for s in scores)
    assert any(s.subject.startswith("region=温州|") for s in scores)
    burst = max(scores, key=lambda s: s.score)
    assert burst.subject.startswith("region=温州|") and burst.score >= 4 and burst.observed >= 5


def test_prometheus_keeps_only_each_rules_latest_top_k() -> None:
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    first = [Score("spike", "cohort_spike", f"region=r{i}", 900.0, float(i), 10, 2) for i in range(30)]
    metrics.scores(first)
    later = [Score("spike", "cohort_spike", f"region=q{i}", 1800.0, float(i), 10, 2) for i in range(5)]
    metrics.scores([*later, first[0]])  # an older window's score does not win over the latest window
    samples = [s for metric in registry.collect() if metric.name == "yujing_detector_score" for s in metric.samples]
    assert sorted(s.labels["subject"] for s in samples) == [f"region=q{i}" for i in range(5)]
    metrics.scores(first)
    samples = [s for metric in registry.collect() if metric.name == "yujing_detector_score" for s in metric.samples]
    assert len(samples) == TOP_K and min(s.value for s in samples) == 20.0


class _Keeps:
    name = "keeps"

    def __init__(self) -> None:
        self.scores: list[Score] = []

    def write(self, alerts: Sequence[Any]) -> None:
        pass

    def write_scores(self, scores: Sequence[Score]) -> None:
        self.scores.extend(scores)

    def close(self) -> None:
        pass


class _Broken(_Keeps):
    name = "broken"

    def write_scores(self, scores: Sequence[Score]) -> None:
        raise ConnectionError("down")


def test_the_pipeline_hands_scores_to_sinks_that_keep_them_and_a_failing_one_stops_nothing(tmp_path: Path) -> None:
    engine = Engine(rules_from(tmp_path, RULE), DictBackend(), EngineConfig(allowed_lateness=300, idle_after=None))
    registry = CollectorRegistry()
    keeps, broken = _Keeps(), _Broken()
    pipeline = Pipeline(engine, Decoder({}), [broken, keeps], PipelineMetrics(registry))
    alerts = run([], hourly(24 * 6, outage), engine=engine, batch=50)
    assert engine.scores_pending() and pipeline.has_scores()
    pipeline.deliver(alerts)
    assert keeps.scores and not pipeline.has_scores()
    assert registry.get_sample_value("yujing_sink_failures_total", {"sink": "broken_scores"}) == 1.0
