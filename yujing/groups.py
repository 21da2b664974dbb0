"""Grouped notifications: the alerts sent for one set of group labels within one interval, as one message."""

from __future__ import annotations

import msgspec

from yujing.alerts import Alert, alert_id
from yujing.timeutil import format_rfc3339

__all__ = ["MAX_GROUP_ALERTS", "AlertGroup", "GroupState"]

#: Alerts carried in full by one group notification (the count covers the rest).
MAX_GROUP_ALERTS = 50


class GroupState(msgspec.Struct, kw_only=True):
    """An open group in keyed state (until its interval ends)."""

    labels: dict[str, str]
    window_start: float
    window_end: float
    count: int = 0
    firing: int = 0
    resolved: int = 0
    alerts: list[Alert] = msgspec.field(default_factory=list)


class AlertGroup(msgspec.Struct, frozen=True, kw_only=True):
    """One notification for group receivers (the webhook): what was sent for ``labels`` in an interval.

    ``group_id`` is deterministic (labels and interval), so a re-sent group is recognisable.
    """

    group_id: str
    labels: dict[str, str]
    window_start: str
    window_end: str
    count: int
    firing: int
    resolved: int
    truncated: bool
    alerts: list[Alert]

    @classmethod
    def of(cls, state: GroupState) -> AlertGroup:
        key = "\x1f".join(f"{k}={v}" for k, v in sorted(state.labels.items()))
        return cls(
            group_id=alert_id("~group", key, repr(state.window_start)),
            labels=state.labels,
            window_start=format_rfc3339(state.window_start),
            window_end=format_rfc3339(state.window_end),
            count=state.count,
            firing=state.firing,
            resolved=state.resolved,
            truncated=state.count > len(state.alerts),
            alerts=state.alerts,
        )
