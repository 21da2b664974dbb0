"""``cohort_spike``: seasonal baselines per cohort, the count model's guard, drill-down to one alert, state bounds."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rules import load_rules
from rules.template import as_text
from streams.config import default_rules_dir
from streams.engine import DictBackend, Engine, EngineConfig
from tests.helpers import T0, complaint, order, rules_from, run, run_with_restart
from yujing.timeutil import format_duration

RULE = """
id: spike
type: cohort_spike
title: 投诉突增
severity: major
on: complaint.opened
dimensions: [region, product]
window: 1h
warmup: 3d
summary: "{cohort} 投诉 {observed} 件，预期 {expected}"
"""

REGIONS = ("杭州", "台州", "温州")
PRODUCTS = ("宽带", "IPTV", "手机")


def hourly(hours: int, rate: Any, seed: int = 1, extra: Any = None) -> list[dict[str, Any]]:
    """Complaints hour by hour; ``rate(hour, region, product)`` is the Poisson mean of each cohort."""
    rnd = random.Random(seed)
    events = []
    n = 0
    for h in range(hours):
        for region in REGIONS:
            for product in PRODUCTS:
                mean = rate(h, region, product)
                count = sum(1 for _ in range(int(mean * 4)) if rnd.random() < 0.25)  # binomial ≈ Poisson(mean)
                for _ in range(count):
                    n += 1
                    minute = h * 60 + rnd.uniform(0, 59.9)
                    events.append(complaint("opened", minute, f"cp-{n}", f"c-{n % 500}", region=region, product=product))
        if extra:
            events.extend(extra(h))
    events.sort(key=lambda e: e["ts"])
    return events


def daily_cycle(h: int, region: str, product: str) -> float:
    local = (h + 9) % 24  # T0 is 09:00 local
    return 4.0 if 9 <= local < 21 else 0.5


def spikes(alerts: list[Any]) -> list[tuple[str, str, str]]:
    return sorted((a.evidence["cohort"], a.status, a.starts_at.isoformat()) for a in alerts)


def test_ordinary_days_with_a_daily_cycle_raise_nothing(tmp_path: Path) -> None:
    alerts = run(rules_from(tmp_path, RULE), hourly(24 * 6, daily_cycle), batch=50)
    assert alerts == []


def test_an_outage_in_one_region_and_product_is_one_alert_about_that_cohort(tmp_path: Path) -> None:
    def outage(h: int, region: str, product: str) -> float:
        base = daily_cycle(h, region, product)
        return base * 6 if h in (24 * 5 + 3, 24 * 5 + 4) and region == "台州" and product == "宽带" else base

    alerts = run(rules_from(tmp_path, RULE), hourly(24 * 6, outage), batch=50)
    firing = [a for a in alerts if a.status == "firing"]
    assert {a.evidence["cohort"] for a in firing} == {"region=台州,product=宽带"}, spikes(alerts)
    first = min(firing, key=lambda a: a.starts_at)
    assert first.labels["region"] == "台州" and first.labels["product"] == "宽带"
    assert first.source == "cohort_spike"
    assert first.evidence["observed"] > 3 * first.evidence["expected"]
    assert set(first.evidence["broader_cohorts"]) <= {"region=台州", "product=宽带", "region=台州,product=宽带"}
    resolved = [a for a in alerts if a.status == "resolved"]
    assert [a.alert_id for a in resolved] == [first.alert_id]  # one episode over two windows, then resolved


def test_a_region_wide_outage_is_reported_on_the_region_with_its_drill_down(tmp_path: Path) -> None:
    def outage(h: int, region: str, product: str) -> float:
        base = daily_cycle(h, region, product)
        return base * 5 if h == 24 * 5 + 3 and region == "温州" else base

    alerts = run(rules_from(tmp_path, RULE), hourly(24 * 6, outage), batch=50)
    firing = [a for a in alerts if a.status == "firing"]
    assert [a.evidence["cohort"] for a in firing] == ["region=温州"], spikes(alerts)
    children = {d["cohort"] for d in firing[0].evidence["drill_down"]}
    assert children and all(c.startswith("region=温州,product=") for c in children)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("hit", "reported"), [(("宽带", "IPTV", "手机"), "region=温州"), (("宽带",), "region=温州,product=宽带")])
def test_the_drill_down_names_a_child_only_when_the_rise_is_confined_to_it(
    tmp_path: Path, seed: int, hit: tuple[str, ...], reported: str
) -> None:
    """Contribution to the change alone names the child with most of the volume: 宽带, with 60 % of every region's
    complaints, explained 60 % of an outage on all three products and took its alert (on all three seeds). The
    rest of the region, its other products, rose too: that outage is the region's. An outage of 宽带 alone leaves
    the rest where it was: that one is 宽带's."""
    shares = {"宽带": 0.6, "IPTV": 0.25, "手机": 0.15}

    def outage(h: int, region: str, product: str) -> float:
        local = (h + 9) % 24  # T0 is 09:00 local
        base = 12.0 * shares[product] * (1.0 if 9 <= local < 21 else 0.15)
        return base * 5 if h == 24 * 5 + 3 and region == "温州" and product in hit else base

    alerts = run(rules_from(tmp_path, RULE), hourly(24 * 6, outage, seed=seed), batch=50)
    firing = [a for a in alerts if a.status == "firing"]
    assert [a.evidence["cohort"] for a in firing] == [reported], spikes(alerts)


def test_few_complaints_never_spike_however_unusual(tmp_path: Path) -> None:
    def quiet(h: int, region: str, product: str) -> float:
        return 3.0 if h == 24 * 5 + 3 and region == "杭州" and product == "手机" else 0.05

    alerts = run(rules_from(tmp_path, RULE), hourly(24 * 6, quiet), batch=50)
    assert alerts == []  # 3 where 0.05 were expected: improbable, but below min_count


def test_a_rate_does_not_spike_when_orders_rise_with_complaints(tmp_path: Path) -> None:
    rate_rule = RULE.replace("id: spike", "id: spike-rate").replace("window: 1h", "window: 1h\nrate_of: order.completed")

    def campaign(h: int, region: str, product: str) -> float:
        return 2.0 * (6 if 24 * 5 <= h < 24 * 5 + 3 else 1)

    def orders(h: int) -> list[dict[str, Any]]:
        n = 40 * (6 if 24 * 5 <= h < 24 * 5 + 3 else 1)
        return [
            order("completed", h * 60 + i * 59 / n, f"o-{h}-{i}", f"c-{i}", region=REGIONS[i % 3], product=PRODUCTS[i // 3 % 3])
            for i in range(n)
        ]

    events = hourly(24 * 6, campaign, extra=orders)
    counted = run(rules_from(tmp_path, RULE), events, batch=100)
    assert any(a.status == "firing" for a in counted)  # as a count it spikes…
    assert run(rules_from(tmp_path, rate_rule), events, batch=100) == []  # …as a rate per order it does not


def test_cohorts_are_bounded_and_state_is_what_recovers(tmp_path: Path) -> None:
    bounded = RULE.replace("warmup: 3d", "warmup: 3d\nmax_cohorts: 5")
    rules = rules_from(tmp_path, bounded)
    backend = DictBackend()
    engine = Engine(rules, backend, EngineConfig(allowed_lateness=300, idle_after=None))
    run(rules, hourly(30, daily_cycle), engine=engine, batch=50)
    baselines = backend.namespace("cohort~spike-b:spike", object)
    kept = dict(baselines.items()) or dict(backend.namespace("spike-b:spike", object).items())
    assert len(kept) == 5
    assert rules[0].dropped_cohorts > 0  # type: ignore[attr-defined]


def test_a_restart_mid_stream_gives_the_alerts_of_an_unbroken_run(tmp_path: Path) -> None:
    def outage(h: int, region: str, product: str) -> float:
        base = daily_cycle(h, region, product)
        return base * 6 if h in (24 * 5 + 3, 24 * 5 + 4) and region == "台州" else base

    events = hourly(24 * 6, outage)
    whole = run(rules_from(tmp_path, RULE), events, batch=50)
    cut = len(events) * 5 // 6 + 7  # within the fifth day's first hours
    restarted = run_with_restart(lambda: rules_from(tmp_path, RULE), events, cut, batch=50)
    assert whole and [(a.alert_id, a.status, a.evidence) for a in restarted] == [(a.alert_id, a.status, a.evidence) for a in whole]


def test_a_hundred_thousand_cohorts_stay_within_the_documented_bound(tmp_path: Path) -> None:
    """120,000 distinct cohorts in one window: 100,000 are kept, each within the documented bytes."""
    import sys

    import msgspec

    from rules.types.cohort_spike import BASELINE_BYTES, Baseline
    from yujing.cohort import CohortRecord
    from yujing.timeutil import to_datetime

    rule = rules_from(tmp_path, RULE.replace("dimensions: [region, product]", "dimensions: [region]\ndepth: 1"))[0]
    engine = Engine([rule], DictBackend(), EngineConfig(allowed_lateness=0, idle_after=None))
    side = engine.cohort
    assert side is not None
    records = [
        (0, CohortRecord("cohort:spike", "*", to_datetime(1000.0 + i * 0.01), f"e{i}", "p0", "num", "", {"region": f"r{i:06d}"}))
        for i in range(120_000)
    ]
    side.process(records)  # type: ignore[arg-type]
    side.advance_marks({q: {p: 10_000.0 for p in range(8)} for q in range(8)})  # the window closes
    baselines = dict(engine.backend.namespace("spike-b:spike", Baseline).items())  # type: ignore[attr-defined]
    assert len(baselines) == 100_000 and rule.dropped_cohorts == 20_000  # type: ignore[attr-defined]
    assert max(len(msgspec.msgpack.encode(b)) + len(k.encode()) for k, b in baselines.items()) <= BASELINE_BYTES  # stored (Kafka)
    in_memory = sum(sys.getsizeof(k) + sys.getsizeof(b) + sys.getsizeof(b.values) for k, b in baselines.items())
    assert in_memory < 100_000 * 600, in_memory  # local runner: the objects themselves, under 60 MB
    counts = engine.backend.namespace("spike-n:spike", object)  # type: ignore[attr-defined]
    assert {k.split("|")[0] for k, _ in counts.items()} <= {"900.0", "1800.0"}  # the trailing window's steps only
    later = CohortRecord("cohort:spike", "*", to_datetime(11_800.0), "later", "p0", "num", "", {"region": "r000000"})
    side.process([(0, later)])  # type: ignore[list-item]
    side.advance_marks({q: {p: 20_000.0 for p in range(8)} for q in range(8)})  # a step a window later closes: the old steps' counts go
    assert [k for k, _ in counts.items()] == ["11700.0|region=r000000"]


def test_a_spike_is_found_within_its_first_hour_not_at_the_next_full_hour(tmp_path: Path) -> None:
    outage_hour = 24 * 5 + 3

    def outage(h: int, region: str, product: str) -> float:
        base = daily_cycle(h, region, product)
        return base * 6 if h in (outage_hour, outage_hour + 1) and region == "台州" and product == "宽带" else base

    alerts = run(rules_from(tmp_path, RULE), hourly(24 * 6, outage), batch=50)
    first = min((a for a in alerts if a.status == "firing"), key=lambda a: a.starts_at)
    began = T0 + dt.timedelta(hours=outage_hour)
    assert began < first.starts_at <= began + dt.timedelta(minutes=45), (first.starts_at, began)
    assert first.evidence["span_seconds"] in (1800.0, 3600.0)


def test_a_plan_charged_twice_in_every_region_is_one_alert_that_the_regions_join(tmp_path: Path) -> None:
    """The regions' complaints rise only by their share of the plan's: the plan's alert stands for them."""
    flat = RULE.replace("dimensions: [region, product]", "dimensions: [region, product]\ndepth: 1")

    def billing(h: int, region: str, product: str) -> float:
        base = daily_cycle(h, region, product)
        return base * 6 if 24 * 5 + 3 <= h < 24 * 5 + 7 and product == "宽带" else base

    events = hourly(24 * 6, billing)
    regions_only = flat.replace("dimensions: [region, product]", "dimensions: [region]").replace("id: spike", "id: spike-regions")
    alone = {a.evidence["cohort"] for a in run(rules_from(tmp_path, regions_only), events, batch=50) if a.status == "firing"}
    assert alone and all(c.startswith("region=") for c in alone)  # judged alone, regions do spike with the plan
    alerts = run(rules_from(tmp_path, flat), events, batch=50)
    firing = [a for a in alerts if a.status == "firing"]
    assert {a.evidence["cohort"] for a in firing} == {"product=宽带"}, spikes(alerts)  # beside it, they join its alert


def test_a_small_cohorts_sustained_rise_is_found_by_the_cusum(tmp_path: Path) -> None:
    """×4 on a cohort of 1.5 complaints an hour for eight hours: no span is significant, the CUSUM is."""

    def campaign(h: int, region: str, product: str) -> float:
        base = 1.5 if region == "温州" and product == "IPTV" else 4.0
        return base * 4 if 24 * 5 + 2 <= h < 24 * 5 + 10 and base == 1.5 else base

    alerts = run(rules_from(tmp_path, RULE), hourly(24 * 6, campaign, seed=3), batch=50)
    firing = [a for a in alerts if a.status == "firing"]
    assert [a.evidence["cohort"] for a in firing] == ["region=温州,product=IPTV"], spikes(alerts)
    ev = firing[0].evidence
    assert ev["sustained"] is True  # the CUSUM's, not a fixed span's
    assert ev["span_seconds"] > 3 * 3600  # the hours it piled up over, more than the longest fixed span
    assert T0 + dt.timedelta(hours=24 * 5 + 2) < firing[0].starts_at <= T0 + dt.timedelta(hours=24 * 5 + 10)


def test_the_rule_learns_its_week_from_all_its_complaints_in_local_time(tmp_path: Path) -> None:
    """Nine days from a Sunday 09:00 (+08:00); every cohort doubles on Mondays from 12:00 to 13:00 local. The
    rule's stored week knows Monday noon is twice a Tuesday noon, and Monday 11:00 is not."""
    import numpy as np

    from detectors.baseline import WeekShape
    from rules.types.cohort_spike import Week

    def monday_noon(h: int, region: str, product: str) -> float:
        local = (h + 9) % (24 * 7)  # hours since Sunday 00:00 local
        return 4.0 if 24 + 12 <= local < 24 + 13 else 2.0

    engine = Engine(rules_from(tmp_path, RULE), DictBackend(), EngineConfig(allowed_lateness=0, idle_after=None))
    run([], hourly(24 * 9, monday_noon, seed=4), engine=engine, batch=200)
    stored = dict(engine.backend.namespace("spike-w:spike", Week).items())  # type: ignore[attr-defined]
    week = WeekShape(np.frombuffer(stored["week"].values, dtype=np.float32).copy())
    assert week.windows_seen >= 24 * 8
    assert 1.6 < week.factor(12, 0) / week.factor(12, 1) < 2.4  # Monday noon vs Tuesday noon
    assert 0.7 < week.factor(11, 0) / week.factor(11, 1) < 1.4


PROPERTY_RULE = RULE.replace("warmup: 3d", "warmup: 6h\nmin_count: 6").replace(
    'summary: "{cohort} 投诉 {observed} 件，预期 {expected}"',
    'summary: "{cohort} 近 {window} 投诉 {observed} 件，预期 {expected}（{ratio} 倍）"',
)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(
    st.lists(st.integers(0, 3), min_size=30, max_size=30),  # a quiet cohort's complaints per hour, the first 30 h
    st.lists(st.tuples(st.integers(20, 29), st.integers(1, 12)), max_size=4),  # bursts: (hour, extra complaints)
    st.integers(0, 10_000),
)
def test_no_alert_below_min_count_and_its_numbers_are_the_decisions(
    tmp_path_factory: Any, per_hour: list[int], bursts: list[tuple[int, int]], seed: int
) -> None:
    """Property over random counts: every spike alert holds at least ``min_count`` complaints, and its summary
    says the count, expectation, ratio and span the decision used (its evidence), never the window's other numbers:
    its count is the cohort's complaints over that span, a fixed span's or the CUSUM's since it rose."""
    rnd = random.Random(seed)
    extra = dict(bursts)
    events, n = [], 0
    for hour, count in enumerate(per_hour):
        for region in ("湖州", "杭州"):
            for _ in range(count + (extra.get(hour, 0) if region == "湖州" else 0)):
                n += 1
                minute = hour * 60 + rnd.uniform(0, 59.9)
                events.append(complaint("opened", minute, f"cp-{n}", f"c-{n % 97}", region=region, product="宽带"))
    events.sort(key=lambda e: e["ts"])
    alerts = run(rules_from(tmp_path_factory.mktemp("prop"), PROPERTY_RULE), events, batch=40)
    for alert in (a for a in alerts if a.status == "firing"):
        ev = alert.evidence
        assert ev["observed"] >= 6, alert.summary  # min_count
        window = format_duration(ev["span_seconds"]) if ev["span_seconds"] else ""
        if ev["sustained"]:
            window = f"{window}（持续上升）" if window else "持续上升期"
        ratio = as_text(round(ev["ratio"], 1)) if ev["ratio"] is not None else "∞"
        expected = as_text(round(ev["expected"], 1))
        # the summary names the cohort whose numbers these are: this one's, or the broader one's whose drill-down named it
        assert ev["decided_by"] == ev["cohort"] or ev["decided_by"] in ev["broader_cohorts"]
        assert alert.summary == f"{ev['decided_by']} 近 {window} 投诉 {ev['observed']} 件，预期 {expected}（{ratio} 倍）"
        if ev["span_seconds"]:  # and the count is that cohort's complaints over the span, a fixed one or the CUSUM's
            end = dt.datetime.fromisoformat(ev["window_start"]) + dt.timedelta(seconds=ev["window_seconds"])
            begin = end - dt.timedelta(seconds=ev["span_seconds"])
            labels = dict(part.split("=", 1) for part in ev["decided_by"].split(","))
            in_span = [e for e in events if begin <= dt.datetime.fromisoformat(e["ts"]) < end]
            assert ev["observed"] == sum(1 for e in in_span if all(e.get(k) == v for k, v in labels.items())), alert.summary


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(0, 30), min_size=1, max_size=200),
    surge=st.integers(0, 6),
    gap=st.integers(0, 400),
    window=st.sampled_from(["1h", "30m"]),
    rate=st.booleans(),
)
@example(counts=[10] * 150, surge=6, gap=300, window="1h", rate=False)  # warm, and quiet while its CUSUM is high
@example(counts=[10] * 150, surge=6, gap=300, window="30m", rate=True)
def test_a_quiet_gap_caught_up_a_window_at_a_time_is_the_gap_pushed_step_by_step(
    counts: list[int], surge: int, gap: int, window: str, rate: bool
) -> None:
    """A cohort back after a quiet spell learns its gap's whole windows at once (``_catch_up``); its baseline,
    recent steps and CUSUM end exactly, bit for bit, as pushing every quiet step would leave them (also when
    it went quiet in a rise its CUSUM was piling up: ``surge`` steps of 90)."""
    import numpy as np

    from detectors.baseline import CohortBaseline, Cusum, RecentBuckets, WeekShape
    from rules.loader import load_rule_text

    text = RULE.replace("window: 1h", f"window: {window}").replace("warmup: 3d", "warmup: 1d")
    if rate:
        text += "rate_of: order.completed\n"
    rule = load_rule_text(text, "spike.yaml").rules[0]  # type: ignore[attr-defined]
    size = rule.step.size
    rng = random.Random(len(counts) * 1000 + gap)

    def warmed() -> tuple[CohortBaseline, WeekShape, RecentBuckets, Cusum, float]:
        baseline, week, recent, cusum = CohortBaseline.fresh(), WeekShape.fresh(), RecentBuckets.empty(rule.kept_steps), Cusum()
        start = T0.timestamp() + rng.randrange(8) * size
        for i, n in enumerate(counts + [90] * surge):
            rule._push(baseline, week, recent, cusum, start + i * size, float(n), float(n + 3) if rate else 0.0)
        return baseline, week, recent, cusum, start + (len(counts) + surge - 1) * size

    state = rng.getstate()
    fast = warmed()
    rng.setstate(state)
    slow = warmed()
    rule._catch_up(*fast[:4], fast[4], gap)
    for i in range(gap):
        rule._push(*slow[:4], slow[4] + (i + 1) * size, 0.0, 0.0)
    assert fast[0].state.tobytes() == slow[0].state.tobytes()
    assert np.array_equal(fast[2].rows, slow[2].rows)
    assert fast[3].as_list() == slow[3].as_list()


def _small_city_outage(seed: int) -> list[dict[str, Any]]:
    """A province of about 150 complaints a day over nine days; on the ninth, one small city's broadband (about
    0.55 complaints an hour) has an outage of 4, 5 and 5 complaints in three hours: 14 where about 1.7 were due."""
    rnd = random.Random(seed)
    start = 24 * 8 + 2  # 11:00 local on the ninth day
    outage = {start: 4, start + 1: 5, start + 2: 5}
    events: list[dict[str, Any]] = []
    for h in range(24 * 9):
        for region in REGIONS:
            for product in PRODUCTS:
                small = region == "台州" and product == "宽带"
                count = outage[h] if small and h in outage else _poisson(rnd, 0.55 if small else 0.65)
                for k in range(count):
                    n = len(events)
                    # the outage's complaints spread over each hour: no hour-long span ever holds eight
                    minute = h * 60 + ((k + 0.5) * 60 / count if small and h in outage else rnd.uniform(0, 59.9))
                    channel = rnd.choice(("10000热线", "APP", "微信"))
                    events.append(complaint("opened", minute, f"cp-{n}", f"c-{n % 500}", region=region, product=product, channel=channel))
    events.sort(key=lambda e: e["ts"])
    return events


def _poisson(rnd: random.Random, mean: float) -> int:
    count, total = 0, rnd.expovariate(1.0)
    while total < mean:
        count, total = count + 1, total + rnd.expovariate(1.0)
    return count


def pack_rule(rule_id: str) -> list[Any]:
    return [r for r in load_rules(default_rules_dir()).rules if r.rule_id == rule_id]


def test_a_small_citys_outage_too_slow_for_any_one_hour_is_found_over_its_three_hours() -> None:
    """Like the independent data set's missed outage (issue 18: 3, 5 and 4 an hour where 0.55 were due): never eight
    complaints in one hour, so a span gate that asked the trailing hour for ``min_count`` at a tail of √alpha never
    let the three-hour span be judged, though it holds them at a tail near alpha (about 1e-7).

    Near alpha, whether one draw is found turns on the expectation its nine days of history give (1.1 to 2.6 for
    the three hours where 1.65 are due, over ten seeds): the outage must be found in most draws, not in each. Ten
    seeds found 8 with the rule's week as it is and 8 with the week before it learnt each weekday against the
    others (seeds 1 and 5 missed, and 5 and 8); with the span gate, none."""
    began = T0 + dt.timedelta(hours=24 * 8 + 2)
    found = []
    for seed in range(1, 11):
        alerts = run(pack_rule("complaint-spike"), _small_city_outage(seed), batch=50)
        firing = [a for a in alerts if a.status == "firing"]
        assert {a.evidence["cohort"] for a in firing} <= {"region=台州,product=宽带"}, spikes(alerts)  # nothing else
        if firing:
            ev = firing[0].evidence
            assert ev["observed"] >= 8 and ev["span_seconds"] > 3600  # the count over more than an hour decided
            assert began + dt.timedelta(hours=1) < firing[0].starts_at <= began + dt.timedelta(hours=3, minutes=15)
            found.append(seed)
    assert len(found) >= 8, found


def test_a_window_teaches_the_dispersion_only_once_the_spans_judged_next_have_left_it(tmp_path: Path) -> None:
    """An incident's first hour, unusual but short of significance and of ``min_ratio`` (no outlier), must not
    widen the tail its next hours are judged by. Two runs differ only in one busy hour of 台州 × 宽带 after a week
    and a day: 4 complaints (as expected) or 7. The cohort's φ is the same in both after that hour and after the
    next, and differs only once the hour after that has ended: a window teaches the dispersion two windows on."""
    import math

    from detectors.baseline import CohortBaseline
    from rules.types.cohort_spike import Baseline

    unusual = 24 * 8 + 3  # local 12:00 on the ninth day (T0 is 09:00 local): a busy hour, 4 expected
    ordinary = [e for e in hourly(24 * 8 + 8, daily_cycle, seed=3) if not _in(e, unusual)]
    rule = RULE.replace("warmup: 3d", "warmup: 3d\ndispersion: 0")

    def phi_after_each_hour(count: int) -> list[float]:
        cohort = [complaint("opened", unusual * 60 + 5 + i * 7, f"cp-u{i}", f"c-u{i}", region="台州", product="宽带") for i in range(count)]
        events = sorted(ordinary + cohort, key=lambda e: e["ts"])
        engine = Engine(rules_from(tmp_path, rule), DictBackend(), EngineConfig(allowed_lateness=0, idle_after=None))
        out = []
        for last in range(unusual + 1, unusual + 5):  # the hour of the last event fed: it closes the hours before
            run([], [e for e in events if _hour_of(e) <= last and (not out or _hour_of(e) == last)], engine=engine, batch=500, close=False)
            stored = dict(engine.backend.namespace("spike-b:spike", Baseline).items())  # type: ignore[attr-defined]
            # the learnt ratio itself, below the floor too (these binomial counts vary a little less than Poisson)
            out.append(CohortBaseline.from_bytes(stored["region=台州,product=宽带"].values).dispersion(-math.inf))
        return out

    as_expected, unusual_hour = phi_after_each_hour(4), phi_after_each_hour(7)
    # after the unusual hour, after the next, after the one after that, and one more
    assert as_expected[:2] == unusual_hour[:2], (as_expected, unusual_hour)
    assert unusual_hour[2] > as_expected[2], (as_expected, unusual_hour)  # learnt two windows on, as a wider φ


def _hour_of(event: dict[str, Any]) -> int:
    return int((dt.datetime.fromisoformat(event["ts"]) - T0).total_seconds() // 3600)


def _in(event: dict[str, Any], hour: int) -> bool:
    return _hour_of(event) == hour and event["region"] == "台州" and event["product"] == "宽带"
