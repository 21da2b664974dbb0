"""Grouped notifications: the alerts sent for one set of group labels within one interval, as one message."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from yujing.alerts import Alert, alert_id

__all__ = ["MAX_GROUP_ALERTS", "AlertGroup", "group_alerts"]

#: Alerts carried in full by one group notification (the counts cover the rest).
MAX_GROUP_ALERTS = 50


class AlertGroup(msgspec.Struct, frozen=True, kw_only=True):
    """One notification for a group receiver (the webhook): the alerts sent for ``labels`` together.

    ``group_id`` is derived from the labels and the alerts' ids and statuses, so a
    re-sent group (after a restart) has the same id and a receiver can drop it.
    """

    group_id: str
    labels: dict[str, str]
    count: int
    firing: int
    resolved: int
    truncated: bool
    alerts: list[Alert]


def group_alerts(alerts: Sequence[Alert], by: Sequence[str]) -> list[AlertGroup]:
    """Alerts grouped by the values of the ``by`` labels (a missing one reads as ``""``), in order of first appearance.

    >>> import datetime as dt
    >>> t = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    >>> a = [Alert(alert_id=str(i), source="rule", rule_id="r", rule_version="1", severity="major", status="firing",
    ...            starts_at=t, detected_at=t, labels={"region": r}, summary="s", evidence={}) for i, r in enumerate("AAB")]
    >>> [(g.labels["region"], g.count) for g in group_alerts(a, ["region"])]
    [('A', 2), ('B', 1)]
    """
    members: dict[tuple[str, ...], list[Alert]] = {}
    for alert in alerts:
        members.setdefault(tuple(alert.labels.get(name, "") for name in by), []).append(alert)
    groups = []
    for values, group in members.items():
        labels = dict(zip(by, values, strict=True))
        ident = alert_id("~group", *(f"{k}={v}" for k, v in labels.items()), *sorted(f"{a.alert_id}:{a.status}" for a in group))
        firing = sum(1 for a in group if a.status == "firing")
        groups.append(
            AlertGroup(
                group_id=ident,
                labels=labels,
                count=len(group),
                firing=firing,
                resolved=len(group) - firing,
                truncated=len(group) > MAX_GROUP_ALERTS,
                alerts=list(group[:MAX_GROUP_ALERTS]),
            )
        )
    return groups
