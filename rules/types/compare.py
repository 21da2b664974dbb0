"""``compare``: an event checked against values remembered from earlier events of the same key.

.. code-block:: yaml

    id: first-bill-above-promise
    type: compare
    title: 首月账单超出承诺资费
    severity: major
    key: order_id
    remember:
      on: order.created
      as: order
      fields: [monthly_fee, plan_id]
      keep_for: 120d
    check:
      on: bill.issued
      where: "is_first_bill and amount > 1.2 * order.monthly_fee"
    once: true                  # one alert per key (the first bill), not one per matching event
    summary: "客户 {customer_id} 首月账单 {amount} 元，承诺月费 {order.monthly_fee} 元"

The check's condition and summary see the checked event's fields and the
remembered ones as ``<as>.<field>`` (only the fields listed are kept). Events
are handled in event-time order once the watermark passes them, so a bill
that arrives a few minutes before its order (out of order upstream) is still
compared, and the outcome never depends on arrival order. Memory of a key is
dropped ``keep_for`` after the remembered event.
"""

from __future__ import annotations

from typing import Any

import msgspec

from rules.base import RuleHeader, RuleSpec, event_labels
from rules.conditions import Condition, compile_condition
from rules.errors import SpecError
from rules.field_types import field_type, typed_resolver
from rules.fields import FieldError, Getter, compile_field, field_or_error, key_getter
from rules.ordered import InOrderRule, OrderedBuffer
from rules.registry import register
from rules.types.match import event_types
from yujing.events import Event
from yujing.protocols import RuleContext
from yujing.timeutil import format_rfc3339, parse_duration

__all__ = ["CompareRule", "CompareSpec", "Memory"]


class RememberSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which events to remember and which of their fields."""

    on: str | list[str]
    where: Condition | None = None
    as_: str = msgspec.field(name="as")
    fields: list[str]
    keep_for: str | int | float = "90d"


class CheckSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which events to check, and the condition that raises the alert."""

    on: str | list[str]
    where: Condition


class CompareSpec(RuleSpec, tag="compare", kw_only=True, forbid_unknown_fields=True):
    """YAML of a ``compare`` rule."""

    key: str
    remember: RememberSpec
    check: CheckSpec
    once: bool = False


class Memory(msgspec.Struct, array_like=True, omit_defaults=True):
    """What a key remembers."""

    ts: float | None = None
    values: dict[str, Any] = {}
    fired: bool = False
    partition: int = -1  # the input partition its forgetting is timed in (-1: from a version with timer records)


class _Scope:
    """What a check's expressions see: the event, and the memory under its alias."""

    __slots__ = ("event", "memory")

    def __init__(self, event: Event, memory: dict[str, Any]) -> None:
        self.event = event
        self.memory = memory


class CompareRule(InOrderRule, RuleHeader):
    """Fires when a checked event, compared with the key's remembered values, meets the condition."""

    one_off = True  # its alerts never resolve by themselves: they close (rules.base.Closing)

    def __init__(self, spec: CompareSpec, version: str) -> None:
        remember = spec.remember
        self.alias = remember.as_
        if not self.alias.isidentifier() or compile_field_or_none(self.alias) is not None:
            raise SpecError(f"`as: {self.alias}` must be a plain name that is not an event field", ("remember", "as"))
        if not remember.fields:
            raise SpecError("`fields` lists what to remember", ("remember", "fields"))
        self.fields = {f: field_or_error(f, ("remember", "fields", i)) for i, f in enumerate(remember.fields)}
        super().__init__(spec, version, frozenset(f"{self.alias}.{f}" for f in self.fields if "." not in f))
        self.get_key = key_getter(spec.key, ("key",))
        self.remember_types = event_types(remember.on, ("remember", "on"))
        self.check_types = event_types(spec.check.on, ("check", "on"))
        self.remember_when = compile_condition(remember.where, ("remember", "where"), on=self.remember_types)
        self.check_when = compile_condition(spec.check.where, ("check", "where"), self._typed_resolve)
        try:
            self.keep_for = parse_duration(remember.keep_for)
        except ValueError as exc:
            raise SpecError(str(exc), ("remember", "keep_for")) from None
        self.once = spec.once
        self.event_types = self.remember_types | self.check_types
        self.namespace = f"cmp:{spec.id}"
        self.memory_type = Memory
        self.buffer = OrderedBuffer(self.rule_id, f"cmp-pending:{spec.id}")

    def _typed_resolve(self, path: str) -> Getter:
        """:meth:`_resolve` with each getter's type: a remembered field as the remembered events have it."""
        head, _, rest = path.partition(".")
        if head == self.alias:
            get = self._resolve(path)
            get.static_type = field_type(rest, self.remember_types)  # type: ignore[attr-defined]
            return get
        return typed_resolver(self.check_types, self._resolve)(path)

    def _resolve(self, path: str) -> Getter:
        head, _, rest = path.partition(".")
        if head == self.alias:
            if rest not in self.fields:
                raise FieldError(f"`{path}` is not remembered; `{self.alias}` keeps: {', '.join(self.fields)}")
            return lambda scope: scope.memory.get(rest)
        get = compile_field(path)
        return lambda scope: get(scope.event)

    def handle(self, key: str, event: Event, ts: float, ctx: RuleContext) -> None:
        store = ctx.state(self.namespace, Memory)
        kind = event.event_type
        if kind in self.remember_types and self.remember_when(event):
            memory = store.get(key) or Memory()
            if memory.ts is None or ts >= memory.ts:
                memory.ts = ts
                memory.values = {name: get(event) for name, get in self.fields.items()}
                self.remember(key, memory, ts, ctx)
        if kind in self.check_types:
            memory = store.get(key)
            if memory is None or memory.ts is None or memory.ts > ts or (self.once and memory.fired):
                return
            if not self.check_when(_Scope(event, memory.values)):
                return
            if self.once:
                memory.fired = True
                store.set(key, memory)
            variables = {f"{self.alias}.{name}": value for name, value in memory.values.items()}
            ctx.emit(
                self.alert(
                    parts=(key,) if self.once else (key, event.event_id),
                    status="firing",
                    starts_at=ts,
                    labels=event_labels(event),
                    summary=self.summary.render(event, variables),
                    evidence={
                        "event_ids": [event.event_id],
                        "key": key,
                        "remembered_at": format_rfc3339(memory.ts),
                        "remembered": {name: _plain(value) for name, value in memory.values.items()},
                    },
                )
            )


def compile_field_or_none(path: str) -> Getter | None:
    try:
        return compile_field(path)
    except FieldError:
        return None


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of a remembered value (timestamps as text)."""
    return value.isoformat() if hasattr(value, "isoformat") else value


register("compare", CompareSpec, CompareRule)
