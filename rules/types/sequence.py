"""``sequence``: an event A followed by an event B for the same key within a time span.

.. code-block:: yaml

    id: repeat-complaint
    type: sequence
    title: 七日内重复投诉
    severity: critical
    key: customer_id
    first: {on: complaint.closed}
    then: {on: complaint.opened}
    within: 7d
    summary: "客户 {customer_id} 在投诉关闭后 7 天内再次投诉：{text}"

One alert per B event that has an A of the same key at most ``within``
before it (``starts_at`` = B's time); the summary is filled from B. Events
may arrive in any order within the allowed lateness: A's are kept until the
watermark passes ``A + within``, B's until the watermark passes B. Both
lists are bounded per key (``max_pending``, newest kept). A key has one
timer, at the earliest of those moments, kept in its state rather than as a
timer record (:class:`yujing.protocols.KeepsTimers`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from rules.base import RuleHeader, RuleSpec, event_labels
from rules.conditions import compile_condition
from rules.errors import SpecError
from rules.fields import key_getter
from rules.registry import register
from rules.types.match import event_types
from rules.types.sla import EventSelector
from yujing.events import Event
from yujing.protocols import RuleContext
from yujing.timeutil import format_rfc3339, parse_duration

__all__ = ["SequenceRule", "SequenceSpec", "SequenceState"]

_SEP = "\x1e"


class SequenceSpec(RuleSpec, tag="sequence", kw_only=True, forbid_unknown_fields=True):
    """YAML of a ``sequence`` rule."""

    key: str
    first: EventSelector
    then: EventSelector
    within: str | int | float
    max_pending: int = 16


class Seen(msgspec.Struct, array_like=True):
    """One remembered event: its time and id (and, for B's, what the alert needs)."""

    ts: float
    event_id: str
    labels: dict[str, str] = {}
    summary: str = ""


class SequenceState(msgspec.Struct, array_like=True):
    """A key's remembered A's and B's."""

    firsts: list[Seen] = []
    thens: list[Seen] = []
    partition: int = -1  # the input partition its timer is in (-1: stored by a version with timer records)


class SequenceRule(RuleHeader):
    """Fires when a ``then`` event follows a ``first`` event of the same key within ``within``."""

    one_off = True  # its alerts never resolve by themselves: they close (rules.base.Closing)

    def __init__(self, spec: SequenceSpec, version: str) -> None:
        super().__init__(spec, version)
        self.get_key = key_getter(spec.key, ("key",))
        self.first_types = event_types(spec.first.on, ("first", "on"))
        self.then_types = event_types(spec.then.on, ("then", "on"))
        self.first_when = compile_condition(spec.first.where, ("first", "where"), on=self.first_types)
        self.then_when = compile_condition(spec.then.where, ("then", "where"), on=self.then_types)
        try:
            self.within = parse_duration(spec.within)
        except ValueError as exc:
            raise SpecError(str(exc), ("within",), "durations look like 90s, 15m, 48h, 7d") from None
        if self.within <= 0:
            raise SpecError("`within` must be positive", ("within",))
        if spec.max_pending < 1:
            raise SpecError("`max_pending` must be at least 1", ("max_pending",))
        self.max_pending = spec.max_pending
        self.event_types = self.first_types | self.then_types
        self.namespace = f"seq:{spec.id}"

    def on_event(self, event: Event, ts: float, ctx: RuleContext) -> None:
        is_first = event.event_type in self.first_types and self.first_when(event)
        is_then = event.event_type in self.then_types and self.then_when(event)
        if not (is_first or is_then):
            return
        key = self.get_key(event)
        if key is None:
            return
        store = ctx.state(self.namespace, SequenceState)
        state = store.get(key) or SequenceState()
        before = (state.firsts, state.thens)  # replaced, never changed in place: their earliest moment is computed only if they were
        changed = False
        if is_first and ts + self.within > ctx.watermark and all(s.event_id != event.event_id for s in state.firsts):
            state.firsts = _bounded([*state.firsts, Seen(ts, event.event_id)], self.max_pending)
            changed = True
            for then in state.thens:
                if then.event_id != event.event_id and ts <= then.ts <= ts + self.within:
                    ctx.emit(self._alert(key, then, ts, event.event_id))
        if is_then:
            seen = Seen(ts, event.event_id, event_labels(event), self.summary.render(event))
            if ts >= ctx.watermark and all(s.event_id != event.event_id for s in state.thens):
                state.thens = _bounded([*state.thens, seen], self.max_pending)
                changed = True
            for first in state.firsts:
                if first.event_id != event.event_id and first.ts <= ts <= first.ts + self.within:
                    ctx.emit(self._alert(key, seen, first.ts, first.event_id))
                    break
        if changed:
            self._keep(key, state, self._due(*before), ctx)

    def _due(self, firsts: list[Seen], thens: list[Seen]) -> float | None:
        """When a key next forgets something: its earliest A's end of ``within``, or its earliest B."""
        times = [s.ts + self.within for s in firsts] + [s.ts for s in thens]
        return min(times) if times else None

    def _keep(self, key: str, state: SequenceState, due_before: float | None, ctx: RuleContext) -> None:
        """Store the key's state, and set its timer again if its earliest moment moved."""
        due = self._due(state.firsts, state.thens)
        state.partition = ctx.partition
        ctx.state(self.namespace, SequenceState).set(key, state)
        if due is not None and due != due_before:
            ctx.set_timer(self.rule_id, key, due)

    def stored_timers(self, ctx: RuleContext) -> Iterator[tuple[str, int, float]]:
        """Each key's timer, from its state (see :class:`yujing.protocols.KeepsTimers`)."""
        for key, state in ctx.state(self.namespace, SequenceState).items():
            due = self._due(state.firsts, state.thens)
            if due is not None and state.partition >= 0:  # one stored by an earlier version has records
                yield key, state.partition, due

    def on_timer(self, key: str, fire_at: float, ctx: RuleContext) -> None:
        base = key.split(_SEP, 1)[0]  # an earlier version kept a timer per event: ``key SEP f|t SEP event_id``
        store = ctx.state(self.namespace, SequenceState)
        state = store.get(base)
        if state is None:
            return
        firsts = [s for s in state.firsts if s.ts + self.within > fire_at]
        thens = [s for s in state.thens if s.ts > fire_at]
        if len(firsts) == len(state.firsts) and len(thens) == len(state.thens):
            return  # nothing due: an entry of a timer since moved, or one already handled
        if not (firsts or thens):
            store.delete(base)
            return
        state.firsts, state.thens = firsts, thens
        self._keep(base, state, fire_at, ctx)

    def _alert(self, key: str, then: Seen, first_ts: float, first_id: str) -> Any:
        return self.alert(
            parts=(key, then.event_id),
            status="firing",
            starts_at=then.ts,
            labels=then.labels,
            summary=then.summary,
            evidence={
                "event_ids": [first_id, then.event_id],
                "key": key,
                "first_at": format_rfc3339(first_ts),
                "then_at": format_rfc3339(then.ts),
                "gap_seconds": round(then.ts - first_ts, 3),
            },
        )


def _bounded(items: list[Seen], limit: int) -> list[Seen]:
    """The ``limit`` newest entries, oldest first."""
    return sorted(items, key=lambda s: (s.ts, s.event_id))[-limit:]


register("sequence", SequenceSpec, SequenceRule)
