"""Restart recovery time with a million keys of state (benchmark 6).

    .venv/bin/python bench/recovery.py [--keys 1000000]

The state is the worker's own: the default pack's ``install-sla`` rule holds open
installation orders (three keys each: the watch, its deadline and its warning timer),
written by the engine over the worker's state backend. Its changelog messages are
produced to the worker's changelog topic on a tansu broker, then a worker is started on
that app id: the time from its start to its log line ``state recovered`` (faust read the
changelog, the journal was replayed, the timers were rebuilt) is the recovery time. The
time to the worker's metrics endpoint (interpreter and imports) is shown apart.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.memory import RULE, orders  # noqa: E402
from tests.helpers import StandInTable  # noqa: E402
from tests.integration.harness import PARTITIONS, Worker, create_topics  # noqa: E402
from tests.integration.servers import TansuBroker, wait_for  # noqa: E402


def changelog_of(keys: int) -> list[tuple[int, bytes, bytes | None]]:
    """The changelog messages of ``keys`` keys of SLA state, as the worker's backend queues them."""
    from rules import load_rules
    from streams.config import default_rules_dir
    from streams.decode import Decoder
    from streams.engine import Engine, EngineConfig
    from streams.faust_state import FaustBackend
    from streams.partitioning import partition_for

    rules = [r for r in load_rules(default_rules_dir()).rules if r.rule_id == RULE]
    decoder = Decoder({"orders": "orders", "billing": "billing", "complaints": "complaints"})
    backend = FaustBackend(StandInTable())
    engine = Engine(rules, backend, EngineConfig(idle_after=None))
    messages: list[tuple[int, bytes, bytes | None]] = []
    lines = orders(keys // 3 + 1)
    for i in range(0, len(lines), 1000):
        events = [decoder.decode("orders", 0, j, None, line) for j, line in enumerate(lines[i : i + 1000])]
        engine.process([(partition_for(e.customer_id, PARTITIONS), e) for e in events])  # type: ignore[union-attr]
        engine.commit()
        messages.extend(backend.take_outbox())
    return messages


def produce(bootstrap: str, topic: str, messages: list[tuple[int, bytes, bytes | None]]) -> None:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=512 * 1024, acks=1)
    for partition, key, value in messages:
        producer.send(topic, key=key, value=value, partition=partition)
    producer.flush()
    producer.close()


def measure(keys: int, workdir: Path) -> dict[str, float]:
    messages = changelog_of(keys)
    app_id = f"bench-recover-{int(time.time())}"
    broker = TansuBroker(workdir)
    broker.start()
    try:
        create_topics(broker.bootstrap, prefix="rec-")
        started = time.perf_counter()
        produce(broker.bootstrap, f"{app_id}-state-changelog", messages)
        produced = time.perf_counter() - started
        os.environ["YUJING_TEST_WORKER_LOGLEVEL"] = "info"
        worker = Worker(workdir, broker.bootstrap, app_id=app_id, prefix="rec-", YUJING_KAFKA_DATA_DIR=str(workdir / "data"))
        t0 = time.perf_counter()
        worker.start()
        up = time.perf_counter() - t0
        try:
            wait_for(lambda: "state recovered" in worker.log_path.read_text(errors="replace"), 600, "recovery", interval=0.05)
            recovered = time.perf_counter() - t0
            line = next(ln for ln in worker.log_path.read_text(errors="replace").splitlines() if "state recovered" in ln)
        finally:
            worker.stop()
    finally:
        broker.stop()
    timers = int(line.split("applied, ")[1].split(" timers")[0]) if "applied, " in line else -1
    return {"keys": len(messages), "produce_s": produced, "metrics_up_s": up, "recovered_s": recovered, "timers": timers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        r = measure(args.keys, Path(tmp))
    print(
        f"{r['keys']:,} keys ({r['timers']:,} timers rebuilt): recovered {r['recovered_s']:.1f} s after start "
        f"(metrics endpoint up at {r['metrics_up_s']:.1f} s; changelog produced in {r['produce_s']:.1f} s)"
    )


if __name__ == "__main__":
    main()
