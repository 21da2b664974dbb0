"""Pre-breach warnings of the ``sla`` rule type: raised before the deadline, resolved by the outcome."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import SLA_RULE, T0, assert_arrival_order_and_replay_do_not_matter, order, rules_from, run

WARNINGS = "    warnings: [{at: 0.5, severity: minor}, {at: 0.8, severity: major}]\n"
WARNED = SLA_RULE.replace("    deadline: 60m\n", "    deadline: 60m\n" + WARNINGS)


def timeline(alerts: list) -> list[tuple[str, str, str, float, float | None]]:
    def minutes(t: object) -> float | None:
        return None if t is None else (t - T0).total_seconds() / 60  # type: ignore[operator]

    return [(a.labels.get("phase", "breach"), a.severity, a.status, minutes(a.starts_at), minutes(a.ends_at)) for a in alerts]


def test_warnings_fire_before_the_deadline_and_the_breach_resolves_them(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, WARNED)
    alerts = run(rules, [order("created", 0), order("created", 100, order_id="other")])
    assert timeline([a for a in alerts if a.labels["order_id"] == "ord-1"]) == [
        ("warning", "minor", "firing", 30, None),
        ("warning", "major", "firing", 48, None),
        ("warning", "minor", "resolved", 30, 60),
        ("warning", "major", "resolved", 48, 60),
        ("breach", "major", "firing", 60, None),
    ]
    assert alerts[0].summary == "[即将超时 50%] 装机超时：order_id ord-1 将于 2026-03-01 10:00 到期，还剩 30m"  # not the breach's words


def test_a_stop_after_a_warning_resolves_it_and_nothing_breaches(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, WARNED)
    alerts = run(rules, [order("created", 0), order("completed", 40), order("created", 200, order_id="other")])
    assert timeline([a for a in alerts if a.labels["order_id"] == "ord-1"]) == [
        ("warning", "minor", "firing", 30, None),
        ("warning", "minor", "resolved", 30, 40),
    ]


def test_no_warning_when_the_stop_comes_first(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, WARNED)
    alerts = run(rules, [order("created", 0), order("completed", 10), order("created", 200, order_id="other")])
    assert [a for a in alerts if a.labels["order_id"] == "ord-1"] == []


def test_a_warning_outside_zero_to_one_is_rejected(tmp_path: Path) -> None:
    from rules.loader import load_rule_file

    path = tmp_path / "r.yaml"
    path.write_text(WARNED.replace("at: 0.8", "at: 1.5").replace("\n    ", "\n").lstrip(), encoding="utf-8")
    result = load_rule_file(path)
    assert not result.rules and "between 0 and 1" in str(result.errors[0])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), shuffle_seed=st.integers(0, 10_000), batch=st.integers(1, 6))
def test_shuffling_within_lateness_and_replaying_give_the_same_alerts(tmp_path_factory, seed: int, shuffle_seed: int, batch: int) -> None:

    rng = random.Random(seed)
    events = []
    for i in range(12):
        start = rng.uniform(0, 300)
        events.append(order("created", start, order_id=f"o{i}"))
        if rng.random() < 0.7:
            events.append(order(rng.choice(["completed", "cancelled"]), start + rng.uniform(1, 90), order_id=f"o{i}"))
    events.sort(key=lambda e: e["ts"])
    rules = rules_from(tmp_path_factory.mktemp("r"), WARNED)
    assert_arrival_order_and_replay_do_not_matter(rules, events, shuffle_seed, batch)


def test_a_warning_may_have_its_own_summary_with_the_time_left(tmp_path: Path) -> None:
    own = "    warnings: [{at: 0.5, severity: minor, summary: '订单 {order_id} 还剩 {left}，{deadline} 到期'}]\n"
    rules = rules_from(tmp_path, SLA_RULE.replace("    deadline: 60m\n", "    deadline: 60m\n" + own))
    alerts = run(rules, [order("created", 0), order("created", 100, order_id="other")])
    assert alerts[0].summary == "订单 ord-1 还剩 30m，2026-03-01 10:00 到期"
    from rules.loader import load_rule_text

    bad = SLA_RULE.replace("    deadline: 60m\n", "    deadline: 60m\n    warnings: [{at: 0.5, severity: minor, summary: '{text}'}]\n")
    errors = load_rule_text(bad.replace("\n    ", "\n"), "sla.yaml").errors
    assert errors and "placeholder {text}" in errors[0].message and errors[0].line == 11  # the warning's summary


def test_the_backtest_timeline_puts_warnings_on_their_own_row(tmp_path: Path) -> None:
    """The summary table has an ``install-sla (warning)`` row; the timeline drew its marks on the breach row."""
    from streams.backtest import summarise
    from streams.local import RunStats
    from streams.timeline import timeline_points

    rules = rules_from(tmp_path, WARNED)
    alerts = run(rules, [order("created", 0), order("created", 100, order_id="other")])
    summary = summarise(RunStats(), alerts)
    names = [r.rule_id for r in summary.rules]
    rows = {names[row] for _, row, _ in timeline_points(summary)}
    assert rows == {"install-sla", "install-sla (warning)"}
    per_row = {name: sum(1 for _, row, _ in timeline_points(summary) if names[row] == name) for name in rows}
    assert per_row == {r.rule_id: r.firing for r in summary.rules}
