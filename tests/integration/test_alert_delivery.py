"""Alerts reach every sink exactly once: Alertmanager 0.25, ClickHouse, the broker's ``alerts`` topic and a
webhook, all real processes, under redelivery and replay, and through a ClickHouse and an Alertmanager outage."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry

from rules import load_rules
from sinks.alertmanager import AlertmanagerSink
from sinks.clickhouse import ClickHouseSink
from sinks.kafka_alerts import KafkaAlertSink
from sinks.outbox import BufferedSink
from sinks.webhook import WebhookSink
from streams.alerting import AlertManager, load_policy
from streams.alerting.silences import new_silence
from streams.config import default_rules_dir
from streams.decode import Decoder
from streams.engine import DictBackend, Engine, EngineConfig
from streams.local import LocalRunner
from streams.metrics import PipelineMetrics
from streams.pipeline import Pipeline
from tests.integration.harness import PARTITIONS, TOPICS, DecisionLog, final_state, small_sim
from tests.integration.receiver import Receiver
from tests.integration.servers import AlertmanagerServer, ClickHouseServer, TansuBroker, wait_for
from yujing.alerts import Alert


def _alert(aid: str, status: str = "firing", **labels: str) -> Alert:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return Alert(
        alert_id=aid,
        source="rule",
        rule_id="install-sla",
        rule_version="v1",
        severity="major",
        status=status,  # type: ignore[arg-type]
        starts_at=now - dt.timedelta(minutes=10),
        detected_at=now,
        ends_at=now - dt.timedelta(minutes=1) if status == "resolved" else None,
        labels={"region": "杭州", **labels},
        summary="装机超过承诺时间",
        evidence={"event_ids": ["e1"], "observed": 3},
    )


def test_alertmanager_gets_labels_annotations_resends_and_the_resolve(tmp_path: Path) -> None:
    with Receiver() as hook:
        am = AlertmanagerServer(tmp_path, webhook_url=hook.url)
        am.start()
        try:
            sink = AlertmanagerSink(
                am.url, resend_interval=0, evidence_url="https://grafana.example/d/yujing-alerts?var-alert_id={alert_id}"
            )
            sink.write([_alert("a1", order_id="o1"), _alert("a2", order_id="o2")])
            (first,) = [a for a in am.alerts() if a["labels"]["alert_id"] == "a1"]
            assert first["labels"] == {
                "alertname": "install-sla",
                "alert_id": "a1",
                "source": "rule",
                "severity": "major",
                "region": "杭州",
                "order_id": "o1",
            }
            assert first["annotations"]["summary"] == "装机超过承诺时间"
            assert first["annotations"]["evidence_url"].endswith("var-alert_id=a1")
            assert msgspec.json.decode(first["annotations"]["evidence"]) == {"event_ids": ["e1"], "observed": 3}
            assert first["status"]["state"] == "active"
            updated = first["updatedAt"]
            time.sleep(1.1)
            assert sink.resend() == 2  # while firing, each round posts them again
            (again,) = [a for a in am.alerts() if a["labels"]["alert_id"] == "a1"]
            assert again["updatedAt"] > updated
            sink.write([_alert("a2", "resolved", order_id="o2")])
            assert {a["labels"]["alert_id"] for a in am.alerts()} == {"a1"}
            assert sink.resend() == 1  # a resolved alert is not re-sent
            # Alertmanager itself notified the resolve to its receiver
            wait_for(
                lambda: any(
                    a["status"] == "resolved" and a["labels"]["alert_id"] == "a2" for body in hook.bodies for a in body.get("alerts", [])
                ),
                30,
                "Alertmanager to notify the resolve",
            )
        finally:
            am.stop()


def _consume(bootstrap: str, topic: str) -> list[Any]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None, consumer_timeout_ms=4000)
    try:
        return list(consumer)
    finally:
        consumer.close()


def _engine(backend: DictBackend) -> Engine:
    config = EngineConfig(allowed_lateness=300.0, idle_after=None, partitions=PARTITIONS)
    manager = AlertManager(load_policy(default_rules_dir()), backend, config.dedup_retention, config.partitions)
    return Engine(load_rules(default_rules_dir()).rules, backend, config, alerting=manager)


def _sinks(clickhouse_url: str, bootstrap: str, topic: str, am_url: str, hook_url: str, metrics: PipelineMetrics, **am: Any) -> list[Any]:
    return [
        BufferedSink(ClickHouseSink(clickhouse_url, connect=False, metrics=metrics, max_backoff=2.0), metrics=metrics),
        BufferedSink(KafkaAlertSink(bootstrap, topic, connect=False, metrics=metrics), metrics=metrics),
        BufferedSink(AlertmanagerSink(am_url, metrics=metrics, max_backoff=2.0, **am), metrics=metrics),
        BufferedSink(WebhookSink(hook_url, metrics=metrics), metrics=metrics, linger=0.5),
    ]


def _check_sinks(
    records: list[Alert], sent: list[Alert], client: Any, database: str, bootstrap: str, topic: str, am: AlertmanagerServer, hook: Receiver
) -> None:
    rows = sorted(client.execute(f"SELECT alert_id, status FROM {database}.alerts FINAL"))
    assert rows == final_state(records)
    history = client.execute(f"SELECT alert_id, status, sent, held_reason FROM {database}.alert_status_history FINAL")
    assert len(history) == len({(a.alert_id, a.status) for a in records})
    sent_keys = {(a.alert_id, a.status) for a in sent}
    assert {(aid, st) for aid, st, was_sent, _ in history if was_sent} == sent_keys
    assert all(reason for _, _, was_sent, reason in history if not was_sent)
    messages = _consume(bootstrap, topic)
    keys = [(m.key.decode(), dict(m.headers)["status"].decode()) for m in messages]
    assert len(keys) == len(set(keys)) and set(keys) == sent_keys  # once each, only the sent ones
    for m in messages:
        assert msgspec.json.decode(m.value, type=Alert).alert_id == m.key.decode()  # the contract's record
    firing = {aid for aid, st in sent_keys if st == "firing"} - {aid for aid, st in sent_keys if st == "resolved"}
    wait_for(lambda: {a["labels"]["alert_id"] for a in am.alerts()} == firing, 60, "Alertmanager to hold the firing alerts")
    groups = [body for body in hook.bodies if "group_id" in body]
    assert len({g["group_id"] for g in groups}) == len(groups)
    assert sum(g["count"] for g in groups) == len(sent)


def test_every_sink_gets_each_alert_once_under_redelivery_and_replay(
    tmp_path: Path, broker: TansuBroker, clickhouse: ClickHouseServer
) -> None:
    sim = small_sim(seed=21)
    lines = list(sim.lines())
    topic = f"alerts-{uuid.uuid4().hex[:6]}"
    database = f"delivery_{uuid.uuid4().hex[:6]}"
    url = clickhouse.url.replace("/yujing", f"/{database}")
    with Receiver() as hook:
        am = AlertmanagerServer(tmp_path)
        am.start()
        try:
            metrics = PipelineMetrics(CollectorRegistry())
            backend = DictBackend()
            log = DecisionLog()
            sinks = _sinks(url, broker.bootstrap, topic, am.url, hook.url, metrics, resend_interval=0)
            pipeline = Pipeline(_engine(backend), Decoder(TOPICS), [*sinks, log], metrics, partitions=PARTITIONS)
            now = time.time()
            pipeline.engine.alerting.set_silences({"s": new_silence(["region=杭州"], starts_at=now - 60, ends_at=now + 3600)})
            runner = LocalRunner(pipeline, None)
            cut = 2 * len(lines) // 3
            runner.run(lines[:cut], close=False)
            runner.run(lines[cut - 300 : cut], close=False)  # the last 300 events delivered again
            assert pipeline.drain(120)
            pipeline.commit()
            # a restarted runner over its recovered state reads again from a position before its last commit
            replay = Pipeline(_engine(backend), Decoder(TOPICS), [*sinks, log], metrics, partitions=PARTITIONS)
            replay.engine.recover()
            replay.recover()
            LocalRunner(replay, None).run(lines[cut - 600 :], close=True)
            assert replay.drain(120)
            replay.commit()
            records, sent = log.records, log.sent
            assert len(records) == len({(a.alert_id, a.status) for a in records}) >= 10, len(records)
            assert 0 < len(sent) < len(records), "the silence holds some alerts back"
            _check_sinks(records, sent, clickhouse.client(), database, broker.bootstrap, topic, am, hook)
            written = {s.name: metrics.registry.get_sample_value("yujing_sink_written_total", {"sink": s.name}) for s in sinks}
            assert written == {"clickhouse": len(records), "kafka": len(sent), "alertmanager": len(sent), "webhook": len(sent)}
            for s in sinks:
                s.close()
        finally:
            am.stop()


def test_clickhouse_down_60s_and_alertmanager_30s_lose_nothing_and_never_stop_the_stream(tmp_path: Path) -> None:
    """A paced run of ~75 s: ClickHouse is stopped from 5 s to 65 s, Alertmanager from 20 s to 50 s, inside
    ClickHouse's outage: both sinks down at once, and 35 s less of the suite than one outage after the other."""
    ch = ClickHouseServer(tmp_path)
    ch.start()
    am = AlertmanagerServer(tmp_path)
    am.start()
    try:
        metrics = PipelineMetrics(CollectorRegistry())
        log = DecisionLog()
        sinks = [
            BufferedSink(ClickHouseSink(ch.url, connect=False, metrics=metrics, max_backoff=2.0), metrics=metrics),
            BufferedSink(AlertmanagerSink(am.url, metrics=metrics, max_backoff=2.0, resend_interval=2.0), metrics=metrics),
        ]
        pipeline = Pipeline(_engine(DictBackend()), Decoder(TOPICS), [*sinks, log], metrics, partitions=PARTITIONS)
        runner = LocalRunner(pipeline, None)
        lines = list(small_sim(seed=22).lines())
        seconds = 75
        per_second = len(lines) // seconds + 1
        outage = {5: ("stop", ch), 20: ("stop", am), 50: ("start", am), 65: ("start", ch)}
        steps: list[tuple[float, float, int]] = []  # (run time, step duration, alerts so far)
        started = time.monotonic()
        for second in range(seconds + 1):
            if second in outage:
                action, server = outage[second]
                server.stop() if action == "stop" else server.start()
            chunk = lines[second * per_second : (second + 1) * per_second]
            t0 = time.monotonic()
            runner.run(chunk, close=second == seconds)
            steps.append((t0 - started, time.monotonic() - t0, len(log.decisions)))
            time.sleep(max(0.0, started + second + 1 - time.monotonic()))
        during_ch = [s for s in steps if 6 <= s[0] <= 63]
        during_am = [s for s in steps if 21 <= s[0] <= 48]
        # the stream went on: no step waited for a dead sink, and alerts kept being raised during both outages
        assert max(d for _, d, _ in steps) < 2.0, max(steps, key=lambda s: s[1])
        assert during_ch[-1][2] > during_ch[0][2] and during_am[-1][2] > during_am[0][2]
        assert metrics.registry.get_sample_value("yujing_sink_failures_total", {"sink": "clickhouse"}) >= 1
        assert metrics.registry.get_sample_value("yujing_sink_failures_total", {"sink": "alertmanager"}) >= 1
        assert pipeline.drain(120)
        records, sent = log.records, log.sent
        client = ch.client()
        assert sorted(client.execute(f"SELECT alert_id, status FROM {ch_database(ch)}.alerts FINAL")) == final_state(records)
        history = client.execute(f"SELECT count(), uniqExact(alert_id, status) FROM {ch_database(ch)}.alert_status_history FINAL")[0]
        assert history == (len(records), len(records))  # every record once, none twice
        sent_keys = {(a.alert_id, a.status) for a in sent}
        firing = {aid for aid, st in sent_keys if st == "firing"} - {aid for aid, st in sent_keys if st == "resolved"}
        # Alertmanager lost its alerts when it stopped: the re-sends of the firing ones restore them
        held = lambda: {a["labels"]["alert_id"] for a in am.alerts()}
        wait_for(
            lambda: held() == firing,
            60,
            lambda: (
                f"Alertmanager to hold every firing alert again: missing {sorted(firing - held())[:10]} of {len(firing)}, "
                f"extra {sorted(held() - firing)[:10]}"
            ),
        )
        written = metrics.registry.get_sample_value("yujing_sink_written_total", {"sink": "alertmanager"})
        assert written == len(sent)  # each sent alert posted once (re-sends are not writes)
        for s in sinks:
            s.close()
    finally:
        am.stop()
        ch.stop()


def ch_database(server: ClickHouseServer) -> str:
    return server.url.rsplit("/", 1)[1]
