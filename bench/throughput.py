"""Throughput, measured in one run on the same tansu broker and the same events.

    .venv/bin/python bench/throughput.py [--events 200000]

1. raw aiokafka consume rate of the events (the ceiling for any consumer);
2. the worker's end-to-end rate (decode, engine with the default rules, sinks, changelog, commits);
3. their ratio;
4. the engine's rate through the local runner with no I/O (decode + engine, in process);
5. the same with one rule that no event meets (``bench/floor_rules``): what every event costs before any rule
   (decoding and validation, placement, watermarks, dispatch), the engine's floor.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
#: One rule no event meets: the engine's rate with it is what an event costs before any rule.
FLOOR_RULES = ROOT / "bench" / "floor_rules"

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from rules import load_rules  # noqa: E402
from streams.config import default_rules_dir  # noqa: E402
from streams.decode import Decoder  # noqa: E402
from streams.engine import DictBackend, Engine, EngineConfig  # noqa: E402
from streams.local import LocalRunner  # noqa: E402
from streams.pipeline import Pipeline  # noqa: E402
from streams.simulator import SimConfig, simulate  # noqa: E402
from tests.integration.harness import PARTITIONS, TOPICS, Worker, create_topics, publish, sim_records  # noqa: E402
from tests.integration.servers import TansuBroker, wait_for  # noqa: E402


def the_mix(events_per_day: float, customers: int, **config: Any) -> SimConfig:
    """The benchmarks' simulated mix: about ``events_per_day`` events a day, 4.2 per order (orders, half
    as many complaints, a fifth as many bills)."""
    per_day = events_per_day / 4.2
    return SimConfig(customers=customers, orders_per_day=per_day, complaints_per_day=per_day * 0.5, bills_per_day=per_day * 0.2, **config)


def make_events(target: int) -> tuple[list[bytes], list[tuple[str, bytes, bytes]]]:
    sim = simulate(the_mix(target / 4, max(3000, target // 20), seed=5, history_days=3, days=1))  # 4 simulated days
    return list(sim.lines()), sim_records(sim, prefix="bench-")


async def raw_consume(bootstrap: str, topics: list[str], want: int) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 1024 * 1024
    )
    await consumer.start()
    got, started = 0, None
    try:
        while got < want:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for messages in batch.values():
                if started is None and messages:
                    started = time.perf_counter()
                got += len(messages)
    finally:
        await consumer.stop()
    return got / (time.perf_counter() - (started or time.perf_counter()))


def worker_rate(workdir: Path, bootstrap: str, prefix: str, want: float, workers: int = 1, **env: str) -> float:
    """Events/s of ``workers`` workers of one app reading ``want`` messages already on the broker (all of them, summed)."""
    app = f"bench-{prefix}{int(time.time() * 1000)}"
    running = [Worker(workdir, bootstrap, app_id=app, prefix=prefix, **env) for _ in range(workers)]
    for w in running:
        w.start()
    try:
        total = lambda: sum(w.sum("yujing_events_total") for w in running)
        wait_for(lambda: total() > 0, 180, "the first events")
        started, first = time.perf_counter(), total()
        wait_for(lambda: total() >= want, 1800, "every event", interval=0.1)
        return (total() - first) / (time.perf_counter() - started)
    finally:
        for w in running:
            w.stop()


def engine_rate(lines: list[bytes], rules_dir: Path | None = None) -> tuple[float, int]:
    """Events/s of the engine through the local runner (no I/O) with ``rules_dir``'s rules (default: the pack), and
    the alerts it raised."""
    rules = load_rules(rules_dir or default_rules_dir()).rules
    engine = Engine(rules, DictBackend(), EngineConfig(idle_after=None))
    runner = LocalRunner(Pipeline(engine, Decoder(TOPICS), [], partitions=PARTITIONS), None)
    started = time.perf_counter()
    stats = runner.run(lines)
    return len(lines) / (time.perf_counter() - started), stats.alerts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    console = Console()
    lines, records = make_events(args.events)
    n = len(records)
    console.print(f"{n:,} simulated events ({len(load_rules(default_rules_dir()).rules)} rules in the default pack)")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = TansuBroker(workdir)
        broker.start()
        try:
            create_topics(broker.bootstrap, prefix="bench-")
            t = time.perf_counter()
            publish(broker.bootstrap, records)
            produce = n / (time.perf_counter() - t)
            raw = asyncio.run(raw_consume(broker.bootstrap, [f"bench-{t}" for t in TOPICS], n))
            worker = worker_rate(workdir, broker.bootstrap, "bench-", n)
        finally:
            broker.stop()
    engine, alerts = engine_rate(lines)
    floor, _ = engine_rate(lines, FLOOR_RULES)
    table = Table(title="Yujing throughput (one run, same broker, same events)")
    table.add_column("measure")
    table.add_column("events/s", justify="right")
    table.add_column("ratio", justify="right")
    table.add_row("kafka-python produce (setup)", f"{produce:,.0f}", "")
    table.add_row("(1) raw aiokafka consume", f"{raw:,.0f}", "1.00")
    table.add_row("(2) worker end-to-end", f"{worker:,.0f}", f"{worker / raw:.2f} of (1)")
    table.add_row("(3) engine only, local runner, no I/O", f"{engine:,.0f}", f"{engine / raw:.2f} of (1)")
    table.add_row("(3f) engine floor: a rule no event meets", f"{floor:,.0f}", f"{floor / raw:.2f} of (1)")
    console.print(table)
    console.print(f"engine run raised {alerts} alerts over {n:,} events")


if __name__ == "__main__":
    main()
