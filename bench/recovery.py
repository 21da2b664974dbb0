"""Restart recovery time with a million keys of state (benchmark 6).

    .venv/bin/python bench/recovery.py [--keys 1000000]

The state is the worker's own: the default pack's ``install-sla`` rule holds open
installation orders (one key each since an open watch is one packed record whose
deadline and warning the timer index is rebuilt from; three keys each before),
written by the engine over the worker's state backend, as many orders as it takes
to reach ``keys`` keys. Its changelog messages are
produced to the worker's changelog topic on a tansu broker, then a worker is started on
that app id with an empty data dir: the time from its start to its log line ``state
recovered`` (faust read the changelog, the journal was replayed, the timers were rebuilt)
is the cold start. The worker then reads 2,000 more orders, is stopped, and started again
on the same data dir: that is the restart. With the rocksdb store (production's) the
restart reads only the changelog written after what its disk holds; with ``memory://``
it is a cold start again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.memory import RULE, orders  # noqa: E402
from tests.helpers import StandInTable  # noqa: E402
from tests.integration.harness import PARTITIONS, Worker, create_topics, publish  # noqa: E402
from tests.integration.servers import TansuBroker, wait_for  # noqa: E402


def changelog_of(keys: int) -> tuple[list[tuple[int, bytes, bytes | None]], int]:
    """The changelog messages of at least ``keys`` keys of SLA state, as the worker's backend queues them, and how
    many orders made them."""
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
    written: set[bytes] = set()
    lines = orders(keys + 1)  # at least one key per order
    used = 0
    for i in range(0, len(lines), 1000):
        if len(written) >= keys:
            break
        events = [decoder.decode("orders", 0, j, None, line) for j, line in enumerate(lines[i : i + 1000])]
        engine.process([(partition_for(e.customer_id, PARTITIONS), e) for e in events])  # type: ignore[union-attr]
        engine.commit()
        batch = backend.take_outbox()
        messages.extend(batch)
        written.update(key for _, key, _ in batch)
        used = i + len(events)
    return messages, used


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


def _recovered(worker: Worker, timeout: float = 1800) -> tuple[float, str]:
    """Seconds from now until the worker logs ``state recovered``, and that line."""
    t0 = time.perf_counter()
    worker.start()
    seen = lambda: "state recovered" in worker.log_path.read_text(errors="replace")
    wait_for(lambda: seen() or not worker.alive(), timeout, "recovery", interval=0.05)
    if not seen():
        raise RuntimeError(f"the worker stopped before it recovered\n{worker.tail()}")
    line = next(ln for ln in worker.log_path.read_text(errors="replace").splitlines() if "state recovered" in ln)
    return time.perf_counter() - t0, line


def measure(keys: int, workdir: Path, store: str = "rocksdb://") -> dict[str, float]:
    """Cold start (an empty local store: the whole changelog is read) and restart on the same disk.

    The restart follows a stop (SIGTERM) after the worker has run on: its persistent store
    (rocksdb, production's) holds the state and how far into the changelog it goes, so the
    restart reads only what was written after. With ``memory://`` both are cold.
    """
    messages, made_of = changelog_of(keys)
    app_id = f"bench-recover-{int(time.time())}"
    broker = TansuBroker(workdir)
    broker.start()
    try:
        create_topics(broker.bootstrap, prefix="rec-")
        started = time.perf_counter()
        produce(broker.bootstrap, f"{app_id}-state-changelog", messages)
        produced = time.perf_counter() - started
        os.environ["YUJING_TEST_WORKER_LOGLEVEL"] = "info"
        env = {"YUJING_KAFKA_DATA_DIR": str(workdir / "data"), "YUJING_KAFKA_STORE": store}
        first = Worker(workdir, broker.bootstrap, app_id=app_id, prefix="rec-", **env)
        try:
            cold, line = _recovered(first)
            more = orders(made_of + 2000)[made_of:]  # the worker runs on: new orders, changelog after its recovery
            publish(broker.bootstrap, [("rec-orders", json.loads(o)["customer_id"].encode(), o) for o in more])
            wait_for(lambda: first.sum("yujing_events_total") >= len(more), 300, "the orders after recovery")
        finally:
            first.stop()
        second = Worker(workdir, broker.bootstrap, app_id=app_id, prefix="rec-", **env)
        try:
            warm, _ = _recovered(second)
        finally:
            second.stop()
    finally:
        broker.stop()
    timers = int(line.split("applied, ")[1].split(" timers")[0]) if "applied, " in line else -1
    return {
        "keys": len({key for _, key, _ in messages}),
        "messages": len(messages),
        "produce_s": produced,
        "cold_s": cold,
        "restart_s": warm,
        "timers": timers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--store", default="rocksdb://", help="the worker's store: rocksdb:// (production) or memory://")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        r = measure(args.keys, Path(tmp), args.store)
    print(
        f"{r['keys']:,} keys ({r['timers']:,} timers) on {args.store}: cold start {r['cold_s']:.1f} s to 'state recovered', "
        f"restart on the same disk {r['restart_s']:.1f} s (changelog produced in {r['produce_s']:.1f} s)"
    )


if __name__ == "__main__":
    main()
