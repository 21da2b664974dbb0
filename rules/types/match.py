"""``match``: a condition on one event.

.. code-block:: yaml

    id: redline-complaint
    type: match
    title: 红线投诉
    severity: critical
    on: [complaint.opened, complaint.updated]
    where:
      text: {contains_any: [工信部, "315", 起诉, 媒体曝光, 投诉到底]}
    key: complaint_id      # one alert per complaint (default: one per event)
    summary: "客户 {customer_id} 投诉提及红线词：{text}"
"""

from __future__ import annotations

from rules.base import RuleHeader, RuleSpec, event_labels
from rules.conditions import Condition, compile_condition
from rules.errors import check_event_types
from rules.fields import key_getter
from rules.guards import required_values
from rules.registry import register
from yujing.events import Event
from yujing.protocols import RuleContext

__all__ = ["MatchRule", "MatchSpec"]


class MatchSpec(RuleSpec, tag="match", kw_only=True, forbid_unknown_fields=True):
    """YAML of a ``match`` rule."""

    on: str | list[str]
    where: Condition | None = None
    key: str = "event_id"


def event_types(on: str | list[str], path: tuple[str | int, ...]) -> frozenset[str]:
    """The event types an ``on:`` names, checked against the contract."""
    return check_event_types(frozenset([on] if isinstance(on, str) else on), path)


class MatchRule(RuleHeader):
    """Fires once per matching event (or per ``key`` value)."""

    one_off = True  # its alerts never resolve by themselves: they close (rules.base.Closing)

    def __init__(self, spec: MatchSpec, version: str) -> None:
        super().__init__(spec, version)
        self.event_types = event_types(spec.on, ("on",))
        self.predicate = compile_condition(spec.where, on=self.event_types)
        self.guard = required_values(spec.where)  # lets the engine index the rule by that field's value
        self.get_key = key_getter(spec.key, ("key",))

    def on_event(self, event: Event, ts: float, ctx: RuleContext) -> None:
        if not self.predicate(event):
            return
        key = self.get_key(event)
        if key is None:
            return
        ctx.emit(
            self.alert(
                parts=(str(key),),
                status="firing",
                starts_at=ts,
                labels=event_labels(event),
                summary=self.summary.render(event),
                evidence={"event_ids": [event.event_id], "event_type": event.event_type},
            )
        )

    def on_timer(self, key: str, fire_at: float, ctx: RuleContext) -> None:
        """A match rule sets no timers."""


register("match", MatchSpec, MatchRule)
