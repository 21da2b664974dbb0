"""The engine of two source trees, side by side: the same events, runs alternated, one fresh process each.

    .venv/bin/python bench/ab_engine.py BEFORE_TREE AFTER_TREE [--rules DIR] [--events FILE] [--reps 3]

A tree is a checkout of the project (``git worktree add /tmp/before <commit>``). Each run imports Yujing from its
tree and times :func:`bench.throughput.engine_rate` over the events (default: the peers' data set) with ``--rules``
(default: the tree's own pack), printing events/s, CPU seconds and alerts. Alternating the trees puts both under
the same machine at nearly the same time: on a shared machine the runs of one tree vary by 10 % and more.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

#: One run, in a fresh interpreter with ``sys.path`` set to the tree: events/s, CPU seconds and alerts as JSON.
_RUN = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from bench.throughput import engine_rate
lines = Path(sys.argv[2]).read_bytes().splitlines()
cpu = time.process_time()
rate, alerts = engine_rate(lines, Path(sys.argv[3]) if sys.argv[3] else None)
print(json.dumps({"rate": rate, "cpu": time.process_time() - cpu, "alerts": alerts}))
"""


def run(tree: Path, events: Path, rules: Path | None) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _RUN, str(tree), str(events), str(rules or "")], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rules", type=Path, help="rules directory (default: each tree's own pack)")
    parser.add_argument("--events", type=Path, default=Path("/tmp/peer/ds/events.jsonl"))
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    for _ in range(args.reps):
        for tree in (args.before, args.after):
            r = run(tree.resolve(), args.events, args.rules)
            print(f"{tree!s:30s} {r['rate']:>9,.0f} ev/s  CPU {r['cpu']:6.2f} s  {int(r['alerts'])} alerts", flush=True)


if __name__ == "__main__":
    main()
