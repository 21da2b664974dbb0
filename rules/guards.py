"""Guards: the value a rule requires of one event field, read off its condition, so the engine can index it.

A rule whose condition starts with ``region: 台州`` (or ``tier: {in: [gold,
platinum]}``, or the expression ``region == '台州' and …``) can only match
events with those values. The engine files such rules under
``(event type, field, value)`` and an event meets only the rules of its own
values, instead of every rule of its type testing and rejecting it.

>>> required_values({"region": "台州", "text": {"contains": "断网"}})
('region', frozenset({'台州'}))
>>> field, values = required_values("tier in ['gold', 'platinum'] and amount > 3")
>>> field, sorted(values)
('tier', ['gold', 'platinum'])
>>> required_values("region == '台州' or tier == 'gold'") is None
True
"""

from __future__ import annotations

from typing import Any

from rules.expr import required_equalities
from yujing.events import EVENT_FIELDS

__all__ = ["Guard", "required_values"]

Guard = tuple[str, frozenset[str]]


def _from_mapping(cond: dict[str, Any]) -> Guard | None:
    for field, test in cond.items():
        if field in ("all", "any", "not", "expr") or field not in EVENT_FIELDS:
            continue
        if isinstance(test, str):
            return field, frozenset({test})
        if isinstance(test, dict) and len(test) == 1:
            ((op, arg),) = test.items()
            if op == "eq" and isinstance(arg, str):
                return field, frozenset({arg})
            if op == "in" and isinstance(arg, list) and arg and all(isinstance(a, str) for a in arg):
                return field, frozenset(arg)
    if isinstance(cond.get("expr"), str):
        return _from_expression(cond["expr"])
    return None


def _from_expression(text: str) -> Guard | None:
    found = required_equalities(text)
    return found if found is not None and found[0] in EVENT_FIELDS else None


def required_values(cond: Any) -> Guard | None:
    """The (field, values) every event matching ``cond`` has, when the condition says so plainly."""
    if isinstance(cond, dict):
        return _from_mapping(cond)
    if isinstance(cond, str):
        return _from_expression(cond)
    return None
