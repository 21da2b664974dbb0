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

A second stall: a worker started right after another was killed sometimes
comes out of recovery with no read and no committed offset for any stream
partition, and fetches nothing at all, though the partitions hold unread
messages (seen in the SIGKILL test: every partition active and routed, the
flow running, nothing read for minutes). Such a partition, never read and
with messages beyond the worker's own next offset for it (``next_offset``,
from :mod:`streams.positions`), unchanged over two checks, is sought to that
offset (the start when it has none), which starts its fetching.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

__all__ = ["StuckPartitionWatchdog", "describe_consumer"]

log = logging.getLogger(__name__)


class StuckPartitionWatchdog:
    """Checks a faust app's stream partitions and re-seeks those stuck behind a lost fetch."""

    def __init__(
        self, app: Any, exclude: Callable[[Any], bool] = lambda tp: False, next_offset: Callable[[Any], int | None] = lambda tp: None
    ) -> None:
        self.app = app
        self.exclude = exclude
        self.next_offset = next_offset
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
            elif read is None and committed is None:  # never read since the worker started
                highwater = consumer.highwater(tp)
                if highwater is not None and highwater > (self.next_offset(tp) or 0):
                    out[tp] = (None, None)
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
            if read is None:
                offset = self.next_offset(tp) or 0
                log.warning("partition %s has unread messages but was never fetched: seeking it to %s", tp, offset)
            else:
                offset = committed if committed is not None else 0
                log.warning(
                    "partition %s read to %s but committed %s with nothing pending: seeking back to %s", tp, read, committed, offset
                )
            await self.app.consumer.seek(tp, offset)
            self.suspects.pop(tp, None)
            self.reseeks += 1
        return len(stuck)


def describe_consumer(app: Any) -> str:
    """A faust consumer's flow and per-partition bookkeeping, for a stalled worker's dump: whether its flow is
    suspended, which partitions it fetches, and how far each is read, committed and acknowledged."""
    consumer = app.consumer
    recovery = app.tables.recovery
    lines = [
        f"consumer: flow_active={consumer.flow_active} suspend_flow={consumer.suspend_flow.is_set()} "
        f"can_resume_flow={consumer.can_resume_flow.is_set()} rebalancing={app.rebalancing} "
        f"recovery_completed={recovery.completed.is_set()} unacked={len(consumer._unacked_messages)}",
        f"paused: {sorted(map(str, consumer._paused_partitions))}",
        f"buffered: {sorted(map(str, consumer._buffered_partitions))}",
    ]
    active = consumer._active_partitions or set()
    routed = app.topics._tp_index
    for tp in sorted(consumer.assignment()):
        lines.append(
            f"{tp.topic}[{tp.partition}]: active={tp in active} routed={len(routed.get(tp, ()))} "
            f"read={consumer._read_offset.get(tp)} committed={consumer._committed_offset.get(tp)} "
            f"acked={len(consumer._acked.get(tp, ()))} highwater={consumer.highwater(tp)}"
        )
    return "\n".join(lines)
