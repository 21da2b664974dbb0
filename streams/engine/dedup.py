"""The first alert-handling stage: drop alerts already emitted (by ``alert_id`` and status).

A rule may emit the same alert again after a redelivery, a replay or a
restart; this stage lets each ``(alert_id, status)`` through once. Entries
expire ``retention`` seconds of event time after the alert, through a timer,
so the state stays bounded.
"""

from __future__ import annotations

from yujing.alerts import STATUS_RANK, Alert
from yujing.protocols import KeyedState, RuleContext

__all__ = ["Deduplicator"]


class Deduplicator:
    """Lets each alert id through once per status; a resolved alert is never re-fired by a duplicate."""

    OWNER = "~dedup"

    def __init__(self, store: KeyedState[int], retention: float) -> None:
        self.store = store
        self.retention = retention

    def admit(self, alert: Alert, ctx: RuleContext) -> bool:
        rank = STATUS_RANK[alert.status]
        seen = self.store.get(alert.alert_id)
        if seen is not None and seen >= rank:
            return False
        self.store.set(alert.alert_id, rank)
        last = alert.ends_at or alert.starts_at
        ctx.set_timer(self.OWNER, alert.alert_id, last.timestamp() + self.retention)
        return True

    def on_timer(self, key: str, fire_at: float, ctx: RuleContext) -> None:
        self.store.delete(key)
