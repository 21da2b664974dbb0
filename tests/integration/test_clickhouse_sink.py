"""The ClickHouse sink on a real server: tables created, idempotent under redelivery and replay."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from sinks.clickhouse import ClickHouseSink
from tests.integration.harness import ROOT, clickhouse_rows, final_state, small_sim
from tests.integration.servers import ClickHouseServer
from tests.unit.test_sinks import make_alert
from yujing.alerts import Alert

pytestmark = pytest.mark.integration


def test_redelivered_and_replayed_alerts_leave_one_row_each(clickhouse: ClickHouseServer) -> None:
    sink = ClickHouseSink(clickhouse.url.replace("/yujing", "/sinktest"))
    firing = make_alert()
    resolved = msgspec.structs.replace(make_alert("resolved"))
    sink.write([firing, firing])
    sink.write([resolved, firing])  # a late redelivery of the firing record
    client = clickhouse.client()
    assert client.execute("SELECT alert_id, status, ends_at IS NOT NULL FROM sinktest.alerts FINAL") == [(firing.alert_id, "resolved", 1)]
    assert client.execute("SELECT count() FROM sinktest.alerts")[0][0] == 4  # all stored; FINAL collapses them
    client.execute("OPTIMIZE TABLE sinktest.alerts FINAL")
    assert client.execute("SELECT count() FROM sinktest.alerts")[0][0] == 1
    sink.close()


def test_local_runner_writes_to_clickhouse_and_a_replay_changes_nothing(clickhouse: ClickHouseServer, tmp_path: Path) -> None:
    sim = small_sim(seed=31)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(line + b"\n" for line in sim.lines()))
    url = clickhouse.url.replace("/yujing", "/runtest")
    alerts = tmp_path / "alerts.jsonl"
    for _ in range(2):  # run, then replay the same history
        done = subprocess.run(
            [sys.executable, "-m", "streams.cli", "run", "--events", str(events), "--clickhouse", url, "--alerts", str(alerts)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert len(records) % 2 == 0 and records
    written = final_state(msgspec.convert(r, type=Alert) for r in records)
    assert clickhouse_rows(clickhouse.client(), "runtest") == written


def test_detector_scores_are_stored_once_per_rule_subject_and_time(clickhouse: ClickHouseServer) -> None:
    from yujing.scores import Score

    sink = ClickHouseSink(clickhouse.url.replace("/yujing", "/scoretest"))
    window = [Score("complaint-spike", "cohort_spike", f"region=r{i}", 1773640800.0, float(i), 10 + i, 2.5) for i in range(5)]
    later = [Score("complaint-spike", "cohort_spike", "region=r4", 1773641700.0, 9.5, 30, 3.0)]
    sink.write_scores(window)
    sink.write_scores([*window, *later])  # a replay of the first window, and the next one
    client = clickhouse.client()
    rows = client.execute("SELECT subject, toUnixTimestamp(at), score FROM scoretest.detector_scores FINAL ORDER BY subject, at")
    expected = [(f"region=r{i}", 1773640800, float(i)) for i in range(5)] + [("region=r4", 1773641700, 9.5)]
    assert rows == sorted(expected)
    # The trend a Grafana panel draws: one subject's score over time.
    trend = client.execute(
        "SELECT toStartOfHour(at) AS t, max(score) FROM scoretest.detector_scores FINAL WHERE subject = 'region=r4' GROUP BY t ORDER BY t"
    )
    assert [score for _, score in trend] == [9.5]
    sink.close()
