"""``threshold``: the count (or distinct count) of matching events per group in a window reaches N.

.. code-block:: yaml

    id: third-complaint-24h
    type: threshold
    title: 24 小时内第三次投诉
    severity: major
    on: complaint.opened
    group_by: customer_id
    window: 24h            # sliding (t − 24h, t]; or mode: tumbling (calendar buckets)
    count: 3               # fires when the count reaches 3
    summary: "客户 {customer_id} 24 小时内已投诉 {count} 次"

``distinct: order_id`` counts distinct values of a field instead of events.
The alert fires at the event time the count reached N and resolves when it
drops below N again (sliding) or when the bucket ends (tumbling); one alert
per episode. Summaries know the ``group_by`` fields and the variables
``count threshold window window_start``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rules.base import RuleHeader, RuleSpec
from rules.conditions import Condition, compile_condition
from rules.errors import SpecError
from rules.fields import field_or_error
from rules.guards import required_values
from rules.registry import register
from rules.types.match import event_types
from rules.window import (
    DEFAULT_TIMEZONE,
    Hit,
    LabelFields,
    Transition,
    Window,
    WindowState,
    add_hit,
    drop_departed,
    first_reaching,
    group_key,
    hits_near,
    next_point,
    sweep,
)
from yujing.cohort import CohortRecord, is_cohort_grouping
from yujing.events import Event
from yujing.protocols import RuleContext
from yujing.timeutil import format_rfc3339

__all__ = ["ThresholdRule", "ThresholdSpec", "WindowRule"]

VARIABLES = frozenset({"count", "threshold", "window", "window_start"})


class ThresholdSpec(RuleSpec, tag="threshold", kw_only=True, forbid_unknown_fields=True):
    """YAML of a ``threshold`` rule."""

    on: str | list[str]
    where: Condition | None = None
    group_by: str | list[str]
    window: str | int | float
    mode: str = "sliding"
    timezone: str = DEFAULT_TIMEZONE
    count: int
    distinct: str | None = None
    max_hits: int = 10_000


class WindowRule(RuleHeader):
    """What the window rules share: selecting hits, keeping them per group, sweeping behind the watermark.

    A subclass says when its condition holds (:meth:`holds`).
    """

    namespace_prefix = "win"

    def __init__(self, spec: Any, version: str, *, threshold: int, threshold_key: str, window: Window) -> None:
        self.group = group_key(spec.group_by)
        super().__init__(spec, version, VARIABLES, self.group.fields)
        self.event_types = event_types(spec.on, ("on",))
        self.when = compile_condition(spec.where, on=self.event_types)
        self.guard = required_values(spec.where)  # lets the engine index the rule by that field's value
        self.window = window
        self.window_text = str(spec.window)
        self.threshold = threshold
        if self.threshold < 1:
            raise SpecError(f"`{threshold_key}` must be at least 1", (threshold_key,))
        distinct = getattr(spec, "distinct", None)
        self.distinct = field_or_error(distinct, ("distinct",)) if distinct else None
        self.max_hits = spec.max_hits
        if self.max_hits < self.threshold:
            raise SpecError(f"`max_hits` must be at least `{threshold_key}`", ("max_hits",))
        self.namespace = f"{self.namespace_prefix}:{spec.id}"
        self.cohort = is_cohort_grouping(self.group.fields)

    def holds(self, count: int, at: float, state: WindowState) -> bool:
        raise NotImplementedError

    def on_event(self, event: Event, ts: float, ctx: RuleContext) -> None:
        if not self.when(event):
            return
        group = self.group(event)
        if group is None:
            return
        key, labels = group
        value = ""
        if self.distinct is not None:
            raw = self.distinct(event)
            if raw is None:
                return
            value = str(raw)
        if self.cohort:  # the group spans partitions: count it in the cohort stage
            ctx.forward(CohortRecord("cohort:" + self.rule_id, key, event.ts, event.event_id, "", "hit", value, labels))
            return
        self._add(key, labels, Hit(ts, event.event_id, value), ctx)

    def on_record(self, record: CohortRecord, ts: float, ctx: RuleContext) -> None:
        """The cohort stage's half: a record forwarded by some partition."""
        self._add(record.key, record.labels, Hit(ts, record.event_id, record.value), ctx)

    def _add(self, key: str, labels: dict[str, str], hit: Hit, ctx: RuleContext) -> None:
        ts = hit.ts
        store = ctx.state(self.namespace, WindowState)
        state = store.get(key) or WindowState(labels=labels)
        was_quiet = self.quiet(state)
        if was_quiet:
            self._skip_to(state, ctx.watermark)
        if not add_hit(state, hit, self.window):
            return
        if len(state.hits) > self.max_hits:
            del state.hits[: len(state.hits) - self.max_hits]  # the oldest go; the count saturates
        state.sparse = was_quiet and self.sparse_with(state, ts)  # only a window holding the new hit can have grown
        if self.quiet(state):
            # Nothing can fire yet: one timer, at a departure, to forget the group in time.
            if state.next_at is None:
                state.next_at = self.window.departure(ts)
                ctx.set_timer(self.rule_id, key, state.next_at)
        else:
            arriving = ts > state.done_to and self.arrival_counts(state)
            candidate = ts if arriving else self.window.departure(ts)
            # quiet until this hit, the group can change no earlier than it: its timer to forget it moves here
            if state.next_at is None or candidate < state.next_at or (was_quiet and arriving):
                state.next_at = candidate
                ctx.set_timer(self.rule_id, key, candidate)
        state.partition = ctx.partition
        store.set(key, state)

    def quiet(self, state: WindowState) -> bool:
        """True when no transition is possible: no open alert and fewer hits than any firing needs.

        Then evaluation can jump ahead without a sweep (most groups, most of the time).
        """
        return False

    def sparse_with(self, state: WindowState, ts: float) -> bool:
        """True when a quiet group stays quiet with its new hit at ``ts`` (see ``WindowState.sparse``)."""
        return False

    def arrival_counts(self, state: WindowState) -> bool:
        """Whether an arrival may change the condition (else only departures are timed)."""
        return True

    def next_due(self, state: WindowState) -> float | None:
        """After a sweep: the next time the condition may change (``None``: none; the group is then forgotten
        unless an alert is open)."""
        return next_point(state, self.window)

    def _skip_to(self, state: WindowState, mark: float) -> None:
        if mark > state.done_to:
            state.done_to = mark
            drop_departed(state, self.window)

    def on_timer(self, key: str, fire_at: float, ctx: RuleContext) -> None:
        store = ctx.state(self.namespace, WindowState)
        state = store.get(key)
        if state is None or state.next_at != fire_at:
            return
        until = max(fire_at, ctx.watermark)
        if self.quiet(state):
            self._skip_to(state, until)
            state.next_at = self.window.departure(state.hits[-1].ts) if state.hits else None  # the last to leave
        else:
            distinct = self.distinct is not None
            for change in sweep(state, self.window, until, lambda n, t: self.holds(n, t, state), distinct):
                ctx.emit(self._alert(key, state, change))
            state.next_at = self.next_due(state)
        if state.next_at is not None:
            ctx.set_timer(self.rule_id, key, state.next_at)
        if state.next_at is None and state.active_since is None:
            store.delete(key)
        else:
            state.partition = ctx.partition
            store.set(key, state)

    def stored_timers(self, ctx: RuleContext) -> Iterator[tuple[str, int, float]]:
        """Each group's pending timer, ``next_at`` (see :class:`yujing.protocols.KeepsTimers`): ``on_timer``
        already ignores a time its state no longer expects. A cohort rule's groups live in the cohort stage,
        which keeps timer records for them (and shares this namespace: they are not this engine's to time)."""
        if self.cohort:
            return
        for key, state in ctx.state(self.namespace, WindowState).items():
            if state.next_at is not None and state.partition >= 0:  # one stored by an earlier version has a record
                yield key, state.partition, state.next_at

    def _alert(self, key: str, state: WindowState, change: Transition) -> Any:
        anchor = self.window.start_of(change.since) if self.window.kind == "tumbling" else change.since
        variables = {
            "count": change.count,
            "threshold": self.threshold,
            "window": self.window_text,
            "window_start": format_rfc3339(change.window_start),
        }
        return self.alert(
            parts=(key, repr(anchor)),
            status="firing" if change.active else "resolved",
            starts_at=change.since,
            ends_at=None if change.active else change.at,
            labels=state.labels,
            summary=self.summary.render(LabelFields(state.labels), variables),
            evidence={
                "event_ids": list(change.event_ids),
                "key": key,
                "count": change.count,
                "threshold": self.threshold,
                "window_seconds": self.window.size,
                "window_kind": self.window.kind,
                "window_start": format_rfc3339(change.window_start),
            },
        )


class ThresholdRule(WindowRule):
    """Fires while the window's count is at least ``count``."""

    namespace_prefix = "thr"

    def __init__(self, spec: ThresholdSpec, version: str) -> None:
        window = Window.from_spec(spec.window, spec.mode, spec.timezone)
        super().__init__(spec, version, threshold=spec.count, threshold_key="count", window=window)

    def holds(self, count: int, at: float, state: WindowState) -> bool:
        return count >= self.threshold

    def quiet(self, state: WindowState) -> bool:
        return state.active_since is None and (len(state.hits) < self.threshold or state.sparse)

    def sparse_with(self, state: WindowState, ts: float) -> bool:
        return hits_near(state, ts, self.window) < self.threshold

    def arrival_counts(self, state: WindowState) -> bool:
        return state.active_since is None  # more hits never end a count of at least N

    def next_due(self, state: WindowState) -> float | None:
        """While the count holds, its next departure; else the arrival that first brings a window to the
        threshold, and with none the group is quiet until a hit comes (timed to forget it when its last leaves)."""
        if state.active_since is not None:
            return next_point(state, self.window, arrivals=False)
        reaching = first_reaching(state, self.window, self.threshold)
        if reaching is None:
            state.sparse = True
            return self.window.departure(state.hits[-1].ts) if state.hits else None
        return reaching if reaching > state.done_to else next_point(state, self.window)


register("threshold", ThresholdSpec, ThresholdRule)
