"""The broker restarted under a running worker: the worker reconnects and carries on, no alert lost or doubled.

The test broker (tansu, memory storage) forgets everything when it stops: topics, offsets, the state
changelog, the group's commits. So after the restart the topics are created again and the upstream
publishes its history again before the new events (the same records in the same order land at the
same offsets): the worker, which keeps its input positions and state in memory, recognises the
history as read and goes on with the new events. With a broker that keeps its log (Kafka) nothing
needs to be published again; what this broker cannot show is recovery of the worker's state from a
changelog written before the broker's restart.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streams.worker import ensure_topics
from tests.integration.harness import (
    PARTITIONS,
    Worker,
    backtest,
    clickhouse_rows,
    create_topics,
    final_state,
    publish,
    settle,
    sim_records,
    small_sim,
)
from tests.integration.servers import ClickHouseServer, TansuBroker, wait_for

pytestmark = pytest.mark.integration
PREFIX = "br-"
APP = "yujing-broker-restart"
FAULTS = Path(__file__).parent / "faults"


def test_worker_carries_on_after_the_broker_restarts(tmp_path: Path, clickhouse: ClickHouseServer) -> None:
    sim = small_sim(seed=17)
    expected = final_state(backtest(sim))
    records = sim_records(sim, prefix=PREFIX)
    half = len(records) // 2
    broker = TansuBroker(tmp_path)
    broker.start()
    url = clickhouse.url.replace("/yujing", "/brokerrestart")
    restarted = tmp_path / "broker-restarted"
    worker = Worker(
        tmp_path,
        broker.bootstrap,
        app_id=APP,
        clickhouse_url=url,
        prefix=PREFIX,
        PYTHONPATH=str(FAULTS),
        YUJING_TEST_FAIL_ASSIGNMENT_AFTER=str(restarted),  # the first assignment after the restart fails
    )
    try:
        create_topics(broker.bootstrap, prefix=PREFIX)
        worker.start()
        publish(broker.bootstrap, records[:half])
        wait_for(lambda: worker.sum("yujing_events_total") >= half, 180, lambda: f"the first half read\n{worker.tail()}")
        broker.stop()
        time.sleep(10)  # the worker meets a dead broker for a while (longer than its session timeout)
        assert worker.alive(), worker.tail()
        restarted.touch()
        broker.start()  # same port, empty log
        create_topics(broker.bootstrap, prefix=PREFIX)
        topics = [PREFIX + t for t in ("orders", "billing", "complaints")]
        # every topic the app had, as a broker that kept its log would still hold (the worker does not declare faust's
        # internal topics again): a leader whose metadata missed the cohort topic failed each assignment after the
        # injected one, every 5 s for 4 min, in one CI run
        ensure_topics(broker.bootstrap, [t + ".dlq" for t in topics] + [f"{APP}-state-changelog", f"{APP}-cohort"], PARTITIONS)
        ensure_topics(broker.bootstrap, [f"{APP}-__assignor-__leader"], 1)
        publish(broker.bootstrap, records)  # the history again, then the second half
        wait_for(
            lambda: worker.sum("yujing_events_total") >= len(records),
            240,
            lambda: f"the second half read\n{worker.tail()}\n{worker.task_stacks()}",  # with the consumer's flow and offsets
        )
        rows = settle(lambda: clickhouse_rows(clickhouse.client(), "brokerrestart"), expected, 120, "alerts after the restart")
        assert rows == expected
        assert worker.sum("yujing_events_total") == len(records)  # the history published again was not processed twice
        assert worker.alive()
        assert "this assignment fails" in worker.log_path.read_text(errors="replace")  # the fault was met
    finally:
        worker.stop()
        broker.stop()
