"""Several workers of one app on the real broker: cohort rules (a region's complaints, all partitions' worth)
raise exactly the backtest's alerts, through the internal ``<app_id>-cohort`` topic, with two and with three
workers, and when one of three is killed with SIGKILL mid-stream (its partitions move to the others)."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from rules import load_rules
from streams.backtest import Collect
from streams.config import default_rules_dir
from streams.decode import Decoder
from streams.engine import DictBackend, Engine, EngineConfig
from streams.local import LocalRunner
from streams.pipeline import Pipeline
from streams.simulator import Simulation
from tests.integration.harness import (
    PARTITIONS,
    TOPICS,
    Worker,
    comparable,
    create_topics,
    publish,
    read_alerts,
    settle,
    sim_records,
    small_sim,
)
from tests.integration.servers import TansuBroker, wait_for
from yujing.alerts import Alert

pytestmark = pytest.mark.integration

#: A cohort rule that fires often on the small simulation: each region's and product's complaints per hour.
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


def rules_dir(workdir: Path) -> Path:
    """The default pack and the cohort rule above."""
    target = workdir / "scale-rules"
    shutil.copytree(default_rules_dir(), target, dirs_exist_ok=True)
    (target / "region-hour.yaml").write_text(REGION_HOUR, encoding="utf-8")
    return target


def backtest(sim: Simulation, rules: Path) -> list[Alert]:
    """One engine over all the events, stopping where the workers' watermarks stop (no end-of-input flush)."""
    collect = Collect()
    engine = Engine(load_rules(rules).rules, DictBackend(), EngineConfig(allowed_lateness=300.0, idle_after=None, partitions=PARTITIONS))
    LocalRunner(Pipeline(engine, Decoder(TOPICS), [collect], partitions=PARTITIONS), None).run(sim.lines(), close=False)
    return collect.alerts


def start_workers(workdir: Path, broker: TansuBroker, app_id: str, prefix: str, rules: Path, n: int) -> list[Worker]:
    workers = []
    for i in range(n):
        worker = Worker(
            workdir,
            broker.bootstrap,
            app_id=app_id,
            prefix=prefix,
            YUJING_RULES_DIR=str(rules),
            YUJING_OUTPUT_ALERTS=str(workdir / f"{app_id}-{i}.jsonl"),
            YUJING_KAFKA_DATA_DIR=str(workdir / f"data-{app_id}-{i}"),
        )
        worker.start()
        workers.append(worker)
    wait_for(lambda: all(w.ready() for w in workers), 120, lambda: "every worker ready\n" + "\n".join(w.tail() for w in workers))
    return workers


def alerts_of(workdir: Path, app_id: str) -> set[tuple[object, ...]]:
    """What the workers wrote, together (a replay may write an alert again, or on another worker)."""
    return comparable(a for path in sorted(workdir.glob(f"{app_id}-*.jsonl")) for a in read_alerts(path))


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


def check(got: set[tuple[object, ...]], expected_alerts: list[Alert], workers: list[Worker]) -> None:
    expected = comparable(expected_alerts)
    missing, extra = sorted(expected - got), sorted(got - expected)
    assert not missing and not extra, (
        f"missing {len(missing)} (by rule {sorted({m[2] for m in missing})}): {missing[:5]}\nextra {len(extra)}: {extra[:5]}\n"
        + "\n".join(f"{w.tail(30)}\n{diagnose(w)}" for w in workers)
    )


@pytest.mark.parametrize("n", [2, 3])
def test_n_workers_raise_the_backtests_cohort_alerts(workdir: Path, broker: TansuBroker, n: int) -> None:
    sim = small_sim(seed=21)
    rules = rules_dir(workdir)
    expected = backtest(sim, rules)
    assert sum(a.rule_id == "region-hour" for a in expected) >= 20  # the cohort rule has work to do
    prefix, app_id = f"so{n}-", f"yujing-scale-{n}"
    create_topics(broker.bootstrap, prefix=prefix)
    workers = start_workers(workdir, broker, app_id, prefix, rules, n)
    try:
        publish(broker.bootstrap, sim_records(sim, prefix=prefix))
        got = settle(lambda: alerts_of(workdir, app_id), comparable(expected), 180, f"{n} workers' alerts")
        check(got, expected, workers)
        assert all(w.alive() for w in workers)
        assert sum(w.sum("yujing_events_total", outcome="accepted") > 0 for w in workers) >= 2, "the partitions were shared"
    finally:
        for w in workers:
            w.stop()


def test_one_of_three_workers_killed_mid_stream_loses_and_adds_nothing(workdir: Path, broker: TansuBroker) -> None:
    sim = small_sim(seed=22)
    rules = rules_dir(workdir)
    expected = backtest(sim, rules)
    prefix, app_id = "sok-", "yujing-scale-kill"
    create_topics(broker.bootstrap, prefix=prefix)
    records = sim_records(sim, prefix=prefix)
    workers = start_workers(workdir, broker, app_id, prefix, rules, 3)
    try:
        publish(broker.bootstrap, records[: len(records) // 2])
        victim = workers[1]
        wait_for(lambda: victim.sum("yujing_events_total") > 200, 120, lambda: f"the victim reads\n{victim.tail()}")
        victim.stop(signal.SIGKILL)
        publish(broker.bootstrap, records[len(records) // 2 :])
        got = settle(lambda: alerts_of(workdir, app_id), comparable(expected), 240, "alerts after a kill")
        check(got, expected, workers)
    finally:
        for w in workers:
            w.stop()
