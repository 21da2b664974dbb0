"""Memory per open SLA watch: a million open installation orders held by the engine (benchmark 5).

    .venv/bin/python bench/memory.py [--orders 1000000]

Each order opens a watch of the default pack's ``install-sla`` rule (with its one timer, at its
80 % warning) and none closes. Measured in a fresh process per backend, as the growth of RSS over
the orders, divided by the orders; the orders' JSON lines are read before and held, each batch is
decoded as the runners do it and dropped, so what a watch keeps of its event (its key, its fields)
is counted:

* ``dict``: the local runner's state (Python objects);
* ``changelog``: the worker's memory-store layout (msgpack bytes per key, as the faust table
  holds them, and the timer index);
* ``rocksdb``: the same writes into faust's rocksdb store (rocksdict), with its size on disk.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import StandInTable  # noqa: E402

RULE = "install-sla"


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def orders(n: int) -> list[bytes]:
    return [
        json.dumps(
            {
                "event_id": f"o-{i}",
                "event_type": "order.created",
                "ts": f"2026-03-01T{i // 60_000 % 24:02d}:{i // 1000 % 60:02d}:{i % 60:02d}+08:00",
                "customer_id": f"c-{i % 200_000:06d}",
                "region": "宁波",
                "tier": "standard",
                "plan_id": "宽带-199",
                "monthly_fee": 199,
                "order_id": f"ord-{i:08d}",
                "product": "宽带",
                "channel": "营业厅",
            },
            ensure_ascii=False,
        ).encode()
        for i in range(n)
    ]


def measure(backend_name: str, n: int) -> dict[str, float]:
    """In this process: RSS growth over ``n`` open watches (run in a child, so each backend starts clean)."""
    from rules import load_rules
    from streams.config import default_rules_dir
    from streams.decode import Decoder
    from streams.engine import DictBackend, Engine, EngineConfig
    from streams.faust_state import FaustBackend
    from streams.partitioning import partitions_for

    rules = [r for r in load_rules(default_rules_dir()).rules if r.rule_id == RULE]
    decoder = Decoder({"orders": "orders", "billing": "billing", "complaints": "complaints"})
    lines = orders(n)
    disk = 0.0
    tmp = tempfile.mkdtemp(prefix="yujing-mem-")
    if backend_name == "dict":
        backend = DictBackend()
    else:
        table = _table(backend_name, tmp)
        backend = FaustBackend(table)
    engine = Engine(rules, backend, EngineConfig(idle_after=None))
    gc.collect()
    before = rss_bytes()
    step = 1000  # the worker's batch
    for i in range(0, n, step):
        events = [decoder.decode("orders", 0, j, None, lines[j]) for j in range(i, min(n, i + step))]
        # uncached: partition_for's cache of recent customers is not state (bounded, and a worker has none)
        placed = partitions_for([e.customer_id for e in events], 8)  # type: ignore[union-attr]
        engine.process(list(zip(placed, events, strict=True)))
        engine.commit()
        if isinstance(backend, FaustBackend):
            backend.take_outbox()  # sent to the changelog by the worker
    gc.collect()
    after = rss_bytes()  # the lines, read before ``before``, are still held: only the state grew
    watches = len(list(backend.namespace(f"sla:{RULE}", object).items())) if backend_name == "dict" else n
    if backend_name == "rocksdb":
        for db in table.data._dbs.values():
            db.flush()
        disk = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())
    return {"watches": watches, "rss_per_watch": (after - before) / n, "disk_per_watch": disk / n}


def _table(kind: str, tmp: str) -> Any:
    """The worker's table: faust's memory store (``changelog``; a stand-in with its layout), or faust's own
    rocksdb store in ``tmp``, with the worker's settings (rocksdict, faust's default memtables and cache)."""
    if kind != "rocksdb":
        return StandInTable()
    import faust

    app = faust.App("bench-memory", broker="kafka://127.0.0.1:1", store="rocksdb://", datadir=tmp, topic_partitions=8)
    return app.Table("state", key_type=bytes, value_type=bytes, partitions=8)


def run(n: int) -> dict[str, dict[str, float]]:
    """Each backend in a fresh interpreter: ``{backend: {watches, rss_per_watch, disk_per_watch}}``."""
    out = {}
    for name in ("dict", "changelog", "rocksdb"):
        code = f"import json, bench.memory as m; print(json.dumps(m.measure({name!r}, {n})))"
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
        out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000_000)
    args = parser.parse_args()
    for name, r in run(args.orders).items():
        print(f"{name:10} {r['watches']:>10,.0f} watches  {r['rss_per_watch']:7.0f} B RSS/watch  {r['disk_per_watch']:7.0f} B disk/watch")


if __name__ == "__main__":
    main()
