"""One-off alerts close: on the event that closes their ticket, else after a while.

A one-off rule (``match``, ``compare``, ``sequence``, ``change``) raises an
alert for something that happened: a red-line complaint, a first bill above
the promise. Nothing in the rule resolves it, so without this stage *firing*
would only ever grow. Each rule has a :class:`rules.base.Closing`: its firing
alert is kept here (per partition, in keyed state) and resolved

* at the event time of the first event of ``close.on`` whose ``close.match``
  field equals the alert's label (the complaint ``complaint.closed``), with
  ``evidence.closed_by`` naming that event, or
* ``close.after`` after it started (``closed_by: expired``), when the
  watermark passes that moment.

Arrival order does not matter: a closing event seen before its alert (its
rule decides behind the watermark, or the events came out of order) is
remembered until the watermark passes it, and an alert that starts at or
before it is closed at once when it comes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import msgspec

from rules.base import Closing
from yujing.alerts import Alert
from yujing.events import Event
from yujing.protocols import RuleContext
from yujing.timeutil import to_datetime

__all__ = ["OneOffAlerts"]

_SEP = "\x1f"


def _closed_namespace(event_type: str, match: str) -> str:
    """Closing events seen lately, by the value of ``match`` (shared by every rule they close)."""
    return f"~closed:{event_type}:{match}"


class ClosedAt(msgspec.Struct, array_like=True):
    """A closing event seen for a label value: when, and which event."""

    ts: float
    event_id: str


class OneOffAlerts:
    """The engine's stage that closes one-off alerts, on the rule protocol (it is indexed like a rule).

    >>> from rules.base import Closing
    >>> stage = OneOffAlerts({"redline": Closing(3600.0, frozenset({"complaint.closed"}), "complaint_id")})
    >>> sorted(stage.event_types)
    ['complaint.closed']
    """

    rule_id = "~lifecycle"
    version = "1"

    def __init__(self, closings: dict[str, Closing]) -> None:
        self.closings = closings
        self.by_event: dict[str, list[tuple[str, Closing]]] = {}
        for rule_id, closing in sorted(closings.items()):
            for event_type in closing.on:
                self.by_event.setdefault(event_type, []).append((rule_id, closing))
        self.event_types = frozenset(self.by_event)

    @classmethod
    def of(cls, rules: Iterable[object]) -> OneOffAlerts:
        return cls({r.rule_id: c for r in rules if (c := getattr(r, "closing", None)) is not None})  # type: ignore[attr-defined]

    # -- an alert is raised ------------------------------------------------------
    def track(self, alert: Alert, ctx: RuleContext) -> None:
        """A firing alert of a one-off rule was admitted: keep it open until it closes."""
        closing = self.closings.get(alert.rule_id)
        if closing is None or alert.status != "firing":
            return
        starts = alert.starts_at.timestamp()
        value = alert.labels.get(closing.match) if closing.match else None
        if value is not None:
            for event_type in sorted(closing.on):
                seen = ctx.state(_closed_namespace(event_type, closing.match), ClosedAt).get(value)  # type: ignore[arg-type]
                if seen is not None and seen.ts >= starts:
                    ctx.emit(self._closed(alert, seen.ts, seen.event_id))
                    return
            index = ctx.state(f"~closing:{alert.rule_id}", list)
            ids = index.get(value) or []
            if alert.alert_id not in ids:
                index.set(value, [*ids, alert.alert_id])
        ctx.state(f"~open:{alert.rule_id}", Alert).set(alert.alert_id, alert)
        ctx.set_timer(self.rule_id, f"expire{_SEP}{alert.rule_id}{_SEP}{alert.alert_id}", starts + closing.after)

    # -- a closing event ------------------------------------------------------------
    def on_event(self, event: Event, ts: float, ctx: RuleContext) -> None:
        remembered: set[str] = set()
        for rule_id, closing in self.by_event.get(event.event_type, ()):
            match = closing.match or ""
            value = getattr(event, match, None)
            if value is None:
                continue
            value = str(value)
            if match not in remembered:  # once per event and field, whatever the number of rules it closes
                remembered.add(match)
                namespace = _closed_namespace(event.event_type, match)
                closed = ctx.state(namespace, ClosedAt)
                before = closed.get(value)
                if before is None or ts < before.ts:  # the earliest close counts, whatever the arrival order
                    closed.set(value, ClosedAt(ts, event.event_id))
                    ctx.set_timer(self.rule_id, f"forget{_SEP}{namespace}{_SEP}{value}", ts)
            index = ctx.state(f"~closing:{rule_id}", list)
            opened = ctx.state(f"~open:{rule_id}", Alert)
            left = []
            for alert_id in index.get(value) or []:
                alert = opened.get(alert_id)
                if alert is None:
                    continue
                if alert.starts_at.timestamp() <= ts:
                    opened.delete(alert_id)
                    ctx.cancel_timer(self.rule_id, f"expire{_SEP}{rule_id}{_SEP}{alert_id}")
                    ctx.emit(self._closed(alert, ts, event.event_id))
                else:
                    left.append(alert_id)  # it started after this close: a later ticket's event closes it
            if left:
                index.set(value, left)
            else:
                index.delete(value)

    # -- timers -----------------------------------------------------------------------
    def on_timer(self, key: str, fire_at: float, ctx: RuleContext) -> None:
        kind, rule_id, rest = key.split(_SEP, 2)
        if kind == "forget":  # the watermark passed the close: no alert that it closes can still come in time
            closed = ctx.state(rule_id, ClosedAt)  # here ``rule_id`` is the namespace of the closes
            seen = closed.get(rest)
            if seen is not None and seen.ts <= fire_at:
                closed.delete(rest)
            return
        opened = ctx.state(f"~open:{rule_id}", Alert)
        alert = opened.get(rest)
        if alert is None:
            return
        opened.delete(rest)
        closing = self.closings.get(rule_id)
        if closing is not None and closing.match:
            value = alert.labels.get(closing.match)
            index = ctx.state(f"~closing:{rule_id}", list)
            ids = [i for i in index.get(value) or [] if i != rest] if value is not None else []
            if value is not None:
                if ids:
                    index.set(value, ids)
                else:
                    index.delete(value)
        ctx.emit(self._closed(alert, fire_at, "expired"))

    @staticmethod
    def _closed(alert: Alert, at: float, closed_by: str) -> Alert:
        ends = max(at, alert.starts_at.timestamp())
        evidence = {**alert.evidence, "closed_by": closed_by}
        return msgspec.structs.replace(
            alert, status="resolved", ends_at=to_datetime(ends), detected_at=dt.datetime.now(dt.UTC), evidence=evidence
        )
