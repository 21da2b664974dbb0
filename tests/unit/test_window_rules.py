"""The window rule types ``threshold`` and ``flatline``: counts behind the watermark, in any arrival order."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.types.threshold import ThresholdRule
from rules.window import WindowState, next_point
from tests.helpers import T0, assert_arrival_order_and_replay_do_not_matter, complaint, located_error, rules_from, run

THIRD = """
    id: third-complaint
    type: threshold
    title: 24 小时内第三次投诉
    severity: major
    on: complaint.opened
    group_by: customer_id
    window: 24h
    count: 3
    summary: "客户 {customer_id} {window} 内已投诉 {count} 次"
"""

REGION_DAILY = """
    id: region-daily
    type: threshold
    title: 地区日投诉量
    severity: minor
    on: complaint.opened
    where: "text contains '断网'"
    group_by: [region, product]
    window: 1d
    mode: tumbling
    timezone: "+08:00"
    count: 2
    distinct: customer_id
    summary: "{region}{product} 今日 {count} 位客户报断网"
"""

SILENT = """
    id: silent
    type: flatline
    title: 静默
    severity: major
    on: complaint.opened
    group_by: customer_id
    window: 60m
    fewer_than: 1
    summary: "{customer_id} 一小时没有投诉"
"""

H = 60


def opened(minutes: float, n: int, customer: str = "c-1", **extra: object) -> dict:
    return complaint("opened", minutes, complaint_id=f"k{n}", customer=customer, product="宽带", **extra)


def test_third_complaint_fires_when_reached_and_resolves_when_the_first_leaves(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, THIRD)
    alerts = run(rules, [opened(0, 1), opened(10 * H, 2), opened(20 * H, 3), opened(30 * H, 4, customer="c-2")])
    assert [(a.status, (a.starts_at - T0).total_seconds() / 60) for a in alerts] == [("firing", 20 * H), ("resolved", 20 * H)]
    resolved = alerts[1]
    assert (resolved.ends_at - T0).total_seconds() / 60 == 24 * H  # the first complaint left the window
    assert alerts[0].alert_id == resolved.alert_id
    assert alerts[0].summary == "客户 c-1 24h 内已投诉 3 次"
    assert alerts[0].evidence["event_ids"] == ["opened-k1-0", "opened-k2-600", "opened-k3-1200"]
    assert alerts[0].labels["customer_id"] == "c-1"


def test_two_in_a_window_do_not_fire(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, THIRD)
    assert run(rules, [opened(0, 1), opened(10 * H, 2), opened(25 * H, 3)]) == []


def test_a_new_episode_is_a_new_alert(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, THIRD)
    events = [opened(t * H, i) for i, t in enumerate([0, 1, 2, 100, 101, 102])]
    firing = [a for a in run(rules, events) if a.status == "firing"]
    assert len(firing) == 2 and firing[0].alert_id != firing[1].alert_id


def test_tumbling_distinct_counts_per_calendar_day_and_resolves_at_its_end(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, REGION_DAILY)
    # T0 is 09:00 +08:00; the day ends 15 h later (local midnight).
    events = [
        opened(0, 1, customer="a", text="断网了"),
        opened(60, 2, customer="a", text="又断网"),  # the same customer: still one
        opened(120, 3, customer="b", text="家里没网"),  # no 断网: not counted
        opened(180, 4, customer="c", text="断网三天"),
        opened(16 * H, 5, customer="d", text="断网"),  # the next day
    ]
    alerts = run(rules, events)
    assert [(a.status, (a.starts_at - T0).total_seconds() / 60) for a in alerts] == [("firing", 180), ("resolved", 180)]
    assert (alerts[1].ends_at - T0).total_seconds() / 3600 == 15
    assert alerts[0].summary == "杭州宽带 今日 2 位客户报断网"
    assert alerts[0].labels["region"] == "杭州" and alerts[0].evidence["count"] == 2


def test_flatline_fires_after_a_silent_window_and_resolves_when_events_return(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, SILENT)
    events = [opened(0, 1), opened(30, 2), opened(200, 3), opened(400, 4, customer="c-2")]
    alerts = [a for a in run(rules, events) if a.labels["customer_id"] == "c-1"]
    got = [(a.status, (a.starts_at - T0).total_seconds() / 60) for a in alerts]
    assert got == [("firing", 90), ("resolved", 90), ("firing", 260)]  # silent again an hour after its return
    assert (alerts[1].ends_at - T0).total_seconds() / 60 == 200


def test_flatline_needs_a_full_window_of_history(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, SILENT.replace("fewer_than: 1", "fewer_than: 3"))
    events = [opened(m, i) for i, m in enumerate([0, 10, 20, 30, 40, 50, 65, 70, 75])]
    alerts = run(rules, events, close=False) + run(rules, [], close=False)
    assert alerts == []  # 3+ per hour throughout; the first hour (under 3 at first) is not a flatline


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("window: 24h", "window: 0s"), "longer than zero"),
        (("window: 24h", "window: soon"), "not a duration"),
        (("count: 3", "count: 0"), "at least 1"),
        (("group_by: customer_id", "group_by: cust"), "unknown field `cust`"),
        (("{customer_id} {window}", "{text} {window}"), "know only customer_id"),
        (("count: 3", "count: 3\n    mode: hopping"), "unknown window kind"),
    ],
)
def test_bad_window_rules_are_located(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    assert message in located_error(tmp_path, THIRD, change)


def _events(seed: int) -> list[dict]:
    rng = random.Random(seed)
    events = []
    for i in range(30):
        t = rng.uniform(0, 48 * H)
        events.append(opened(t, i, customer=f"c{rng.randrange(3)}", text=rng.choice(["断网", "网速慢 断网", "收费"])))
    events.sort(key=lambda e: e["ts"])
    return events


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), shuffle_seed=st.integers(0, 10_000), batch=st.integers(1, 6))
def test_shuffling_within_lateness_and_replaying_give_the_same_alerts(tmp_path_factory, seed: int, shuffle_seed: int, batch: int) -> None:
    rules = rules_from(tmp_path_factory.mktemp("r"), THIRD, REGION_DAILY, SILENT.replace("60m", "6h"))
    events = _events(seed)
    assert_arrival_order_and_replay_do_not_matter(rules, events, shuffle_seed, batch)


def test_calendar_windows_default_to_beijing_days_for_every_rule_type(tmp_path: Path) -> None:
    """threshold and ratio once counted UTC days (08:00 Beijing time to 08:00) while cohort_spike counted Beijing days."""
    import msgspec

    from rules.types.cohort_spike import CohortSpikeSpec
    from rules.types.ratio import RatioSpec
    from rules.types.threshold import ThresholdSpec
    from rules.window import DEFAULT_TIMEZONE

    for spec in (ThresholdSpec, RatioSpec, CohortSpikeSpec):
        assert {f.name: f.default for f in msgspec.structs.fields(spec)}["timezone"] == DEFAULT_TIMEZONE == "+08:00"
    rules = rules_from(tmp_path, REGION_DAILY.replace('    timezone: "+08:00"\n', ""))
    # 23:00 and 01:00 Beijing time: two Beijing days (one UTC day: 15:00 and 17:00 UTC), so no day holds two customers
    events = [opened(14 * H, 1, customer="a", text="断网"), opened(16 * H, 2, customer="b", text="断网")]
    assert run(rules, events) == []


class EverySweep(ThresholdRule):
    """The threshold rule before it knew that more hits never end a count of at least N: quiet only with fewer
    hits than the threshold, and a sweep at every arrival and departure after that."""

    def quiet(self, state: WindowState) -> bool:
        return state.active_since is None and len(state.hits) < self.threshold

    def sparse_with(self, state: WindowState, ts: float) -> bool:
        return False

    def arrival_counts(self, state: WindowState) -> bool:
        return True

    def next_due(self, state: WindowState) -> float | None:
        return next_point(state, self.window)


COUNTS = (
    THIRD,  # sliding, per customer
    REGION_DAILY.replace("1d", "30m").replace("distinct: customer_id", ""),  # tumbling, per cohort (the cohort stage)
    REGION_DAILY.replace("id: region-daily", "id: region-daily-distinct"),  # tumbling, distinct customers
    THIRD.replace("third-complaint", "third-cohort")
    .replace("group_by: customer_id", "group_by: [region, product]")
    .replace("客户 {customer_id}", "{region}{product}"),  # sliding, per cohort
)


def _bursts(seed: int) -> list[dict]:
    """Complaints of a few customers and regions, in bursts and stray ones, over two days."""
    rng = random.Random(seed)
    events = []
    for i in range(rng.randrange(10, 60)):
        t = rng.choice([rng.uniform(0, 48 * H), rng.uniform(600, 640), rng.uniform(1800, 1830)])
        events.append(opened(t, i, customer=f"c{rng.randrange(4)}", region=rng.choice(["杭州", "宁波"]), text="断网"))
    events.sort(key=lambda e: e["ts"])
    return events


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 100_000), batch=st.integers(1, 40), threshold=st.integers(1, 5))
def test_sweeping_only_where_a_count_can_change_gives_the_alerts_of_sweeping_everywhere(
    tmp_path_factory, seed: int, batch: int, threshold: int
) -> None:
    """A threshold group sweeps only at the arrival that first brings a window to N and, while it holds, at its
    departures; the alerts (ids, times, counts, evidence) are those of a sweep at every arrival and departure."""
    texts = [text.replace("count: 3", f"count: {threshold}").replace("count: 2", f"count: {threshold}") for text in COUNTS]
    rules = rules_from(tmp_path_factory.mktemp("r"), *texts)
    slow = rules_from(tmp_path_factory.mktemp("s"), *texts)
    for rule in slow:
        rule.__class__ = EverySweep
    events = _bursts(seed)

    def key(alerts: list) -> list:
        return sorted((a.alert_id, a.status, a.starts_at, a.ends_at, a.summary, str(a.evidence)) for a in alerts)

    assert key(run(rules, events, batch=batch, spread=True)) == key(run(slow, events, batch=batch, spread=True))


def test_a_cohort_with_hits_of_later_buckets_sweeps_only_where_its_count_reaches_the_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cohort's hits of many buckets, read in one batch ahead of the watermark, used to be swept at each arrival
    once the group held N hits in all; now one sweep fires the bucket that reaches N and one resolves it."""
    import rules.types.threshold as threshold

    sweeps: list[float] = []
    real = threshold.sweep

    def counting(state: WindowState, window: object, until: float, *args: object) -> object:
        sweeps.append(until)
        return real(state, window, until, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(threshold, "sweep", counting)
    rules = rules_from(tmp_path, REGION_DAILY.replace("1d", "10m").replace("distinct: customer_id", ""))
    stray = [opened(15 * i + 1, i, region="杭州", text="断网") for i in range(40)]  # one a bucket
    burst = [opened(700 + i, 100 + i, region="杭州", text="断网") for i in range(2)]  # and the bucket at 700 holds 2
    later = [opened(800, 999, region="宁波", text="断网")]  # time moves past the bucket's end
    events = sorted(stray + burst + later, key=lambda e: e["ts"])
    alerts = run(rules, events, batch=len(events))
    assert [a.status for a in alerts] == ["firing", "resolved"]
    assert len(sweeps) == 2, sweeps
