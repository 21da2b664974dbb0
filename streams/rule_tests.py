"""Unit tests for rules, in the spirit of ``promtool test rules``: events in, the alerts expected out.

A test file (YAML) names the rule files it tests and a list of cases. Event
times are offsets from ``start`` (``at: 47h``); the fields an event needs by
contract are given as they are on the wire, and ``event_id`` /
``customer_id`` are filled in when left out.

.. code-block:: yaml

    rule_files: [../install-sla.yaml]
    start: "2026-03-02T09:00:00+08:00"
    tests:
      - name: a gold order not installed in 48 h breaches
        events:
          - {at: 0s, event_type: order.created, order_id: o1, tier: gold, product: 宽带}
        until: 49h                   # let event time run on to here
        expect:
          - {rule: install-sla, status: firing, at: 48h, labels: {order_id: o1}}
        absent:
          - {rule: install-sla, status: resolved}

Events arrive in event-time order (``arrival: listed`` keeps the order
written, to test upstream skew). Every expectation must match an alert of its own (fields left out match
anything; ``labels`` is a subset; ``summary`` is a substring). With
``strict: true`` (the default) every alert raised must be expected. Failures
are shown as a diff: ``-`` expected but not raised, ``+`` raised but not
expected, ``!`` raised though it must not be.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import yaml

from rules.loader import load_rule_file
from streams.decode import DeadLetter, Decoder
from streams.engine import DictBackend, Engine, EngineConfig
from streams.local import read_event_lines
from streams.partitioning import partition_for
from yujing.alerts import Alert
from yujing.events import TOPIC_KINDS
from yujing.protocols import Rule
from yujing.timeutil import parse_duration

__all__ = ["CaseResult", "FileResult", "run_test_file"]

PARTITIONS = 8
Offset = str | int | float


class Expected(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An alert a case expects (or forbids); fields left out match anything."""

    rule: str
    status: str | None = None
    at: Offset | None = None
    ends_at: Offset | None = None
    severity: str | None = None
    labels: dict[str, str] = {}
    summary: str | None = None


class Case(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One test: events, how far event time runs, and the alerts expected."""

    name: str
    events: list[dict[str, Any]] = []
    events_file: str | None = None
    until: Offset | None = None
    lateness: Offset = "5m"
    expect: list[Expected] = []
    absent: list[Expected] = []
    strict: bool = True
    arrival: str = "time"  # "time": events arrive in event-time order; "listed": in the order written


class TestFile(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A rule test file."""

    rule_files: list[str]
    start: str = "2026-03-02T09:00:00+08:00"
    tests: list[Case]


@dataclass
class CaseResult:
    """The outcome of one case: passed, or the lines of its diff."""

    name: str
    diff: list[str] = field(default_factory=list)
    alerts: int = 0

    @property
    def passed(self) -> bool:
        return not self.diff


@dataclass
class FileResult:
    """The outcome of one test file (``error`` when it could not run at all)."""

    path: Path
    cases: list[CaseResult] = field(default_factory=list)
    error: str = ""

    @property
    def passed(self) -> bool:
        return not self.error and all(c.passed for c in self.cases)


def _offset(value: Offset, what: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


def _human(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    sign = "-" if seconds < 0 else "+"
    rest = abs(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if rest >= size:
            parts.append(f"{int(rest // size)}{unit}")
            rest %= size
    if rest or not parts:
        parts.append(f"{rest:g}s")
    return sign + "".join(parts)


@dataclass(frozen=True)
class _Seen:
    """An alert as a test compares it: times as offsets from the file's start."""

    alert: Alert
    at: float
    ends_at: float | None

    def describe(self) -> str:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(self.alert.labels.items()) if k != "rule_title")
        ends = f" ends {_human(self.ends_at)}" if self.ends_at is not None else ""
        return (
            f"{self.alert.rule_id} {self.alert.status} at {_human(self.at)}{ends} "
            f"[{self.alert.severity}] {{{labels}}} “{self.alert.summary}”"
        )


def _describe(e: Expected) -> str:
    parts = [e.rule]
    if e.status:
        parts.append(e.status)
    if e.at is not None:
        parts.append(f"at {_human(parse_duration(e.at))}")
    if e.ends_at is not None:
        parts.append(f"ends {_human(parse_duration(e.ends_at))}")
    if e.severity:
        parts.append(f"[{e.severity}]")
    if e.labels:
        parts.append("{" + ", ".join(f"{k}={v}" for k, v in sorted(e.labels.items())) + "}")
    if e.summary:
        parts.append(f"summary ~ “{e.summary}”")
    return " ".join(parts)


def _matches(e: Expected, seen: _Seen) -> bool:
    a = seen.alert
    if e.rule != a.rule_id or (e.status and e.status != a.status) or (e.severity and e.severity != a.severity):
        return False
    if e.at is not None and abs(parse_duration(e.at) - seen.at) > 1e-6:
        return False
    if e.ends_at is not None and (seen.ends_at is None or abs(parse_duration(e.ends_at) - seen.ends_at) > 1e-6):
        return False
    if any(a.labels.get(k) != str(v) for k, v in e.labels.items()):
        return False
    return not (e.summary and e.summary not in a.summary)


def _event_lines(case: Case, base: Path, start: dt.datetime) -> list[bytes]:
    lines: list[bytes] = []
    if case.events_file:
        lines.extend(read_event_lines(base / case.events_file))  # .gz too
    for i, spec in enumerate(case.events):
        event = dict(spec)
        at = event.pop("at", None)
        if at is not None:
            event["ts"] = (start + dt.timedelta(seconds=_offset(at, f"event {i + 1} `at`"))).isoformat()
        event.setdefault("event_id", f"e{i + 1}")
        event.setdefault("customer_id", "c-test")
        lines.append(msgspec.json.encode(event))
    return lines


def run_case(case: Case, rules: Sequence[Rule], base: Path, start: dt.datetime) -> CaseResult:
    """Run one case through a fresh engine and compare its alerts with the expectations."""
    result = CaseResult(case.name)
    decoder = Decoder({kind: kind for kind in TOPIC_KINDS})
    engine = Engine(list(rules), DictBackend(), EngineConfig(allowed_lateness=_offset(case.lateness, "lateness"), idle_after=None))
    batch = []
    for n, line in enumerate(_event_lines(case, base, start)):
        decoded = decoder.decode(decoder.infer_topic(line), 0, n, None, line)
        if isinstance(decoded, DeadLetter):
            result.diff.append(f"? event {n + 1} breaks the event contract: {decoded.reason}")
            continue
        batch.append((partition_for(decoded.customer_id, PARTITIONS), decoded))
    if result.diff:
        return result
    if case.arrival not in ("time", "listed"):
        raise ValueError(f"case {case.name!r}: `arrival` is time or listed")
    if case.arrival == "time":
        batch.sort(key=lambda item: item[1].ts)  # stable: events at the same instant stay as listed
    alerts: list[Alert] = []
    for item in batch:  # one event at a time, as they arrive
        alerts.extend(engine.process([item]))
        engine.commit()
    until = start.timestamp() + _offset(case.until, "until") if case.until is not None else float("-inf")
    alerts.extend(engine.close_input(until))
    origin = start.timestamp()
    seen = [_Seen(a, a.starts_at.timestamp() - origin, None if a.ends_at is None else a.ends_at.timestamp() - origin) for a in alerts]
    result.alerts = len(seen)
    unmatched = list(seen)
    for expected in case.expect:
        hit = next((s for s in unmatched if _matches(expected, s)), None)
        if hit is None:
            result.diff.append(f"- expected   {_describe(expected)}")
        else:
            unmatched.remove(hit)
    for forbidden in case.absent:
        for s in seen:
            if _matches(forbidden, s):
                result.diff.append(f"! must not   {_describe(forbidden)}\n             raised: {s.describe()}")
    if case.strict:
        result.diff.extend(f"+ unexpected {s.describe()}" for s in unmatched)
    if result.diff:
        result.diff.append("  raised:    " + ("\n             ".join(s.describe() for s in seen) if seen else "nothing"))
    return result


def run_test_file(path: Path) -> FileResult:
    """Load a rule test file and run all its cases."""
    result = FileResult(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        spec = msgspec.convert(raw, TestFile)
    except (OSError, yaml.YAMLError, msgspec.ValidationError) as exc:
        result.error = f"{path}: {exc}"
        return result
    rules: list[Rule] = []
    for name in spec.rule_files:
        loaded = load_rule_file(path.parent / name)
        if not loaded.ok:
            result.error = "\n".join(str(e) for e in loaded.errors)
            return result
        if not loaded.rules and not (path.parent / name).exists():
            result.error = f"{path}: rule file {name} not found"
            return result
        rules.extend(loaded.rules)
    try:
        start = dt.datetime.fromisoformat(spec.start)
        if start.tzinfo is None:
            raise ValueError("`start` needs a UTC offset, e.g. 2026-03-02T09:00:00+08:00")
        for case in spec.tests:
            result.cases.append(run_case(case, rules, path.parent, start))
    except (ValueError, OSError) as exc:
        result.error = f"{path}: {exc}"
    return result
