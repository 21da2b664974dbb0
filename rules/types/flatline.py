"""``flatline``: fewer than N events for a group in a sliding window (a channel going silent).

.. code-block:: yaml

    id: channel-silent
    type: flatline
    title: 渠道静默
    severity: major
    on: [complaint.opened]
    group_by: customer_id
    window: 1h
    fewer_than: 1          # no event for an hour
    summary: "{customer_id} 一小时内没有任何投诉事件"

A group is watched once it has been seen; the rule only speaks after a full
window of its history (so a group first seen a minute ago is not "silent").
It fires at the event time the count dropped below N and resolves when
events come back. A group that stays silent keeps one small state entry.
"""

from __future__ import annotations

from rules.base import RuleSpec
from rules.conditions import Condition
from rules.registry import register
from rules.types.threshold import WindowRule
from rules.window import Window, WindowState

__all__ = ["FlatlineRule", "FlatlineSpec"]


class FlatlineSpec(RuleSpec, tag="flatline", kw_only=True, forbid_unknown_fields=True):
    """YAML of a ``flatline`` rule."""

    on: str | list[str]
    where: Condition | None = None
    group_by: str | list[str]
    window: str | int | float
    fewer_than: int = 1
    max_hits: int = 10_000


class FlatlineRule(WindowRule):
    """Fires while a seen group has fewer than ``fewer_than`` events in the window."""

    namespace_prefix = "flat"

    def __init__(self, spec: FlatlineSpec, version: str) -> None:
        window = Window.from_spec(spec.window, "sliding", "+00:00")
        super().__init__(spec, version, threshold=spec.fewer_than, threshold_key="fewer_than", window=window)

    def holds(self, count: int, at: float, state: WindowState) -> bool:
        return count < self.threshold and state.first_ts is not None and at >= state.first_ts + self.window.size


register("flatline", FlatlineSpec, FlatlineRule)
