"""Backtests: history through the same engine as live, at full speed in event time.

The events go through the local runner exactly as ``yujing run`` sends them
(each in the partition Kafka would give it, per-partition watermarks,
timers up to the last event at the end), so a backtest gives the alerts the
worker gives for the same events. ``--from`` / ``--to`` select events by
event time before they reach the engine.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import msgspec

from streams.local import LocalRunner, RunStats
from yujing.alerts import Alert

__all__ = ["BacktestSummary", "RuleCount", "TimeFilter", "summarise"]


class _Stamp(msgspec.Struct):
    ts: dt.datetime | None = None


_STAMP = msgspec.json.Decoder(_Stamp)


@dataclass(frozen=True)
class TimeFilter:
    """Keeps lines whose ``ts`` lies in ``[start, end)``; lines it cannot read go on (the decoder dead-letters them)."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def __call__(self, line: bytes) -> bool:
        if self.start is None and self.end is None:
            return True
        try:
            ts = _STAMP.decode(line).ts
        except (msgspec.DecodeError, msgspec.ValidationError):
            return True
        if ts is None or ts.tzinfo is None:
            return True
        return (self.start is None or ts >= self.start) and (self.end is None or ts < self.end)


def parse_bound(text: str | None) -> dt.datetime | None:
    """``2026-03-01``, ``2026-03-01T08:00`` (UTC+8 when no offset is given) or full RFC 3339."""
    if not text:
        return None
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))


@dataclass
class RuleCount:
    """One row of the per-rule table."""

    rule_id: str
    severity: str
    firing: int = 0
    resolved: int = 0
    first: dt.datetime | None = None
    last: dt.datetime | None = None


@dataclass
class BacktestSummary:
    """What a backtest found."""

    stats: RunStats
    rules: list[RuleCount] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


def row_name(alert: Alert) -> str:
    """The summary row (and timeline row) an alert belongs to: its rule, or ``rule (warning)`` for a pre-breach warning."""
    return f"{alert.rule_id} ({alert.labels['phase']})" if "phase" in alert.labels else alert.rule_id


def summarise(stats: RunStats, alerts: list[Alert]) -> BacktestSummary:
    """Per-rule counts (firing and resolved), with the first and last firing time; warnings get rows of their own."""
    rows: dict[str, RuleCount] = {}
    for alert in alerts:
        name = row_name(alert)
        row = rows.setdefault(name, RuleCount(name, alert.severity))
        if alert.status == "firing":
            row.firing += 1
            row.first = alert.starts_at if row.first is None else min(row.first, alert.starts_at)
            row.last = alert.starts_at if row.last is None else max(row.last, alert.starts_at)
        else:
            row.resolved += 1
    order = Counter({r.rule_id: r.firing for r in rows.values()})
    return BacktestSummary(stats, sorted(rows.values(), key=lambda r: (-order[r.rule_id], r.rule_id)), alerts)


class Collect:
    """A sink that keeps the alerts in memory for the report."""

    name = "collect"

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def write(self, alerts: list[Alert]) -> None:
        self.alerts.extend(alerts)

    def close(self) -> None:
        pass


def run_backtest(
    runner: LocalRunner,
    lines: Iterator[bytes],
    keep: TimeFilter,
    collect: Collect,
    flush: bool = True,
    on_batch: Callable[[RunStats, int], None] | None = None,
) -> BacktestSummary:
    """Feed the selected lines through ``runner`` (whose sinks include ``collect``).

    ``flush=False`` stops where a live worker's watermarks stand after the last event
    (no end-of-input flush), for comparing a backtest with a worker. ``on_batch`` is told
    of each batch (a progress bar).
    """
    stats = runner.run((line for line in lines if keep(line)), on_batch=on_batch, close=flush)
    return summarise(stats, collect.alerts)
