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

import re
from typing import Any

from yujing.events import EVENT_FIELDS

__all__ = ["Guard", "required_values"]

Guard = tuple[str, frozenset[str]]

_EQ = re.compile(r"""^\s*([a-z_]+)\s*==\s*(?:'([^'\\]*)'|"([^"\\]*)")\s*$""")
_IN = re.compile(r"""^\s*([a-z_]+)\s+in\s+\[([^\[\]]*)\]\s*$""")
_ITEM = re.compile(r"""^\s*(?:'([^'\\]*)'|"([^"\\]*)")\s*$""")


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


def _top_level_conjuncts(text: str) -> list[str] | None:
    """``a and b and c`` split at depth 0; ``None`` when there is a top-level ``or`` or quotes we cannot follow."""
    parts, depth, start, quote = [], 0, 0, ""
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif depth == 0 and re.match(r"\s(and|or)\s", text[i : i + 5]):
            word = text[i + 1 : i + 4].strip()
            if word == "or":
                return None
            parts.append(text[start:i])
            start = i + 5
            i += 4
        i += 1
    parts.append(text[start:])
    return parts


def _from_expression(text: str) -> Guard | None:
    for part in _top_level_conjuncts(text) or []:
        m = _EQ.match(part)
        if m and m.group(1) in EVENT_FIELDS:
            return m.group(1), frozenset({m.group(2) if m.group(2) is not None else m.group(3)})
        m = _IN.match(part)
        if m and m.group(1) in EVENT_FIELDS:
            items = [_ITEM.match(x) for x in m.group(2).split(",")]
            if items and all(items):
                return m.group(1), frozenset(x.group(1) if x.group(1) is not None else x.group(2) for x in items if x)
    return None


def required_values(cond: Any) -> Guard | None:
    """The (field, values) every event matching ``cond`` has, when the condition says so plainly."""
    if isinstance(cond, dict):
        return _from_mapping(cond)
    if isinstance(cond, str):
        return _from_expression(cond)
    return None
