"""Several workers of one app on the real broker: cohort rules (a region's complaints, all partitions' worth)
raise exactly the backtest's alerts, through the internal ``<app_id>-cohort`` topic, with two and with three
workers, and when one of three is killed with SIGKILL mid-stream (its partitions move to the others)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.integration.harness import (
    alerts_of,
    backtest,
    check,
    comparable,
    create_topics,
    publish,
    rules_with_cohort_rule,
    settle,
    sim_records,
    small_sim,
    start_workers,
)
from tests.integration.servers import TansuBroker, wait_for

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("n", [2, 3])
def test_n_workers_raise_the_backtests_cohort_alerts(workdir: Path, broker: TansuBroker, n: int) -> None:
    sim = small_sim(seed=21)
    rules = rules_with_cohort_rule(workdir)
    expected = backtest(sim, rules=rules)
    assert sum(a.rule_id == "region-hour" for a in expected) >= 20  # the cohort rule has work to do
    prefix, app_id = f"so{n}-", f"yujing-scale-{n}"
    create_topics(broker.bootstrap, prefix=prefix)
    workers = start_workers(workdir, broker.bootstrap, app_id, prefix, rules, n)
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
    rules = rules_with_cohort_rule(workdir)
    expected = backtest(sim, rules=rules)
    prefix, app_id = "sok-", "yujing-scale-kill"
    create_topics(broker.bootstrap, prefix=prefix)
    records = sim_records(sim, prefix=prefix)
    workers = start_workers(workdir, broker.bootstrap, app_id, prefix, rules, 3)
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
