"""Rules grouped by a cohort (region, product, channel) count across partitions in the engine's cohort stage; ``ratio``."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.engine import DictBackend, Engine, EngineConfig
from streams.partitioning import partition_for
from tests.helpers import T0, assert_arrival_order_and_replay_do_not_matter, complaint, order, rules_from, run, spread_over_partitions

SERVICE_RATE = """
    id: service-rate
    type: ratio
    title: 服务率
    severity: major
    numerator: {on: complaint.opened}
    denominator: {on: order.completed}
    group_by: [product, region]
    window: 1d
    timezone: "+08:00"
    per: 10000
    above: 500
    min_denominator: 20
    summary: "{region}{product} 服务率 {rate}/万（{numerator}/{denominator}）"
"""

REGION_BURST = """
    id: region-burst
    type: threshold
    title: 地区断网投诉激增
    severity: critical
    on: complaint.opened
    where: "text contains '断网'"
    group_by: region
    window: 10m
    count: 5
    summary: "{region} {window} 内 {count} 起断网投诉"
"""

H = 60


def test_a_region_threshold_counts_customers_of_every_partition(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, REGION_BURST)
    customers = [f"c-{i}" for i in range(5)]
    assert len({partition_for(c, 8) for c in customers}) > 2  # they live in different partitions
    events = [complaint("opened", i, complaint_id=f"k{i}", customer=c, region="台州", text="断网了") for i, c in enumerate(customers)]
    events.append(complaint("opened", 30, complaint_id="late", customer="c-9", region="杭州", text="x"))
    alerts = run(rules, events, spread=True)
    assert [(a.status, (a.starts_at - T0).total_seconds() / 60) for a in alerts] == [("firing", 4), ("resolved", 4)]
    assert alerts[0].labels["region"] == "台州" and alerts[0].summary == "台州 10m 内 5 起断网投诉"


def test_a_partition_whose_complaints_are_not_read_yet_holds_the_cohort_stage(tmp_path: Path) -> None:
    """Whole fetches bring each topic's partitions unevenly: every partition's orders can be in before most
    of their complaints. A partition with a stream not read yet has no watermark (-inf); it must hold the
    cohort stage, not drop out of its minimum (seen under the peers' driver: most surge alerts lost)."""
    customers = [f"c-{i}" for i in range(40)]
    events = [
        complaint("opened", 60 * w + i / 2, complaint_id=f"k{w}-{i}", customer=customers[(3 * w + i) % 40], region="台州", text="断网")
        for w in range(12)
        for i in range(5)
    ]
    spread = spread_over_partitions(events)
    customer_of = {p: e.customer_id for p, e in spread}
    orders = [order("created", 12 * 60, order_id=f"o-{p}", customer=c) for p, c in sorted(customer_of.items())]  # read to their end
    tumbling = REGION_BURST.replace("window: 10m", "window: 10m\n    mode: tumbling")  # as the peers' surge rule
    in_order = run(rules_from(tmp_path, tumbling), events + orders, spread=True)
    wall = [0.0]
    config = EngineConfig(allowed_lateness=60, idle_after=3600, streams=("orders", "complaints"))
    engine = Engine(rules_from(tmp_path, tumbling), DictBackend(), config, clock=lambda: wall[0])
    engine.expect_partitions(range(8))
    engine.set_backlog({(p, "complaints") for p in range(1, 8)})  # their complaints wait unread
    first = spread_over_partitions(orders) + [pe for pe in spread if pe[0] == 0]  # every partition seen; complaints of 0 only
    rest = [pe for pe in spread if pe[0] != 0]
    out = []
    for batch in (first, *[rest[i : i + 20] for i in range(0, len(rest), 20)]):
        out += engine.process(batch)
        engine.commit()
    out += engine.close_input()
    assert len(customer_of) == 8 and sum(a.status == "firing" for a in in_order) == 12
    assert [(a.alert_id, a.status, a.starts_at) for a in out] == [(a.alert_id, a.status, a.starts_at) for a in in_order]


def _day(rng: random.Random, completed: int, complaints: int, region: str) -> list[dict]:
    events = []
    for i in range(completed):
        events.append(order("completed", rng.uniform(0, 14 * H), order_id=f"{region}-o{i}", customer=f"{region}-c{i}", region=region))
    for i in range(complaints):
        c = complaint("opened", rng.uniform(0, 14 * H), complaint_id=f"{region}-k{i}", customer=f"{region}-c{i}", region=region)
        events.append({**c, "product": "宽带"})
    return events


def test_service_rate_fires_for_the_group_above_the_line_at_the_end_of_its_day(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, SERVICE_RATE)
    rng = random.Random(1)
    events = _day(rng, 40, 3, "台州") + _day(rng, 40, 1, "杭州") + _day(rng, 5, 5, "舟山")  # 750/万, 250/万, too few orders
    events.sort(key=lambda e: e["ts"])
    events.append(order("created", 16 * H, order_id="next-day", customer="x", region="台州"))  # event time passes local midnight
    alerts = run(rules, events, spread=True)
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.labels == {"product": "宽带", "region": "台州", "rule_title": "服务率"}
    assert alert.summary == "台州宽带 服务率 750.0/万（3/40）"
    assert (alert.starts_at - T0).total_seconds() / 3600 == 15  # 09:00 + 15 h = local midnight
    assert alert.evidence["numerator"] == 3 and alert.evidence["denominator"] == 40


def test_service_rate_reports_every_judged_group_as_a_score(tmp_path: Path) -> None:
    """The weekly report's complaints per 10,000 orders come from these: every group with orders, alerting or not."""
    from streams.engine import DictBackend, Engine, EngineConfig

    rules = rules_from(tmp_path, SERVICE_RATE)
    rng = random.Random(1)
    events = _day(rng, 40, 3, "台州") + _day(rng, 40, 1, "杭州") + _day(rng, 5, 5, "舟山")
    events.sort(key=lambda e: e["ts"])
    events.append(order("created", 16 * H, order_id="next-day", customer="x", region="台州"))
    engine = Engine(rules, DictBackend(), EngineConfig(allowed_lateness=300.0, idle_after=None))
    run(rules, events, spread=True, engine=engine)
    scores = sorted((s.subject, s.score, s.observed, s.expected) for s in engine.take_scores())
    assert scores == [
        ("product=宽带,region=台州", 750.0, 3, 40),
        ("product=宽带,region=杭州", 250.0, 1, 40),
        ("product=宽带,region=舟山", 10000.0, 5, 5),
    ]


def _events(seed: int) -> list[dict]:
    rng = random.Random(seed)
    events = []
    for i in range(60):
        region = rng.choice(["台州", "杭州"])
        if rng.random() < 0.5:
            events.append(order("completed", rng.uniform(0, 600), order_id=f"o{i}", customer=f"c{rng.randrange(20)}", region=region))
        else:
            text = rng.choice(["断网", "慢"])
            c = complaint("opened", rng.uniform(0, 600), complaint_id=f"k{i}", customer=f"c{rng.randrange(20)}", region=region, text=text)
            events.append({**c, "product": "宽带"})
    events.sort(key=lambda e: e["ts"])
    return events


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), shuffle_seed=st.integers(0, 10_000), batch=st.integers(1, 6))
def test_shuffling_within_lateness_and_replaying_give_the_same_alerts(tmp_path_factory, seed: int, shuffle_seed: int, batch: int) -> None:
    rules = rules_from(
        tmp_path_factory.mktemp("r"),
        SERVICE_RATE.replace("window: 1d", "window: 2h").replace("min_denominator: 20", "min_denominator: 3"),
        REGION_BURST.replace("count: 5", "count: 3"),
    )
    events = _events(seed)
    assert_arrival_order_and_replay_do_not_matter(rules, events, shuffle_seed, batch, spread=True)
