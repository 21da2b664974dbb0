"""Prometheus metrics of the pipeline. The registry is passed in; nothing registers at import.

No metric has a per-customer (or per-order, per-alert) label: labels are
topics, outcomes, reason categories, rule ids, severities, sinks and
partition numbers, all bounded. The one label drawn from the data, the
detector score's ``subject`` (a cohort or a term), is kept to the top
:data:`TOP_K` per rule: each judged window replaces the rule's previous set.
"""

from __future__ import annotations

import time
from collections import Counter as TallyCounter
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from yujing.alerts import Alert
from yujing.scores import Score

__all__ = ["TOP_K", "PipelineMetrics"]

#: Detector scores exported per rule: the highest of its latest judged window.
TOP_K = 10


class PipelineMetrics:
    """All of Yujing's metrics on one registry.

    >>> from prometheus_client import CollectorRegistry
    >>> reg = CollectorRegistry()
    >>> m = PipelineMetrics(reg)
    >>> m.events(("orders", "accepted") for _ in range(3))
    >>> reg.get_sample_value("yujing_events_total", {"topic": "orders", "outcome": "accepted"})
    3.0
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events_total = Counter(
            "yujing_events", "Events read, by topic and outcome (accepted, dead_letter).", ["topic", "outcome"], registry=registry
        )
        self.dead_letters_total = Counter(
            "yujing_dead_letters", "Messages dead-lettered, by topic and reason category.", ["topic", "reason"], registry=registry
        )
        self.late_events_total = Counter(
            "yujing_late_events", "Events behind their partition's watermark on arrival, by stream.", ["kind"], registry=registry
        )
        self.rule_errors_total = Counter(
            "yujing_rule_errors", "Exceptions raised inside a rule (the event is skipped for that rule).", ["rule_id"], registry=registry
        )
        self.alerts_total = Counter(
            "yujing_alerts",
            "Alerts raised, by source, rule, severity and status.",
            ["source", "rule_id", "severity", "status"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "yujing_batch_processing_seconds",
            "Engine time to process one batch of events.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )
        self.event_latency_seconds = Histogram(
            "yujing_event_processing_latency_seconds",
            "Arrival of a batch's oldest event in the runner to the end of the batch's processing (one sample per batch).",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.consumer_lag_records = Gauge(
            "yujing_consumer_lag_records",
            "Records between the last one processed and the partition's high watermark (worker only).",
            ["topic", "partition"],
            registry=registry,
        )
        self.watermark_lag_seconds = Gauge(
            "yujing_watermark_lag_seconds", "Wall-clock time minus the partition's watermark.", ["partition"], registry=registry
        )
        self.sink_batch_size = Histogram(
            "yujing_sink_batch_size",
            "Alerts per sink write.",
            ["sink"],
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000),
            registry=registry,
        )
        self.sink_failures_total = Counter(
            "yujing_sink_failures", "Failed sink write attempts (each retry counts).", ["sink"], registry=registry
        )
        self.sink_written_total = Counter("yujing_sink_written", "Alerts written by a sink.", ["sink"], registry=registry)
        self.sink_buffered = Gauge(
            "yujing_sink_buffered", "Items waiting in a sink's buffer (a dead sink's backlog).", ["sink"], registry=registry
        )
        self.sink_buffer_full_total = Counter(
            "yujing_sink_buffer_full", "Times a sink's full buffer made the stream wait (backpressure).", ["sink"], registry=registry
        )
        self.alerts_held_total = Counter(
            "yujing_alerts_held",
            "Alerts recorded but not sent, by rule and reason (silenced, inhibited, realert, rate_limited, not_sent).",
            ["rule_id", "reason"],
            registry=registry,
        )
        self.input_skipped_total = Counter(
            "yujing_input_skipped",
            "Input records not processed: a redelivery already in state (duplicate), "
            "or read past a gap while the partition is read again (beyond_gap).",
            ["topic", "reason"],
            registry=registry,
        )
        self.input_seeks_total = Counter(
            "yujing_input_seeks",
            "Times an input partition was sought to its stored position: after a gap, or after a rebalance "
            "where the consumer's committed offset differed.",
            ["topic"],
            registry=registry,
        )
        self.input_gaps_total = Counter(
            "yujing_input_gaps",
            "Offset gaps accepted as real (no records there: transaction markers, retention).",
            ["topic"],
            registry=registry,
        )
        self.detector_score = Gauge(
            "yujing_detector_score",
            f"Detector scores of each rule's latest judged window, its top {TOP_K} subjects only "
            "(cohort spikes: -log10 of the tail probability; hot words: significance).",
            ["rule_id", "source", "subject"],
            registry=registry,
        )
        self._score_labels: dict[str, set[tuple[str, str, str]]] = {}
        self.rules_loaded = Gauge("yujing_rules_loaded", "Rules currently loaded.", registry=registry)
        self.rules_info = Gauge(
            "yujing_rules_info", "The loaded rule set's version (1 for the current one).", ["version"], registry=registry
        )
        self.rules_reloads_total = Counter(
            "yujing_rules_reloads", "Rule reloads by outcome (applied, rejected, unchanged).", ["outcome"], registry=registry
        )

    def rules_version(self, version: str, count: int) -> None:
        """The rule set now running (one version label at a time)."""
        self.rules_info.clear()
        self.rules_info.labels(version).set(1)
        self.rules_loaded.set(count)

    # -- engine observer --------------------------------------------------
    def input_positions(self, skipped: Mapping[tuple[str, str], int], seeks: Mapping[str, int], gaps: Mapping[str, int]) -> None:
        for (topic, reason), n in skipped.items():
            self.input_skipped_total.labels(topic, reason).inc(n)
        for topic, n in seeks.items():
            self.input_seeks_total.labels(topic).inc(n)
        for topic, n in gaps.items():
            self.input_gaps_total.labels(topic).inc(n)

    def late_events(self, kind: str, count: int) -> None:
        self.late_events_total.labels(kind).inc(count)

    def rule_error(self, rule_id: str) -> None:
        self.rule_errors_total.labels(rule_id).inc()

    # -- runners ----------------------------------------------------------
    def events(self, outcomes: Iterable[tuple[str, str]]) -> None:
        """Count ``(topic, outcome)`` pairs (one increment per distinct pair)."""
        self.event_counts(TallyCounter(outcomes))

    def event_counts(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Add already tallied ``(topic, outcome) → n``."""
        for (topic, outcome), n in counts.items():
            if n:
                self.events_total.labels(topic, outcome).inc(n)

    def dead_letter(self, topic: str, category: str) -> None:
        self.dead_letters_total.labels(topic, category).inc()

    def alerts(self, alerts: Iterable[Alert]) -> None:
        for (source, rule_id, severity, status), n in TallyCounter((a.source, a.rule_id, a.severity, a.status) for a in alerts).items():
            self.alerts_total.labels(source, rule_id, severity, status).inc(n)

    def held(self, held: Iterable[tuple[str, str]]) -> None:
        """Count ``(rule_id, reason kind)`` of alerts the manager held back."""
        for (rule_id, reason), n in TallyCounter(held).items():
            self.alerts_held_total.labels(rule_id, reason).inc(n)

    def scores(self, scores: Iterable[Score]) -> None:
        """Each rule's latest window's top :data:`TOP_K` scores replace its previous ones (bounded series)."""
        latest: dict[str, list[Score]] = {}
        for score in scores:
            mine = latest.get(score.rule_id)
            if mine is None or score.at > mine[0].at:
                latest[score.rule_id] = [score]
            elif score.at == mine[0].at:
                mine.append(score)
        for rule_id, window in latest.items():
            top = sorted(window, key=lambda s: -s.score)[:TOP_K]
            labels = {(s.rule_id, s.source, s.subject): s.score for s in top}
            for old in self._score_labels.get(rule_id, set()) - set(labels):
                self.detector_score.remove(*old)
            for key, value in labels.items():
                self.detector_score.labels(*key).set(value)
            self._score_labels[rule_id] = set(labels)

    def watermarks(self, marks: dict[int, float], now: float | None = None) -> None:
        now = time.time() if now is None else now
        for partition, mark in marks.items():
            if mark != float("-inf"):
                self.watermark_lag_seconds.labels(str(partition)).set(now - mark)
