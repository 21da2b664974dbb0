"""Detector throughput and memory, measured in one run.

    .venv/bin/python bench/detectors.py [--complaints 50000] [--terms 1000000]

1. complaints/s through tokenisation alone, the burst detector alone (pre-tokenised), and both,
   on the simulator's complaint texts;
2. **both detectors of the default pack (hot words and cohort spikes) through the engine**, JSON
   lines in (decode, partition stage, cohort stage), on complaint texts of about 50 Chinese
   characters, with the cohorts they keep and the hot-word tables' size;
3. the burst detector's memory with ``--terms`` distinct terms streamed through it: its fixed
   tables, and the growth of traced Python memory (which must not scale with the vocabulary).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from detectors.signitrend import BurstDetector  # noqa: E402
from detectors.tokenize import Tokenizer  # noqa: E402
from streams.simulator import SimConfig, simulate  # noqa: E402


def complaints(n: int) -> list[tuple[float, str, str]]:
    sim = simulate(SimConfig(seed=9, customers=max(3000, n // 4), complaints_per_day=n // 3, orders_per_day=100, days=3, history_days=0))
    out = [
        (float(e["ts_epoch"]) if "ts_epoch" in e else 0.0, e["event_id"], e["text"])
        for e in sim.events
        if e["event_type"] == "complaint.opened" and e.get("text")
    ]
    return out[:n]


def long_texts(n: int, seed: int = 3) -> list[str]:
    """Complaint texts of about 50 characters: the simulator's phrasings joined until long enough."""
    import random

    from streams.simulator.texts import CATEGORIES, complaint_text

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = ""
        while len(text) < 40:
            text += complaint_text(rng, rng.choice(list(CATEGORIES)), rng.choice(("宽带", "5G套餐", "IPTV", "固话"))) + "。"
        out.append(text[:54])
    return out


def through_the_engine(n: int) -> tuple[float, float, int, int]:
    """Complaints/s of the pack's two detectors through decode and both engine stages; cohorts and table bytes."""
    import datetime as dt
    import random

    import msgspec

    from rules.loader import load_rules
    from streams.config import default_rules_dir
    from streams.engine import DictBackend, Engine, EngineConfig
    from streams.evaluate import detector_of
    from streams.local import LocalRunner
    from streams.simulator.world import CHANNELS, PRODUCTS, REGIONS

    rules = [r for r in load_rules(default_rules_dir()).rules if detector_of(r) is not None]
    rng = random.Random(5)
    texts = long_texts(n)
    t0 = dt.datetime(2026, 3, 2, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()
    encode = msgspec.json.Encoder().encode
    lines = [
        encode(
            {
                "event_id": f"k-{i}",
                "event_type": "complaint.opened",
                "ts": dt.datetime.fromtimestamp(t0 + i * 3.0, dt.timezone(dt.timedelta(hours=8))).isoformat(),
                "customer_id": f"c-{rng.randrange(100_000):06d}",
                "complaint_id": f"cp-{i}",
                "region": rng.choice(list(REGIONS)),
                "product": rng.choice(list(PRODUCTS)),
                "channel": rng.choice(list(CHANNELS)),
                "tier": "silver",
                "text": text,
            }
        )
        for i, text in enumerate(texts)
    ]
    engine = Engine(rules, DictBackend(), EngineConfig(allowed_lateness=300.0, idle_after=None))
    runner = LocalRunner.replaying(engine, [])
    started = time.perf_counter()
    runner.run(iter(lines), close=True)
    rate = n / (time.perf_counter() - started)
    cohorts = sum(1 for _ in engine.backend.namespace("spike-b:complaint-spike", object).items())  # type: ignore[attr-defined]
    hot = next(r for r in rules if getattr(r, "source", "") == "hot_word")
    tables = hot.detector.memory_bytes() if hot.detector is not None else 0  # type: ignore[attr-defined]
    return rate, statistics.median(len(t) for t in texts), cohorts, tables


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--complaints", type=int, default=50_000)
    parser.add_argument("--terms", type=int, default=1_000_000)
    args = parser.parse_args()
    console = Console()
    docs = complaints(args.complaints)
    lengths = [len(text) for _, _, text in docs]
    console.print(f"{len(docs):,} simulated complaint texts, median {statistics.median(lengths):.0f} characters")
    tokenizer = Tokenizer()
    started = time.perf_counter()
    terms = [tokenizer.terms(text) for _, _, text in docs]
    tokenise = len(docs) / (time.perf_counter() - started)
    detector = BurstDetector(window=600)
    started = time.perf_counter()
    for i, ((_, doc_id, text), doc_terms) in enumerate(zip(docs, terms, strict=True)):
        detector.add(i * 0.5, doc_id, doc_terms, text)  # 2 complaints a second of event time: 1,200 per window
    detect = len(docs) / (time.perf_counter() - started)
    both = 1 / (1 / tokenise + 1 / detect)
    table = Table(title="hot words: complaints per second (one core)")
    for column in ("stage", "complaints/s", "terms per complaint"):
        table.add_column(column, justify="right")
    table.add_row("tokenise", f"{tokenise:,.0f}", f"{statistics.mean(len(t) for t in terms):.1f}")
    table.add_row("burst detector", f"{detect:,.0f}", "")
    table.add_row("both", f"{both:,.0f}", "")
    console.print(table)

    engine_rate, texts_median, cohorts, tables = through_the_engine(args.complaints)
    both_table = Table(title="both detectors through the engine (one core)")
    for column in ("complaints/s", "median text (chars)", "cohorts kept", "hot-word tables (bytes)", "vs detectors alone"):
        both_table.add_column(column, justify="right")
    both_table.add_row(f"{engine_rate:,.0f}", f"{texts_median:.0f}", f"{cohorts:,}", f"{tables:,}", f"{engine_rate / both:.2f}×")
    console.print(both_table)

    detector = BurstDetector(window=600)
    fixed = detector.memory_bytes()
    per_window = 50_000
    detector.add(0.0, "warm", ["warm"], "")
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    for i in range(args.terms):
        detector.add((i // per_window) * 600.0, f"k{i}", [f"term-{i}"], "")
    elapsed = time.perf_counter() - started
    grown = tracemalloc.get_traced_memory()[0] - baseline
    tracemalloc.stop()
    mem = Table(title=f"burst detector memory with {args.terms:,} distinct terms")
    for column in ("fixed tables (bytes)", "traced growth (bytes)", "growth per distinct term", "terms/s (traced)"):
        mem.add_column(column, justify="right")
    mem.add_row(f"{fixed:,}", f"{grown:,}", f"{grown / args.terms:.2f}", f"{args.terms / elapsed:,.0f}")
    console.print(mem)


if __name__ == "__main__":
    main()
