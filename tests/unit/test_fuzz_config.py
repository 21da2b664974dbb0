"""Fuzzing the config parsers a rule author or operator feeds: rule YAML, the alert policy, the silence log.

Each must accept or reject, never crash or hang, and every rejection must say
what is wrong (and, for rules, where).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.loader import load_rule_text, rule_files
from streams.alerting.policy import AlertPolicy, PolicyError, parse_policy
from streams.alerting.silences import SilenceFile
from streams.config import default_rules_dir

PACK_DIR = Path(default_rules_dir())
PACK = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in rule_files(Path(default_rules_dir()))]
POLICY = yaml.safe_load((Path(default_rules_dir()) / "alerting.policy.yaml").read_text(encoding="utf-8"))

scalars = st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats(allow_nan=True) | st.text(max_size=30)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: list[Any]) -> Any:
    """A document of ``base`` with a few values replaced, keys dropped or unknown keys added."""
    doc = copy.deepcopy(draw(st.sampled_from(base)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "drop" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(values)
    return doc


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(doc=mutated(PACK))
def test_mutated_rules_compile_or_are_rejected_with_a_place_and_a_reason(doc: Any) -> None:
    text = yaml.safe_dump(doc, allow_unicode=True)
    result = load_rule_text(text, "fuzz.yaml")
    assert result.ok == (not result.errors)
    for error in result.errors:
        assert str(error).startswith("fuzz.yaml:") and error.message.strip(), error
        assert error.line >= 1 and error.column >= 1


@settings(max_examples=200, deadline=2000)
@given(text=st.text(max_size=400))
def test_any_text_as_a_rule_file_is_rejected_cleanly(text: str) -> None:
    result = load_rule_text(text, "any.yaml")
    assert all(e.message.strip() for e in result.errors)
    assert result.ok or result.errors


@settings(max_examples=300, deadline=1000)
@given(doc=mutated([POLICY]) | values)
def test_mutated_policies_parse_or_fail_with_a_reason(doc: Any) -> None:
    try:
        policy = parse_policy(doc)
    except PolicyError as exc:
        assert str(exc).startswith("policy") and len(str(exc)) > len("policy: ")
    else:
        assert isinstance(policy, AlertPolicy)


@settings(max_examples=100, deadline=1000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.binary(max_size=80), max_size=8))
def test_a_damaged_silence_log_reports_its_bad_lines_and_keeps_reading(tmp_path: Path, lines: list[bytes]) -> None:
    path = tmp_path / "silences.jsonl"
    path.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines))
    log = SilenceFile(path)
    silences = log.current()
    assert isinstance(silences, dict)
    assert len(log.problems) <= len(lines) and all(":" in p for p in log.problems)


def test_sla_deadline_values_that_are_not_durations_are_rejected_with_a_place() -> None:
    """Found by the atheris rule target: a null value, or values given as a list, raised TypeError / AttributeError."""
    base = (PACK_DIR / "install-sla.yaml").read_text(encoding="utf-8")
    good = "values: {platinum: 24h, gold: 48h}"
    assert good in base
    for bad in ("values: {platinum: 24h, gold: }", "values: [24h, 48h]", "values: {platinum: [24h]}"):
        result = load_rule_text(base.replace(good, bad), "sla.yaml")
        assert not result.ok and result.errors[0].message.strip(), bad
        assert "deadline" in str(result.errors[0]) or result.errors[0].line > 1, result.errors


def test_a_bad_duration_in_any_rule_type_is_a_located_error() -> None:
    """Found by the atheris rule target: a cohort rule's ``warmup: "7d ("`` raised ValueError out of the loader."""
    for path in rule_files(PACK_DIR):
        text = path.read_text(encoding="utf-8")
        for field in ("warmup: ", "within: ", "keep_for: ", "forget_after: "):
            if field not in text:
                continue
            line = next(ln for ln in text.splitlines() if ln.lstrip().startswith(field))
            bad = text.replace(line, line.split(field)[0] + field + '"7d ("')
            result = load_rule_text(bad, "bad.yaml")
            assert not result.ok, (path.name, field)
            assert all(str(e).startswith("bad.yaml:") and e.message.strip() for e in result.errors)
