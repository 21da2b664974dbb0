"""Configuration: defaults, then a YAML file, then environment variables.

Every setting can come from the environment as ``YUJING_<SECTION>_<NAME>``,
e.g. ``YUJING_KAFKA_BOOTSTRAP=broker:9092``, ``YUJING_CLICKHOUSE_URL=clickhouse://ch:9000/yujing``,
``YUJING_METRICS_PORT=9464``. See the README for the full table.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from streams.engine import EngineConfig
from yujing.timeutil import parse_duration

__all__ = ["Config", "ConfigError", "default_rules_dir", "load_config"]

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def default_rules_dir() -> str:
    return str(PACKAGE_ROOT / "rules" / "packs" / "default")


class ConfigError(ValueError):
    """A setting that cannot be used."""


@dataclass
class KafkaConfig:
    bootstrap: str = "127.0.0.1:9092"
    app_id: str = "yujing"
    topic_orders: str = "orders"
    topic_billing: str = "billing"
    topic_complaints: str = "complaints"
    partitions: int = 8
    dlq_suffix: str = ".dlq"
    store: str = "memory://"  # rocksdb:// (with rocksdict) in production
    data_dir: str = ""  # where a rocksdb store keeps its files (default: ./<app_id>-data); {hostname}: this host's name
    session_timeout: float = 6.0
    batch_max: int = 1000  # records per engine batch: a larger fetch is cut into slices, each with its share of every partition
    batch_wait: float = 0.1  # how long a fetch waits for records when none are buffered
    # how long the broker may hold a fetch for data to arrive (faust fixes aiokafka's at 1.5 s; Kafka answers as soon
    # as data is there, a broker that holds the fetch anyway, as tansu does, delays every record by up to this)
    fetch_max_wait: float = 0.1
    tick_interval: float = 5.0
    stuck_check_interval: float = 5.0  # seconds between checks for a consumer flow left suspended outside a rebalance
    alerts_topic: str = ""  # sent alerts to this topic (the contract's JSON keyed by alert_id), e.g. "alerts"; empty: off
    # Cohort rules across workers: their records and every partition's watermark go through the internal topic
    # <app_id>-cohort, keyed by group, so any number of workers judges each group on all of its traffic. Off: the
    # cohort stage runs inside the worker on its own partitions (then run one worker per app id).
    cohort_topic: bool = True
    # Standby copies of other workers' table partitions (faust's table_standby_replicas). Each standby replays another
    # worker's changelog message by message: with two workers it doubled the CPU per event (bench/scale_out.py).
    # Recovery reads the changelog (memory://) or the local disk (rocksdb://) without them.
    standby_replicas: int = 0

    def cohort_topic_name(self) -> str:
        return f"{self.app_id}-cohort"

    def topics(self) -> dict[str, str]:
        """Topic name → stream kind."""
        return {self.topic_orders: "orders", self.topic_billing: "billing", self.topic_complaints: "complaints"}


@dataclass
class EngineSettings:
    allowed_lateness: str = "5m"
    idle_after: str = "30s"
    late_policy: str = "process"
    dedup_retention: str = "2d"
    open_retention: str = "30d"  # an alert sent firing is remembered until it resolves, at most this long

    def engine_config(self, idle: bool = True) -> EngineConfig:
        if self.late_policy not in ("process", "drop"):
            raise ConfigError(f"engine.late_policy must be process or drop, not {self.late_policy!r}")
        return EngineConfig(
            allowed_lateness=parse_duration(self.allowed_lateness),
            idle_after=parse_duration(self.idle_after) if idle and self.idle_after not in ("", "off", "none") else None,
            late_policy=self.late_policy,  # type: ignore[arg-type]
            dedup_retention=parse_duration(self.dedup_retention),
            open_retention=parse_duration(self.open_retention),
        )


@dataclass
class RulesConfig:
    dir: str = field(default_factory=default_rules_dir)
    watch: float = 0.0  # seconds between looks at `dir` for changed rules (0: no file watch)
    topic: str = ""  # follow rule bundles published to this topic (`yujing rules publish`); empty: off


@dataclass
class ClickHouseConfig:
    url: str = ""  # e.g. clickhouse://127.0.0.1:9000/yujing ; empty: no ClickHouse sink
    alerts_retention_days: int = 730  # TTL of alerts and their status history, where the server has TTLs (0: forever)
    scores_retention_days: int = 90  # TTL of detector scores


@dataclass
class AlertingConfig:
    policy: str = ""  # alert-handling policy file (default: alerting.policy.yaml in the rules directory)
    silences: str = "silences.jsonl"  # the silence log `yujing silence` writes and the runners read
    # where silences live: alertmanager (its API v2: one place with its UI), file (the log above), auto (alertmanager
    # when alertmanager.url is set, else file)
    silences_from: str = "auto"
    silences_poll: float = 10.0  # seconds between looks at the silence log (worker)


@dataclass
class AlertmanagerConfig:
    url: str = ""  # e.g. http://alertmanager:9093 ; empty: no Alertmanager sink
    resend_interval: float = 60.0  # seconds between re-sends of firing alerts (below Alertmanager's resolve_timeout)
    resend_for: str = "24h"  # stop re-sending an alert that has not resolved after this long
    evidence_url: str = ""  # link in each alert's annotations, e.g. https://grafana/d/yujing-alerts?var-alert_id={alert_id}


@dataclass
class WebhookConfig:
    url: str = ""  # group notifications are POSTed here ; empty: off
    timeout: float = 10.0


@dataclass
class SinksConfig:
    buffer: int = 100_000  # items a network sink may hold while it is down before the stream waits (0: no buffer, no thread)


@dataclass
class MetricsConfig:
    host: str = "0.0.0.0"
    port: int = 9464  # 0: do not serve


@dataclass
class OutputConfig:
    alerts: str = ""  # JSON Lines file of alerts ("-" for stdout)
    dead_letters: str = "dead-letters.jsonl"


@dataclass
class Config:
    """All settings. ``load_config`` fills it from a file and the environment."""

    def silences_in_alertmanager(self) -> bool:
        """Whether silences live in Alertmanager (``alerting.silences_from``) rather than in the log file."""
        chosen = self.alerting.silences_from
        return chosen == "alertmanager" or (chosen == "auto" and bool(self.alertmanager.url))

    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    engine: EngineSettings = field(default_factory=EngineSettings)
    rules: RulesConfig = field(default_factory=RulesConfig)
    clickhouse: ClickHouseConfig = field(default_factory=ClickHouseConfig)
    alerting: AlertingConfig = field(default_factory=AlertingConfig)
    alertmanager: AlertmanagerConfig = field(default_factory=AlertmanagerConfig)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    sinks: SinksConfig = field(default_factory=SinksConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")
#: Settings that are durations (``90s``, ``5m``, ``2d``), checked when the configuration is read, not when first used.
_DURATIONS = {("engine", "allowed_lateness"), ("engine", "dedup_retention"), ("engine", "open_retention"), ("alertmanager", "resend_for")}
#: ``YUJING_*`` variables that are not settings: the config file's path, and the test harness's own.
_NOT_SETTINGS = ("YUJING_CONFIG", "YUJING_TEST_")


def _coerce(value: Any, target: Any, where: str) -> Any:
    kind = type(target)
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() not in _TRUE + _FALSE:
                raise ValueError(value)
            return str(value).lower() in _TRUE
        if kind is int:
            return int(value)
        if kind is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}") from None


def load_config(path: str | Path | None = None, environ: dict[str, str] | None = None) -> Config:
    """Defaults ← file (YAML) ← environment (``YUJING_SECTION_NAME``)."""
    config = Config()
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    path = path or env.get("YUJING_CONFIG")
    if path:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the config file is a mapping of sections")
    sections = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    for name, values in data.items():
        if name not in sections:
            raise ConfigError(f"{path}: unknown section `{name}` (sections: {', '.join(sections)})")
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: section `{name}` is a mapping")
        section = sections[name]
        known = {f.name for f in dataclasses.fields(section)}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"{path}: unknown setting `{name}.{key}` (settings: {', '.join(sorted(known))})")
            setattr(section, key, _coerce(value, getattr(section, key), f"{name}.{key}"))
    settings = {}
    for name, section in sections.items():
        for f in dataclasses.fields(section):
            var = f"YUJING_{name}_{f.name}".upper()
            settings[var] = (name, f.name)
            if var in env:
                setattr(section, f.name, _coerce(env[var], getattr(section, f.name), var))
    unknown = sorted(v for v in env if v.startswith("YUJING_") and v not in settings and not v.startswith(_NOT_SETTINGS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(settings), n=1)
        hint = f" (did you mean {close[0]}?)" if close else " (settings are YUJING_<SECTION>_<NAME>, e.g. YUJING_KAFKA_BOOTSTRAP)"
        raise ConfigError(f"unknown setting {unknown[0]} in the environment{hint}")
    for section_name, key in sorted(_DURATIONS):
        value = getattr(sections[section_name], key)
        try:
            parse_duration(value)
        except ValueError:
            raise ConfigError(f"{section_name}.{key}: {value!r} is not a duration (e.g. 90s, 5m, 48h, 2d)") from None
    idle = sections["engine"].idle_after
    if idle not in ("", "off", "none"):
        try:
            parse_duration(idle)
        except ValueError:
            raise ConfigError(f"engine.idle_after: {idle!r} is not a duration or off (e.g. 30s)") from None
    if sections["alerting"].silences_from not in ("auto", "file", "alertmanager"):
        raise ConfigError(f"alerting.silences_from must be auto, file or alertmanager, not {sections['alerting'].silences_from!r}")
    if sections["alerting"].silences_from == "alertmanager" and not sections["alertmanager"].url:
        raise ConfigError("alerting.silences_from is alertmanager but alertmanager.url is not set")
    if sections["engine"].late_policy not in ("process", "drop"):
        raise ConfigError(f"engine.late_policy must be process or drop, not {sections['engine'].late_policy!r}")
    return config
