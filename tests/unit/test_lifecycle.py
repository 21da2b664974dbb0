"""One-off alerts close: on their ticket's closing event, else after ``close.after``; order does not matter."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import MATCH_RULE, T0, assert_arrival_order_and_replay_do_not_matter, complaint, located_error, rules_from, run

CLOSING = MATCH_RULE.replace(
    "    key: complaint_id\n", "    key: complaint_id\n    close: {on: complaint.closed, match: complaint_id, after: 2d}\n"
)
H = 60


def story(alerts: list) -> list[tuple[str, str, float, float | None, str | None]]:
    def hours(t: object) -> float | None:
        return None if t is None else (t - T0).total_seconds() / 3600  # type: ignore[operator]

    return [(a.labels["complaint_id"], a.status, hours(a.starts_at), hours(a.ends_at), a.evidence.get("closed_by")) for a in alerts]


def test_a_red_line_alert_closes_with_its_complaint_and_another_expires(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, CLOSING)
    events = [
        complaint("opened", 0, complaint_id="k1", text="我要去工信部投诉"),
        complaint("opened", 1 * H, complaint_id="k2", text="打 315"),
        complaint("closed", 5 * H, complaint_id="k1"),
        complaint("closed", 6 * H, complaint_id="k9"),  # no alert of its own: closes nothing
        complaint("updated", 60 * H, complaint_id="k3"),  # event time moves on past k2's two days
    ]
    assert story(run(rules, events)) == [
        ("k1", "firing", 0.0, None, None),
        ("k2", "firing", 1.0, None, None),
        ("k1", "resolved", 0.0, 5.0, "closed-k1-300"),
        ("k2", "resolved", 1.0, 49.0, "expired"),
    ]


def test_a_close_that_arrives_before_its_alert_still_closes_it(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, CLOSING)
    events = [complaint("closed", 10, complaint_id="k1"), complaint("opened", 5, complaint_id="k1", text="工信部")]  # within lateness
    assert story(run(rules, events)) == [("k1", "firing", 5 / 60, None, None), ("k1", "resolved", 5 / 60, 10 / 60, "closed-k1-10")]


def test_every_one_off_rule_closes_by_default_after_three_days(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, MATCH_RULE)
    alerts = run(rules, [complaint("opened", 0, complaint_id="k1", text="工信部"), complaint("updated", 80 * H, complaint_id="k2")])
    assert story(alerts) == [("k1", "firing", 0.0, None, None), ("k1", "resolved", 0.0, 72.0, "expired")]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("    key: complaint_id\n", "    key: complaint_id\n    close: {on: complaint.closed}\n"), "`on` and `match` go together"),
        (("    key: complaint_id\n", "    key: complaint_id\n    close: {on: complaint.closed, match: text}\n"), "`match` is a label"),
        (("    key: complaint_id\n", "    key: complaint_id\n    close: {on: ticket.closed, match: complaint_id}\n"), "unknown event type"),
        (("    key: complaint_id\n", "    key: complaint_id\n    close: {after: soon}\n"), "durations look like"),
    ],
)
def test_bad_close_settings_are_located(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    assert message in located_error(tmp_path, MATCH_RULE, change)


def test_rules_that_resolve_themselves_take_no_close(tmp_path: Path) -> None:
    from tests.helpers import SLA_RULE

    error = located_error(tmp_path, SLA_RULE, ("    deadline: 60m\n", "    deadline: 60m\n    close: {after: 1d}\n"))
    assert "only one-off rule types" in error and ":8:" in error


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    st.lists(st.tuples(st.integers(0, 600), st.sampled_from(["k1", "k2", "k3"]), st.booleans()), max_size=25),
    st.integers(0, 10_000),
    st.integers(1, 5),
)
def test_closing_does_not_depend_on_arrival_order_and_replays_add_nothing(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[int, str, bool]], seed: int, batch: int
) -> None:
    rules = rules_from(tmp_path_factory.mktemp("lifecycle"), CLOSING)
    events = [
        complaint("opened" if is_open else "closed", minute, complaint_id=cid, text="工信部") for minute, cid, is_open in sorted(steps)
    ]
    assert_arrival_order_and_replay_do_not_matter(rules, events, seed, batch)
