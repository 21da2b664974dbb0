"""Sinks: the alert contract in JSON Lines, retry with backoff, ClickHouse rows and DDL."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from sinks.base import RetryingSink, SinkGaveUp
from sinks.clickhouse import alert_row, alerts_ddl
from sinks.jsonl import JsonLinesSink
from streams.metrics import PipelineMetrics
from yujing.alerts import Alert, alert_id

ALERTS_CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contracts" / "alerts.md"


def contract_fields() -> set[str]:
    """The alert fields the risk team's contract lists (its table's first column)."""
    fields = set(re.findall(r"^\| `([a-z_]+)` \|", ALERTS_CONTRACT.read_text(encoding="utf-8"), re.MULTILINE))
    assert len(fields) >= 12, f"could not read the alert contract at {ALERTS_CONTRACT}"
    return fields


def make_alert(status: str = "firing") -> Alert:
    t = dt.datetime(2026, 3, 1, 1, 0, tzinfo=dt.UTC)
    return Alert(
        alert_id=alert_id("r", "k"),
        source="rule",
        rule_id="r",
        rule_version="v1",
        severity="major",
        status=status,
        starts_at=t,
        detected_at=t,
        ends_at=t if status == "resolved" else None,
        labels={"region": "台州"},
        summary="装机超时",
        evidence={"event_ids": ["e1"]},
    )


def test_jsonl_lines_carry_every_contract_field_with_rfc3339_times() -> None:
    buf = io.StringIO()
    JsonLinesSink(stream=buf).write([make_alert(), make_alert("resolved")])
    records = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert all(set(r) >= contract_fields() for r in records)
    assert records[0]["ends_at"] is None and records[0]["starts_at"] == "2026-03-01T01:00:00Z"
    assert records[1]["ends_at"] == "2026-03-01T01:00:00Z" and records[0]["summary"] == "装机超时"


class Flaky(RetryingSink):
    name = "flaky"

    def __init__(self, failures: int, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.failures = failures
        self.chunks: list[int] = []

    def write_chunk(self, alerts):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("down")
        self.chunks.append(len(alerts))


def test_retries_with_exponential_backoff_and_counts_failures() -> None:
    sleeps: list[float] = []
    registry = CollectorRegistry()
    sink = Flaky(3, max_batch=2, backoff=0.1, max_backoff=0.3, metrics=PipelineMetrics(registry), sleep=sleeps.append)
    sink.write([make_alert()] * 5)
    assert sleeps == [0.1, 0.2, 0.3] and sink.chunks == [2, 2, 1]
    assert registry.get_sample_value("yujing_sink_failures_total", {"sink": "flaky"}) == 3
    assert registry.get_sample_value("yujing_sink_written_total", {"sink": "flaky"}) == 5


def test_a_retry_limit_gives_up_loudly() -> None:
    with pytest.raises(SinkGaveUp):
        Flaky(5, max_retries=2, sleep=lambda s: None).write([make_alert()])


def test_clickhouse_row_versions_rank_resolved_above_firing() -> None:
    firing, resolved = alert_row(make_alert()), alert_row(make_alert("resolved"))
    assert resolved[-1] > firing[-1]
    assert firing[0] == resolved[0] and json.loads(firing[9]) == {"region": "台州"}
    assert firing[10] == ["region"] and firing[11] == ["台州"]


def test_ddl_uses_low_cardinality_only_where_the_server_has_it() -> None:
    assert "LowCardinality" not in alerts_ddl("y", (18, 16, 1))
    assert "LowCardinality" in alerts_ddl("y", (24, 3, 0))
    for forbidden in ("Map(", "DateTime64", " TTL "):
        assert forbidden not in alerts_ddl("y", (18, 16, 1))
    assert "PARTITION BY toYYYYMM(starts_at)" in alerts_ddl("y", (18, 16, 1))


def test_retention_ttls_only_where_the_server_has_table_ttls() -> None:
    from sinks.clickhouse import history_ddl, scores_ddl

    old, modern = (18, 16, 1), (24, 8, 0)
    for ddl in (alerts_ddl, history_ddl, scores_ddl):
        assert "TTL" not in ddl("y", old, 730)  # 18.16 has no table TTL: the DDL must still run there
        assert "TTL" not in ddl("y", modern, 0)  # 0: keep forever
    assert alerts_ddl("y", modern, 730).rstrip().endswith("TTL starts_at + INTERVAL 730 DAY")
    assert history_ddl("y", modern, 730).rstrip().endswith("TTL starts_at + INTERVAL 730 DAY")
    assert scores_ddl("y", modern, 90).rstrip().endswith("TTL at + INTERVAL 90 DAY")
