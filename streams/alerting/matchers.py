"""Label matchers, as Alertmanager writes them: ``region=杭州``, ``severity!=info``.

A matcher names an alert field (``source``, ``rule_id``, ``severity``, ``status``)
or a label, and compares it for equality or inequality; a missing label reads
as the empty string. There are no regular expressions: rules and silences are
data, and a matcher costs one comparison.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from yujing.alerts import Alert

#: The longest pattern a silence's regular-expression matcher may carry.
MAX_PATTERN = 1000

__all__ = ["FIELDS", "Matcher", "alert_value", "matches", "parse_matcher", "parse_matchers"]

#: Alert fields a matcher may name besides labels.
FIELDS = ("source", "rule_id", "severity", "status")


class Matcher(msgspec.Struct, frozen=True, array_like=True):
    """``name op value`` with ``op`` one of ``=`` and ``!=`` (and, in silences, ``=~`` and ``!~``: RE2, anchored).

    >>> m = parse_matcher("region=杭州")
    >>> (m.name, m.op, m.value), str(m)
    (('region', '=', '杭州'), 'region=杭州')
    """

    name: str
    op: str
    value: str

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"

    def test(self, alert: Alert) -> bool:
        if self.op in ("=~", "!~"):
            found = _regex(self.value)(alert_value(alert, self.name))
            return found if self.op == "=~" else not found
        equal = alert_value(alert, self.name) == self.value
        return equal if self.op == "=" else not equal


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> Any:
    """A full match through RE2 (linear time), as Alertmanager anchors its matchers."""
    import re2

    compiled = re2.compile(pattern)
    return lambda text: compiled.fullmatch(text) is not None


def alert_value(alert: Alert, name: str) -> str:
    """The value a matcher sees: one of :data:`FIELDS`, else the label (``""`` when absent)."""
    if name in FIELDS:
        return str(getattr(alert, name))
    return alert.labels.get(name, "")


def parse_matcher(text: str, regex: bool = False) -> Matcher:
    """``name=value`` or ``name!=value`` (quotes around the value are dropped); raises ``ValueError``.

    With ``regex`` (silences, which Alertmanager may hold with them), also ``name=~re`` and ``name!~re``.
    """
    if not isinstance(text, str):
        raise ValueError(f"a matcher is a string like region=杭州, not {text!r}")
    if regex:
        for op in ("=~", "!~"):
            name, sep, value = text.partition(op)
            if sep and name.strip() and name.strip().replace("_", "a").replace(".", "a").isalnum():
                pattern = value.strip().strip("\"'")
                if len(pattern) > MAX_PATTERN:
                    raise ValueError(f"matcher {text!r}: the pattern is longer than {MAX_PATTERN} characters")
                try:
                    _regex(pattern)
                except Exception as exc:
                    raise ValueError(f"matcher {text!r}: not a regular expression RE2 reads: {exc}") from None
                return Matcher(name.strip(), op, pattern)
    for op in ("!=", "="):
        name, sep, value = text.partition(op)
        if sep:
            name, value = name.strip(), value.strip().strip("\"'")
            if op == "=" and name.endswith("!"):
                continue
            if not name or not name.replace("_", "a").replace(".", "a").isalnum():
                raise ValueError(f"matcher {text!r}: the name must be a label or field name")
            if "~" in name or value.startswith("~"):
                raise ValueError(f"matcher {text!r}: regular expressions are not supported (use = or !=)")
            return Matcher(name, op, value)
    raise ValueError(f"matcher {text!r}: expected name=value or name!=value")


def parse_matchers(items: Iterable[str] | str, regex: bool = False) -> tuple[Matcher, ...]:
    """Matchers from a list (or one string); an empty list matches every alert."""
    if isinstance(items, str):
        items = [items]
    return tuple(parse_matcher(item, regex) for item in items)


def matches(matchers: Sequence[Matcher], alert: Alert) -> bool:
    """Whether every matcher holds for ``alert``."""
    return all(m.test(alert) for m in matchers)
