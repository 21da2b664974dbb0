"""``sla``: a start event not followed by a stop event for the same key within a deadline.

.. code-block:: yaml

    id: install-sla
    type: sla
    title: 宽带装机超时
    severity: major
    key: order_id
    start: {on: order.created, where: {product: 宽带}}
    stop: {on: order.completed}
    cancel: {on: order.cancelled}
    deadline: {by: tier, values: {platinum: 24h, gold: 48h}, default: 72h}
    summary: "{region} 客户 {customer_id} 的装机单 {order_id} 已超过承诺时限 {deadline}"

``{deadline}`` in the summary is the deadline in the start event's own UTC
offset (``2026-03-02 11:58``). ``deadline`` is a duration (``48h``), a map by an event field with a default
(``{by: tier, values: {...}, default: 72h}``), or a timestamp field of the
start event (``{field: promised_at, default: 72h}``).

The breach fires when the partition's watermark passes the deadline, with
``starts_at`` = the deadline. A stop event after the breach resolves it
(``ends_at`` = the stop's event time); a cancel ends the watch, and a cancel
after the deadline resolves the breach it ends (the order was overdue before
it was cancelled). Events of one key may come in any order within the
allowed lateness: a stop (or cancel) seen before its start is remembered
until the watermark passes it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from rules.base import KeptFields, RuleHeader, RuleSpec
from rules.conditions import Condition, compile_condition
from rules.errors import SpecError
from rules.fields import field_or_error, key_getter
from rules.registry import register
from rules.template import Template, TemplateError
from rules.types.match import event_types
from yujing.alerts import Severity
from yujing.events import Event
from yujing.protocols import KeyedState, RuleContext
from yujing.timeutil import format_duration, format_rfc3339, parse_duration

__all__ = ["SlaRule", "SlaSpec", "SlaWatch"]

#: A fired, unresolved breach is forgotten this long after its deadline.
DEFAULT_MAX_OPEN = 30 * 86400.0
#: What separated a watch's key from the name of its extra timers (``\x1ewarn0``) in earlier versions.
_EARLIER_TIMER = "\x1e"


class EventSelector(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which events start, stop or cancel a watch."""

    on: str | list[str]
    where: Condition | None = None


class SlaWarning(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A pre-breach warning: when ``at`` (a fraction) of the allowed time has passed with the watch open.

    Its ``summary`` may use the fields the rule's summary uses and ``{deadline}`` and ``{left}`` (the time
    left, e.g. ``14h24m``); without one it says which key is due when, never the breach's words.
    """

    at: float
    severity: Severity
    summary: str | None = None


class SlaSpec(RuleSpec, tag="sla", kw_only=True, forbid_unknown_fields=True):
    """YAML of an ``sla`` rule."""

    key: str
    start: EventSelector
    stop: EventSelector
    cancel: EventSelector | None = None
    deadline: str | int | float | dict[str, Any]
    max_open: str | None = None
    warnings: list[SlaWarning] = msgspec.field(default_factory=list)


class SlaWatch(msgspec.Struct, array_like=True, omit_defaults=True):
    """One key's watch as stored: compact, positional."""

    start_ts: float | None = None
    deadline: float | None = None
    end_ts: float | None = None
    ended_by: str = ""
    fired: bool = False
    settled: bool = False
    start_event: str = ""
    labels: dict[str, str] = {}
    summary: str = ""
    warned: list[int] = []  # indexes of the warnings raised (and not yet resolved)
    values: list[str | None] = []  # the start event's kept fields (labels and summary are rebuilt from them)
    utc_offset: int = 0  # the start event's UTC offset, seconds (the summary's deadline is local time)
    partition: int = -1  # the input partition whose watermark drives its timer (-1: stored by an earlier version)


def _compile_deadline(spec: Any) -> Callable[[Any, float], float | None]:
    """A function (event, start ts) → deadline epoch seconds."""
    where = ("deadline",)
    try:
        if not isinstance(spec, dict):
            seconds = parse_duration(spec)
            if seconds <= 0:
                raise SpecError("the deadline must be positive", where)
            return lambda event, ts: ts + seconds
        if "by" in spec:
            unknown = set(spec) - {"by", "values", "default"}
            if unknown:
                raise SpecError(f"unknown key(s) {', '.join(sorted(unknown))}", where, "use by, values, default")
            get = field_or_error(spec["by"], (*where, "by"))
            given = spec.get("values") or {}
            if not isinstance(given, dict):
                raise SpecError("values must map each value of the field to a duration", (*where, "values"), "e.g. {platinum: 24h}")
            values = {str(k): parse_duration(v) for k, v in given.items()}
            default = parse_duration(spec["default"]) if "default" in spec else None
            if any(v <= 0 for v in values.values()) or (default is not None and default <= 0):
                raise SpecError("every deadline must be positive", where)

            def by_field(event: Any, ts: float) -> float | None:
                seconds = values.get(str(get(event)), default)
                return None if seconds is None else ts + seconds

            return by_field
        if "field" in spec:
            unknown = set(spec) - {"field", "default"}
            if unknown:
                raise SpecError(f"unknown key(s) {', '.join(sorted(unknown))}", where, "use field, default")
            get = field_or_error(spec["field"], (*where, "field"))
            fallback = parse_duration(spec["default"]) if "default" in spec else None

            def from_field(event: Any, ts: float) -> float | None:
                value = get(event)
                if value is not None and hasattr(value, "timestamp"):
                    return float(value.timestamp())
                return None if fallback is None else ts + fallback

            return from_field
    except ValueError as exc:
        if isinstance(exc, SpecError):
            raise
        raise SpecError(str(exc), where, "durations look like 90s, 15m, 48h, 7d") from None
    raise SpecError("a deadline is a duration, {by: FIELD, values: {...}, default: D} or {field: FIELD}", where)


class SlaRule(RuleHeader):
    """Watches each key from its start event until its stop event or its deadline."""

    def __init__(self, spec: SlaSpec, version: str) -> None:
        super().__init__(spec, version, variables=frozenset({"deadline"}))
        self.get_key = key_getter(spec.key, ("key",))
        self.start_types = event_types(spec.start.on, ("start", "on"))
        self.stop_types = event_types(spec.stop.on, ("stop", "on"))
        self.cancel_types = event_types(spec.cancel.on, ("cancel", "on")) if spec.cancel else frozenset()
        self.start_when = compile_condition(spec.start.where, ("start", "where"), on=self.start_types)
        self.stop_when = compile_condition(spec.stop.where, ("stop", "where"), on=self.stop_types)
        self.cancel_when = compile_condition(spec.cancel.where if spec.cancel else None, ("cancel", "where"), on=self.cancel_types)
        self.deadline_of = _compile_deadline(spec.deadline)
        try:
            self.max_open = parse_duration(spec.max_open) if spec.max_open else DEFAULT_MAX_OPEN
        except ValueError as exc:
            raise SpecError(str(exc), ("max_open",)) from None
        self.event_types = self.start_types | self.stop_types | self.cancel_types
        self.namespace = f"sla:{spec.id}"
        self.kept = KeptFields(self.summary.fields)
        # The key is the watch's own key in state: its place among the kept values is left empty.
        self.key_slot = self.kept.names.index(spec.key) if spec.key in self.kept.names else None
        self.warnings = list(spec.warnings)
        self.key_field = spec.key
        self.warning_summaries: list[Template] = []
        for i, warning in enumerate(self.warnings):
            if not 0 < warning.at < 1:
                raise SpecError("a warning's `at` is a fraction of the allowed time, between 0 and 1", ("warnings", i, "at"))
            text = warning.summary or f"[即将超时 {warning.at:.0%}] {self.title}：{spec.key} {{key}} 将于 {{deadline}} 到期，还剩 {{left}}"
            try:  # the kept fields only: a watch keeps what the rule's summary and labels need
                self.warning_summaries.append(Template(text, _WARNING_VARIABLES, self.kept.names))
            except TemplateError as exc:
                raise SpecError(str(exc), ("warnings", i, "summary")) from None

    # -- events -----------------------------------------------------------
    def on_event(self, event: Event, ts: float, ctx: RuleContext) -> None:
        kind = event.event_type
        if kind in self.start_types and self.start_when(event):
            self._start(event, ts, ctx)
        elif kind in self.stop_types and self.stop_when(event):
            self._end(event, ts, ctx, "stop")
        elif kind in self.cancel_types and self.cancel_when(event):
            self._end(event, ts, ctx, "cancel")

    def _watches(self, ctx: RuleContext) -> KeyedState[SlaWatch]:
        return ctx.state(self.namespace, SlaWatch, packed=True)

    def _start(self, event: Event, ts: float, ctx: RuleContext) -> None:
        key = self.get_key(event)
        if key is None:
            return
        watch = self._watches(ctx).get(key) or SlaWatch()
        if watch.start_ts is not None or watch.settled:
            return  # a duplicate start (redelivery, replay): the first one counts
        deadline = self.deadline_of(event, ts)
        if deadline is None or deadline <= ctx.watermark:
            # Its whole SLA period lies behind the watermark: only a duplicate or a
            # replay arrives that late, and its watch was settled long ago.
            return
        watch.start_ts, watch.deadline, watch.start_event = ts, deadline, event.event_id
        # A million open watches is normal: keep the fields the alert needs, not the rendered alert.
        watch.values = self.kept.values_of(event)
        if self.key_slot is not None and watch.values[self.key_slot] == key:
            watch.values[self.key_slot] = None
        offset = event.ts.utcoffset()
        watch.utc_offset = int(offset.total_seconds()) if offset else 0
        if watch.end_ts is not None:  # the end came first (out of order)
            self._settle(key, watch, watch.end_ts, watch.ended_by, ctx)
            return
        self._keep(key, watch, ctx)

    def _end(self, event: Event, ts: float, ctx: RuleContext, how: str) -> None:
        key = self.get_key(event)
        if key is None:
            return
        watch = self._watches(ctx).get(key)
        if watch is not None and watch.settled:
            return  # a duplicate end of a settled watch
        if watch is None or watch.start_ts is None:
            if watch is None or watch.end_ts is None or ts < watch.end_ts:
                self._keep(key, SlaWatch(end_ts=ts, ended_by=how), ctx)
            return
        self._settle(key, watch, ts, how, ctx)

    def _settle(self, key: str, watch: SlaWatch, end_ts: float, how: str, ctx: RuleContext) -> None:
        """The watch ended at ``end_ts``: emit what that means, then forget it.

        A watch that ended in time leaves a tombstone until its deadline (its timer removes it),
        so a duplicate start cannot open it again; after the deadline a duplicate start is
        recognised as stale.
        """
        assert watch.deadline is not None
        # Decided in event time only, never by arrival order: a watch that was still open
        # at its deadline breached, whether a stop or a cancel ended it afterwards.
        breached = watch.fired or end_ts > watch.deadline
        if not watch.fired:  # a fired breach has resolved its warnings already
            self._resolve_warnings(key, watch, min(end_ts, watch.deadline), ctx)
        if breached:
            if not watch.fired:
                ctx.emit(self._alert(key, watch, "firing"))
            ctx.emit(self._alert(key, watch, "resolved", ends_at=max(end_ts, watch.deadline), how=how))
        if watch.deadline > ctx.watermark and not breached:
            self._keep(key, SlaWatch(deadline=watch.deadline, settled=True), ctx)
        else:
            self._watches(ctx).delete(key)

    # -- the watch's one timer ----------------------------------------------
    def _keep(self, key: str, watch: SlaWatch, ctx: RuleContext) -> None:
        """Store the watch and set its timer at the moment it next has something to do."""
        due = self._due_at(watch)
        watch.partition = ctx.partition
        self._watches(ctx).set(key, watch)
        if due is not None:
            ctx.set_timer(self.rule_id, key, due)

    def _due_at(self, watch: SlaWatch) -> float | None:
        """When the watch next acts: its next warning, its breach, or when it is forgotten."""
        if watch.deadline is None:  # an end seen before its start, kept until the watermark passes it
            return None if watch.end_ts is None else watch.end_ts + 1.0
        if watch.settled:
            return watch.deadline
        if watch.fired:
            return watch.deadline + self.max_open
        due = watch.deadline
        if watch.start_ts is not None:
            for i in range(len(self.warnings)):
                if i not in watch.warned:
                    due = min(due, self._warning_moment(watch, i))
        return due

    def _warning_moment(self, watch: SlaWatch, i: int) -> float:
        assert watch.start_ts is not None and watch.deadline is not None
        return watch.start_ts + self.warnings[i].at * (watch.deadline - watch.start_ts)

    def stored_timers(self, ctx: RuleContext) -> Iterator[tuple[str, int, float]]:
        """Each stored watch's timer (see :class:`yujing.protocols.KeepsTimers`)."""
        for key, watch in self._watches(ctx).items():
            due = self._due_at(watch)
            if due is not None and watch.partition >= 0:  # one stored by an earlier version has a record
                yield key, watch.partition, due

    def on_timer(self, key: str, fire_at: float, ctx: RuleContext) -> None:
        key = key.partition(_EARLIER_TIMER)[0]  # an earlier version kept a timer per warning and for cleanup
        store = self._watches(ctx)
        watch = store.get(key)
        if watch is None or self._due_at(watch) != fire_at:
            return  # a moved timer's earlier entry, or one of a watch that is gone
        if watch.deadline is None or watch.settled or watch.fired:
            store.delete(key)  # a tombstone, or a breach left open for max_open: forgotten
            return
        if fire_at < watch.deadline:
            self._warn(key, watch, fire_at, ctx)
            return
        self._resolve_warnings(key, watch, watch.deadline, ctx)  # the breach supersedes them
        watch.fired = True
        self._keep(key, watch, ctx)
        ctx.emit(self._alert(key, watch, "firing"))

    # -- pre-breach warnings -----------------------------------------------
    def _warn(self, key: str, watch: SlaWatch, fire_at: float, ctx: RuleContext) -> None:
        """Raise the first warning due at ``fire_at`` (one at the same moment follows at once: its timer is due)."""
        i = next(i for i in range(len(self.warnings)) if i not in watch.warned and self._warning_moment(watch, i) == fire_at)
        watch.warned = [*watch.warned, i]
        self._keep(key, watch, ctx)
        ctx.emit(self._warning_alert(key, watch, i, "firing", fire_at))

    def _resolve_warnings(self, key: str, watch: SlaWatch, at: float, ctx: RuleContext) -> None:
        """The watch ends (or breaches) at ``at``: resolve its warnings, raising first any it was due.

        Decided in event time: a warning whose moment came before ``at`` was due even when the
        end arrived before the watermark reached that moment.
        """
        if watch.start_ts is None or watch.deadline is None:
            return
        for i in range(len(self.warnings)):
            since = self._warning_moment(watch, i)
            if i not in watch.warned:
                if since >= at:
                    continue
                ctx.emit(self._warning_alert(key, watch, i, "firing", since))
            ctx.emit(self._warning_alert(key, watch, i, "resolved", since, at))
        watch.warned = []

    def _warning_alert(self, key: str, watch: SlaWatch, i: int, status: str, since: float, ends_at: float | None = None) -> Any:
        assert watch.deadline is not None and watch.start_ts is not None
        warning = self.warnings[i]
        return self.alert(
            parts=(key, repr(watch.deadline), f"warn{warning.at!r}"),
            status=status,
            starts_at=since,
            ends_at=ends_at,
            labels={**self._labels(key, watch), "phase": "warning"},
            summary=self._warning_summary(key, watch, i, since),
            severity=warning.severity,
            evidence={
                "event_ids": [watch.start_event],
                "key": key,
                "started_at": format_rfc3339(watch.start_ts),
                "deadline": format_rfc3339(watch.deadline),
                "warning_at_fraction": warning.at,
                "seconds_left": round(watch.deadline - since, 3),
            },
        )

    def _values(self, key: str, watch: SlaWatch) -> list[str | None]:
        """The kept values with the key back in its place."""
        values = watch.values
        if self.key_slot is not None and values[self.key_slot] is None:
            values = values.copy()
            values[self.key_slot] = key
        return values

    def _labels(self, key: str, watch: SlaWatch) -> dict[str, str]:
        return self.kept.labels(self._values(key, watch)) if watch.values else watch.labels

    def _summary(self, key: str, watch: SlaWatch) -> str:
        if not watch.values:
            return watch.summary  # a watch stored by an earlier version
        return self.summary.render(self.kept.source(self._values(key, watch)), {"deadline": self._local_deadline(watch)})

    def _warning_summary(self, key: str, watch: SlaWatch, i: int, since: float) -> str:
        assert watch.deadline is not None
        if not watch.values:  # a watch stored by an earlier version
            return f"[即将超时 {self.warnings[i].at:.0%}] {watch.summary}"
        left = format_duration(watch.deadline - since)
        variables = {"deadline": self._local_deadline(watch), "left": left, "key": key}
        return self.warning_summaries[i].render(self.kept.source(self._values(key, watch)), variables)

    @staticmethod
    def _local_deadline(watch: SlaWatch) -> str:
        """The deadline in the start event's own UTC offset."""
        assert watch.deadline is not None
        zone = dt.timezone(dt.timedelta(seconds=watch.utc_offset))
        return dt.datetime.fromtimestamp(watch.deadline, zone).strftime("%Y-%m-%d %H:%M")

    def _alert(self, key: str, watch: SlaWatch, status: str, ends_at: float | None = None, how: str = "") -> Any:
        assert watch.deadline is not None and watch.start_ts is not None
        evidence: dict[str, Any] = {
            "event_ids": [watch.start_event],
            "key": key,
            "started_at": format_rfc3339(watch.start_ts),
            "deadline": format_rfc3339(watch.deadline),
            "allowed_seconds": round(watch.deadline - watch.start_ts, 3),
        }
        if ends_at is not None:
            evidence["ended_by"] = how
            evidence["overdue_seconds"] = round(ends_at - watch.deadline, 3)
        return self.alert(
            parts=(key, repr(watch.deadline)),
            status=status,
            starts_at=watch.deadline,
            ends_at=ends_at,
            labels=self._labels(key, watch),
            summary=self._summary(key, watch),
            evidence=evidence,
        )


_WARNING_VARIABLES = frozenset({"deadline", "left", "key"})


register("sla", SlaSpec, SlaRule)
