"""``ratio``: numerator events per denominator events per group in a calendar window (e.g. the service rate 服务率).

.. code-block:: yaml

    id: complaint-rate
    type: ratio
    title: 服务率超标
    severity: major
    numerator: {on: complaint.opened}
    denominator: {on: order.completed}
    group_by: [product, region]
    window: 1d                 # calendar buckets …
    timezone: "+08:00"         # … from local midnight
    per: 10000                 # the rate per 10,000 denominator events
    above: 50                  # fires when the rate exceeds 50 per 10,000
    min_denominator: 100       # too few orders to judge: no alert
    summary: "{region}{product} 服务率 {rate}/万（{numerator} 投诉 / {denominator} 完工）"

At the end of each window, once the watermark passes it, a group whose
denominator reached ``min_denominator`` and whose rate exceeds ``above``
raises one alert for that window (``starts_at`` = the window's end, the
moment the rate is known). A group by cohort fields (region, product, …)
is counted in the engine's cohort stage, across all partitions. Each event
counts once however often it is delivered.
"""

from __future__ import annotations

from typing import Any

import msgspec

from rules.base import RuleHeader, RuleSpec
from rules.conditions import Condition, compile_condition
from rules.errors import SpecError
from rules.registry import register
from rules.types.match import event_types
from rules.window import DEFAULT_TIMEZONE, LabelFields, Window, group_key
from yujing.cohort import CohortRecord, is_cohort_grouping
from yujing.events import Event
from yujing.protocols import RuleContext
from yujing.scores import Score
from yujing.timeutil import format_rfc3339

__all__ = ["RatioBucket", "RatioRule", "RatioSpec"]

_NUM, _DEN = 1, 2


class Side(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which events count on one side of the ratio."""

    on: str | list[str]
    where: Condition | None = None


class RatioSpec(RuleSpec, tag="ratio", kw_only=True, forbid_unknown_fields=True):
    """YAML of a ``ratio`` rule."""

    numerator: Side
    denominator: Side
    group_by: str | list[str]
    window: str | int | float
    timezone: str = DEFAULT_TIMEZONE
    per: float = 1.0
    above: float
    min_denominator: int = 1


class RatioBucket(msgspec.Struct, array_like=True):
    """One group's window: each counted event id with its side(s), and the group's labels."""

    start: float
    seen: dict[str, int] = {}
    labels: dict[str, str] = {}


class RatioRule(RuleHeader):
    """Fires when a window's numerator/denominator rate is above the line.

    Each group with a denominator (judged or too small to judge) is also reported as a
    score: ``score`` the rate per ``per``, ``observed`` the numerator,
    ``expected`` the denominator.
    """

    def __init__(self, spec: RatioSpec, version: str) -> None:
        self.group = group_key(spec.group_by)
        super().__init__(spec, version, frozenset({"rate", "numerator", "denominator", "window_start"}), self.group.fields)
        self.num_types = event_types(spec.numerator.on, ("numerator", "on"))
        self.den_types = event_types(spec.denominator.on, ("denominator", "on"))
        self.num_when = compile_condition(spec.numerator.where, ("numerator", "where"), on=self.num_types)
        self.den_when = compile_condition(spec.denominator.where, ("denominator", "where"), on=self.den_types)
        self.window = Window.from_spec(spec.window, "tumbling", spec.timezone)
        if spec.per <= 0:
            raise SpecError("`per` must be positive", ("per",))
        if spec.min_denominator < 1:
            raise SpecError("`min_denominator` must be at least 1", ("min_denominator",))
        self.per, self.above, self.min_denominator = spec.per, spec.above, spec.min_denominator
        self.event_types = self.num_types | self.den_types
        self.namespace = f"ratio:{spec.id}"
        self.cohort = is_cohort_grouping(self.group.fields)

    def on_event(self, event: Event, ts: float, ctx: RuleContext) -> None:
        sides = 0
        if event.event_type in self.num_types and self.num_when(event):
            sides |= _NUM
        if event.event_type in self.den_types and self.den_when(event):
            sides |= _DEN
        if not sides:
            return
        group = self.group(event)
        if group is None:
            return
        key, labels = group
        if self.cohort:
            ctx.forward(CohortRecord("cohort:" + self.rule_id, key, event.ts, event.event_id, "", str(sides), "", labels))
            return
        self._count(key, labels, ts, event.event_id, sides, ctx)

    def on_record(self, record: CohortRecord, ts: float, ctx: RuleContext) -> None:
        self._count(record.key, record.labels, ts, record.event_id, int(record.role), ctx)

    def _count(self, key: str, labels: dict[str, str], ts: float, event_id: str, sides: int, ctx: RuleContext) -> None:
        start = self.window.start_of(ts)
        if start + self.window.size <= ctx.watermark:
            return  # its window was judged already (a replay, or too late)
        bucket_key = f"{key}\x1f{start!r}"
        store = ctx.state(self.namespace, RatioBucket)
        bucket = store.get(bucket_key)
        if bucket is None:  # the group's first event in this window: its timer judges the window at its end
            bucket = RatioBucket(start, {}, labels)
            ctx.set_timer(self.rule_id, bucket_key, start + self.window.size)
        elif bucket.seen.get(event_id, 0) & sides == sides:
            return  # a redelivery
        bucket.seen[event_id] = bucket.seen.get(event_id, 0) | sides
        store.set(bucket_key, bucket)

    def on_timer(self, key: str, fire_at: float, ctx: RuleContext) -> None:
        store = ctx.state(self.namespace, RatioBucket)
        bucket = store.get(key)
        store.delete(key)
        if bucket is None:
            return
        numerator = sum(1 for s in bucket.seen.values() if s & _NUM)
        denominator = sum(1 for s in bucket.seen.values() if s & _DEN)
        if denominator == 0:
            return
        rate = numerator / denominator * self.per
        # every group's rate is telemetry, small ones too (the report sums a week of them; the trend panels)
        subject = ",".join(f"{k}={v}" for k, v in sorted(bucket.labels.items()))
        ctx.score([Score(self.rule_id, "rule", subject, fire_at, round(rate, 3), numerator, denominator)])
        if denominator < self.min_denominator or rate <= self.above:
            return
        group = key.rpartition("\x1f")[0]
        shown = f"{rate:.1f}"
        ctx.emit(
            self.alert(
                parts=(group, repr(bucket.start)),
                status="firing",
                starts_at=fire_at,
                labels=bucket.labels,
                summary=self.summary.render(
                    LabelFields(bucket.labels),
                    {"rate": shown, "numerator": numerator, "denominator": denominator, "window_start": format_rfc3339(bucket.start)},
                ),
                evidence=self._evidence(group, bucket, numerator, denominator, rate),
            )
        )

    def _evidence(self, group: str, bucket: RatioBucket, numerator: int, denominator: int, rate: float) -> dict[str, Any]:
        sample = sorted(e for e, s in bucket.seen.items() if s & _NUM)[:20]
        return {
            "event_ids": sample,
            "key": group,
            "numerator": numerator,
            "denominator": denominator,
            "rate": round(rate, 3),
            "per": self.per,
            "above": self.above,
            "window_start": format_rfc3339(bucket.start),
            "window_end": format_rfc3339(bucket.start + self.window.size),
        }


register("ratio", RatioSpec, RatioRule)
