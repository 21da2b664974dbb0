"""Scaling out with the cohort rules in: 1, 2 and 3 workers of one app over the same events, on one broker.

    .venv/bin/python bench/scale_out.py [--events 100000] [--workers 1 2 3]

This machine has two cores, so wall-clock speed-up cannot show scaling; what
repartitioning and watermark traffic cost shows in **events per worker
CPU-second** (all workers' CPU from publishing the first event to the last one processed, summed),
compared with one worker's (target: ≥ 0.85 with two and with three). Each run
also keeps the alerts the workers wrote (a JSON Lines sink each) and compares them by id, status, times, summary and
labels: every worker count must raise the same ones.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.throughput import make_events  # noqa: E402
from tests.integration.harness import Worker, comparable, create_topics, publish, read_alerts  # noqa: E402
from tests.integration.servers import TansuBroker, wait_for  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


#: Events/s (wall), events per CPU-s, CPU-s, batches, and the alerts written (``comparable`` tuples).
Measured = tuple[float, float, float, float, set[tuple[object, ...]]]


def written(paths: list[Path]) -> set[tuple[object, ...]]:
    """The alerts the workers wrote, together (a replay may write one again, or another worker may)."""
    return comparable(a for path in paths for a in read_alerts(path))


def by_rule(alerts: set[tuple[object, ...]]) -> Counter[str]:
    return Counter(str(a[2]) for a in alerts)


def run(workdir: Path, bootstrap: str, records: list[tuple[str, bytes, bytes]], workers: int) -> Measured:
    """Events/s (wall), events per CPU-second (all workers), the CPU seconds, the batches, and the alerts by rule.

    The workers join first and the events are published once the group is stable: a worker joining mid-run
    moves partitions and their state, a cost of starting up, not of running."""
    prefix = f"s{workers}-"
    create_topics(bootstrap, prefix=prefix)
    records = [(prefix + topic.split("-", 1)[1], key, value) for topic, key, value in records]
    app = f"scale-{workers}-{int(time.time() * 1000)}"
    paths = [workdir / f"{app}-{i}.jsonl" for i in range(workers)]
    running = [
        Worker(
            workdir,
            bootstrap,
            app_id=app,
            prefix=prefix,
            YUJING_KAFKA_DATA_DIR=str(workdir / f"data-{app}-{i}"),
            YUJING_OUTPUT_ALERTS=str(paths[i]),
        )
        for i in range(workers)
    ]
    for w in running:
        w.start()
    try:
        wait_for(lambda: all(w.ready() for w in running), 180, "every worker ready")
        time.sleep(3)  # the group settled
        want = len(records)
        total = lambda: sum(w.sum("yujing_events_total") for w in running)
        cpu0 = sum(cpu_seconds(w.proc.pid) for w in running if w.proc)
        started = time.perf_counter()
        threading.Thread(target=publish, args=(bootstrap, records), daemon=True).start()
        wait_for(lambda: total() >= want, 1800, "every event", interval=0.1)
        cpu = sum(cpu_seconds(w.proc.pid) for w in running if w.proc) - cpu0
        wall = time.perf_counter() - started
        batches = sum(w.sum("yujing_batch_processing_seconds_count") for w in running)
        last: set[tuple[object, ...]] = set()
        while (now := written(paths)) != last:  # the cohort stage's last alerts follow the last marks
            last = now
            time.sleep(10)
        return want / wall, want / cpu, cpu, batches, last
    finally:
        for w in running:
            w.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    console = Console()
    _, records = make_events(args.events)
    n = len(records)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = TansuBroker(workdir)
        broker.start()
        try:
            console.print(f"{n:,} events; default pack (cohort rules through the cohort topic)")
            for workers in args.workers:
                results[workers] = run(workdir, broker.bootstrap, records, workers)
                rate, per_cpu, cpu, batches, alerts = results[workers]
                line = f"{workers} worker(s): {rate:,.0f} ev/s wall, {per_cpu:,.0f} ev per CPU-s ({cpu:.1f} CPU-s, {batches:.0f} batches)"
                console.print(f"{line}, alerts {len(alerts)}")
        finally:
            broker.stop()
    base = results[args.workers[0]]
    table = Table(title=f"Scaling out, default pack with its cohort rules ({n:,} events, {time.strftime('%Y-%m-%d %H:%M')})")
    for column in ("workers", "events/s (wall)", "events per CPU-s", f"vs {args.workers[0]} worker", "CPU-s", "batches", "alerts", "same"):
        table.add_column(column, justify="right")
    for workers, (rate, per_cpu, cpu, batches, alerts) in results.items():
        same = "yes" if alerts == base[4] else f"no: {dict(by_rule(alerts - base[4]))} new, {dict(by_rule(base[4] - alerts))} missing"
        row = (
            f"{rate:,.0f}",
            f"{per_cpu:,.0f}",
            f"{per_cpu / base[1]:.2f}",
            f"{cpu:.1f}",
            f"{batches:.0f}",
            str(len(alerts)),
            same,
        )
        table.add_row(str(workers), *row)
    console.print(table)
    console.print("target: events per CPU-s with 2 and 3 workers ≥ 0.85 of one worker's")


if __name__ == "__main__":
    main()
