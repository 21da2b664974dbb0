"""Rule guards: an event meets only the rules that can match it, and the alerts are the same as without the index."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from rules.guards import required_values
from streams.engine import DictBackend, Engine, EngineConfig
from tests.helpers import complaint, keys, rules_from, run, to_event

RULES = [
    f"""
    id: region-{region}
    type: match
    title: t
    severity: info
    on: complaint.opened
    where: {where}
    summary: "{{region}}"
    """
    for region, where in [
        ("hz", "{region: 杭州, text: {contains: 断网}}"),
        ("tz", "'region == ''台州'' and text contains ''断网'''"),
        ("two", "{region: {in: [杭州, 温州]}}"),
        ("any", "'region == ''台州'' or text contains ''断网'''"),
    ]
]


@pytest.mark.parametrize(
    ("cond", "guard"),
    [
        ({"region": "杭州"}, ("region", {"杭州"})),
        ({"tier": {"in": ["gold", "platinum"]}}, ("tier", {"gold", "platinum"})),
        ({"tier": {"eq": "gold"}, "text": {"contains": "x"}}, ("tier", {"gold"})),
        ({"amount": {"gt": 3}}, None),
        ({"any": [{"region": "杭州"}]}, None),
        ({"attrs.vip": "yes"}, None),
        ('product == "宽带" and (a or b)', ("product", {"宽带"})),
        ("text contains 'region == \\'x\\''", None),
        ("region in ['a', x]", None),
        ("region == 'a' or tier == 'b'", None),
    ],
)
def test_required_values(cond: object, guard: tuple[str, set[str]] | None) -> None:
    found = required_values(cond)
    assert (found if found is None else (found[0], set(found[1]))) == guard


def test_an_event_meets_only_the_rules_of_its_value(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, *RULES)
    engine = Engine(rules, DictBackend(), EngineConfig(idle_after=None))
    regions = ("杭州", "台州", "温州", "上海")
    met = {region: {r.rule_id for r in engine.rules_for(to_event(complaint("opened", 0, region=region)))} for region in regions}
    assert met == {
        "杭州": {"region-hz", "region-two", "region-any"},
        "台州": {"region-tz", "region-any"},
        "温州": {"region-two", "region-any"},
        "上海": {"region-any"},
    }


def test_the_index_changes_no_alert(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, *RULES)
    rng = random.Random(3)
    events = [
        complaint("opened", i, complaint_id=f"k{i}", region=rng.choice(["杭州", "台州", "温州", "上海"]), text=rng.choice(["断网", "慢"]))
        for i in range(200)
    ]
    indexed = run(rules, events)
    for rule in rules:
        rule.guard = None  # type: ignore[attr-defined]
    plain = run(rules, events)
    assert keys(indexed) == keys(plain) and len(plain) > 50
