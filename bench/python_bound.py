"""How fast Python can go on the peers' three rules: a bound for issue 16's engine targets, not an engine.

    .venv/bin/python bench/python_bound.py [EVENTS.jsonl] [--rules DIR] [--reps 3]

Over the same lines, in batches of 1,000, best of ``--reps``, it times what any engine on this contract must do,
stage by stage, each stage including the ones before:

1. **decode**: each line's topic from its ``event_type`` and the validated event struct (the engine's own
   :class:`~streams.decode.Decoder`);
2. **+ columns**: each event's time as seconds and its partition (murmur2 of ``customer_id``, vectorised);
3. **+ lean rules**: the three peer rules as plain per-row Python over the batch (dicts of the customers' fees,
   their complaint times, the region × product buckets' counts), in arrival order, with no event time, no state
   backend, no timers and no alert objects: the least a rule can cost. Its alert counts are printed so they
   can be set beside the reference's (``../shared/peers/reference.py``: 10 / 1265 / 3144 on the peers' data).

With ``--rules`` (the directory of the peer rules, e.g. as ``../shared/peers/yujing_rules.py`` writes them) it
also runs Yujing's engine over the same lines (:func:`bench.throughput.engine_rate`). Compare each figure with
the aiokafka ceiling of a ``../shared/peers/run_all.sh`` run on the same machine in the same hour.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams.decode import Decoder  # noqa: E402
from streams.partitioning import partitions_for  # noqa: E402
from yujing.events import TOPIC_KINDS  # noqa: E402

BATCH = 1000
PARTITIONS = 8
#: The peer rules' parameters (../shared/peers/common.py).
REPEAT_WINDOW, REPEAT_COUNT = 86400.0, 3
SURGE_BUCKET, SURGE_COUNT = 600.0, 4
FEE_RATIO = 1.2


class LeanRules:
    """The three peer rules as plain per-row Python, in arrival order: (a) a customer's third complaint.opened
    within 24 h, (b) the fourth complaint.opened of a region × product in a 10-minute bucket, (c) a first bill
    above 1.2 × the fee of the customer's order.created."""

    def __init__(self) -> None:
        self.fees: dict[str, float] = {}
        self.complaints: dict[str, list[float]] = defaultdict(list)
        self.buckets: dict[tuple[str, str, int], int] = defaultdict(int)
        self.fired = {"a": 0, "b": 0, "c": 0}

    def batch(self, events: Sequence[Any], ts: np.ndarray) -> None:
        fees, complaints, buckets, fired = self.fees, self.complaints, self.buckets, self.fired
        for event, t in zip(events, ts.tolist(), strict=True):
            kind = event.event_type
            if kind == "order.created":
                if event.monthly_fee is not None:
                    fees[event.customer_id] = event.monthly_fee
            elif kind == "bill.issued":
                fee = fees.get(event.customer_id)
                if fee is not None and event.is_first_bill and event.amount > FEE_RATIO * fee:
                    fired["c"] += 1
            elif kind == "complaint.opened":
                times = complaints[event.customer_id]
                times.append(t)
                while times[0] <= t - REPEAT_WINDOW:
                    del times[0]
                if len(times) == REPEAT_COUNT:
                    fired["a"] += 1
                if event.region is not None and event.product is not None:
                    key = (event.region, event.product, int(t // SURGE_BUCKET))
                    buckets[key] += 1
                    if buckets[key] == SURGE_COUNT:
                        fired["b"] += 1


def run(lines: Sequence[bytes], stage: int) -> tuple[float, dict[str, int]]:
    """Seconds for ``lines`` through stages 1..``stage``, and the lean rules' alert counts (stage 3)."""
    decoder = Decoder({kind: kind for kind in TOPIC_KINDS})
    infer, decode = decoder.infer_topic, decoder.decode
    rules = LeanRules()
    started = time.perf_counter()
    for start in range(0, len(lines), BATCH):
        events = [decode(infer(line), -1, start + i, None, line) for i, line in enumerate(lines[start : start + BATCH])]
        if stage >= 2:
            ts = np.fromiter((event.ts.timestamp() for event in events), float, len(events))
            partitions_for([event.customer_id for event in events], PARTITIONS)
            if stage >= 3:
                rules.batch(events, ts)
    return time.perf_counter() - started, rules.fired


def best(reps: int, work: Callable[[], float]) -> float:
    return min(work() for _ in range(reps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("events", nargs="?", default="/tmp/peer/ds/events.jsonl")
    parser.add_argument("--rules", type=Path, help="the peer rules' directory: also time Yujing's engine on them")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    lines = Path(args.events).read_bytes().splitlines()
    n = len(lines)
    print(f"{n:,} events, batches of {BATCH:,}, best of {args.reps}")
    names = {1: "decode (topic + validated struct)", 2: "+ columns (time, partition)", 3: "+ lean rules (a/b/c)"}
    fired: dict[str, int] = {}
    for stage, name in names.items():

        def once(stage: int = stage) -> float:
            seconds, counts = run(lines, stage)
            fired.update(counts)
            return seconds

        seconds = best(args.reps, once)
        print(f"{name:40s} {n / seconds:>10,.0f} ev/s  {1e6 * seconds / n:5.2f} µs an event")
    print(f"lean rules' alerts a/b/c: {fired['a']}/{fired['b']}/{fired['c']}")
    if args.rules is not None:
        from bench.throughput import engine_rate

        rate = max(engine_rate(lines, args.rules)[0] for _ in range(args.reps))
        print(f"{'Yujing engine, the same rules':40s} {rate:>10,.0f} ev/s  {1e6 / rate:5.2f} µs an event")


if __name__ == "__main__":
    main()
