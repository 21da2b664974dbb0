"""``cohort_silence`` (the default pack's ``intake-silence``): a channel whose complaints stop is found from its own
seasonal baseline, ordinary quiet is not, and the alert states the numbers it decided on."""

from __future__ import annotations

import datetime as dt
import functools
import math
from typing import Any

import pytest

from rules import load_rules
from rules.loader import load_rule_text
from rules.template import as_text
from streams.backtest import Collect
from streams.config import default_rules_dir
from streams.engine import DictBackend, Engine, EngineConfig
from streams.local import LocalRunner
from streams.simulator.scenarios import ScenarioConfig, scenario
from yujing.alerts import Alert

RULE_ID = "intake-silence"


@functools.cache
def pack_rule() -> Any:
    (rule,) = [r for r in load_rules(default_rules_dir()).rules if r.rule_id == RULE_ID]
    return rule


def replay(events: list[dict[str, Any]] | None = None, lines: list[bytes] | None = None) -> list[Alert]:
    collect = Collect()
    engine = Engine([pack_rule()], DictBackend(), EngineConfig(idle_after=None))
    if lines is None:
        import json

        lines = [json.dumps(e, ensure_ascii=False).encode() for e in events or []]
    LocalRunner.replaying(engine, [collect]).run(lines, close=True)
    return collect.alerts


def epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


@pytest.mark.parametrize(("seed", "per_day"), [(1, 2400.0), (2, 2400.0), (3, 800.0)])
def test_a_silent_channel_is_found_from_its_baseline_and_resolves_when_its_complaints_return(seed: int, per_day: float) -> None:
    sim = scenario(ScenarioConfig(kind="channel_silence", seed=seed, complaints_per_day=per_day))
    (incident,) = sim.incidents
    alerts = replay(lines=sim.lines())
    firing = [a for a in alerts if a.status == "firing"]
    assert [a.labels.get("channel") for a in firing] == [incident.labels["channel"]], [a.summary for a in alerts]
    (alert,) = firing
    start, end = epoch(incident.start), epoch(incident.end)
    assert start < alert.starts_at.timestamp() <= start + 3 * 3600  # within three hours of its onset, at these volumes
    # The decision's numbers: nothing observed since `silent_since`, against an expectation that makes that
    # improbable below the rule's level (alpha over the cohort's complaints a window), stated in the summary.
    ev = alert.evidence
    assert ev["observed"] == 0 and ev["score"] <= 1e-5
    assert epoch(ev["silent_since"]) <= start + 900 and ev["span_seconds"] == alert.starts_at.timestamp() - epoch(ev["silent_since"])
    assert f"应有 {as_text(round(ev['expected'], 1))} 件" in alert.summary  # as a summary writes it: 22, not 22.0
    (resolved,) = [a for a in alerts if a.status == "resolved"]
    assert resolved.alert_id == alert.alert_id and end - 900 <= resolved.ends_at.timestamp() <= end + 3600  # type: ignore[union-attr]


@pytest.mark.parametrize("per_day", [50.0, 500.0, 5000.0])
def test_ordinary_weeks_and_their_quiet_nights_raise_no_silence_at_any_volume(per_day: float) -> None:
    sim = scenario(ScenarioConfig(kind="benign", seed=7, complaints_per_day=per_day, orders_per_day=per_day))
    assert [a.summary for a in replay(lines=sim.lines()) if a.status == "firing"] == []


def test_the_whole_intake_going_silent_is_one_alert_not_one_per_channel_and_region() -> None:
    sim = scenario(ScenarioConfig(kind="benign", seed=5))
    t0 = ScenarioConfig().start.timestamp() + 10 * 3600  # 10:00 on the main day, for three hours
    events = [e for e in sim.events if not (e["event_type"].startswith("complaint.") and t0 <= epoch(e["ts"]) < t0 + 3 * 3600)]
    firing = [a for a in replay(events) if a.status == "firing"]
    assert [a.evidence["cohort"] for a in firing] == ["全部投诉"], [a.summary for a in firing]
    assert t0 < firing[0].starts_at.timestamp() <= t0 + 3600 and firing[0].labels.keys().isdisjoint({"channel", "region"})


def test_the_level_a_silence_must_reach_follows_the_cohorts_volume_and_dispersion() -> None:
    """μ* solves P(0 | μ) = alpha / λ: Poisson e^(−μ), negative binomial (1 + φμ)^(−1/φ), which needs more."""
    from detectors.baseline import CohortBaseline, WeekShape

    rule = pack_rule()
    week = WeekShape.fresh()
    quiet, busy = CohortBaseline.fresh(), CohortBaseline.fresh()
    quiet.state[1:25] = 0.5  # half a complaint an hour
    busy.state[1:25] = 200.0
    alpha = rule.test.alpha
    assert rule._needed(quiet, week, 0.0) == pytest.approx(-math.log(alpha))  # fewer than one a window: alpha itself
    assert rule._needed(busy, week, 0.0) == pytest.approx(-math.log(alpha / 200.0))
    phi = 0.2
    needed = rule._needed(busy, week, phi)
    assert (1 + phi * needed) ** (-1 / phi) == pytest.approx(alpha / 200.0) and needed > rule._needed(busy, week, 0.0)


def test_a_cohort_too_small_to_tell_silence_from_quiet_is_not_watched() -> None:
    from detectors.baseline import CohortBaseline, WeekShape

    rule = pack_rule()
    tiny = CohortBaseline.fresh()
    tiny.state[1:25] = 0.01  # a complaint every four days: a week of silence is ordinary
    assert rule._significant_at(tiny, WeekShape.fresh(), 0.0) is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [("horizon: 10m", "`horizon` must be at least the window"), ("rate_of: order.completed", "rate_of")],
)
def test_spec_errors_are_located(extra: str, message: str) -> None:
    text = f"""
id: s
type: cohort_silence
title: t
severity: major
on: complaint.opened
dimensions: [channel]
summary: "{{cohort}}"
{extra}
"""
    result = load_rule_text(text, "s.yaml")
    assert not result.ok and message in str(result.errors[0]), [str(e) for e in result.errors]


@pytest.mark.parametrize("type_name", ["cohort_spike", "cohort_silence"])
@pytest.mark.parametrize("window", ["1d", "2h", "45m"])
def test_a_window_the_hourly_baseline_cannot_learn_is_refused_with_the_reason(type_name: str, window: str) -> None:
    """A one-day window passed `rules check` and reported "预期 0（3981314.4 倍）": the baseline learns hours."""
    text = f"""
id: s
type: {type_name}
title: t
severity: major
on: complaint.opened
dimensions: [channel, region]
window: {window}
summary: "{{cohort}}"
"""
    result = load_rule_text(text, "s.yaml")
    assert not result.ok and "`window` must divide an hour" in str(result.errors[0]), [str(e) for e in result.errors]
    for fine in ("15m", "30m", "1h"):
        assert load_rule_text(text.replace(f"window: {window}", f"window: {fine}"), "s.yaml").ok


def test_a_silence_check_is_set_at_most_a_day_ahead() -> None:
    """A cohort that keeps speaking is not armed again, so a check planned days ahead would rest on the baseline and
    dispersion of the day it was set (a φ at its cap once set the APP channel's check three days on, and its
    silence that afternoon was missed). A cohort of 0.3 complaints an hour needs more than a day of quiet (11.5
    expected at alpha 1e-5): its check is set a day on, and then set again for when it is due."""
    from detectors.baseline import CohortBaseline, WeekShape
    from rules.types.cohort_silence import RECHECK_AFTER

    rule = pack_rule()
    engine = Engine([rule], DictBackend(), EngineConfig(idle_after=None))
    slow, busy = CohortBaseline.fresh(), CohortBaseline.fresh()
    slow.state[1:25], busy.state[1:25] = 0.3, 40.0
    for b in (slow, busy):
        b.state[0] = 24 * 8  # windows seen: warm
    week, since = WeekShape.fresh(), 1_000_000 * 900.0
    due = rule._significant_at(slow, week, since)
    assert since + RECHECK_AFTER < due < since + 2 * RECHECK_AFTER  # what it would wait without the cap
    rule._arm("channel=slow", since, slow, week, engine)
    rule._arm("channel=busy", since, busy, week, engine)
    armed = engine.state(f"silence-t:{rule.ns}", float)
    assert armed.get("channel=slow") == since + RECHECK_AFTER
    assert armed.get("channel=busy") == rule._significant_at(busy, week, since) < since + 3600  # minutes, as before
    # that check came, the cohort still quiet: set again from its last complaint, now within a day of being due
    rule._arm("channel=slow", since, slow, week, engine, after=since + RECHECK_AFTER)
    assert armed.get("channel=slow") == due
