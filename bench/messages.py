"""What the worker writes for a stream of events, counted without Kafka: changelog messages and bytes per state
namespace (the engine with its cohort stage in process, over the faust state backend on a stand-in table), and
the messages its partition stage sends to the cohort topic (a second pass, the exchange on). Deterministic, so
a change's effect shows without the machine's noise (results in BENCHMARKS.md).

    .venv/bin/python bench/messages.py EVENTS.jsonl [--rules DIR] [--limit 100000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rules import load_rules  # noqa: E402
from streams.assembly import build_engine  # noqa: E402
from streams.config import default_rules_dir, load_config  # noqa: E402
from streams.decode import Decoder  # noqa: E402
from streams.engine.exchange import encode_message  # noqa: E402
from streams.faust_state import FaustBackend  # noqa: E402
from streams.local import LocalRunner, RunStats, read_event_lines  # noqa: E402
from streams.pipeline import Pipeline  # noqa: E402
from tests.helpers import StandInTable  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("events")
    parser.add_argument("--rules", default=str(default_rules_dir()))
    parser.add_argument("--limit", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    loaded = load_rules(args.rules)
    if not loaded.ok:
        sys.exit("\n".join(str(e) for e in loaded.errors))
    config = load_config(None, environ={"YUJING_ALERTING_SILENCES": str(Path(tempfile.mkdtemp()) / "none.jsonl")})
    decoder = Decoder(config.kafka.topics())
    lines = list(read_event_lines(args.events))[: args.limit]
    count: Counter[str] = Counter()
    tombstones: Counter[str] = Counter()
    size: Counter[str] = Counter()
    cohort_messages = cohort_bytes = 0
    # the changelog: the engine with its cohort stage in process, run as `yujing run` runs it
    backend = FaustBackend(StandInTable())
    engine, _ = build_engine(loaded.rules, backend, config, config.engine.engine_config(idle=False), rules_dir=args.rules)
    pipeline = Pipeline(engine, decoder, [], None, partitions=config.kafka.partitions)
    runner, stats = LocalRunner(pipeline, None, batch_size=args.batch), RunStats()
    for start in range(0, len(lines), args.batch):
        runner.step(list(runner.records(lines[start : start + args.batch])), stats)
        for _, key, value in backend.take_outbox():
            parts = key.split(b"\x1f")
            namespace = parts[0].decode(errors="replace")
            if namespace == "~timers" and len(parts) > 2:  # by owner: which rules keep timer records
                namespace += f"[{parts[1].decode(errors='replace')}]"
            count[namespace] += 1
            size[namespace] += len(value or b"")
            tombstones[namespace] += value is None
    # the cohort topic: what the partition stage sends when the cohort stage runs elsewhere
    exchange_config = dataclasses.replace(config.engine.engine_config(idle=False), exchange=True)
    engine, _ = build_engine(loaded.rules, FaustBackend(StandInTable()), config, exchange_config, rules_dir=args.rules)
    runner = LocalRunner(Pipeline(engine, decoder, [], None, partitions=config.kafka.partitions), None, batch_size=args.batch)
    for start in range(0, len(lines), args.batch):
        runner.step(list(runner.records(lines[start : start + args.batch])), stats)
        sent = engine.take_exchange()
        cohort_messages += len(sent)
        cohort_bytes += sum(len(encode_message(m)) for _, m in sent)
    print(f"{len(lines):,} events in batches of {args.batch} ({args.rules})")
    print(f"changelog: {sum(count.values()):,} messages ({sum(tombstones.values()):,} tombstones), {sum(size.values()) / 1e6:.1f} MB")
    for namespace, n in sorted(count.items(), key=lambda kv: (-size[kv[0]], -kv[1]))[:30]:
        print(f"  {namespace:44s} {n:9,} msgs {tombstones[namespace]:9,} tombstones {size[namespace] / 1e6:8.1f} MB")
    print(f"cohort topic: {cohort_messages:,} messages, {cohort_bytes / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
