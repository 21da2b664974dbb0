"""Building a runner's parts from the configuration: the engine with its alert manager, and the sinks.

Every runner (demo, ``run``, backtest, worker) assembles them here, so they
handle alerts by the same policy and deliver them the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sinks.http import HttpError
from sinks.outbox import BufferedSink
from streams.alerting import AlertManager, load_policy
from streams.alerting.am_silences import AlertmanagerSilences
from streams.alerting.policy import AlertPolicy, load_policy_file
from streams.alerting.silences import SilenceFile
from streams.config import Config
from streams.engine import Engine, EngineConfig
from streams.metrics import PipelineMetrics
from yujing.protocols import Rule, Sink, StateBackend
from yujing.timeutil import parse_duration

__all__ = ["SilenceFollower", "build_engine", "build_sinks", "load_alert_policy"]

log = logging.getLogger(__name__)


def load_alert_policy(config: Config, rules_dir: str | None = None) -> AlertPolicy:
    """The configured policy file, else the rules directory's ``alerting.policy.yaml``, else the default."""
    if config.alerting.policy:
        return load_policy_file(config.alerting.policy)
    return load_policy(rules_dir or config.rules.dir)


class SilenceFollower:
    """Reads the silences (Alertmanager's, or the log file) and hands them to the alert manager when they changed."""

    def __init__(self, source: str | Path | AlertmanagerSilences, manager: AlertManager) -> None:
        self.source = source
        self.log = SilenceFile(source) if not isinstance(source, AlertmanagerSilences) else None
        self.manager = manager
        self.seen: Any = None  # what was applied last (a file's mtime and size, or Alertmanager's silences); None: apply again

    def poll(self) -> bool:
        if isinstance(self.source, AlertmanagerSilences):
            return self._poll_alertmanager(self.source)
        assert self.log is not None
        try:
            stat = self.log.path.stat()
            mark = (stat.st_mtime, stat.st_size)
        except OSError:
            mark = (0.0, 0)
        if mark == self.seen:
            return False
        self.seen = mark
        self.manager.set_silences(self.log.current())
        for problem in self.log.problems:
            log.warning("silences: %s", problem)
        return True

    def _poll_alertmanager(self, source: AlertmanagerSilences) -> bool:
        try:
            current = source.current()
        except HttpError as exc:  # Alertmanager down: the silences in state keep applying
            log.warning("silences: cannot read Alertmanager's (%s); the last ones read stay in force", exc)
            return False
        for problem in source.problems:
            log.warning("silences: %s", problem)
        if current == self.seen:
            return False
        self.seen = current
        self.manager.set_silences(current)
        return True


def silence_source(config: Config) -> str | AlertmanagerSilences:
    """Where the configured silences live: Alertmanager (``alerting.silences_from``), else the log file's path."""
    if config.silences_in_alertmanager():
        return AlertmanagerSilences(config.alertmanager.url, timeout=2.0)  # polled on the worker's loop: fail fast
    return config.alerting.silences


def build_engine(
    rules: Sequence[Rule],
    backend: StateBackend,
    config: Config,
    engine_config: EngineConfig,
    *,
    rules_dir: str | None = None,
    **kwargs: Any,
) -> tuple[Engine, SilenceFollower]:
    """The engine with the configured alert policy and the silence log applied."""
    policy = load_alert_policy(config, rules_dir)
    manager = AlertManager(policy, backend, engine_config.dedup_retention, engine_config.partitions, engine_config.open_retention)
    engine = Engine(rules, backend, engine_config, alerting=manager, **kwargs)
    follower = SilenceFollower(silence_source(config), manager)
    follower.poll()
    return engine, follower


def build_sinks(
    config: Config, metrics: PipelineMetrics, alerts_path: str | None, *, policy: AlertPolicy | None = None, buffered: bool = True
) -> list[Sink | BufferedSink]:
    """The configured sinks: JSON Lines written in the stream; the network sinks each on its own buffered thread
    (the webhook's lingers for the policy's ``group.interval`` and posts one message per group)."""
    from sinks.jsonl import JsonLinesSink

    sinks: list[Sink | BufferedSink] = []
    if alerts_path:
        sinks.append(JsonLinesSink(alerts_path, metrics=metrics))
    network: list[Any] = []
    if config.clickhouse.url:
        from sinks.clickhouse import ClickHouseSink

        retention = {
            "alerts_retention_days": config.clickhouse.alerts_retention_days,
            "scores_retention_days": config.clickhouse.scores_retention_days,
        }
        network.append(ClickHouseSink(config.clickhouse.url, metrics=metrics, connect=not buffered, **retention))
    if config.kafka.alerts_topic:
        from sinks.kafka_alerts import KafkaAlertSink

        network.append(KafkaAlertSink(config.kafka.bootstrap, config.kafka.alerts_topic, metrics=metrics, connect=not buffered))
    if config.alertmanager.url:
        from sinks.alertmanager import AlertmanagerSink

        am = config.alertmanager
        network.append(
            AlertmanagerSink(
                am.url,
                evidence_url=am.evidence_url,
                resend_interval=am.resend_interval,
                resend_for=parse_duration(am.resend_for),
                metrics=metrics,
            )
        )
    grouping = (policy or load_alert_policy(config)).group
    if config.webhook.url:
        from sinks.webhook import WebhookSink

        network.append(WebhookSink(config.webhook.url, group_by=grouping.by, timeout=config.webhook.timeout, metrics=metrics))
    buffered = buffered and config.sinks.buffer > 0  # 0: every sink written in the stream, as a backtest does
    for sink in network:
        linger = grouping.interval if sink.name == "webhook" else 0.0
        sinks.append(BufferedSink(sink, capacity=config.sinks.buffer, metrics=metrics, linger=linger) if buffered else sink)
    return sinks
