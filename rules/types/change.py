"""``change`` and ``new_value``: a field's value for a key changes, or a value never seen for it appears.

.. code-block:: yaml

    id: plan-changed
    type: change
    title: 套餐变更
    severity: info
    key: customer_id
    on: order.created
    field: plan_id
    summary: "客户 {customer_id} 套餐由 {previous} 改为 {plan_id}"

    id: new-channel
    type: new_value
    title: 新的投诉渠道
    severity: minor
    key: customer_id
    on: complaint.opened
    field: channel
    summary: "客户 {customer_id} 首次经 {channel} 投诉（此前：{previous}）"

The first value a key ever shows sets the baseline and does not fire.
``new_value`` remembers up to ``max_values`` distinct values per key (the
least recently seen are forgotten first). Events are handled in event-time
order once the watermark passes them; an event older than the last one its
key handled (a replay, or later than the allowed lateness) is ignored. A
key's memory is dropped ``keep_for`` after its last event. Summaries know the variable ``previous``.
"""

from __future__ import annotations

import msgspec

from rules.base import RuleHeader, RuleSpec, event_labels
from rules.conditions import Condition, compile_condition
from rules.errors import SpecError
from rules.fields import field_or_error, key_getter
from rules.ordered import InOrderRule, OrderedBuffer
from rules.registry import register
from rules.types.match import event_types
from yujing.events import Event
from yujing.protocols import RuleContext
from yujing.timeutil import format_rfc3339, parse_duration

__all__ = ["ChangeRule", "ChangeSpec", "NewValueSpec", "ValueHistory"]


class ChangeSpec(RuleSpec, tag="change", kw_only=True, forbid_unknown_fields=True):
    """YAML of a ``change`` rule."""

    key: str
    on: str | list[str]
    where: Condition | None = None
    field: str
    keep_for: str | int | float = "90d"


class NewValueSpec(ChangeSpec, tag="new_value", kw_only=True, forbid_unknown_fields=True):
    """YAML of a ``new_value`` rule."""

    max_values: int = 32


class ValueHistory(msgspec.Struct, array_like=True):
    """A key's last value and (``new_value``) the values it has shown, least recently seen first."""

    ts: float
    last: str
    seen: list[str] = []
    last_event: str = ""
    partition: int = -1  # the input partition its forgetting is timed in (-1: from a version with timer records)


class ChangeRule(InOrderRule, RuleHeader):
    """Fires when the field's value differs from the key's previous one (``new_value``: from all earlier ones)."""

    one_off = True  # its alerts never resolve by themselves: they close (rules.base.Closing)

    def __init__(self, spec: ChangeSpec, version: str) -> None:
        super().__init__(spec, version, frozenset({"previous"}))
        self.get_key = key_getter(spec.key, ("key",))
        self.event_types = event_types(spec.on, ("on",))
        self.when = compile_condition(spec.where, on=self.event_types)
        self.field = spec.field
        self.get_value = field_or_error(spec.field, ("field",))
        self.max_values = getattr(spec, "max_values", 0)
        if isinstance(spec, NewValueSpec) and self.max_values < 1:
            raise SpecError("`max_values` must be at least 1", ("max_values",))
        try:
            self.keep_for = parse_duration(spec.keep_for)
        except ValueError as exc:
            raise SpecError(str(exc), ("keep_for",)) from None
        self.namespace = f"chg:{spec.id}"
        self.memory_type = ValueHistory
        self.buffer = OrderedBuffer(self.rule_id, f"chg-pending:{spec.id}")

    def accepts(self, event: Event) -> bool:
        return self.when(event) and self.get_value(event) is not None

    def handle(self, key: str, event: Event, ts: float, ctx: RuleContext) -> None:
        value = str(self.get_value(event))
        store = ctx.state(self.namespace, ValueHistory)
        history = store.get(key)
        if history is not None and (ts, event.event_id) <= (history.ts, history.last_event):
            return  # behind what this key has handled: a replay, or too late to place in order
        if history is None:
            self.remember(key, ValueHistory(ts, value, [value] if self.max_values else [], event.event_id), ts, ctx)
            return
        previous = history.last
        if self.max_values:
            fires = value not in history.seen
            seen = [v for v in history.seen if v != value] + [value]
            history.seen = seen[-self.max_values :]
        else:
            fires = value != previous
        history.last, history.ts, history.last_event = value, ts, event.event_id
        self.remember(key, history, ts, ctx)
        if fires:
            ctx.emit(
                self.alert(
                    parts=(key, event.event_id),
                    status="firing",
                    starts_at=ts,
                    labels=event_labels(event),
                    summary=self.summary.render(event, {"previous": previous}),
                    evidence={
                        "event_ids": [event.event_id],
                        "key": key,
                        "field": self.field,
                        "previous": previous,
                        "value": value,
                        "at": format_rfc3339(ts),
                    },
                )
            )


register("change", ChangeSpec, ChangeRule)
register("new_value", NewValueSpec, ChangeRule)
