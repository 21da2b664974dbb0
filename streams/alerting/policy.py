"""The alert-handling policy: realert intervals, rate limits, grouping and inhibition, as YAML.

It lives beside the rules, in ``alerting.policy.yaml`` of the rules directory
(the rule loader skips ``*.policy.yaml``), and is data like the rules::

    realert: 30m                  # a rule's alert on the same labels is not sent again within this
    rate_limit: {max: 50, per: 1h}  # per rule and input partition; the rest: one overflow summary
    group: {by: [region], interval: 5m}   # notifications to group receivers (the webhook)
    rules:                        # per-rule overrides of realert and rate_limit
      repeat-complaint: {realert: 24h}
    inhibit:                      # Alertmanager's inhibit_rules: a firing source mutes matching targets
      - name: outage-explains-customers
        source: [source=cohort_spike]
        target: [source=rule]
        equal: [region]
    protected:                    # more alerts that are always sent (added to the built-in ones)
      - [rule_id=refund-overdue]

Critical and red-line alerts (:data:`ALWAYS_SENT`: ``severity=critical``,
``category=redline``) are never inhibited, held by realert or rate-limited:
a 工信部/315 complaint must not wait behind an outage. A policy may protect
more alerts but cannot unprotect these, and an inhibit rule whose targets can
only be protected alerts is refused.

Every problem is reported with its place (``inhibit[0].equal``), never half-applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rules.yaml_marks import Marks, load_with_marks
from streams.alerting.matchers import Matcher, matches, parse_matchers
from yujing.alerts import Alert
from yujing.timeutil import parse_duration

__all__ = [
    "ALWAYS_SENT",
    "POLICY_FILE",
    "AlertPolicy",
    "Grouping",
    "InhibitRule",
    "PolicyError",
    "RateLimit",
    "load_policy",
    "load_policy_file",
    "parse_policy",
]

#: The policy's file name in a rules directory.
POLICY_FILE = "alerting.policy.yaml"


#: Alerts no policy may hold back (except an operator's silence): each entry is matchers that must all hold.
ALWAYS_SENT: tuple[tuple[Matcher, ...], ...] = (parse_matchers(["severity=critical"]), parse_matchers(["category=redline"]))


class PolicyError(ValueError):
    """A policy that cannot be used; the message names the place."""


@dataclass(frozen=True)
class RateLimit:
    """At most ``max`` alerts sent per rule per ``per`` seconds of event time (per input partition)."""

    max: int
    per: float


@dataclass(frozen=True)
class Grouping:
    """Notifications to group receivers: alerts with equal ``by`` labels within ``interval`` go as one."""

    by: tuple[str, ...] = ("region",)
    interval: float = 300.0


@dataclass(frozen=True)
class InhibitRule:
    """While an alert matching ``source`` fires, alerts matching ``target`` with the same ``equal`` labels are muted."""

    name: str
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlertPolicy:
    """What the alert manager applies after dedup. The default sends everything, once, ungrouped by rule.

    >>> p = parse_policy({"realert": "1h", "rules": {"r": {"realert": "0s"}}})
    >>> p.realert_for("r"), p.realert_for("other")
    (0.0, 3600.0)
    """

    realert: float = 0.0
    rate_limit: RateLimit | None = None
    group: Grouping = field(default_factory=Grouping)
    per_rule: dict[str, dict[str, Any]] = field(default_factory=dict)
    inhibit: tuple[InhibitRule, ...] = ()
    protected: tuple[tuple[Matcher, ...], ...] = ALWAYS_SENT

    def is_protected(self, alert: Alert) -> bool:
        """Whether ``alert`` is always sent: never inhibited, held by realert or rate-limited."""
        return any(matches(matchers, alert) for matchers in self.protected)

    def realert_for(self, rule_id: str) -> float:
        return self.per_rule.get(rule_id, {}).get("realert", self.realert)

    def rate_limit_for(self, rule_id: str) -> RateLimit | None:
        return self.per_rule.get(rule_id, {}).get("rate_limit", self.rate_limit)


def _duration(value: Any, where: str) -> float:
    try:
        seconds = parse_duration(value)
    except (ValueError, TypeError) as exc:
        raise PolicyError(f"{where}: {exc}") from None
    if seconds < 0:
        raise PolicyError(f"{where}: must not be negative")
    return seconds


def _mapping(value: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PolicyError(f"{where}: expected a mapping")
    unknown = set(value) - allowed
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))} (allowed: {', '.join(sorted(allowed))})")
    return value


def _rate_limit(value: Any, where: str) -> RateLimit | None:
    if value is None:
        return None
    data = _mapping(value, where, {"max", "per"})
    limit = data.get("max")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise PolicyError(f"{where}.max: a whole number of alerts, at least 1")
    per = _duration(data.get("per", "1h"), f"{where}.per")
    if per <= 0:
        raise PolicyError(f"{where}.per: must be positive")
    return RateLimit(limit, per)


def _names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PolicyError(f"{where}: expected a list of label names")
    return tuple(value)


def _matchers(value: Any, where: str) -> tuple[Matcher, ...]:
    if not isinstance(value, list | str):
        raise PolicyError(f"{where}: expected a list of matchers like source=cohort_spike")
    try:
        return parse_matchers(value)
    except ValueError as exc:
        raise PolicyError(f"{where}: {exc}") from None


def parse_policy(data: Any, where: str = "policy") -> AlertPolicy:
    """A policy from parsed YAML (``None`` or ``{}``: the default)."""
    if data is None:
        return AlertPolicy()
    data = _mapping(data, where, {"realert", "rate_limit", "group", "rules", "inhibit", "protected"})
    realert = _duration(data.get("realert", 0), f"{where}.realert")
    rate_limit = _rate_limit(data.get("rate_limit"), f"{where}.rate_limit")
    group = Grouping()
    if "group" in data:
        g = _mapping(data["group"], f"{where}.group", {"by", "interval"})
        interval = _duration(g.get("interval", "5m"), f"{where}.group.interval")
        if interval <= 0:
            raise PolicyError(f"{where}.group.interval: must be positive")
        group = Grouping(_names(g.get("by", ["region"]), f"{where}.group.by"), interval)
    per_rule: dict[str, dict[str, Any]] = {}
    overrides = data.get("rules") or {}
    if not isinstance(overrides, dict):
        raise PolicyError(f"{where}.rules: expected a mapping of rule id to overrides")
    for rule_id, override in overrides.items():
        at = f"{where}.rules.{rule_id}"
        o = _mapping(override, at, {"realert", "rate_limit"})
        per_rule[str(rule_id)] = {}
        if "realert" in o:
            per_rule[str(rule_id)]["realert"] = _duration(o["realert"], f"{at}.realert")
        if "rate_limit" in o:
            per_rule[str(rule_id)]["rate_limit"] = _rate_limit(o["rate_limit"], f"{at}.rate_limit")
    protected = ALWAYS_SENT + _protected(data.get("protected", []), f"{where}.protected")
    inhibit = []
    raw_inhibit = data.get("inhibit", [])
    if not isinstance(raw_inhibit, list):
        raise PolicyError(f"{where}.inhibit: expected a list of inhibit rules")
    for i, item in enumerate(raw_inhibit):
        at = f"{where}.inhibit[{i}]"
        r = _mapping(item, at, {"name", "source", "target", "equal"})
        for required in ("source", "target"):
            if required not in r:
                raise PolicyError(f"{at}: `{required}` matchers are required")
        target = _matchers(r["target"], f"{at}.target")
        only_protected = [str(m) for m in target if any(len(p) == 1 and m == p[0] for p in ALWAYS_SENT)]
        if only_protected:
            raise PolicyError(f"{at}.target: {only_protected[0]} alerts are always sent; an inhibit rule cannot target them")
        inhibit.append(
            InhibitRule(
                name=str(r.get("name", f"inhibit-{i}")),
                source=_matchers(r["source"], f"{at}.source"),
                target=target,
                equal=_names(r.get("equal", []), f"{at}.equal"),
            )
        )
    return AlertPolicy(realert, rate_limit, group, per_rule, tuple(inhibit), protected)


def _protected(value: Any, where: str) -> tuple[tuple[Matcher, ...], ...]:
    """More always-sent alerts: a list of matcher lists (each list must match as a whole)."""
    if not isinstance(value, list):
        raise PolicyError(f"{where}: expected a list of matcher lists like [rule_id=refund-overdue]")
    out = []
    for i, item in enumerate(value):
        matchers = _matchers(item, f"{where}[{i}]")
        if not matchers:
            raise PolicyError(f"{where}[{i}]: an empty matcher list would protect every alert; name the alerts")
        out.append(matchers)
    return tuple(out)


def load_policy_file(path: str | Path) -> AlertPolicy:
    """The policy in a YAML file; every problem is a :class:`PolicyError` as ``file:line:column: place: problem``."""
    path = Path(path)
    try:
        data, marks = load_with_marks(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise PolicyError(f"{path}:{line}:{column}: YAML error: {getattr(exc, 'problem', None) or exc}") from None
    try:
        return parse_policy(data, _ROOT)
    except PolicyError as exc:
        place, _, problem = str(exc).partition(": ")
        line, column = _position(marks, place)
        raise PolicyError(f"{path}:{line}:{column}: {place}: {problem}") from None


_ROOT = "policy"
_PLACE_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def _position(marks: Marks, place: str) -> tuple[int, int]:
    """Line and column of ``policy.inhibit[0].target`` (or of the nearest enclosing value that has one)."""
    path: list[str | int] = [name if name else int(index) for name, index in _PLACE_PART.findall(place.removeprefix(_ROOT))]
    while path and tuple(path) not in marks:
        path.pop()
    return marks.get(tuple(path), (1, 1))


def load_policy(rules_dir: str | Path) -> AlertPolicy:
    """The policy of a rules directory (its ``alerting.policy.yaml``; the default when there is none)."""
    path = Path(rules_dir) / POLICY_FILE
    return load_policy_file(path) if path.exists() else AlertPolicy()
