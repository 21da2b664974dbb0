"""Engine throughput as the rule count grows, and the memory an open SLA watch costs.

    .venv/bin/python bench/rules_scale.py [--events 60000] [--watches 1000000]

1. events/s through the engine (decoded events, no I/O) with the default pack,
   with 100 rules and with 1,000 rules loaded (the pack plus generated rules:
   a typical mix, mostly filters, and a mix of every type alike); the ratio to
   the default pack, how many rules an event meets on average (rules are
   indexed by event type and by the field value a condition requires), and how
   many it would meet with an index by event type alone;
2. bytes per open SLA watch with N open orders: the growth of the process's
   resident memory over N ``order.created`` events whose deadlines never pass,
   divided by N, and the bytes a watch takes serialised (what the worker's
   table and changelog hold per watch).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from rules.loader import load_rule_texts, load_rules  # noqa: E402
from rules.types.sla import SlaWatch  # noqa: E402
from streams.config import default_rules_dir  # noqa: E402
from streams.decode import Decoder  # noqa: E402
from streams.engine import DictBackend, Engine, EngineConfig  # noqa: E402
from streams.partitioning import partition_for  # noqa: E402
from streams.simulator import SimConfig, simulate  # noqa: E402
from yujing.events import OrderEvent  # noqa: E402

TERMS = ["断网", "多扣费", "网速慢", "投诉", "退费", "客服", "装机", "延期", "信号差", "乱收费", "套餐", "账单"]
REGIONS = ["杭州", "宁波", "温州", "台州", "绍兴", "金华", "嘉兴", "湖州", "舟山", "丽水", "衢州"]


#: Which generated rule kinds a mix draws (0 text match, 1 region match, 2 threshold, 3 sla, 4 sequence, 5 compare).
MIXES = {
    "typical": [0] * 7 + [1] * 7 + [2] * 2 + [3] * 2 + [4] + [5],  # mostly filters, some stateful rules
    "every type alike": [0, 1, 2, 3, 4, 5],
}


def generated_rule(i: int, rng: random.Random, kind: int) -> str:
    """One rule of the given kind, with its own id and parameters."""
    head = f"id: gen-{i}\ntitle: generated {i}\nseverity: minor\nsummary: 'rule {i} {{customer_id}}'\n"
    if kind == 0:
        terms = rng.sample(TERMS, 3)
        return head + f"type: match\non: [complaint.opened, complaint.updated]\nwhere: {{text: {{contains_any: {terms}}}}}\n"
    if kind == 1:
        region = rng.choice(REGIONS)
        return head + f"type: match\non: order.created\nwhere: \"region == '{region}' and monthly_fee > {rng.randint(50, 300)}\"\n"
    if kind == 2:
        return head + (
            f"type: threshold\non: complaint.opened\ngroup_by: customer_id\nwindow: {rng.randint(6, 48)}h\ncount: {rng.randint(3, 6)}\n"
        )
    if kind == 3:
        product = rng.choice(["宽带", "IPTV", "固话", "5G套餐"])
        return head + (
            f"type: sla\nkey: order_id\nstart: {{on: order.created, where: {{product: {product}}}}}\n"
            f"stop: {{on: order.completed}}\ndeadline: {rng.randint(24, 96)}h\n"
        )
    if kind == 4:
        within = f"{rng.randint(1, 14)}d"
        pair = "first: {on: order.completed}\nthen: {on: complaint.opened}\n"
        return head + f"type: sequence\nkey: customer_id\n{pair}within: {within}\n"
    return head + (
        "type: compare\nkey: order_id\nremember: {on: order.created, as: o, fields: [monthly_fee]}\n"
        f'check: {{on: bill.issued, where: "amount > {1 + rng.random():.2f} * o.monthly_fee"}}\n'
    )


def rule_set(total: int, mix: str) -> list:
    pack = load_rules(default_rules_dir()).rules
    rng = random.Random(total)
    kinds = MIXES[mix]
    extra = {f"gen-{i}.yaml": generated_rule(i, rng, kinds[i % len(kinds)]) for i in range(max(0, total - len(pack)))}
    loaded = load_rule_texts(extra)
    assert loaded.ok, loaded.errors[:3]
    return pack + loaded.rules


def events(n: int) -> list:
    config = SimConfig(seed=5, customers=max(2000, n // 6), orders_per_day=n // 12, complaints_per_day=n // 12, days=2, history_days=2)
    sim = simulate(config)
    decoder = Decoder({"orders": "orders", "billing": "billing", "complaints": "complaints"})
    out = []
    for line in sim.lines():
        event = decoder.decode(decoder.infer_topic(line), 0, 0, None, line)
        out.append((partition_for(event.customer_id, 8), event))
    return out[:n]


def throughput(rules: list, batch: list, repeat: int = 2) -> tuple[float, float]:
    best = 0.0
    met = 0.0
    for _ in range(repeat):
        engine = Engine(rules, DictBackend(), EngineConfig(allowed_lateness=300, idle_after=None))
        met = sum(len(engine.rules_for(e)) for _, e in batch) / len(batch)
        started = time.perf_counter()
        for i in range(0, len(batch), 1000):
            engine.process(batch[i : i + 1000])
            engine.commit()
        best = max(best, len(batch) / (time.perf_counter() - started))
    return best, met


def _of_type(rules: list, batch: list) -> float:
    """Rules an event would meet if they were indexed by event type only (no guards)."""
    by_type: dict[str, int] = {}
    for rule in rules:
        for event_type in rule.event_types:
            by_type[event_type] = by_type.get(event_type, 0) + 1
    return sum(by_type.get(e.event_type, 0) for _, e in batch) / len(batch)


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def sla_memory(watches: int) -> tuple[float, float, float]:
    rules = load_rules(default_rules_dir()).rules
    sla = [r for r in rules if r.rule_id == "install-sla"]
    backend = DictBackend()
    engine = Engine(sla, backend, EngineConfig(allowed_lateness=300, idle_after=None))
    tz = dt.timezone(dt.timedelta(hours=8))
    t0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=tz)
    gc.collect()
    before = rss()
    started = time.perf_counter()
    chunk = 10_000
    for start in range(0, watches, chunk):
        batch = []
        for i in range(start, min(start + chunk, watches)):
            customer = f"c-{i:07d}"
            event = OrderEvent(
                event_id=f"o-{i}",
                event_type="order.created",
                ts=t0 + dt.timedelta(seconds=i % 600),
                customer_id=customer,
                order_id=f"ord-{i:07d}",
                region=REGIONS[i % len(REGIONS)],
                product="宽带",
                tier="gold",
                channel="营业厅",
            )
            batch.append((partition_for(customer, 8), event))
        engine.process(batch)
        engine.commit()
    elapsed = time.perf_counter() - started
    gc.collect()
    grown = rss() - before
    open_watches = len(backend.namespaces["sla:install-sla"])
    assert open_watches == watches, open_watches
    sample_key = "ord-0000001"
    packed = backend.namespaces["sla:install-sla"].data[sample_key]  # the watch as its msgpack bytes; its timer is in it
    assert isinstance(packed, bytes) and msgspec.msgpack.decode(packed, type=SlaWatch).deadline is not None
    serialised = len(packed) + len(sample_key) + 20
    return grown / watches, serialised, watches / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--watches", type=int, default=1_000_000)
    parser.add_argument("--only-memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    console = Console()
    if args.only_memory:
        print_memory(console, args.watches)
        return
    batch = events(args.events)
    console.print(f"{len(batch):,} simulated events, decoded once; engine only (no I/O), best of 2 runs")
    table = Table(title="engine throughput by rule count")
    for column in ("rules loaded", "mix", "events/s", "vs default pack", "rules met per event", "rules of its type"):
        table.add_column(column, justify="right")
    base, _ = throughput(load_rules(default_rules_dir()).rules, batch)
    pack_met = throughput(load_rules(default_rules_dir()).rules, batch, repeat=1)[1]
    table.add_row(f"{len(load_rules(default_rules_dir()).rules)}", "default pack", f"{base:,.0f}", "1.00", f"{pack_met:.1f}", "")
    for mix in MIXES:
        for count in (100, 1000):
            rules = rule_set(count, mix)
            sample = batch[: max(2000, len(batch) * 100 // count)]  # bounded time per row; rates stay comparable
            rate, met = throughput(rules, sample)
            of_type = _of_type(rules, sample)
            table.add_row(f"{len(rules):,}", mix, f"{rate:,.0f}", f"{rate / base:.2f}", f"{met:.1f}", f"{of_type:.1f}")
    console.print(table)
    # In a fresh process: this one's freed arenas would hide the growth.
    import subprocess

    subprocess.run([sys.executable, __file__, "--only-memory", "--watches", str(args.watches)], check=True)


def print_memory(console: Console, watches: int) -> None:
    per_watch, serialised, rate = sla_memory(watches)
    mem = Table(title=f"{watches:,} open SLA watches (install-sla, one partition set of 8)")
    for column in ("resident bytes per watch", "serialised bytes per watch (table/changelog)", "watches opened per s"):
        mem.add_column(column, justify="right")
    mem.add_row(f"{per_watch:,.0f}", f"{serialised:,.0f}", f"{rate:,.0f}")
    console.print(mem)


if __name__ == "__main__":
    main()
