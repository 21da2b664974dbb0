"""Alerts (and the detectors' scores) into ClickHouse, idempotently.

The table is a ``ReplacingMergeTree`` ordered by ``alert_id`` with a version
that ranks ``resolved`` above ``firing``: a redelivered or replayed alert
collapses into one row (query with ``FINAL``), and that row shows the
latest status. The partition key is ``toYYYYMM(starts_at)``, a function of
the alert alone, so duplicates always meet in the same partition.

Detector scores go to ``detector_scores`` (a ``ReplacingMergeTree`` ordered by
rule, subject and time, partitioned by the score's month), one attempt per
batch: they are telemetry for the trend panels, not alerts.

The DDL stays in the subset ClickHouse 18.16 understands (no ``Map``, no
``DateTime64``); ``LowCardinality`` columns are used only when the server is
new enough to have them without an experimental flag, and a retention TTL
(alerts and their history two years, scores 90 days by default; 0 keeps
rows forever) only when it has table TTLs (19.6 and later). A table made
before is left as it is: ``ALTER TABLE … MODIFY TTL`` rewrites every part,
which is the operator's decision.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sinks.base import RetryingSink
from yujing.alerts import STATUS_RANK, Alert
from yujing.scores import Score
from yujing.timeutil import to_datetime

__all__ = ["ClickHouseSink", "actions_ddl", "alerts_ddl", "history_ddl", "scores_ddl", "server_version", "views_ddl"]


COLUMNS = (
    "alert_id",
    "source",
    "rule_id",
    "rule_version",
    "severity",
    "status",
    "starts_at",
    "detected_at",
    "ends_at",
    "labels",
    "label_keys",
    "label_values",
    "summary",
    "evidence",
    "version",
)


SCORE_COLUMNS = ("rule_id", "source", "subject", "at", "score", "observed", "expected")
HISTORY_COLUMNS = ("alert_id", "rule_id", "source", "severity", "status", "region", "starts_at", "at", "detected_at", "sent", "held_reason")


#: What a person may record against an alert.
ACTIONS = ("ack", "assign", "note")


def server_version(client: Any) -> tuple[int, ...]:
    text = client.execute("SELECT version()")[0][0]
    return tuple(int(p) for p in text.split(".")[:3] if p.isdigit())


#: The first ClickHouse release with table TTLs.
TTL_SINCE = (19, 6)


def _ttl(column: str, days: int, version: tuple[int, ...]) -> str:
    """``TTL column + INTERVAL days DAY`` where the server has table TTLs and a retention is set; else nothing.

    >>> _ttl("starts_at", 730, (24, 8)), _ttl("starts_at", 730, (18, 16)), _ttl("at", 0, (24, 8))
    ('TTL starts_at + INTERVAL 730 DAY', '', '')
    """
    return f"TTL {column} + INTERVAL {int(days)} DAY" if days > 0 and version >= TTL_SINCE else ""


def _low_cardinality(version: tuple[int, ...]) -> str:
    """``LowCardinality(String)`` where the server has it without an experimental flag, else ``String``."""
    return "LowCardinality(String)" if version >= (19, 9) else "String"


def alerts_ddl(database: str, version: tuple[int, ...], retention_days: int = 0) -> str:
    """``CREATE TABLE`` for the alerts table, for a server of ``version``."""
    lc = _low_cardinality(version)
    return f"""
CREATE TABLE IF NOT EXISTS {database}.alerts
(
    alert_id String,
    source {lc},
    rule_id {lc},
    rule_version String,
    severity {lc},
    status {lc},
    starts_at DateTime('UTC'),
    detected_at DateTime('UTC'),
    ends_at Nullable(DateTime('UTC')),
    labels String,
    label_keys Array(String),
    label_values Array(String),
    summary String,
    evidence String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(starts_at)
ORDER BY alert_id
{_ttl("starts_at", retention_days, version)}
"""


def scores_ddl(database: str, version: tuple[int, ...], retention_days: int = 0) -> str:
    """``CREATE TABLE`` for the detectors' scores (a trend per rule and subject; replays collapse after ``FINAL``)."""
    lc = _low_cardinality(version)
    return f"""
CREATE TABLE IF NOT EXISTS {database}.detector_scores
(
    rule_id {lc},
    source {lc},
    subject String,
    at DateTime('UTC'),
    score Float64,
    observed Float64,
    expected Float64
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(at)
ORDER BY (rule_id, subject, at)
{_ttl("at", retention_days, version)}
"""


def history_ddl(database: str, version: tuple[int, ...], retention_days: int = 0) -> str:
    """``CREATE TABLE`` for the status history: one row per alert and status, with whether it was sent or why not.

    Partitioned by the alert's ``starts_at`` (the same for its firing and resolved rows), so a replay collapses.
    """
    lc = _low_cardinality(version)
    return f"""
CREATE TABLE IF NOT EXISTS {database}.alert_status_history
(
    alert_id String,
    rule_id {lc},
    source {lc},
    severity {lc},
    status {lc},
    region String,
    starts_at DateTime('UTC'),
    at DateTime('UTC'),
    detected_at DateTime('UTC'),
    sent UInt8,
    held_reason String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(starts_at)
ORDER BY (alert_id, status)
{_ttl("starts_at", retention_days, version)}
"""


def actions_ddl(database: str, version: tuple[int, ...], retention_days: int = 0) -> str:
    """``CREATE TABLE`` for what people did with alerts (``yujing alert ack | assign | note``): append-only, by alert."""
    lc = _low_cardinality(version)
    return f"""
CREATE TABLE IF NOT EXISTS {database}.alert_actions
(
    alert_id String,
    action {lc},
    actor String,
    assignee String,
    note String,
    at DateTime('UTC')
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(at)
ORDER BY (alert_id, at)
{_ttl("at", retention_days, version)}
"""


def views_ddl(database: str) -> list[str]:
    """Views the dashboards and reports read: the latest row per alert (``FINAL``) with its region pulled out."""
    region = "if(has(label_keys, 'region'), label_values[indexOf(label_keys, 'region')], '')"
    return [
        f"""CREATE VIEW IF NOT EXISTS {database}.alerts_latest AS
SELECT alert_id, source, rule_id, rule_version, severity, status, starts_at, detected_at, ends_at,
       labels, label_keys, label_values, summary, evidence, {region} AS region
FROM {database}.alerts FINAL""",
        f"""CREATE VIEW IF NOT EXISTS {database}.alert_history_latest AS
SELECT alert_id, rule_id, source, severity, status, region, starts_at, at, detected_at, sent, held_reason
FROM {database}.alert_status_history FINAL""",
        # The open work list: alerts still firing, with who acknowledged and who owns each (the latest action wins).
        f"""CREATE VIEW IF NOT EXISTS {database}.alerts_open AS
SELECT alert_id, source, rule_id, severity, starts_at, region, summary,
       acked_by, acked_at, assignee, acked_by != '' AS acked
FROM
(
    SELECT alert_id, source, rule_id, severity, starts_at, {region} AS region, summary
    FROM {database}.alerts FINAL
    WHERE status = 'firing'
)
ANY LEFT JOIN
(
    SELECT alert_id,
           argMaxIf(actor, at, action = 'ack') AS acked_by,
           maxIf(at, action = 'ack') AS acked_at,
           argMaxIf(assignee, at, action = 'assign') AS assignee
    FROM {database}.alert_actions
    GROUP BY alert_id
) USING alert_id""",
    ]


def history_row(alert: Alert, held: str | None) -> tuple[Any, ...]:
    at = alert.ends_at if alert.status == "resolved" and alert.ends_at is not None else alert.starts_at
    return (
        alert.alert_id,
        alert.rule_id,
        alert.source,
        alert.severity,
        alert.status,
        alert.labels.get("region", ""),
        _naive_utc(alert.starts_at),
        _naive_utc(at),
        _naive_utc(alert.detected_at),
        0 if held else 1,
        held or "",
    )


def _naive_utc(value: Any) -> Any:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value is not None else None


def alert_row(alert: Alert) -> tuple[Any, ...]:
    detected_ms = int(alert.detected_at.timestamp() * 1000)
    keys = sorted(alert.labels)
    return (
        alert.alert_id,
        alert.source,
        alert.rule_id,
        alert.rule_version,
        alert.severity,
        alert.status,
        _naive_utc(alert.starts_at),
        _naive_utc(alert.detected_at),
        _naive_utc(alert.ends_at),
        json.dumps(alert.labels, ensure_ascii=False, sort_keys=True),
        keys,
        [alert.labels[k] for k in keys],
        alert.summary,
        json.dumps(alert.evidence, ensure_ascii=False, sort_keys=True),
        STATUS_RANK[alert.status] * 10**13 + detected_ms,
    )


class ClickHouseSink(RetryingSink):
    """Writes alerts to ``{database}.alerts``; creates the database and table on first use.

    >>> sink = ClickHouseSink("clickhouse://127.0.0.1:9000/yujing", connect=False)
    >>> sink.database
    'yujing'
    """

    name = "clickhouse"

    def __init__(
        self, url: str, *, connect: bool = True, alerts_retention_days: int = 730, scores_retention_days: int = 90, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.alerts_retention_days = alerts_retention_days
        self.scores_retention_days = scores_retention_days
        from urllib.parse import urlparse

        parsed = urlparse(url)
        self.url = url
        self.database = (parsed.path or "/yujing").strip("/") or "yujing"
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 9000
        self.user = parsed.username or "default"
        self.password = parsed.password or ""
        self._client: Any = None
        self._ready = False
        if connect:
            self.retry(self._ensure)

    def _connect(self) -> Any:
        from clickhouse_driver import Client

        return Client(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            connect_timeout=3,
            send_receive_timeout=30,
            settings={"use_client_time_zone": False},
        )

    def _ensure(self) -> None:
        if self._client is None:
            self._client = self._connect()
        if not self._ready:
            version = server_version(self._client)
            self._client.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}")
            self._client.execute(alerts_ddl(self.database, version, self.alerts_retention_days))
            self._client.execute(scores_ddl(self.database, version, self.scores_retention_days))
            self._client.execute(history_ddl(self.database, version, self.alerts_retention_days))
            self._client.execute(actions_ddl(self.database, version, self.alerts_retention_days))
            for view in views_ddl(self.database):
                self._client.execute(view)
            self._ready = True

    def record_action(self, alert_id: str, action: str, actor: str, assignee: str = "", note: str = "") -> None:
        """What a person did with an alert (``ack``, ``assign``, ``note``), appended to ``alert_actions``."""
        if action not in ACTIONS:
            raise ValueError(f"action {action!r}: one of {', '.join(ACTIONS)}")
        row = (alert_id, action, actor, assignee, note, dt.datetime.now(dt.UTC).replace(microsecond=0))
        self.retry(lambda: self.client().execute(f"INSERT INTO {self.database}.alert_actions VALUES", [row]))

    def client(self) -> Any:
        """The connected client, with the tables and views in place (retried like a write); for readers such as the report."""
        self.retry(self._ensure)
        return self._client

    def on_retry(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):  # already broken
                self._client.disconnect()
        self._client = None

    def write_chunk(self, alerts: Sequence[Alert]) -> None:
        self._ensure()
        self._client.execute(f"INSERT INTO {self.database}.alerts ({', '.join(COLUMNS)}) VALUES", [alert_row(a) for a in alerts])

    def write_decisions(self, decisions: Sequence[tuple[Alert, str | None]]) -> None:
        """Alerts and their status history (sent, or held back and why), each chunk retried until stored."""
        for start in range(0, len(decisions), self.max_batch):
            chunk = decisions[start : start + self.max_batch]
            self.retry(lambda chunk=chunk: self._insert_decisions(chunk))
            self.observer.batch(self.name, len(chunk))

    def _insert_decisions(self, decisions: Sequence[tuple[Alert, str | None]]) -> None:
        self._ensure()
        self._client.execute(f"INSERT INTO {self.database}.alerts ({', '.join(COLUMNS)}) VALUES", [alert_row(a) for a, _ in decisions])
        rows = [history_row(a, held) for a, held in decisions]
        self._client.execute(f"INSERT INTO {self.database}.alert_status_history ({', '.join(HISTORY_COLUMNS)}) VALUES", rows)

    def write_scores(self, scores: Sequence[Score]) -> None:
        """Detector scores into ``detector_scores``: one attempt (telemetry never holds up the stream)."""
        try:
            self._ensure()
            rows = [(s.rule_id, s.source, s.subject, _naive_utc(to_datetime(s.at)), s.score, s.observed, s.expected) for s in scores]
            self._client.execute(f"INSERT INTO {self.database}.detector_scores ({', '.join(SCORE_COLUMNS)}) VALUES", rows)
        except Exception:
            self.on_retry()  # reconnect next time
            raise

    def close(self) -> None:
        self.on_retry()
