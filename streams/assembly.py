"""Building a runner's parts from the configuration: the engine with its alert manager, and the sinks.

Every runner (demo, ``run``, backtest, worker) assembles them here, so they
handle alerts by the same policy and deliver them the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sinks.outbox import BufferedSink
from streams.alerting import AlertManager, load_policy
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
    """Reads the silence log when it changed and hands the silences to the alert manager."""

    def __init__(self, path: str | Path, manager: AlertManager) -> None:
        self.log = SilenceFile(path)
        self.manager = manager
        self.seen: tuple[float, int] | None = None

    def poll(self) -> bool:
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
    manager = AlertManager(load_alert_policy(config, rules_dir), backend, engine_config.dedup_retention, engine_config.partitions)
    engine = Engine(rules, backend, engine_config, alerting=manager, **kwargs)
    follower = SilenceFollower(config.alerting.silences, manager)
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
