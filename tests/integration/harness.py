"""Running the real worker against the real servers, and what the tests compare it with."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from rules import load_rules
from streams.config import default_rules_dir
from streams.decode import Decoder
from streams.engine import DictBackend, Engine, EngineConfig
from streams.local import LocalRunner
from streams.pipeline import Pipeline
from streams.simulator import SimConfig, Simulation, simulate
from streams.taskdump import DUMP_END, DUMP_START
from tests.integration.servers import Process, free_port, wait_for
from yujing.alerts import Alert
from yujing.events import event_kind

ROOT = Path(__file__).resolve().parents[2]
TOPICS = {"orders": "orders", "billing": "billing", "complaints": "complaints"}
PARTITIONS = 8
SMALL_SIM = SimConfig(seed=11, customers=600, orders_per_day=300, complaints_per_day=200, bills_per_day=60, history_days=3, days=1)


def small_sim(seed: int = 11) -> Simulation:
    return simulate(SimConfig(**{**SMALL_SIM.__dict__, "seed": seed}))


class Worker(Process):
    """``yujing worker`` as a child process, configured through the environment."""

    def __init__(self, workdir: Path, bootstrap: str, *, app_id: str, clickhouse_url: str = "", prefix: str = "", **env: str) -> None:
        self.metrics_port = free_port()
        environment = {
            **os.environ,
            "YUJING_KAFKA_BOOTSTRAP": bootstrap,
            "YUJING_KAFKA_APP_ID": app_id,
            "YUJING_KAFKA_PARTITIONS": str(PARTITIONS),
            "YUJING_KAFKA_TOPIC_ORDERS": prefix + "orders",
            "YUJING_KAFKA_TOPIC_BILLING": prefix + "billing",
            "YUJING_KAFKA_TOPIC_COMPLAINTS": prefix + "complaints",
            "YUJING_KAFKA_SESSION_TIMEOUT": "6",
            "YUJING_KAFKA_TICK_INTERVAL": "1",
            "YUJING_CLICKHOUSE_URL": clickhouse_url,
            "YUJING_METRICS_PORT": str(self.metrics_port),
            "YUJING_METRICS_HOST": "127.0.0.1",
            "YUJING_ENGINE_IDLE_AFTER": "1h",  # no wall-clock advance while a test compares with a backtest
            # faust's default data directory is relative to the working directory: the checkout
            "YUJING_KAFKA_DATA_DIR": str(workdir / f"data-{app_id}"),
            **env,
        }
        log = workdir / f"worker-{app_id}-{uuid.uuid4().hex[:6]}.log"
        super().__init__(
            [sys.executable, "-m", "streams.cli", "worker", "--loglevel", os.environ.get("YUJING_TEST_WORKER_LOGLEVEL", "warn")],
            log,
            env=environment,
            cwd=ROOT,
        )

    def start(self) -> None:
        super().start()
        wait_for(lambda: self.alive() and self.metrics(), 60, lambda: f"worker metrics endpoint\n{self.tail()}")

    def ready(self) -> bool:
        """Whether the worker answers /readyz with 200 (rules loaded, state recovered, no rebalance)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/readyz", timeout=3) as answer:
                return answer.status == 200
        except Exception:
            return False

    def task_stacks(self, wait: float = 5.0) -> str:
        """What the worker is waiting on: its asyncio tasks' stacks (SIGUSR1, :mod:`streams.taskdump`), from its log."""
        if not self.alive() or self.proc is None:
            return "(the worker is not running)"
        os.kill(self.proc.pid, signal.SIGUSR1)
        deadline = time.monotonic() + wait
        text = ""
        while time.monotonic() < deadline:  # the dump reaches the log line by line
            time.sleep(0.2)
            text = self.log_path.read_text(errors="replace")
            if DUMP_END in text[text.rfind(DUMP_START) :]:
                break
        start = text.rfind(DUMP_START)
        return text[start:] if start >= 0 else "(no task dump in the log)"

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=3) as resp:
            text = resp.read().decode()
        return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}

    def sum(self, name: str, **labels: str) -> float:
        return sum(v for (n, lbl), v in self.metrics().items() if n == name and all(dict(lbl).get(k) == x for k, x in labels.items()))


#: A cohort rule that fires often on the small simulation: each region's and product's complaints per hour (its
#: records travel between workers over the cohort topic).
REGION_HOUR = """\
id: region-hour
type: threshold
title: 地区产品一小时投诉
severity: minor
on: complaint.opened
group_by: [region, product]
window: 1h
mode: tumbling
timezone: "+08:00"
count: 2
summary: "{region}{product} {window} 内投诉 {count} 件"
"""


def rules_with_cohort_rule(workdir: Path) -> Path:
    """The default pack and :data:`REGION_HOUR`, in a directory of their own."""
    target = workdir / "scale-rules"
    shutil.copytree(default_rules_dir(), target, dirs_exist_ok=True)
    (target / "region-hour.yaml").write_text(REGION_HOUR, encoding="utf-8")
    return target


def malformed(rng: random.Random, good: dict[str, Any], i: int) -> tuple[str, bytes | None, bytes, str]:
    """One bad message (topic kind, key, value, expected reason category) built from a good event; ``i`` chooses the
    defect (ten kinds in turn)."""
    topic = event_kind(good["event_type"]) or "orders"
    key = good["customer_id"].encode()
    kind = i % 10
    bad = dict(good, event_id=f"bad-{i}")
    if kind == 0:
        return topic, key, b"this is not json " + str(i).encode(), "invalid_json"
    if kind == 1:
        return topic, key, json.dumps(bad).encode()[:-7], "invalid_json"
    if kind == 2:
        return topic, key, b'{"event_id": "\xff\xfe' + str(i).encode() + b'"}', "invalid_utf8"
    if kind == 3:
        bad["ts"] = 1700000000
        return topic, key, json.dumps(bad).encode(), "wrong_type"
    if kind == 4:
        bad.pop("customer_id")
        return topic, None, json.dumps(bad).encode(), "missing_field"
    if kind == 5:
        bad["event_type"] = rng.choice(["order.teleported", "refund.denied", "complaint.deleted"])
        return topic, key, json.dumps(bad).encode(), "unknown_event_type"
    if kind == 6:
        return (
            "complaints",
            key,
            json.dumps(
                {**bad, "event_type": "complaint.opened", "complaint_id": f"x{i}", "text": "断网" * 175_000}, ensure_ascii=False
            ).encode(),
            "too_long",
        )
    if kind == 7:
        return topic, key, json.dumps([bad]).encode(), "not_an_object"
    if kind == 8:
        bad["tier"] = "diamond"
        return topic, key, json.dumps(bad).encode(), "invalid_value"
    return topic, b"someone-else", json.dumps(bad).encode(), "key_mismatch"


def read_dead_letters(bootstrap: str, prefix: str, want: int) -> list[tuple[bytes, dict[str, str]]]:
    """The dead-letter topics' messages (original value, headers), stopping at ``want`` + 50 or when none come."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        *(f"{prefix}{t}.dlq" for t in TOPICS),
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        consumer_timeout_ms=5000,
        fetch_max_bytes=16 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    out = []
    for message in consumer:
        out.append((message.value, {k: v.decode() for k, v in message.headers}))
        if len(out) >= want + 50:
            break
    consumer.close()
    return out


def publish(bootstrap: str, records: Iterable[tuple[str, bytes | None, bytes]]) -> int:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=1, max_request_size=8 * 1024 * 1024)
    n = 0
    for topic, key, value in records:
        producer.send(topic, key=key, value=value)
        n += 1
    producer.flush()
    producer.close()
    return n


def sim_records(sim: Simulation, prefix: str = "", start: int = 0, stop: int | None = None) -> list[tuple[str, bytes, bytes]]:
    lines = list(sim.lines())[start:stop]
    events = sim.events[start:stop]
    return [(prefix + (event_kind(e["event_type"]) or ""), e["customer_id"].encode(), line) for e, line in zip(events, lines, strict=True)]


def create_topics(bootstrap: str, prefix: str = "") -> None:
    from streams.worker import ensure_topics

    names = [prefix + t for t in TOPICS]
    ensure_topics(bootstrap, names + [n + ".dlq" for n in names], PARTITIONS)


def backtest(sim: Simulation, lateness: float = 300.0, rules: Path | None = None) -> list[Alert]:
    """The local runner over the same events, stopping where the worker's watermark stops (no end-of-input flush);
    ``rules``: a rules directory (default: the default pack)."""
    from streams.backtest import Collect

    collect = Collect()
    config = EngineConfig(allowed_lateness=lateness, idle_after=None, partitions=PARTITIONS)
    engine = Engine(load_rules(rules or default_rules_dir()).rules, DictBackend(), config)
    LocalRunner(Pipeline(engine, Decoder(TOPICS), [collect], partitions=PARTITIONS), None).run(sim.lines(), close=False)
    return collect.alerts


class DecisionLog:
    """An in-test records sink: every admitted alert with whether the manager sent it."""

    name = "log"

    def __init__(self) -> None:
        self.decisions: list[tuple[Alert, str | None]] = []

    def write_decisions(self, decisions: list[tuple[Alert, str | None]]) -> None:
        self.decisions.extend(decisions)

    def write(self, alerts: list[Alert]) -> None:
        raise AssertionError("a records sink with write_decisions gets decisions")

    def close(self) -> None:
        pass

    @property
    def records(self) -> list[Alert]:
        return [a for a, _ in self.decisions]

    @property
    def sent(self) -> list[Alert]:
        return [a for a, held in self.decisions if held is None]


def backtest_decisions(sim: Simulation, rules: Path) -> tuple[list[tuple[Alert, str | None]], set[str]]:
    """The backtest (:func:`backtest`) with the rules directory's alert policy, as a worker runs it: each alert
    with why it was held (``None``: sent to the notifiers), and the ids of the alerts the alert manager has sent
    and still holds open at the end (a notifier keeps them alive)."""
    from streams.alerting import AlertManager, load_policy

    log = DecisionLog()
    config = EngineConfig(allowed_lateness=300.0, idle_after=None, partitions=PARTITIONS)
    backend = DictBackend()
    manager = AlertManager(load_policy(rules), backend, config.dedup_retention, config.partitions)
    engine = Engine(load_rules(rules).rules, backend, config, alerting=manager)
    LocalRunner(Pipeline(engine, Decoder(TOPICS), [log], partitions=PARTITIONS), None).run(sim.lines(), close=False)
    return log.decisions, {a.alert_id for a in manager.open_alerts()}


def sent_and_not_resolved(decisions: Iterable[tuple[Alert, str | None]]) -> set[str]:
    """The ids of the alerts sent firing whose resolve was not sent (a resolve after the manager forgot, after
    ``dedup_retention``, that it sent the alert is not sent either)."""
    sent = [a for a, held in decisions if held is None]
    return {a.alert_id for a in sent if a.status == "firing"} - {a.alert_id for a in sent if a.status == "resolved"}


def clickhouse_rows(client: Any, database: str) -> list[tuple[str, str]]:
    try:
        return sorted(client.execute(f"SELECT alert_id, status FROM {database}.alerts FINAL"))
    except Exception as exc:
        if "doesn't exist" in str(exc) or "UNKNOWN_TABLE" in str(exc) or "Unknown" in str(exc):
            return []
        raise


def final_state(alerts: Iterable[Alert]) -> list[tuple[str, str]]:
    """What ``FINAL`` shows: one row per alert id, resolved over firing."""
    status: dict[str, str] = {}
    for a in alerts:
        if status.get(a.alert_id) != "resolved":
            status[a.alert_id] = a.status
    return sorted(status.items())


def settle(read: Any, expected: Any, timeout: float, what: str) -> Any:
    """Wait until ``read()`` equals ``expected`` and stays so for 3 s."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = read()
        if value == expected:
            time.sleep(3)
            value = read()
            if value == expected:
                return value
        time.sleep(0.5)
    return value


def read_changelog(bootstrap: str, topic: str) -> dict[bytes, tuple[int, bytes | None]]:
    """The latest (partition, value) of every key in a state changelog (``None``: deleted)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None, consumer_timeout_ms=3000)
    latest: dict[bytes, tuple[int, bytes | None]] = {}
    for message in consumer:
        latest[message.key] = (message.partition, message.value)
    consumer.close()
    return latest


def explain_missing(
    missing: Iterable[tuple[str, str]], expected_alerts: Iterable[Alert], sim: Simulation, changelog: dict[bytes, tuple[int, bytes | None]]
) -> str:
    """Why alerts are missing, as far as the changelog tells: their watch, timer and partition clock."""
    import msgspec

    from streams.partitioning import partition_for

    by_id = {(a.alert_id, a.status): a for a in expected_alerts}
    customer_of = {e["event_id"]: e["customer_id"] for e in sim.events}
    lines = []
    for alert_key in sorted(missing):
        alert = by_id.get(alert_key)
        if alert is None:
            lines.append(f"{alert_key}: not expected at all")
            continue
        key = alert.evidence.get("key", "")
        customer = customer_of.get(alert.evidence["event_ids"][0], "")
        partition = partition_for(customer, PARTITIONS)
        watch = changelog.get(f"sla:{alert.rule_id}\x1f{key}".encode())  # its timer is in it (partition, due moments)
        clock = changelog.get(f"~watermarks\x1f{partition}".encode())
        decoded = msgspec.msgpack.decode(clock[1]) if clock and clock[1] else None
        lines.append(
            f"{alert.rule_id} {alert.status} key={key} p={partition} deadline={alert.evidence.get('deadline')} "
            f"watch={watch and (watch[0], watch[1] and msgspec.msgpack.decode(watch[1]))} clock={decoded}"
        )
    return "\n".join(lines)


def consumption_report(bootstrap: str, group: str, topics: list[str]) -> str:
    """Per topic partition: records in it and the group's committed offset (what a stuck consumer leaves behind)."""
    from kafka import KafkaConsumer, TopicPartition

    reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:  # committed() asks the coordinator without joining the group
        committed = {(t, p): reader.committed(TopicPartition(t, p)) for t in topics for p in range(PARTITIONS)}
    finally:
        reader.close()
    counts: dict[tuple[str, int], int] = {}
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, consumer_timeout_ms=3000, auto_offset_reset="earliest")
    try:
        consumer.assign([TopicPartition(t, p) for t in topics for p in range(PARTITIONS)])
        for message in consumer:
            counts[(message.topic, message.partition)] = message.offset + 1
    finally:
        consumer.close()
    lines = []
    for topic in topics:
        row = [f"{p}:{committed.get((topic, p), '-')}/{counts.get((topic, p), 0)}" for p in range(PARTITIONS)]
        lines.append(f"{topic} committed/records " + " ".join(row))
    return "\n".join(lines)


def commit_ahead(bootstrap: str, group: str, topics: list[str], by: int) -> dict[tuple[str, int], tuple[int, int]]:
    """Move the stopped group's committed offsets ``by`` records on (never past the end), as a commit that
    ran ahead of the state would; returns ``{(topic, partition): (old, new)}`` for those moved.

    It joins the group to commit, as a member must (under faust's protocol name: the broker keeps the
    group's protocol), once the stopped worker's membership has expired."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.errors import InconsistentGroupProtocolError
    from kafka.structs import OffsetAndMetadata

    class AsFaust(RangePartitionAssignor):
        name = "faust"

    deadline = time.monotonic() + 60
    while True:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            partition_assignment_strategy=[AsFaust],
        )
        try:
            consumer.subscribe(topics)
            while not consumer.assignment() and time.monotonic() < deadline:
                consumer.poll(timeout_ms=200, max_records=1)
            tps: list[TopicPartition] = sorted(consumer.assignment())
            assert len(tps) == len(topics) * PARTITIONS, f"the group did not hand over all partitions: {tps}"
            ends = consumer.end_offsets(tps)
            moved = {}
            for tp in tps:
                old = consumer.committed(tp)
                if old is not None and old + by <= ends[tp]:
                    moved[tp] = (old, old + by)
            consumer.commit({tp: OffsetAndMetadata(new, "", -1) for tp, (_, new) in moved.items()})
            return {(tp.topic, tp.partition): span for tp, span in moved.items()}
        except InconsistentGroupProtocolError:  # the faust member is still in the group: wait for it to expire
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
        finally:
            consumer.close()


def cli_backtest(sim: Simulation, workdir: Path) -> list[Alert]:
    """``yujing backtest --keep-open`` over the simulation's events, as a rule author runs it; its alerts."""
    import subprocess

    events = workdir / f"backtest-{uuid.uuid4().hex[:6]}.jsonl"
    events.write_bytes(b"\n".join(sim.lines()) + b"\n")
    out = events.with_suffix("")
    env = {**os.environ, "YUJING_KAFKA_PARTITIONS": str(PARTITIONS)}
    command = [sys.executable, "-m", "streams.cli", "backtest", "--events", str(events), "--keep-open", "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return read_alerts(out / "alerts.jsonl")


def comparable(alerts: Iterable[Alert]) -> set[tuple[Any, ...]]:
    """Everything of an alert but the wall-clock ``detected_at`` (so a worker's and a backtest's compare)."""
    return {
        (a.alert_id, a.status, a.rule_id, a.rule_version, a.severity, a.starts_at, a.ends_at, a.summary, tuple(sorted(a.labels.items())))
        for a in alerts
    }


def read_alerts(path: Path) -> list[Alert]:
    """The alerts a worker's JSON Lines sink has written so far: whole lines only (the file may be mid-append, or
    its worker killed mid-write, so a last line without its newline is not an alert yet)."""
    import msgspec

    if not path.exists():
        return []
    data = path.read_bytes()
    whole = data[: data.rfind(b"\n") + 1]
    return [msgspec.json.decode(line, type=Alert) for line in whole.splitlines() if line.strip()]


def group_worker(
    workdir: Path, bootstrap: str, app_id: str, prefix: str, rules: Path, i: int, clickhouse_url: str = "", **env: str
) -> Worker:
    """Worker ``i`` of an app of several, started: its own data directory and JSON Lines alert file (the same
    when it is started again after a kill)."""
    worker = Worker(
        workdir,
        bootstrap,
        app_id=app_id,
        prefix=prefix,
        clickhouse_url=clickhouse_url,
        YUJING_RULES_DIR=str(rules),
        YUJING_OUTPUT_ALERTS=str(workdir / f"{app_id}-{i}.jsonl"),
        YUJING_KAFKA_DATA_DIR=str(workdir / f"data-{app_id}-{i}"),
        **env,
    )
    worker.start()
    return worker


def start_workers(
    workdir: Path, bootstrap: str, app_id: str, prefix: str, rules: Path, n: int, clickhouse_url: str = "", **env: str
) -> list[Worker]:
    """``n`` workers of one app (:func:`group_worker`), all ready."""
    workers = [group_worker(workdir, bootstrap, app_id, prefix, rules, i, clickhouse_url, **env) for i in range(n)]
    wait_for(lambda: all(w.ready() for w in workers), 120, lambda: "every worker ready\n" + "\n".join(w.tail() for w in workers))
    return workers


#: What a failure prints of each live worker's metrics: what it read, dropped as late, skipped, sought, lags.
DIAGNOSTIC_METRICS = (
    "yujing_events_total",
    "yujing_late_events_total",
    "yujing_input_gaps_total",
    "yujing_input_skipped_total",
    "yujing_input_seeks_total",
    "yujing_consumer_lag_records",
    "yujing_watermark_lag_seconds",
)


def diagnose(worker: Worker) -> str:
    if not worker.alive():
        return "(killed)"
    try:
        samples = worker.metrics()
    except OSError as e:
        return f"(metrics unreadable: {e})"
    return " ".join(f"{n}{dict(lbl)}={v:g}" for (n, lbl), v in sorted(samples.items()) if n in DIAGNOSTIC_METRICS and v)


def alerts_of(workdir: Path, app_id: str) -> set[tuple[object, ...]]:
    """What the workers wrote, together (a replay may write an alert again, or on another worker)."""
    return comparable(a for path in sorted(workdir.glob(f"{app_id}-*.jsonl")) for a in read_alerts(path))


def check(got: set[tuple[object, ...]], expected_alerts: list[Alert], workers: list[Worker]) -> None:
    expected = comparable(expected_alerts)
    missing, extra = sorted(expected - got), sorted(got - expected)
    assert not missing and not extra, (
        f"missing {len(missing)} (by rule {sorted({m[2] for m in missing})}): {missing[:5]}\nextra {len(extra)}: {extra[:5]}\n"
        + "\n".join(f"{w.tail(30)}\n{diagnose(w)}" for w in workers)
    )
