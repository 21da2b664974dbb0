"""Hot-word detector throughput and memory, measured in one run (issue 4, first parts; not yet in the engine).

    .venv/bin/python bench/detectors.py [--complaints 50000] [--terms 1000000]

1. complaints/s through tokenisation alone, the burst detector alone (pre-tokenised), and both,
   on the simulator's complaint texts (mostly Chinese, about 50 characters);
2. the burst detector's memory with ``--terms`` distinct terms streamed through it: its fixed
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
