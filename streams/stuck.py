"""A watchdog for partitions faust has read past but never delivered (a faust rebalance race).

faust resumes the stream partitions before it seeks them to their committed
offsets. A fetch in flight across that seek can move a partition's read offset
past messages that the suspended flow then throws away; the re-fetch of those
offsets is dropped as already read, and the partition delivers nothing more
until new messages arrive. Seen here as a restarted worker that never
processed the tail of some partitions (missing SLA breaches).

The signature is a partition whose read offset is at or beyond its committed
offset, with no message of it awaiting acknowledgement, unchanged over two
checks (a healthy partition commits what it read within a commit interval).
The watchdog seeks such a partition back to its committed offset, so the
lost messages are fetched again; anything delivered twice is harmless
(idempotent rules, deterministic alert ids).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

__all__ = ["StuckPartitionWatchdog"]

log = logging.getLogger(__name__)


class StuckPartitionWatchdog:
    """Checks a faust app's stream partitions and re-seeks those stuck behind a lost fetch."""

    def __init__(self, app: Any, exclude: Callable[[Any], bool] = lambda tp: False) -> None:
        self.app = app
        self.exclude = exclude
        self.suspects: dict[Any, tuple[int | None, int | None]] = {}
        self.reseeks = 0

    def _stuck_candidates(self) -> dict[Any, tuple[int | None, int | None]]:
        consumer = self.app.consumer
        pending = {m.tp for m in list(consumer._unacked_messages)}
        out = {}
        for tp in consumer.assignment():
            if self.exclude(tp) or tp in pending:
                continue
            read = consumer._read_offset.get(tp)
            committed = consumer._committed_offset.get(tp)
            if read is not None and (committed is None or read >= committed):
                out[tp] = (read, committed)
        return out

    async def check(self) -> int:
        """One look; returns how many partitions were sought back."""
        if self.app.rebalancing or not self.app.tables.recovery.completed.is_set():
            self.suspects = {}
            return 0
        now = self._stuck_candidates()
        stuck = {tp: state for tp, state in now.items() if self.suspects.get(tp) == state}
        self.suspects = now
        for tp, (read, committed) in stuck.items():
            offset = committed if committed is not None else 0
            log.warning("partition %s read to %s but committed %s with nothing pending: seeking back to %s", tp, read, committed, offset)
            await self.app.consumer.seek(tp, offset)
            self.suspects.pop(tp, None)
            self.reseeks += 1
        return len(stuck)
