"""Diagnostic for the worker restart test: does recovery restore what the changelog holds?

    .venv/bin/python tests/integration/diagnose_recovery.py 5

Each run publishes half the events and starts a worker. It then publishes a quarter more, stops the
worker (SIGTERM) and reads the whole state changelog with kafka-python. Finally it starts a second
worker and compares its recovered timer count with the live timers in the changelog. One line per run.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.integration.harness import Worker, create_topics, publish, sim_records, small_sim
from tests.integration.servers import TansuBroker, wait_for


def live_timers(bootstrap: str, topic: str) -> tuple[int, int]:
    """(records in the changelog, timers whose latest value is not a tombstone: the timer records, and the SLA
    watches, which keep their one timer in themselves)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None, consumer_timeout_ms=3000)
    latest: dict[bytes, bytes | None] = {}
    records = 0
    for message in consumer:
        latest[message.key] = message.value
        records += 1
    consumer.close()
    return records, sum(1 for k, v in latest.items() if k.startswith((b"~timers", b"sla:")) and v is not None)


def one_run(run: int) -> str:
    workdir = Path(tempfile.mkdtemp(prefix=f"recovery{run}-"))
    broker = TansuBroker(workdir)
    broker.start()
    try:
        records = sim_records(small_sim(seed=12), prefix="r-")
        create_topics(broker.bootstrap, prefix="r-")
        half = len(records) // 2
        publish(broker.bootstrap, records[:half])
        first = Worker(workdir, broker.bootstrap, app_id="rec", prefix="r-")
        first.start()
        wait_for(lambda: first.sum("yujing_events_total") >= half, 120, "the first half")
        publish(broker.bootstrap, records[half : half + len(records) // 4])
        wait_for(lambda: first.sum("yujing_events_total") > half, 60, "mid-stream")
        first.stop()
        total, timers = live_timers(broker.bootstrap, "rec-state-changelog")
        second = Worker(workdir, broker.bootstrap, app_id="rec", prefix="r-")
        second.start()
        wait_for(lambda: "state recovered" in second.log_path.read_text(), 60, "recovery")
        recovered = re.findall(r"state recovered: (\d+) timers", second.log_path.read_text())
        second.stop()
        return f"run {run}: changelog records {total}, live timers in changelog {timers}, recovered {recovered}"
    finally:
        broker.stop()


if __name__ == "__main__":
    os.environ["YUJING_TEST_WORKER_LOGLEVEL"] = "info"
    for i in range(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
        print(one_run(i), flush=True)
