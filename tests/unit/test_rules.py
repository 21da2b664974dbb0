"""Rule files: loading, located errors, conditions, templates, and the match and sla types."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rules import load_rules
from rules.conditions import ConditionError, compile_condition
from rules.loader import load_rule_file
from rules.template import Template, TemplateError
from streams.config import default_rules_dir
from tests.helpers import MATCH_RULE, SLA_RULE, complaint, order, rules_from, run, to_event


def write(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def errors(tmp_path: Path, text: str) -> list[str]:
    result = load_rule_file(write(tmp_path, text))
    assert not result.rules
    return [str(e) for e in result.errors]


def test_default_pack_loads() -> None:
    result = load_rules(default_rules_dir())
    assert result.ok, result.errors
    assert {r.rule_id for r in result.rules} >= {"redline-complaint", "install-sla", "complaint-close-sla"}


def test_version_is_explicit_or_a_content_hash(tmp_path: Path) -> None:
    a = load_rule_file(write(tmp_path, MATCH_RULE)).rules[0]
    b = load_rule_file(write(tmp_path, MATCH_RULE.replace("红线", "红线2"), "b.yaml")).rules[0]
    c = load_rule_file(write(tmp_path, MATCH_RULE + "    version: '7'\n", "c.yaml")).rules[0]
    assert a.version.startswith("sha256:") and a.version != b.version and c.version == "7"


def test_unknown_key_is_located_with_a_hint(tmp_path: Path) -> None:
    msgs = errors(tmp_path, MATCH_RULE.replace("    severity: critical", "    severity: critical\n    severty: major"))
    assert len(msgs) == 1 and msgs[0].startswith(f"{tmp_path}/r.yaml:5:1:") and "severty" in msgs[0] and "hint" in msgs[0]


def test_yaml_syntax_error_is_located(tmp_path: Path) -> None:
    msgs = errors(tmp_path, "id: x\ntype: match\n  bad: [\n")
    assert len(msgs) == 1 and ":3:" in msgs[0] and "YAML error" in msgs[0]


def test_unknown_field_in_condition_is_located(tmp_path: Path) -> None:
    msgs = errors(tmp_path, MATCH_RULE.replace("where: {text:", "where: {txt:"))
    assert "unknown field `txt`" in msgs[0] and ":6:" in msgs[0]


def test_wrong_types_and_values_are_reported(tmp_path: Path) -> None:
    assert "severity" in errors(tmp_path, MATCH_RULE.replace("severity: critical", "severity: urgent"))[0]
    assert "unknown event type" in errors(tmp_path, MATCH_RULE.replace("on: complaint.opened", "on: complaint.open"))[0]
    assert "unknown rule type" in errors(tmp_path, MATCH_RULE.replace("type: match", "type: magic"))[0]
    assert "duration" in errors(tmp_path, SLA_RULE.replace("deadline: 60m", "deadline: soon"))[0]
    assert "positive" in errors(tmp_path, SLA_RULE.replace("deadline: 60m", "deadline: 0s"))[0]
    assert "placeholder" in errors(tmp_path, MATCH_RULE.replace("{complaint_id}:", "{__class__}:"))[0]
    assert "operator" in errors(tmp_path, MATCH_RULE.replace("contains_any", "matches_python"))[0]


def test_one_bad_rule_loads_nothing_from_its_file_but_other_files_load(tmp_path: Path) -> None:
    good = textwrap.indent(textwrap.dedent(MATCH_RULE).strip(), "    ")
    write(tmp_path, f"rules:\n  -\n{good}\n  - {{id: broken, type: match}}\n", "two.yaml")
    write(tmp_path, SLA_RULE, "sla.yaml")
    result = load_rules(tmp_path)
    assert [r.rule_id for r in result.rules] == ["install-sla"]
    assert result.errors and result.errors[0].file.endswith("two.yaml")


def test_duplicate_ids_are_rejected(tmp_path: Path) -> None:
    write(tmp_path, MATCH_RULE, "a.yaml")
    write(tmp_path, MATCH_RULE, "b.yaml")
    result = load_rules(tmp_path)
    assert len(result.rules) == 1 and "duplicate rule id" in str(result.errors[0])


def test_on_key_is_not_read_as_yaml_boolean(tmp_path: Path) -> None:
    rule = load_rule_file(write(tmp_path, MATCH_RULE)).rules[0]
    assert rule.event_types == frozenset({"complaint.opened"})


def test_conditions_are_null_safe_and_typed() -> None:
    ev = to_event(order("created", 0, monthly_fee=129, attrs={"vip": True, "score": 3}))
    assert compile_condition({"monthly_fee": {"gt": 100, "le": 129}})(ev)
    assert not compile_condition({"promised_at": {"gt": 1}})(ev)  # missing → false
    assert compile_condition({"promised_at": {"exists": False}})(ev)
    assert compile_condition({"attrs.vip": True})(ev) and not compile_condition({"attrs.score": True})(ev)
    assert compile_condition({"any": [{"region": "杭州"}, {"tier": {"in": ["gold"]}}]})(ev)
    assert compile_condition({"not": {"region": "杭州"}})(ev)
    assert compile_condition({"product": {"contains": "宽"}, "order_id": {"starts_with": "ord"}})(ev)
    assert not compile_condition({"region": {"ne": "台州"}})(ev)
    with pytest.raises(ConditionError):
        compile_condition({"attrs": 1})
    with pytest.raises(ConditionError):
        compile_condition({"all": []})


def test_template_fills_fields_and_refuses_anything_else() -> None:
    ev = to_event(order("created", 0))
    assert Template("{region}:{order_id}:{attrs.x}").render(ev) == "台州:ord-1:"
    for bad in ("{order_id.__class__}", "{nope}", "{attrs}"):
        with pytest.raises(TemplateError):
            Template(bad)
    assert Template("{0}{order_id!r}").render(ev) == "{0}{order_id!r}"  # not placeholders: literal text


def test_match_rule_fires_once_per_key(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, MATCH_RULE)
    out = run(
        rules,
        [
            complaint("opened", 0, text="我要去工信部投诉"),
            complaint("opened", 1, text="又去工信部"),
            complaint("opened", 2, complaint_id="cp-2", text="断网"),
        ],
    )
    assert [(a.status, a.labels["complaint_id"], a.severity) for a in out] == [("firing", "cp-1", "critical")]
    assert out[0].summary == "投诉 cp-1: 我要去工信部投诉" and out[0].evidence["event_ids"] == ["opened-cp-1-0"]


def test_sla_breach_then_resolve_when_the_stop_comes(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, SLA_RULE)
    out = run(rules, [order("created", 0), order("created", 70, order_id="o2"), order("completed", 90)])
    assert [(a.status, a.labels["order_id"]) for a in out] == [("firing", "ord-1"), ("resolved", "ord-1")]
    firing, resolved = out
    assert firing.alert_id == resolved.alert_id
    assert firing.starts_at.isoformat() == "2026-03-01T02:00:00+00:00" and resolved.ends_at.isoformat() == "2026-03-01T02:30:00+00:00"
    assert resolved.evidence["overdue_seconds"] == 1800


def test_sla_no_alert_when_stopped_or_cancelled_in_time(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, SLA_RULE)
    assert (
        run(
            rules,
            [
                order("created", 0),
                order("completed", 59),
                order("created", 10, order_id="o2"),
                order("cancelled", 20, order_id="o2"),
                order("created", 500, order_id="o3"),
                order("completed", 501, order_id="o3"),
            ],
        )
        == []
    )


def test_sla_stop_before_start_is_remembered(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, SLA_RULE)
    assert (
        run(
            rules, [order("completed", 30), order("created", 0), order("created", 400, order_id="x"), order("completed", 401, order_id="x")]
        )
        == []
    )


def test_sla_deadline_by_tier_and_from_a_field(tmp_path: Path) -> None:
    by_tier = SLA_RULE.replace("deadline: 60m", "deadline: {by: tier, values: {platinum: 10m, gold: 30m}, default: 2h}")
    rules = rules_from(tmp_path, by_tier)
    out = run(
        rules,
        [
            order("created", 0, tier="platinum"),
            order("created", 0, order_id="g", tier="gold"),
            order("created", 0, order_id="s", tier="silver"),
            order("created", 100, order_id="z"),
            order("completed", 101, order_id="z"),
        ],
    )
    assert sorted(a.labels["order_id"] for a in out) == ["g", "ord-1"]
    field = SLA_RULE.replace("deadline: 60m", "deadline: {field: promised_at, default: 24h}").replace("install-sla", "promise")
    rules = rules_from(tmp_path, field)
    from tests.helpers import at

    out = run(
        rules,
        [
            order("created", 0, promised_at=at(15)),
            order("created", 5, order_id="o2"),
            order("created", 30, order_id="z"),
            order("completed", 31, order_id="z"),
        ],
    )
    assert [(a.labels["order_id"], a.starts_at.isoformat()) for a in out] == [("ord-1", "2026-03-01T01:15:00+00:00")]


def test_sla_duplicate_start_after_settlement_does_not_reopen(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, SLA_RULE)
    start = order("created", 0)
    out = run(
        rules, [start, order("completed", 10), start, order("created", 300, order_id="z"), start, order("completed", 301, order_id="z")]
    )
    assert out == []
