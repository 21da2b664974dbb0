"""Events published to a real broker → the faust worker → alert rows in ClickHouse, counted by a real Prometheus."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.harness import (
    ROOT,
    Worker,
    backtest,
    cli_backtest,
    clickhouse_rows,
    commit_ahead,
    comparable,
    consumption_report,
    create_topics,
    diagnose,
    explain_missing,
    final_state,
    publish,
    read_alerts,
    read_changelog,
    settle,
    sim_records,
    small_sim,
)
from tests.integration.servers import AlertmanagerServer, ClickHouseServer, PrometheusServer, TansuBroker, wait_for

pytestmark = pytest.mark.integration


def probe(port: int, path: str) -> tuple[int, str]:
    """Status and first line of an HTTP GET on the worker's metrics port."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode().strip()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode().strip()


def test_worker_turns_published_events_into_clickhouse_rows_and_prometheus_counts(
    workdir: Path, broker: TansuBroker, clickhouse: ClickHouseServer
) -> None:
    sim = small_sim()
    expected_alerts = cli_backtest(sim, workdir)  # `yujing backtest` as a rule author runs it
    expected = final_state(expected_alerts)
    kinds = {a.rule_id for a in expected_alerts}
    assert kinds >= {"install-sla", "redline-complaint", "first-bill-above-promise", "repeat-complaint", "third-complaint-24h"}, kinds
    create_topics(broker.bootstrap, prefix="e2e-")
    publish(broker.bootstrap, sim_records(sim, prefix="e2e-"))
    worker_jsonl = workdir / "e2e-worker-alerts.jsonl"
    alertmanager = AlertmanagerServer(workdir)
    alertmanager.start()
    # One place to silence: the silence is made in Alertmanager (`yujing silence add` talks to it when it is configured);
    # the worker follows Alertmanager's silences and records what they held, under Alertmanager's silence id.
    env = {**os.environ, "YUJING_ALERTMANAGER_URL": alertmanager.url}
    added = subprocess.run(
        [sys.executable, "-m", "streams.cli", "silence", "add", "region=杭州", "--for", "1h", "-c", "the worker follows Alertmanager"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0 and "in Alertmanager" in added.stdout, added.stdout + added.stderr
    (am_silence,) = [s["id"] for s in alertmanager.silences() if s["status"]["state"] == "active"]
    worker = Worker(
        workdir,
        broker.bootstrap,
        app_id="yujing-e2e",
        clickhouse_url=clickhouse.url.replace("/yujing", "/e2e"),
        prefix="e2e-",
        YUJING_OUTPUT_ALERTS=str(worker_jsonl),
        YUJING_ALERTMANAGER_URL=alertmanager.url,
        YUJING_KAFKA_ALERTS_TOPIC="e2e-alerts",
    )
    worker.start()
    prometheus = PrometheusServer(workdir, [f"127.0.0.1:{worker.metrics_port}"])
    prometheus.start()
    try:
        client = clickhouse.client()
        rows = settle(lambda: clickhouse_rows(client, "e2e"), expected, 180, "alerts in ClickHouse")
        assert rows == expected, f"worker log:\n{worker.tail()}"
        # Backtest and worker: the identical alert set, field by field (redeliveries may repeat a line).
        assert comparable(read_alerts(worker_jsonl)) == comparable(expected_alerts)
        assert worker.sum("yujing_events_total", outcome="accepted") == len(sim.events)
        emitted = len(expected_alerts)

        def prometheus_count() -> float:
            result = prometheus.query("sum(yujing_alerts_total)")
            return float(result[0]["value"][1]) if result else -1.0

        assert wait_for(lambda: prometheus_count() == emitted, 60, "Prometheus to scrape the alert counter")
        by_rule = {
            r["metric"]["rule_id"]: float(r["value"][1])
            for r in prometheus.query('sum by (rule_id) (yujing_alerts_total{status="firing"})')
        }
        assert by_rule["redline-complaint"] == Counter(a.rule_id for a in expected_alerts if a.status == "firing")["redline-complaint"]
        # kill -USR1 shows what the worker waits on (the tests print it when a worker stalls): the batch loop in faust's fetcher
        stacks = worker.task_stacks()
        assert "--- end of asyncio tasks ---" in stacks and "in _drain_in_batches" in stacks, stacks
        # …and its consumer's flow and partitions: a healthy worker's flow runs, every input partition is fetched.
        assert "consumer: flow_active=True suspend_flow=False" in stacks and "e2e-orders[0]: active=True routed=1" in stacks, stacks
        assert worker.alive()
        # Probes: live and ready (rules loaded, state recovered, no rebalance), and a mistyped path is not the metrics page.
        assert probe(worker.metrics_port, "/healthz") == (200, "live")
        assert probe(worker.metrics_port, "/readyz") == (200, "ready")
        assert probe(worker.metrics_port, "/health")[0] == 404
        # The worker's alert manager and notifying sinks: the silence held 杭州's alerts back; the rest reached the
        # alerts topic once each and Alertmanager holds the ones still firing.
        expected_keys = {(a.alert_id, a.status) for a in expected_alerts}
        wait_for(
            lambda: len(client.execute("SELECT alert_id, status FROM e2e.alert_status_history FINAL")) == len(expected_keys),
            60,
            "the status history",
        )
        history = client.execute("SELECT alert_id, status, sent, held_reason, region FROM e2e.alert_status_history FINAL")
        assert {(aid, st) for aid, st, *_ in history} == expected_keys
        held = [(reason, region) for _, _, sent, reason, region in history if not sent]
        assert held and any(r == f"silenced:{am_silence}" and region == "杭州" for r, region in held)
        assert not [1 for _, _, sent, _, region in history if sent and region == "杭州"]
        sent_keys = {(aid, st) for aid, st, sent, _, _ in history if sent}
        topic = settle(lambda: sorted(_topic_keys(broker.bootstrap, "e2e-alerts")), sorted(sent_keys), 60, "the alerts topic")
        assert len(topic) == len(set(topic)) and set(topic) == sent_keys
        firing = {aid for aid, st in sent_keys if st == "firing"} - {aid for aid, st in sent_keys if st == "resolved"}
        wait_for(lambda: {a["labels"]["alert_id"] for a in alertmanager.alerts()} == firing, 60, "Alertmanager's firing alerts")
        # detector and ratio scores reach ClickHouse through the buffered sink's thread too
        wait_for(lambda: client.execute("SELECT count() FROM e2e.detector_scores")[0][0] > 0, 60, "scores in ClickHouse")
        assert worker.alive()
    finally:
        prometheus.stop()
        worker.stop()
        alertmanager.stop()


def _topic_keys(bootstrap: str, topic: str) -> list[tuple[str, str]]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None, consumer_timeout_ms=3000)
    try:
        return [(m.key.decode(), dict(m.headers)["status"].decode()) for m in consumer]
    finally:
        consumer.close()


# Was quarantined (failed about 1 run in 5): after the restart, faust stopped delivering the tail of some
# partitions (a rebalance race; see streams/stuck.py). On failure this test now prints where each missing
# alert's watch, timer and partition clock stood and each partition's committed offset against its records.
# Both stores: memory (state back from the changelog) and rocksdb, production's (state from the local disk,
# the changelog read only from where the disk's recorded offset ends).
@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_restarted_worker_resumes_without_duplicate_or_missing_alerts(
    workdir: Path, broker: TansuBroker, clickhouse: ClickHouseServer, store: str
) -> None:
    """Stop mid-stream, restart: state comes back from the changelog (memory) or the local store (rocksdb)."""
    tag = "mem" if store.startswith("memory") else "rdb"
    sim = small_sim(seed=12)
    expected_alerts = backtest(sim)
    expected = final_state(expected_alerts)
    create_topics(broker.bootstrap, prefix=f"rs{tag}-")
    records = sim_records(sim, prefix=f"rs{tag}-")
    half = len(records) // 2
    publish(broker.bootstrap, records[:half])
    url = clickhouse.url.replace("/yujing", f"/restart{tag}")
    env = {"YUJING_KAFKA_STORE": store, "YUJING_KAFKA_DATA_DIR": str(workdir / f"state-{tag}")}
    first = Worker(workdir, broker.bootstrap, app_id=f"yujing-restart-{tag}", clickhouse_url=url, prefix=f"rs{tag}-", **env)
    first.start()
    try:
        wait_for(lambda: first.sum("yujing_events_total") >= half, 120, "the first half to be processed")
        publish(broker.bootstrap, records[half : half + len(records) // 4])
        wait_for(lambda: first.sum("yujing_events_total") > half, 60, "the worker to be mid-stream")
    finally:
        first.stop(signal.SIGTERM)
    assert not first.alive()
    client = clickhouse.client()
    before_restart = set(clickhouse_rows(client, f"restart{tag}"))
    seen_before_stop = {e["event_id"] for e in sim.events[: half + len(records) // 4]}
    # SLA breaches still to come whose watch opened before the stop: only recovered state can raise them.
    needs_recovered_state = {
        (a.alert_id, a.status)
        for a in expected_alerts
        if a.rule_id.endswith("sla") and a.evidence["event_ids"][0] in seen_before_stop and (a.alert_id, a.status) not in before_restart
    }
    assert needs_recovered_state, "the test must stop the worker before some breaches fire"
    publish(broker.bootstrap, records[half + len(records) // 4 :])
    # A commit that ran ahead of the state (acknowledged, never stored): the worker must read those again.
    source_topics = [f"rs{tag}-{t}" for t in ("orders", "billing", "complaints")]
    moved = commit_ahead(broker.bootstrap, f"yujing-restart-{tag}", source_topics, by=7)
    assert len(moved) >= 6, moved
    second = Worker(workdir, broker.bootstrap, app_id=f"yujing-restart-{tag}", clickhouse_url=url, prefix=f"rs{tag}-", **env)
    second.start()
    try:
        rows = settle(lambda: clickhouse_rows(client, f"restart{tag}"), expected, 180, "alerts after restart")
        if rows != expected:
            state = diagnose(second)
            if second.alive():  # the worker's asyncio tasks and its consumer's state (streams/taskdump.py), to its log
                os.kill(second.proc.pid, signal.SIGUSR1)
                time.sleep(2)
            second.stop()  # the changelog only ends once nothing writes clocks to it
            changelog = read_changelog(broker.bootstrap, f"yujing-restart-{tag}-state-changelog")
            missing = set(expected) - set(rows)
            extra = set(rows) - set(expected)
            why = explain_missing(missing, expected_alerts, sim, changelog)
            why += "\n" + consumption_report(broker.bootstrap, f"yujing-restart-{tag}", source_topics)
            logs = f"first worker log:\n{first.tail(120)}\nsecond worker ({state}) log:\n{second.tail(600)}"
            raise AssertionError(f"missing {len(missing)}, extra {sorted(extra)}\ncommitted ahead: {moved}\n{why}\n{logs}")
        raw = client.execute(f"SELECT count(), uniqExact(alert_id, status) FROM restart{tag}.alerts")[0]
        assert raw[0] >= raw[1]  # duplicates may exist before merges; FINAL shows one row per alert
        assert second.sum("yujing_events_total") < len(records)  # it resumed from its stored positions, not from the start
        assert second.sum("yujing_input_seeks_total") >= len(moved)  # each partition committed ahead was sought back
        assert second.sum("yujing_input_gaps_total") == 0  # the probe found the skipped records: none taken for empty
    finally:
        second.stop()
